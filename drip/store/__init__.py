"""The store: SQLAlchemy models, engines, migrations and the hot SQL of dispatch.

This package is the only place in drip that owns SQL. Everything else goes
through the functions and models exported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers (``X as X`` re-exports); _EXPORTS at run time
    from drip.store.claims import bulk_insert_sends as bulk_insert_sends
    from drip.store.claims import claim_due as claim_due
    from drip.store.claims import recover_stale as recover_stale
    from drip.store.claims import start_sending as start_sending
    from drip.store.engine import make_engine as make_engine
    from drip.store.engine import safe_url as safe_url
    from drip.store.engine import session_factory as session_factory
    from drip.store.migrate import current_revision as current_revision
    from drip.store.migrate import head_revision as head_revision
    from drip.store.migrate import upgrade as upgrade
    from drip.store.models import Agent as Agent
    from drip.store.models import Base as Base
    from drip.store.models import Campaign as Campaign
    from drip.store.models import ConsentEvent as ConsentEvent
    from drip.store.models import Contact as Contact
    from drip.store.models import Conversation as Conversation
    from drip.store.models import Enrollment as Enrollment
    from drip.store.models import Message as Message
    from drip.store.models import OrphanOptOut as OrphanOptOut
    from drip.store.models import ScheduledSend as ScheduledSend
    from drip.store.models import SendDecision as SendDecision
    from drip.store.types import StrEnumType as StrEnumType
    from drip.store.types import UtcDateTime as UtcDateTime

#: Where each exported name lives: imported on first use, so that importing one
#: submodule (``drip.store.models``) does not import Alembic and the claim SQL.
_EXPORTS = {
    **dict.fromkeys(("bulk_insert_sends", "claim_due", "recover_stale", "start_sending"), "claims"),
    **dict.fromkeys(("make_engine", "safe_url", "session_factory"), "engine"),
    **dict.fromkeys(("current_revision", "head_revision", "upgrade"), "migrate"),
    **dict.fromkeys(
        (
            "Agent",
            "Base",
            "Campaign",
            "ConsentEvent",
            "Contact",
            "Conversation",
            "Enrollment",
            "Message",
            "OrphanOptOut",
            "ScheduledSend",
            "SendDecision",
        ),
        "models",
    ),
    **dict.fromkeys(("StrEnumType", "UtcDateTime"), "types"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"drip.store.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The exported names (``_EXPORTS``), loaded or not."""
    return sorted({*globals(), *_EXPORTS})
