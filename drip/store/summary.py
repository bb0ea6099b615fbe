"""The per-step counts behind ``drip stats`` and the console, read without scanning sends.

``send_tallies`` is kept by the triggers of migration 0009: every insert or
state change of a send, every status change of its message, every first
deferral of a send for a reason and every enrollment adds to and subtracts
from it in the writer's own transaction. A read here costs the number of
campaign steps, not the number of sends.

Replies and opt-outs are attributed at read time (a reply counts for the
contact's last text before it): one indexed lookup per inbound text or
opt-out, never a scan of the sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from drip.domain.enums import SendState
from drip.store.models import Contact, Message, ScheduledSend, SendTally

__all__ = ["OUTSIDE", "attributed", "tallies"]

#: ``send_tallies.campaign_id`` of the texts outside campaigns (bucket: their kind).
OUTSIDE = 0


def tallies(session: Session, campaign_id: int | None = None) -> Sequence[Any]:
    """``(campaign_id, bucket, metric, code, n)`` of every non-zero count (or one campaign's)."""
    stmt = select(
        SendTally.campaign_id, SendTally.bucket, SendTally.metric, SendTally.code, SendTally.n
    ).where(SendTally.n != 0)
    if campaign_id is not None:
        stmt = stmt.where(SendTally.campaign_id == campaign_id)
    rows: Sequence[Any] = session.execute(stmt).all()
    return rows


def _events() -> Any:
    """``(contact_id, at)`` of every inbound text and every SMS opt-out, with its kind."""
    inbound = select(
        Message.contact_id.label("contact_id"),
        Message.created_at.label("at"),
        literal("replied").label("metric"),
    ).where(Message.direction == "inbound", Message.contact_id.is_not(None))
    opted = select(
        Contact.id.label("contact_id"),
        Contact.sms_opted_out_at.label("at"),
        literal("opted_out").label("metric"),
    ).where(Contact.sms_opted_out_at.is_not(None))
    return union_all(inbound, opted).subquery("ev")


def attributed(session: Session, campaign_id: int | None, *, outside: bool) -> Sequence[Any]:
    """``(campaign_id, step_id, kind, metric, sends)``: sent texts followed by a reply or opt-out.

    Each event counts for the contact's last sent text at or before it: among
    the texts of ``campaign_id`` (or of every campaign), or, with ``outside``,
    among every text, keeping the ones outside campaigns. A text followed by
    several events counts once per metric.
    """
    ev = _events()
    at = func.coalesce(Message.sent_at, Message.created_at)
    last: Select[Any] = (
        select(ScheduledSend.id)
        .join(Message, Message.id == ScheduledSend.message_id)
        .where(
            ScheduledSend.contact_id == ev.c.contact_id,
            ScheduledSend.state == SendState.SENT,
            at <= ev.c.at,
        )
        .order_by(at.desc(), ScheduledSend.id.desc())
        .limit(1)
    )
    if not outside:
        last = last.where(
            ScheduledSend.campaign_id == campaign_id
            if campaign_id is not None
            else ScheduledSend.campaign_id.is_not(None)
        )
    hits = select(last.scalar_subquery().label("send_id"), ev.c.metric).distinct().subquery("hits")
    stmt = (
        select(
            ScheduledSend.campaign_id,
            ScheduledSend.step_id,
            ScheduledSend.kind,
            hits.c.metric,
            func.count(),
        )
        .join(hits, hits.c.send_id == ScheduledSend.id)
        .group_by(
            ScheduledSend.campaign_id, ScheduledSend.step_id, ScheduledSend.kind, hits.c.metric
        )
    )
    if outside:
        stmt = stmt.where(ScheduledSend.campaign_id.is_(None))
    rows: Sequence[Any] = session.execute(stmt).all()
    return rows
