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

Replies and opt-outs are attributed when they are recorded (a reply counts
for the contact's last text before it): migration 0018's triggers write a
``reply_marks`` row per scope and add it to ``send_tallies`` (metrics
:data:`ATTRIBUTED`, code: the scope, see :func:`scope`), so no read counts
events either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text, union_all
from sqlalchemy.orm import Session

from drip.store.models import SendTally, SendTallyDelta

__all__ = ["ATTRIBUTED", "FOLD_BATCH", "OUTSIDE", "fold", "scope", "tallies"]

#: The metrics counted per scope (code): a sent text followed by a reply or an opt-out.
ATTRIBUTED = ("replied", "opted_out")

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


def scope(campaign_id: int | None, campaign: str | None) -> str:
    """The scope of the reply and opt-out counts a summary reads (see ``reply_marks``).

    One campaign's summary: ``campaign`` (each event counts for that campaign's
    last text before it); every campaign's: ``all`` (for the last campaign
    text); the texts outside campaigns: ``outside`` (for the last text of any kind).
    """
    if campaign_id is None:
        return "outside"
    return "campaign" if campaign is not None else "all"
