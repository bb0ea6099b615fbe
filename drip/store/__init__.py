"""The store: SQLAlchemy models, engines, migrations and the hot SQL of dispatch.

This package is the only place in drip that owns SQL. Everything else goes
through the functions and models exported here.
"""

from __future__ import annotations

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
