"""The pending sends of ``drip queue``, grouped in SQL: one row per group, never per send.

A group is every pending send due by a time that shares what decides its
sender, its text and its window: campaign, step, kind, channel, fixed sender
number or role, the contact's agent, state and time zone, whether the contact
can be texted, and the hour (counted from ``now``) it falls due in. Each group
comes with its count, its latest due time and one representative send and
contact (the lowest send id), from which the forecast renders the text once.
The number of groups is bounded by campaigns x senders x zones x 25 hours,
not by the number of sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.orm import Session, aliased

from drip.domain.enums import SendState
from drip.store.models import Agent, Campaign, Contact, ScheduledSend

__all__ = ["agents", "campaigns", "pending_groups"]


def _hour(now: datetime, hours: int) -> Any:
    """0 for due by ``now``, then 1..hours for each following hour (a bounded CASE)."""
    due = ScheduledSend.due_at
    whens = [(due <= now + timedelta(hours=h), h) for h in range(hours + 1)]
    return case(*whens, else_=hours + 1)


def pending_groups(session: Session, now: datetime, hours: int) -> Sequence[Any]:
    """``(n, last_due, due_now, send, contact)`` per group of pending sends due by ``now + hours``.

    ``send`` and ``contact`` are the group's representative rows (ORM objects).
    """
    s = ScheduledSend
    c = Contact
    hour = _hour(now, hours).label("hour")
    can_text = (c.sms_consent_at.is_not(None) & c.sms_opted_out_at.is_(None)).label("can_text")
    keys = (
        s.campaign_id,
        s.step_id,
        s.kind,
        s.channel,
        s.sender_phone,
        s.sender_role,
        s.held_to_window,
        c.agent_id,
        c.state,
        c.timezone,
        c.text_status,
    )
    grouped = (
        select(
            func.count().label("n"),
            func.max(s.due_at).label("last_due"),
            func.min(s.id).label("rep"),
            hour,
        )
        .join(c, c.id == s.contact_id)
        .where(s.state == SendState.PENDING, s.due_at <= now + timedelta(hours=hours))
        .group_by(*keys, can_text, hour)
        .cte("g")
        # Once, before the representatives are joined: left to the planner, PostgreSQL
        # ran the grouping again in every parallel worker of the join.
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    rep = aliased(ScheduledSend)
    who = aliased(Contact)
    stmt = (
        select(grouped.c.n, grouped.c.last_due, grouped.c.hour == 0, rep, who)
        .join(rep, rep.id == grouped.c.rep)
        .join(who, who.id == rep.contact_id)
        .order_by(rep.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        # The planner expects as many groups as rows (it multiplies the keys' distinct
        # counts) and sorts them on disk; the groups are few, and hashing them is what
        # it does with room for its estimate. For this transaction only.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    rows: Sequence[Any] = session.execute(stmt).all()
    return rows


def agents(session: Session) -> dict[int, Agent]:
    """Every agent (a handful: the numbers texts go out from)."""
    return {a.id: a for a in session.scalars(select(Agent))}


def campaigns(session: Session) -> dict[int, Campaign]:
    """Every campaign row (a handful)."""
    return {c.id: c for c in session.scalars(select(Campaign))}
