"""The per-step counts behind ``drip stats`` and the console, read without scanning sends.

``send_tallies`` is kept by the triggers of migration 0010: every insert or
state change of a send, every status change of its message, every first
deferral of a send for a reason and every enrollment adds to and subtracts
from it in the writer's own transaction. On PostgreSQL the triggers append
grouped changes to ``send_tally_deltas`` instead (no counter row is locked
by a writer); :func:`fold` moves them into ``send_tallies`` (the dispatch
tick and every read call it) and :func:`tallies` adds the ones not folded
yet, so the counts are exact at any moment. A read here costs the number of
campaign steps, not the number of sends.

Replies and opt-outs are attributed at read time (a reply counts for the
contact's last text before it): one indexed lookup per inbound text or
opt-out, never a scan of the sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, literal, select, text, union_all
from sqlalchemy.orm import Session

from drip.domain.enums import SendState
from drip.store.models import Contact, Message, ScheduledSend, SendTally, SendTallyDelta

__all__ = ["FOLD_BATCH", "OUTSIDE", "attributed", "fold", "tallies"]

#: ``send_tallies.campaign_id`` of the texts outside campaigns (bucket: their kind).
OUTSIDE = 0
#: Deltas one :func:`fold` statement moves at most (a bounded statement and transaction).
FOLD_BATCH = 20_000
#: The advisory lock that keeps two folds from upserting the same counters at once.
_FOLD_LOCK = 0x64726970  # "drip"

_FOLD = text(
    "WITH moved AS (DELETE FROM send_tally_deltas WHERE id IN ("
    " SELECT id FROM send_tally_deltas ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)"
    " RETURNING campaign_id, bucket, metric, code, n) "
    "INSERT INTO send_tallies (campaign_id, bucket, metric, code, n) "
    "SELECT campaign_id, bucket, metric, code, SUM(n) FROM moved "
    "GROUP BY campaign_id, bucket, metric, code ORDER BY campaign_id, bucket, metric, code "
    "ON CONFLICT (campaign_id, bucket, metric, code) DO UPDATE SET n = send_tallies.n + excluded.n"
)


def fold(session: Session, batch: int = FOLD_BATCH, rounds: int = 10) -> int:
    """Move up to ``rounds`` x ``batch`` deltas into ``send_tallies``; how many counters changed.

    PostgreSQL only (SQLite's triggers write ``send_tallies`` directly). Each
    round is one statement, deleting the oldest deltas and adding their sums
    (committed per round: a short transaction). When another fold holds the
    lock this one returns 0 at once: the counts stay exact either way, since
    reads add the deltas not folded yet.
    """
    if session.get_bind().dialect.name != "postgresql":
        return 0
    moved = 0
    for _ in range(rounds):
        locked = session.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _FOLD_LOCK}
        ).scalar_one()
        if not locked:
            session.rollback()
            return moved
        n = session.execute(_FOLD, {"batch": batch}).rowcount  # type: ignore[attr-defined]
        session.commit()
        moved += int(n or 0)
        if not n:
            break
    return moved


def tallies(session: Session, campaign_id: int | None = None) -> Sequence[Any]:
    """``(campaign_id, bucket, metric, code, n)`` of every non-zero count (or one campaign's).

    The folded counts plus the deltas not folded yet.
    """
    parts = []
    for table in (SendTally, SendTallyDelta):
        part = select(table.campaign_id, table.bucket, table.metric, table.code, table.n)
        if campaign_id is not None:
            part = part.where(table.campaign_id == campaign_id)
        parts.append(part)
    both = union_all(*parts).subquery("t")
    total = func.sum(both.c.n)
    keys = (both.c.campaign_id, both.c.bucket, both.c.metric, both.c.code)
    stmt = select(*keys, total).group_by(*keys).having(total != 0)
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
