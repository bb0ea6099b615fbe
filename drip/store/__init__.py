"""The store: SQLAlchemy models, engines, migrations and the hot SQL of dispatch.

This package is the only place in drip that owns SQL. Everything else goes
through the functions and models exported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drip.store.claims import bulk_insert_sends, claim_due, recover_stale, start_sending
    from drip.store.engine import make_engine, safe_url, session_factory
    from drip.store.migrate import current_revision, head_revision, upgrade
    from drip.store.models import (
        Agent,
        Base,
        Campaign,
        ConsentEvent,
        Contact,
        Conversation,
        Enrollment,
        Message,
        OrphanOptOut,
        ScheduledSend,
        SendDecision,
    )
    from drip.store.types import StrEnumType, UtcDateTime

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


__all__ = [
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
    "StrEnumType",
    "UtcDateTime",
    "bulk_insert_sends",
    "claim_due",
    "current_revision",
    "head_revision",
    "make_engine",
    "recover_stale",
    "safe_url",
    "session_factory",
    "start_sending",
    "upgrade",
]
