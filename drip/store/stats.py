"""The rows behind ``drip stats`` and ``drip queue``: plain tuples, no ORM objects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from drip.store.models import (
    Campaign,
    Contact,
    Enrollment,
    Message,
    ScheduledSend,
    SendDecision,
)

__all__ = [
    "campaign_rows",
    "deferrals",
    "enrollment_counts",
    "inbound_times",
    "opt_out_times",
    "step_sends",
]


def campaign_rows(session: Session, name: str | None = None) -> Sequence[Any]:
    """``(id, name, definition, status)`` of every campaign (or the named one)."""
    stmt = select(Campaign.id, Campaign.name, Campaign.definition, Campaign.status).order_by(
        Campaign.name
    )
    if name is not None:
        stmt = stmt.where(Campaign.name == name)
    return session.execute(stmt).all()


def enrollment_counts(session: Session, campaign_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """``{campaign id: {status: count}}`` of enrollments."""
    out: dict[int, dict[str, int]] = {}
    rows = session.execute(
        select(Enrollment.campaign_id, Enrollment.status, func.count())
        .where(Enrollment.campaign_id.in_(campaign_ids))
        .group_by(Enrollment.campaign_id, Enrollment.status)
    )
    for cid, status, n in rows:
        out.setdefault(cid, {})[str(status)] = int(n)
    return out


def _of(campaign_ids: Sequence[int], others: bool) -> ColumnElement[bool]:
    """Sends of these campaigns, and (``others``) the sends of no campaign."""
    of = ScheduledSend.campaign_id.in_(campaign_ids)
    return or_(of, ScheduledSend.campaign_id.is_(None)) if others else of


def step_sends(
    session: Session, campaign_ids: Sequence[int], *, others: bool = False
) -> Sequence[Any]:
    """One row per campaign send: step, state, decision code, and its message if any.

    ``others``: the sends of no campaign too (opt-in confirmations, bulk, manual).
    """
    stmt = (
        select(
            ScheduledSend.id,
            ScheduledSend.campaign_id,
            ScheduledSend.kind,
            ScheduledSend.channel,
            ScheduledSend.step_id,
            ScheduledSend.contact_id,
            ScheduledSend.state,
            ScheduledSend.decision_code,
            Message.status.label("message_status"),
            Message.footer,
            Message.segments,
            Message.sent_at,
            Message.created_at.label("message_created_at"),
        )
        .outerjoin(Message, Message.id == ScheduledSend.message_id)
        .where(_of(campaign_ids, others))
    )
    rows: Sequence[Any] = session.execute(stmt).all()
    return rows


def deferrals(
    session: Session, campaign_ids: Sequence[int], *, others: bool = False
) -> Sequence[Any]:
    """``(campaign id, kind, step id, code, sends)``: how many sends were deferred, by reason."""
    stmt = (
        select(
            ScheduledSend.campaign_id,
            ScheduledSend.kind,
            ScheduledSend.step_id,
            SendDecision.code,
            func.count(func.distinct(SendDecision.send_id)),
        )
        .join(ScheduledSend, ScheduledSend.id == SendDecision.send_id)
        .where(_of(campaign_ids, others), SendDecision.outcome == "deferred")
        .group_by(
            ScheduledSend.campaign_id, ScheduledSend.kind, ScheduledSend.step_id, SendDecision.code
        )
    )
    rows: Sequence[Any] = session.execute(stmt).all()
    return rows


def inbound_times(session: Session, contact_ids: set[int]) -> dict[int, list[datetime]]:
    """``{contact id: [times of inbound messages]}``, oldest first."""
    out: dict[int, list[datetime]] = {}
    rows = session.execute(
        select(Message.contact_id, Message.created_at)
        .where(Message.direction == "inbound", Message.contact_id.is_not(None))
        .order_by(Message.created_at)
    )
    for cid, at in rows:
        if cid in contact_ids:
            out.setdefault(cid, []).append(at)
    return out


def opt_out_times(session: Session) -> dict[int, datetime]:
    """``{contact id: when they opted out of texts}`` for every contact opted out."""
    rows = session.execute(
        select(Contact.id, Contact.sms_opted_out_at).where(Contact.sms_opted_out_at.is_not(None))
    )
    return {cid: at for cid, at in rows if at is not None}
