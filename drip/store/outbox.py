"""The webhook outbox: events written in the transaction of their change, claimed to deliver.

:func:`append` is called by the service (or store function) that makes a
change, in that change's transaction, so an event exists exactly when its
change committed. The delivery loop (:mod:`drip.services.webhooks`) claims
pending rows whose turn has come, at most one per contact at a time and in
``id`` order per contact: a row is not claimed while an earlier row of the
same contact is still pending.

A claim is a lease, taken in a short transaction of its own: the claimed rows'
``next_attempt_at`` moves to the lease's end, so no other loop takes them
while they are posted, and no transaction stays open across the posts (on
SQLite a transaction that read before the posts could not write after them
once another writer, such as ``drip run``'s tick, had committed: the
delivered mark would fail and the event go out again). On PostgreSQL the
claim locks its rows with ``FOR UPDATE SKIP LOCKED`` so that two loops
claiming at once take different rows. A loop killed mid-delivery leaves its
rows pending; they are posted again when the lease ends (delivery is at
least once).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, case, cast, exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from drip.store.models import Agent, Campaign, Contact, OutboxEvent

__all__ = [
    "Backlog",
    "BacklogGroup",
    "DeadEvent",
    "OutboxCounts",
    "agent_doc",
    "append",
    "append_ended",
    "backlog",
    "claim",
    "contact_doc",
    "counts",
    "dead",
    "mark_delivered",
    "release",
    "retry_dead",
    "settle",
]


def append(
    session: Session, type: str, contact_id: int | None, payload: dict[str, Any], now: datetime
) -> str:
    """Add one event to the outbox in the caller's transaction; returns its ``id``."""
    event_id = f"evt_{uuid.uuid4().hex}"
    session.execute(
        insert(OutboxEvent).values(
            event_id=event_id,
            type=type,
            contact_id=contact_id,
            payload=payload,
            created_at=now,
            state="pending",
            attempts=0,
            next_attempt_at=now,
        )
    )
    return event_id


def contact_doc(contact: Contact) -> dict[str, Any]:
    """How an event names its contact: drip's id and the CRM's, name, phone, email."""
    return {
        "id": contact.id,
        "external_id": contact.external_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "phone": contact.phone,
        "email": contact.email,
    }


def agent_doc(session: Session, agent_id: int | None) -> dict[str, Any] | None:
    """The assigned agent as an event carries it (None: the concierge or default sender)."""
    agent = session.get(Agent, agent_id) if agent_id is not None else None
    if agent is None:
        return None
    return {
        "id": agent.id,
        "first_name": agent.first_name,
        "last_name": agent.last_name,
        "phone": agent.phone,
        "email": agent.email,
    }


def append_ended(
    session: Session,
    ended: Sequence[tuple[int, int, int]],
    status: str,
    reason: str,
    now: datetime,
) -> None:
    """One ``enrollment.ended`` per (enrollment id, contact id, campaign id) that ended."""
    if not ended:
        return
    wanted = select(Campaign.id, Campaign.name).where(Campaign.id.in_({c for _, _, c in ended}))
    names: dict[int, str] = {row.id: row.name for row in session.execute(wanted)}
    for enrollment_id, contact_id, campaign_id in ended:
        doc = {
            "enrollment_id": enrollment_id,
            "contact_id": contact_id,
            "campaign": names.get(campaign_id),
            "status": status,
            "reason": reason,
        }
        append(session, "enrollment.ended", contact_id, doc, now)


def claim(session: Session, now: datetime, limit: int, lease_until: datetime) -> list[OutboxEvent]:
    """Lease the pending rows due at ``now`` until ``lease_until``, oldest first, none with an
    earlier pending row of its contact.

    Runs in the caller's transaction, which should end right after (the lease
    is what keeps the rows while they are posted); on SQLite that transaction
    should begin IMMEDIATE. The rows returned keep the values they were
    claimed with.
    """
    earlier = aliased(OutboxEvent)
    blocked = exists().where(
        earlier.contact_id == OutboxEvent.contact_id,
        earlier.id < OutboxEvent.id,
        earlier.state == "pending",
    )
    stmt = (
        select(OutboxEvent)
        .where(
            OutboxEvent.state == "pending",
            OutboxEvent.next_attempt_at <= now,
            ~blocked,
        )
        .order_by(OutboxEvent.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=OutboxEvent)
    rows = list(session.scalars(stmt))
    if rows:
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_([r.id for r in rows]))  # at most one round
            .values(next_attempt_at=lease_until)
            .execution_options(synchronize_session=False)
        )
    return rows


def release(session: Session, ids: Sequence[int], now: datetime) -> None:
    """End the lease of claimed rows that were not tried: due again at ``now``, no attempt counted."""
    if ids:
        session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(list(ids)), OutboxEvent.state == "pending")
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )


def settle(
    session: Session,
    row: OutboxEvent,
    now: datetime,
    *,
    delivered_to: Sequence[str],
    done: bool,
    error: str | None,
    next_attempt_at: datetime | None,
    dead: bool,
) -> None:
    """Record one delivery attempt of ``row`` (loaded in ``session``)."""
    row.delivered_to = sorted(set(delivered_to))
    if row.first_attempt_at is None:
        row.first_attempt_at = now
    if done:
        row.state = "delivered"
        row.delivered_at = now
        row.last_error = None
        return
    row.attempts += 1
    row.last_error = (error or "")[:2000]
    if dead:
        row.state = "dead"
    elif next_attempt_at is not None:
        row.next_attempt_at = next_attempt_at


def mark_delivered(
    session: Session, ids: Sequence[int], delivered_to: Sequence[str], now: datetime
) -> None:
    """Mark rows delivered in one statement (the common case of a round)."""
    if not ids:
        return
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(list(ids)))
        .values(
            state="delivered",
            delivered_at=now,
            delivered_to=sorted(set(delivered_to)),
            first_attempt_at=func.coalesce(OutboxEvent.first_attempt_at, now),
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """The outbox by state, with the oldest pending event's time."""

    pending: int
    retrying: int
    delivered: int
    dead: int
    oldest_pending_at: datetime | None


def counts(session: Session) -> OutboxCounts:
    """How many events wait, are being retried, went out, and were given up."""
    retrying_of = func.sum(case((OutboxEvent.attempts > 0, 1), else_=0))
    by_state = {
        state: (int(n), int(r or 0))
        for state, n, r in session.execute(
            select(OutboxEvent.state, func.count(), retrying_of).group_by(OutboxEvent.state)
        )
    }
    oldest = session.scalar(
        select(func.min(OutboxEvent.created_at)).where(OutboxEvent.state == "pending")
    )
    return OutboxCounts(
        pending=by_state.get("pending", (0, 0))[0],
        retrying=by_state.get("pending", (0, 0))[1],
        delivered=by_state.get("delivered", (0, 0))[0],
        dead=by_state.get("dead", (0, 0))[0],
        oldest_pending_at=oldest,
    )


def dead(session: Session, limit: int = 50) -> list[OutboxEvent]:
    """The newest dead events (given up after a day of retries)."""
    return list(
        session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.state == "dead")
            .order_by(OutboxEvent.id.desc())
            .limit(limit)
        )
    )


def retry_dead(session: Session, now: datetime, event_ids: Sequence[str] = ()) -> int:
    """Make dead events (all, or those ``event_ids`` name) pending again, with a fresh day."""
    where = [OutboxEvent.state == "dead"]
    if event_ids:
        where.append(OutboxEvent.event_id.in_(list(event_ids)))
    result = session.execute(
        update(OutboxEvent)
        .where(and_(*where))
        .values(state="pending", attempts=0, first_attempt_at=None, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class BacklogGroup:
    """Outbox rows sharing a state, a type and the webhooks that already took them."""

    state: str
    type: str
    delivered_to: frozenset[str]
    events: int
    retrying: int
    oldest_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeadEvent:
    """A dead event as the console lists it: no payload, no contact."""

    event_id: str
    type: str
    created_at: datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Backlog:
    """The outbox grouped (a handful of rows whatever its size) and its newest dead events."""

    groups: tuple[BacklogGroup, ...]
    dead: tuple[DeadEvent, ...]


def _names(raw: str | None) -> frozenset[str]:
    """``delivered_to`` read back from its JSON text (NULL: nobody yet)."""
    if not raw:
        return frozenset()
    value = json.loads(raw)
    return frozenset(str(n) for n in value) if isinstance(value, list) else frozenset()


def backlog(session: Session, dead_limit: int = 10) -> Backlog:
    """The outbox by (state, type, webhooks reached), and the ``dead_limit`` newest dead events.

    Both statements are bounded: the grouping reads the pending and dead events
    only (an index on their state) and yields one row per state, event
    type and set of webhooks that answered, however many events there are,
    and the dead list reads only the columns it shows (never the payload, which
    holds the contact's phone and email).
    """
    reached = cast(OutboxEvent.delivered_to, String)
    retrying_of = func.sum(case((OutboxEvent.attempts > 0, 1), else_=0))
    grouped = session.execute(
        select(
            OutboxEvent.state,
            OutboxEvent.type,
            reached,
            func.count(),
            retrying_of,
            func.min(OutboxEvent.created_at),
        )
        # Delivered events (the whole history) are shown nowhere: left out, so the read
        # costs the backlog, not the history.
        .where(OutboxEvent.state.in_(("pending", "dead")))
        .group_by(OutboxEvent.state, OutboxEvent.type, reached)
    )
    groups = tuple(
        BacklogGroup(state, type_, _names(raw), int(n), int(r or 0), oldest)
        for state, type_, raw, n, r, oldest in grouped
    )
    dead_rows = session.execute(
        select(
            OutboxEvent.event_id,
            OutboxEvent.type,
            OutboxEvent.created_at,
            OutboxEvent.attempts,
            OutboxEvent.last_error,
        )
        .where(OutboxEvent.state == "dead")
        .order_by(OutboxEvent.id.desc())
        .limit(dead_limit)
    )
    dead_events = tuple(DeadEvent(*row) for row in dead_rows)
    return Backlog(groups, dead_events)
