"""The database gauges of ``/metrics``: bounded, indexed queries run at scrape time.

Each query reads an index, never the whole schedule, so a scrape costs the
same with 5,000 pending sends or 5,000,000:

- dispatch lag: the oldest due pending send that no pause holds (the partial
  index on pending ``due_at``, read in order until the first one, as the
  claim does);
- open sends per campaign: the running counts (``send_tallies`` and the
  deltas not folded yet; as many rows as campaign steps);
- queued, sending and unknown sends, the oldest unknown: counted on the
  ``(state, due_at)`` index, at most :data:`COUNT_CAP` rows each (these states
  are transient: a count at the cap means "at least");
- held sends: the open sends of paused campaigns (running counts) plus the
  pending sends of paused enrollments (the paused enrollments' index, then the
  sends' enrollment index), the latter at most :data:`COUNT_CAP`;
- the webhook outbox: pending events and the oldest of them (the ``(state,
  next_attempt_at)`` index, capped);
- lead events stored and not applied yet, and the oldest of them (the
  ``processed_at`` index, capped): a batch is applied within seconds of being
  stored, so one that waits was left by a process that stopped in between;
- the last dispatch tick (``heartbeats``).

:func:`statements` lists every query with its name, so a test can EXPLAIN
each one on PostgreSQL. They are built once (building them costs more than
running them) and take the scrape's instant as the parameter ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Final

from sqlalchemy import Select, bindparam, func, literal, select, union_all
from sqlalchemy.orm import Session

from drip.domain.enums import CampaignStatus, SendState
from drip.store.claims import not_held
from drip.store.models import (
    Campaign,
    Heartbeat,
    InboxEvent,
    OutboxEvent,
    ScheduledSend,
    SendTally,
    SendTallyDelta,
)
from drip.store.pausing import paused_enrollment_ids
from drip.store.summary import OUTSIDE
from drip.store.types import UtcDateTime

__all__ = ["COUNT_CAP", "Gauges", "read", "statements"]

#: Most rows a transient-state count reads; a gauge at this value means "at least".
COUNT_CAP: Final = 100_000
#: The ``heartbeats`` row of the dispatch tick.
DISPATCH: Final = "dispatch"
#: The campaign label of the texts outside campaigns (bulk, manual, compliance).
NO_CAMPAIGN: Final = "(none)"

_S = ScheduledSend


def _capped_count(where: Any) -> Select[Any]:
    inner = select(literal(1).label("one")).where(where).limit(COUNT_CAP).subquery()
    return select(func.count()).select_from(inner)


def _open_by_campaign() -> Select[Any]:
    parts = [
        select(t.campaign_id.label("campaign_id"), t.n.label("n")).where(t.metric == "pending")
        for t in (SendTally, SendTallyDelta)
    ]
    both = union_all(*parts).subquery("t")
    keys = (both.c.campaign_id, Campaign.name, Campaign.status)
    return (
        select(*keys, func.sum(both.c.n).label("n"))
        .select_from(both)
        .outerjoin(Campaign, Campaign.id == both.c.campaign_id)
        .group_by(*keys)
    )


#: The bound parameter of every query: the instant of the scrape.
NOW: Final = bindparam("now", type_=UtcDateTime())


@cache
def statements() -> dict[str, Select[Any]]:
    """Every gauge query, by name; each takes the parameter ``now`` (built once, reused)."""
    pending_paused = (_S.state == SendState.PENDING) & _S.enrollment_id.in_(paused_enrollment_ids())
    oldest_unknown = (
        select(_S.updated_at.label("at")).where(_S.state == SendState.UNKNOWN).limit(COUNT_CAP)
    ).subquery()
    outbox_pending = OutboxEvent.state == "pending"
    outbox_oldest = (
        select(OutboxEvent.created_at.label("at")).where(outbox_pending).limit(COUNT_CAP)
    ).subquery()
    unapplied = InboxEvent.processed_at.is_(None)
    inbox_oldest = (
        select(InboxEvent.received_at.label("at")).where(unapplied).limit(COUNT_CAP)
    ).subquery()
    return {
        "oldest_due": (
            select(_S.due_at)
            .where(_S.state == SendState.PENDING, _S.due_at <= NOW, not_held())
            .order_by(_S.due_at)
            .limit(1)
        ),
        "open_by_campaign": _open_by_campaign(),
        "queued": _capped_count(_S.state == SendState.QUEUED),
        "sending": _capped_count(_S.state == SendState.SENDING),
        "unknown": _capped_count(_S.state == SendState.UNKNOWN),
        "oldest_unknown": select(func.min(oldest_unknown.c.at)),
        "held_enrollments": _capped_count(pending_paused),
        "outbox_pending": _capped_count(outbox_pending),
        "outbox_oldest": select(func.min(outbox_oldest.c.at)),
        "dispatch_tick": select(Heartbeat.at).where(Heartbeat.name == DISPATCH),
        "inbox_unapplied": _capped_count(unapplied),
        "inbox_oldest": select(func.min(inbox_oldest.c.at)),
    }


@dataclass(frozen=True, slots=True)
class Gauges:
    """The values of one scrape."""

    oldest_due_at: datetime | None
    open_by_campaign: dict[str, int] = field(default_factory=dict)
    held: int = 0
    queued: int = 0
    sending: int = 0
    unknown: int = 0
    oldest_unknown_at: datetime | None = None
    outbox_pending: int = 0
    outbox_oldest_at: datetime | None = None
    dispatch_tick_at: datetime | None = None
    inbox_unapplied: int = 0
    inbox_oldest_at: datetime | None = None


#: The gauges that are one value each, read together in one statement.
SCALARS: Final = (
    "oldest_due",
    "queued",
    "sending",
    "unknown",
    "oldest_unknown",
    "held_enrollments",
    "outbox_pending",
    "outbox_oldest",
    "dispatch_tick",
    "inbox_unapplied",
    "inbox_oldest",
)


@cache
def combined() -> Select[Any]:
    """Every one-value gauge query as a column of one statement (one round trip; ``now``)."""
    q = statements()
    return select(*(q[name].scalar_subquery().label(name) for name in SCALARS))


def read(session: Session, now: datetime) -> Gauges:
    """Run every gauge query at ``now``: two statements, the running counts and the rest."""
    open_by: dict[str, int] = {}
    held = 0
    for campaign_id, name, status, n in session.execute(statements()["open_by_campaign"]):
        label = NO_CAMPAIGN if campaign_id == OUTSIDE or name is None else name
        open_by[label] = open_by.get(label, 0) + int(n or 0)
        if status is CampaignStatus.PAUSED:
            held += int(n or 0)
    row = session.execute(combined(), {"now": now}).one()
    return Gauges(
        oldest_due_at=row.oldest_due,
        open_by_campaign=open_by,
        held=held + int(row.held_enrollments or 0),
        queued=int(row.queued or 0),
        sending=int(row.sending or 0),
        unknown=int(row.unknown or 0),
        oldest_unknown_at=row.oldest_unknown,
        outbox_pending=int(row.outbox_pending or 0),
        outbox_oldest_at=row.outbox_oldest,
        dispatch_tick_at=row.dispatch_tick,
        inbox_unapplied=int(row.inbox_unapplied or 0),
        inbox_oldest_at=row.inbox_oldest,
    )
