"""Status callbacks kept until their message is recorded (``pending_callbacks``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, func, select
from sqlalchemy.orm import Session

from drip.store.models import Message, PendingCallback


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def keep(
    session: Session,
    *,
    message_sid: str,
    status: str,
    error_code: int | None,
    error_message: str | None,
    received_at: datetime,
) -> None:
    """Store one callback whose message is not recorded yet."""
    session.add(
        PendingCallback(
            message_sid=message_sid,
            status=status,
            error_code=error_code,
            error_message=error_message,
            received_at=received_at,
        )
    )


def applicable(
    session: Session, sids: list[str] | None
) -> list[tuple[int, str, str, int | None, str | None]]:
    """Kept callbacks whose message now exists (only ``sids`` when given), oldest first.

    Each row is ``(id, message_sid, status, error_code, error_message)``.
    """
    query = (
        select(PendingCallback)
        .join(Message, Message.provider_sid == PendingCallback.message_sid)
        .order_by(PendingCallback.id)
    )
    if sids is not None:
        query = query.where(PendingCallback.message_sid.in_(sids))
    return [
        (row.id, row.message_sid, row.status, row.error_code, row.error_message)
        for row in session.scalars(query)
    ]


def forget(session: Session, callback_id: int) -> None:
    """Delete one kept callback (applied)."""
    session.execute(delete(PendingCallback).where(PendingCallback.id == callback_id))


def drop_older_than(session: Session, before: datetime) -> list[str]:
    """Delete the callbacks received before ``before``; their message ids."""
    return list(
        session.scalars(
            delete(PendingCallback)
            .where(PendingCallback.received_at < before)
            .returning(PendingCallback.message_sid)
        )
    )


def count(session: Session) -> int:
    """How many callbacks are kept."""
    return int(session.scalar(select(func.count()).select_from(PendingCallback)) or 0)


_P, _M = _table(PendingCallback).c, _table(Message).c
#: Built once: the fire path's caller asks it once per batch.
_SIDS_WITH_PENDING = (
    select(_P.message_sid)
    .select_from(_table(PendingCallback).join(_table(Message), _M.provider_sid == _P.message_sid))
    .where(_P.message_sid.in_(bindparam("sids", expanding=True)))
    .distinct()
)


def sids_with_pending(conn: Connection, sids: Iterable[str]) -> list[str]:
    """Which of these provider ids have a kept callback whose message is now recorded."""
    wanted = sorted(set(sids))
    if not wanted:
        return []
    return sorted(conn.scalars(_SIDS_WITH_PENDING, {"sids": wanted}))
