"""Queries of the campaign and enrollment lifecycle and of bulk cancels.

Each function runs in the caller's transaction and does not commit. A
cancelled or held send gets a ``send_decisions`` row with its reason, so
``drip explain`` shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.orm import Session

from drip.domain.enums import EnrollmentStatus, SendState
from drip.store import outbox, queue, summary
from drip.store.models import Campaign, Enrollment, ScheduledSend, SendDecision

__all__ = [
    "CampaignCounts",
    "campaign_counts",
    "cancel_pending",
    "note_pending",
    "record_decisions",
    "stop_campaign_enrollments",
]


@dataclass(frozen=True, slots=True)
class CampaignCounts:
    """Per campaign: active enrollments, pending sends, the earliest pending due time."""

    active_enrollments: int
    pending_sends: int
    next_due_at: datetime | None


def campaign_counts(session: Session) -> dict[int, CampaignCounts]:
    """:class:`CampaignCounts` of every campaign that has enrollments or pending sends.

    From the running counts (:mod:`drip.store.summary`, :mod:`drip.store.queue`):
    the cost is the number of campaigns and groups, not of enrollments or sends.
    """
    active = {
        int(cid): int(n)
        for cid, _bucket, metric, code, n in summary.tallies(session)
        if metric == "enrollments" and code == EnrollmentStatus.ACTIVE.value
    }
    pending = queue.pending_by_campaign(session)
    out: dict[int, CampaignCounts] = {}
    for cid in set(active) | set(pending):
        n, due = pending.get(cid, (0, None))
        out[cid] = CampaignCounts(int(active.get(cid, 0)), n, due)
    return out


def record_decisions(
    session: Session,
    send_ids: Sequence[int],
    now: datetime,
    *,
    outcome: str,
    code: str,
    reason: str,
) -> None:
    rows: list[dict[str, Any]] = [
        {"send_id": i, "at": now, "outcome": outcome, "code": code, "reason": reason}
        for i in send_ids
    ]
    # In chunks: one decision row per send of a whole campaign can be many.
    for start in range(0, len(rows), 1000):
        session.execute(insert(SendDecision), rows[start : start + 1000])


def cancel_pending(
    session: Session, where: ColumnElement[bool], now: datetime, code: str, reason: str
) -> list[int]:
    """Cancel the pending sends matching ``where``, each with a decision; returns their ids."""
    ids = list(
        session.scalars(
            update(ScheduledSend)
            .where(where, ScheduledSend.state == SendState.PENDING)
            .values(
                state=SendState.CANCELLED,
                decision_code=code,
                decision_reason=reason,
                updated_at=now,
            )
            .returning(ScheduledSend.id)
            .execution_options(synchronize_session=False)
        )
    )
    record_decisions(session, ids, now, outcome="cancelled", code=code, reason=reason)
    return ids


def note_pending(
    session: Session, campaign_id: int, now: datetime, *, outcome: str, code: str, reason: str
) -> int:
    """Record a decision (``held``, ``released``) on every pending send of a campaign."""
    ids = list(
        session.scalars(
            select(ScheduledSend.id).where(
                ScheduledSend.campaign_id == campaign_id, ScheduledSend.state == SendState.PENDING
            )
        )
    )
    record_decisions(session, ids, now, outcome=outcome, code=code, reason=reason)
    return len(ids)


def stop_campaign_enrollments(
    session: Session, where: ColumnElement[bool], now: datetime, reason: str
) -> int:
    """Stop the active enrollments matching ``where``; returns how many."""
    ended = list(
        session.execute(
            update(Enrollment)
            .where(where, Enrollment.status == EnrollmentStatus.ACTIVE)
            .values(status=EnrollmentStatus.STOPPED, stopped_at=now, stop_reason=reason)
            .returning(Enrollment.id, Enrollment.contact_id, Enrollment.campaign_id)
            .execution_options(synchronize_session=False)
        )
    )
    outbox.append_ended(session, [(r[0], r[1], r[2]) for r in ended], "stopped", reason, now)
    return len(ended)


def set_status(session: Session, campaign: Campaign, status: Any, now: datetime) -> None:
    """Change a campaign's status (the row is loaded in ``session``)."""
    campaign.status = status
    campaign.status_changed_at = now
