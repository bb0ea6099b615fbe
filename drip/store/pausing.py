"""Queries of per-enrollment pauses: hold, extend, release with the schedule shifted.

A paused enrollment's pending sends stay ``pending`` but are not claimed
(:func:`drip.store.claims.not_held`). On release every pending send of the
enrollment moves later by the paused span, so the remaining steps keep their
spacing from the resume. Each hold and release is a ``send_decisions`` row
on every pending send. Functions run in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from drip.domain.enums import EnrollmentStatus, SendState
from drip.store.lifecycle import record_decisions
from drip.store.models import Enrollment, ScheduledSend

__all__ = [
    "due_resumes",
    "hold",
    "next_resume_at",
    "paused_enrollment_ids",
    "release",
]


def _pending_ids(session: Session, enrollment_id: int) -> list[int]:
    return list(
        session.scalars(
            select(ScheduledSend.id).where(
                ScheduledSend.enrollment_id == enrollment_id,
                ScheduledSend.state == SendState.PENDING,
            )
        )
    )


def hold(
    session: Session,
    enrollment: Enrollment,
    now: datetime,
    *,
    until: datetime | None,
    by: str,
    code: str,
    reason: str,
) -> bool:
    """Pause (or extend the pause of) an active enrollment; True when it changed.

    ``until`` None holds it until an operator resumes. An operator's hold is
    not shortened to a timed one by a later reply; a timed one is extended.
    """
    if enrollment.status is not EnrollmentStatus.ACTIVE:
        return False
    if enrollment.paused_at is not None:
        if enrollment.paused_until is None:
            return False  # held by an operator: only an operator releases it
        if until is not None and until <= enrollment.paused_until:
            return False
    else:
        enrollment.paused_at = now
    enrollment.paused_until = until
    enrollment.paused_by = by
    record_decisions(
        session, _pending_ids(session, enrollment.id), now, outcome="held", code=code, reason=reason
    )
    return True


def release(
    session: Session, enrollment: Enrollment, now: datetime, *, code: str, reason: str
) -> int:
    """Resume a paused enrollment; its pending sends move later by the paused span.

    Returns how many sends moved (0 when it was not paused).
    """
    if enrollment.paused_at is None:
        return 0
    span = max(now - enrollment.paused_at, now - now)
    sends = list(
        session.scalars(
            select(ScheduledSend).where(
                ScheduledSend.enrollment_id == enrollment.id,
                ScheduledSend.state == SendState.PENDING,
            )
        )
    )
    for send in sends:
        send.due_at = send.due_at + span
        send.original_due_at = send.original_due_at + span
        send.updated_at = now
    enrollment.paused_at = None
    enrollment.paused_until = None
    enrollment.paused_by = None
    record_decisions(
        session, [s.id for s in sends], now, outcome="released", code=code, reason=reason
    )
    return len(sends)


def due_resumes(session: Session, now: datetime, limit: int = 500) -> list[Enrollment]:
    """Active enrollments whose quiet period has run out at ``now``, oldest first."""
    return list(
        session.scalars(
            select(Enrollment)
            .where(
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Enrollment.paused_until.is_not(None),
                Enrollment.paused_until <= now,
            )
            .order_by(Enrollment.paused_until, Enrollment.id)
            .limit(limit)
        )
    )


def next_resume_at(session: Session) -> datetime | None:
    """The earliest automatic resume (replay jumps there as to a due send)."""
    return session.scalar(
        select(Enrollment.paused_until)
        .where(Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.paused_until.is_not(None))
        .order_by(Enrollment.paused_until)
        .limit(1)
    )


def paused_enrollment_ids() -> Any:
    """A subquery of the enrollments whose sends are held by a pause."""
    return select(Enrollment.id).where(Enrollment.paused_at.is_not(None))
