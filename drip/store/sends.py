"""Queries on scheduled sends outside the claim and fire paths (``scheduled_sends``).

The claim, start and recovery statements are :mod:`drip.store.claims`; the
fire path's reads and records are :mod:`drip.store.fire_gather` and
:mod:`drip.store.fire_record`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from drip.domain.enums import SendState
from drip.store.models import ScheduledSend


def unknown_oldest_first(session: Session, limit: int | None = None) -> list[ScheduledSend]:
    """The ``unknown`` sends, least recently changed first (at most ``limit``)."""
    query = (
        select(ScheduledSend)
        .where(ScheduledSend.state == SendState.UNKNOWN)
        .order_by(ScheduledSend.updated_at, ScheduledSend.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def settle_unknown(session: Session, send_id: int, values: Mapping[str, object]) -> bool:
    """Move a send that is still ``unknown`` on with ``values``; False when another
    process (a late callback, a second reconcile) changed it meanwhile."""
    moved = session.execute(
        update(ScheduledSend)
        .where(ScheduledSend.id == send_id, ScheduledSend.state == SendState.UNKNOWN)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def set_message(session: Session, send_id: int, message_id: int) -> None:
    """Point the send at the message that recorded it."""
    session.execute(
        update(ScheduledSend)
        .where(ScheduledSend.id == send_id)
        .values(message_id=message_id)
        .execution_options(synchronize_session=False)
    )


def count_by_state_of_bulk(session: Session, bulk_id: int) -> dict[SendState, int]:
    """How many of a bulk text's sends are in each state."""
    rows = session.execute(
        select(ScheduledSend.state, func.count())
        .where(ScheduledSend.bulk_id == bulk_id)
        .group_by(ScheduledSend.state)
    ).all()
    return {state: int(n) for state, n in rows}


def held_created_at(
    session: Session, contact_ids: Sequence[int], created_at: datetime
) -> list[int]:
    """Ids of the sends held to the window that were created at ``created_at`` for these contacts."""
    ids: list[int] = []
    for start in range(0, len(contact_ids), 5000):
        ids.extend(
            session.scalars(
                select(ScheduledSend.id).where(
                    ScheduledSend.held_to_window.is_(True),
                    ScheduledSend.created_at == created_at,
                    ScheduledSend.contact_id.in_(contact_ids[start : start + 5000]),
                )
            )
        )
    return ids


def has_overdue(session: Session, campaign_id: int, now: datetime) -> bool:
    """Whether the campaign has a pending send already due at ``now``."""
    found = session.scalar(
        select(ScheduledSend.id)
        .where(
            ScheduledSend.campaign_id == campaign_id,
            ScheduledSend.state == SendState.PENDING,
            ScheduledSend.due_at <= now,
        )
        .limit(1)
    )
    return found is not None
