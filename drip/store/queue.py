"""The pending sends of ``drip queue``, from running counts: one row per group, never per send.

A group is every pending send that shares what decides its sender, its text
and its window: campaign, step, kind, channel, fixed sender number or role,
held to the window, the contact's agent, state, time zone, text status and
whether it can be texted, and the UTC hour it falls due in. ``queue_tallies``
keeps each group's count, latest due time and lowest send id (the
representative the forecast renders), updated by the triggers of migration
0018 in the writer's transaction; on PostgreSQL they append to
``queue_tally_deltas``, which :func:`fold` moves in and reads add.

A read costs the number of groups due by the horizon, not the number of
sends. Only the two hours cut by ``now`` and by the horizon are read from
the sends themselves, and only their part past the cut (sends due later in
the current hour, or in the last hour after the horizon): one hour of
future sends at most.
"""

# ruff: noqa: S608 -- the fold's SQL is assembled from the key column names, never from input.

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, literal, select, text, union_all
from sqlalchemy.orm import Session, aliased

from drip.domain.enums import Channel, MessageKind, SenderRole, SendState, TextStatus
from drip.store.models import (
    QUEUE_KEYS,
    Agent,
    Campaign,
    Contact,
    QueueTally,
    QueueTallyDelta,
    ScheduledSend,
)

__all__ = [
    "FOLD_BATCH",
    "Group",
    "agents",
    "campaigns",
    "fold",
    "pending_by_campaign",
    "pending_groups",
    "recount",
]

#: Deltas one :func:`fold` statement moves at most.
FOLD_BATCH = 20_000
_FOLD_LOCK = 0x64727175  # "drqu": one fold of the queue counts at a time
_KEYS = ", ".join(QUEUE_KEYS)
_FOLD = text(
    "WITH moved AS (DELETE FROM queue_tally_deltas WHERE id IN ("
    " SELECT id FROM queue_tally_deltas ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)"
    f" RETURNING {_KEYS}, n, last_due, rep) "
    f"INSERT INTO queue_tallies ({_KEYS}, n, last_due, rep) "
    f"SELECT {_KEYS}, SUM(n), MAX(last_due), MIN(rep) FROM moved "
    f"GROUP BY {_KEYS} ORDER BY {_KEYS} "
    f"ON CONFLICT ({_KEYS}) DO UPDATE SET n = queue_tallies.n + excluded.n,"
    " last_due = GREATEST(queue_tallies.last_due, excluded.last_due),"
    " rep = LEAST(queue_tallies.rep, excluded.rep)"
)


@dataclass(frozen=True, slots=True)
class Group:
    """``n`` pending sends alike, due by ``last_due``; ``send`` and ``contact`` stand for them.

    Both are transient copies of the representative (never added to a
    session) carrying the group's key; ``contact`` is None when the
    representative is gone.
    """

    n: int
    last_due: datetime
    due_now: bool
    send: ScheduledSend
    contact: Contact | None


def fold(session: Session, batch: int = FOLD_BATCH, rounds: int = 10) -> int:
    """Move PostgreSQL's deltas into ``queue_tallies`` and drop the groups that reached 0.

    Committed per round; returns how many groups changed. When another fold
    holds the lock this one returns at once (reads add unfolded deltas).
    """
    moved = 0
    if session.get_bind().dialect.name == "postgresql":
        for _ in range(rounds):
            lock = text("SELECT pg_try_advisory_xact_lock(:key)")
            if not session.execute(lock, {"key": _FOLD_LOCK}).scalar_one():
                session.rollback()
                return moved
            n = session.execute(_FOLD, {"batch": batch}).rowcount  # type: ignore[attr-defined]
            session.commit()
            moved += int(n or 0)
            if not n:
                break
    session.execute(text("DELETE FROM queue_tallies WHERE n = 0"))
    session.commit()
    return moved


@dataclass(frozen=True, slots=True)
class Recount:
    """What ``drip queue --recount`` found: the groups whose kept count was wrong."""

    groups: int
    #: Sends counted in the wrong group, or twice, or not at all (each once).
    off_by: int
    pending: int


def _summed(session: Session) -> dict[tuple[Any, ...], int]:
    rows = session.execute(
        text(
            f"SELECT {_KEYS}, SUM(n) FROM (SELECT {_KEYS}, n FROM queue_tallies UNION ALL"
            f" SELECT {_KEYS}, n FROM queue_tally_deltas) AS t GROUP BY {_KEYS}"
            " HAVING SUM(n) <> 0"
        )
    )
    return {tuple(r[:-1]): int(r[-1]) for r in rows}


def recount(session: Session) -> Recount:
    """Count the pending sends again into ``queue_tallies`` (migration 0018's own backfill),
    with writers of sends and contacts held off meanwhile, and commit.

    On PostgreSQL a contact's agent, zone or textability changing while one
    of its sends is claimed can leave that send in its old group (each
    trigger sees the other table as its snapshot did); this repairs it.
    Reads go on; enrolling, firing and contact changes wait for it.
    """
    from drip.store.migrate import migration_module

    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("LOCK TABLE scheduled_sends, contacts IN SHARE MODE"))
    before = _summed(session)
    session.execute(text("DELETE FROM queue_tally_deltas"))
    session.execute(text("DELETE FROM queue_tallies"))
    session.execute(text(migration_module("0018").backfill(dialect)))
    after = _summed(session)
    session.commit()
    keys = before.keys() | after.keys()
    wrong = [k for k in keys if before.get(k, 0) != after.get(k, 0)]
    off_by = sum(abs(before.get(k, 0) - after.get(k, 0)) for k in wrong)
    return Recount(len(wrong), off_by, sum(after.values()))


def _hour(at: datetime) -> int:
    """Whole UTC hours since 1970 (the triggers' ``due_hour``)."""
    return math.floor(at.timestamp() / 3600)


def _hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, tz=UTC)


def _kept(until_hour: int) -> Any:
    """The kept groups due by the end of ``until_hour``: folded counts plus unfolded deltas."""
    parts = [
        select(*(getattr(t, k) for k in QUEUE_KEYS), t.n, t.last_due, t.rep).where(
            t.due_hour <= until_hour
        )
        for t in (QueueTally, QueueTallyDelta)
    ]
    both = union_all(*parts).subquery("t")
    keys = [both.c[k] for k in QUEUE_KEYS]
    total = func.sum(both.c.n)
    return (
        select(
            *keys,
            total.label("n"),
            func.max(both.c.last_due).label("last_due"),
            func.min(both.c.rep).label("rep"),
        )
        .group_by(*keys)
        .having(total != 0)
    )


def _live(after: datetime, before: datetime) -> Any:
    """The same groups counted from the pending sends due in (``after``, ``before``)."""
    s, c = ScheduledSend, Contact
    keys = (
        func.coalesce(s.campaign_id, 0).label("campaign_id"),
        func.coalesce(s.step_id, "").label("step_id"),
        s.kind.label("kind"),
        s.channel.label("channel"),
        func.coalesce(s.sender_phone, "").label("sender_phone"),
        s.sender_role.label("sender_role"),
        s.held_to_window.label("held_to_window"),
        func.coalesce(c.agent_id, 0).label("agent_id"),
        func.coalesce(c.state, "").label("state"),
        func.coalesce(c.timezone, "").label("timezone"),
        c.text_status.label("text_status"),
        (c.sms_consent_at.is_not(None) & c.sms_opted_out_at.is_(None)).label("can_text"),
        literal(_hour(after)).label("due_hour"),
    )
    return (
        select(
            *keys,
            func.count().label("n"),
            func.max(s.due_at).label("last_due"),
            func.min(s.id).label("rep"),
        )
        .join(c, c.id == s.contact_id)
        .where(s.state == SendState.PENDING, s.due_at > after, s.due_at < before)
        .group_by(*keys[:-1])
    )


def _with_reps(groups: Any) -> Select[Any]:
    """``groups`` (a grouped select) with each representative send and contact (or None)."""
    g = groups.subquery("g")
    rep = aliased(ScheduledSend)
    who = aliased(Contact)
    return (
        select(g, rep, who)
        .outerjoin(rep, rep.id == g.c.rep)
        .outerjoin(who, who.id == rep.contact_id)
        .order_by(g.c.due_hour, g.c.rep)
    )


def _copies(row: Any, now: datetime) -> tuple[ScheduledSend, Contact | None]:
    """Transient copies of a group's representative, carrying the group's key.

    The contact is None when the representative is gone (drip deletes no send).
    """
    send, contact = row[-2], row[-1]
    copy = ScheduledSend(
        id=row.rep,
        contact_id=contact.id if contact is not None else None,
        campaign_id=row.campaign_id or None,
        step_id=row.step_id or None,
        kind=MessageKind(row.kind),
        channel=Channel(row.channel),
        sender_role=SenderRole(row.sender_role),
        sender_phone=row.sender_phone or None,
        held_to_window=bool(row.held_to_window),
        body=send.body if send is not None else None,
        due_at=row.last_due,
        state=SendState.PENDING,
    )
    if contact is None:
        return copy, None
    who = Contact(
        **{col.key: getattr(contact, col.key) for col in Contact.__table__.columns},
    )
    who.agent_id = row.agent_id or None
    who.state = row.state or None
    who.timezone = row.timezone or None
    who.text_status = TextStatus(row.text_status)
    if row.can_text:
        who.sms_consent_at = contact.sms_consent_at or now
        who.sms_opted_out_at = None
    elif contact.sms_consent_at is not None and contact.sms_opted_out_at is None:
        who.sms_opted_out_at = now
    return copy, who


def pending_groups(session: Session, now: datetime, hours: int) -> list[Group]:
    """The groups of pending sends due by ``now`` (``due_now``) and by ``now + hours``.

    From the kept counts, but for the part of the current hour after ``now``
    and of the horizon's hour after the horizon, counted from the sends.
    """
    until = now + timedelta(hours=hours)
    first, last = _hour(now), _hour(until)
    if session.get_bind().dialect.name == "postgresql":
        # The planner expects as many groups as rows and sorts them on disk; for this
        # transaction only, room to hash the few there are.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    kept = session.execute(_with_reps(_kept(last))).all()
    later = session.execute(_with_reps(_live(now, _hour_start(first + 1)))).all()
    beyond = session.execute(_with_reps(_live(until, _hour_start(last + 1)))).all()

    def key(row: Any) -> tuple[Any, ...]:
        return (*(row._mapping[k] for k in QUEUE_KEYS[:-1]), int(row.due_hour))

    less = {key(r): int(r.n) for r in [*later, *beyond]}
    out: list[Group] = []
    for row in kept:
        n = int(row.n) - less.get(key(row), 0)
        if n <= 0:
            continue
        send, contact = _copies(row, now)
        due_now = int(row.due_hour) <= first
        out.append(
            Group(n, now if due_now else max(row.last_due or now, now), due_now, send, contact)
        )
    for row in later:
        send, contact = _copies(row, now)
        out.append(Group(int(row.n), row.last_due or now, False, send, contact))
    return out


def pending_by_campaign(session: Session) -> dict[int, tuple[int, datetime | None]]:
    """Per campaign: its pending sends and the earliest due time among them.

    The count from the kept groups; the earliest due time from the sends of the
    earliest hour that holds any (an index range of one hour, not every send).
    """
    groups = _kept(2**62).subquery("k")
    per = session.execute(
        select(groups.c.campaign_id, func.sum(groups.c.n), func.min(groups.c.due_hour))
        .where(groups.c.campaign_id != 0, groups.c.n > 0)
        .group_by(groups.c.campaign_id)
    ).all()
    out: dict[int, tuple[int, datetime | None]] = {}
    for cid, n, first in per:
        start = _hour_start(int(first))
        due = session.execute(
            select(func.min(ScheduledSend.due_at)).where(
                ScheduledSend.campaign_id == cid,
                ScheduledSend.state == SendState.PENDING,
                ScheduledSend.due_at >= start,
                ScheduledSend.due_at < start + timedelta(hours=1),
            )
        ).scalar_one_or_none()
        out[int(cid)] = (int(n), due)
    return out


def agents(session: Session) -> dict[int, Agent]:
    """Every agent (a handful: the numbers texts go out from)."""
    return {a.id: a for a in session.scalars(select(Agent))}


def campaigns(session: Session) -> dict[int, Campaign]:
    """Every campaign row (a handful)."""
    return {c.id: c for c in session.scalars(select(Campaign))}
