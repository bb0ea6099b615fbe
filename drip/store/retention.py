"""The SQL of ``drip purge``: message bodies older than the retention cutoff, counted or removed.

A body is removed by setting it empty (``messages.body``, ``bulks.body``) or
NULL (``scheduled_sends.body``, ``messages.subject``); the rows, their times,
statuses and decisions stay. Consent evidence (``consent_events``,
``contacts.sms_consent_text``) is not touched. Removal goes in batches of
:data:`BATCH` rows, each its own transaction, so a first purge of years of
messages holds no long lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from drip.domain.enums import SendState
from drip.store.models import Bulk, Message, ScheduledSend

__all__ = ["BATCH", "PurgeCounts", "count", "purge"]

BATCH = 5000
#: Sends whose body may still be sent: never purged.
_LIVE = (SendState.PENDING, SendState.QUEUED, SendState.SENDING)


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """Rows whose body is (or would be) removed."""

    messages: int
    sends: int
    bulks: int

    @property
    def total(self) -> int:
        return self.messages + self.sends + self.bulks


def _messages(cutoff: datetime) -> ColumnElement[bool]:
    return and_(Message.created_at < cutoff, or_(Message.body != "", Message.subject.is_not(None)))


def _sends(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        ScheduledSend.created_at < cutoff,
        ScheduledSend.body.is_not(None),
        ScheduledSend.state.not_in(_LIVE),
    )


def _bulks(cutoff: datetime) -> ColumnElement[bool]:
    return and_(Bulk.created_at < cutoff, Bulk.body != "")


def count(session: Session, cutoff: datetime) -> PurgeCounts:
    """How many bodies are past ``cutoff`` (``--dry-run``)."""

    def n(model: Any, where: ColumnElement[bool]) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(where)) or 0)

    return PurgeCounts(
        n(Message, _messages(cutoff)), n(ScheduledSend, _sends(cutoff)), n(Bulk, _bulks(cutoff))
    )


def _batches(
    sessions: sessionmaker[Session], model: Any, where: Any, values: dict[str, Any]
) -> int:
    done = 0
    while True:
        with sessions.begin() as session:
            ids = list(session.scalars(select(model.id).where(where).limit(BATCH)))
            if not ids:
                return done
            session.execute(
                update(model)
                .where(model.id.in_(ids))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            done += len(ids)


def purge(sessions: sessionmaker[Session], cutoff: datetime) -> PurgeCounts:
    """Remove the bodies past ``cutoff``, a batch per transaction; what was removed."""
    return PurgeCounts(
        _batches(sessions, Message, _messages(cutoff), {"body": "", "subject": None}),
        _batches(sessions, ScheduledSend, _sends(cutoff), {"body": None}),
        _batches(sessions, Bulk, _bulks(cutoff), {"body": ""}),
    )
