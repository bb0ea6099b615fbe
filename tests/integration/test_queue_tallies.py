"""``drip queue`` from running counts: the kept counts equal a recount, the hour cuts are exact.

``queue_tallies`` (kept by triggers) must equal a recount from the pending
sends after every kind of write that moves a send or its contact between
groups: enrolling, firing, a reply and an opt-out, a reassignment, a paused
contact, an unenrollment, a text-status change, a paused campaign.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from services_support import AGENT_PHONE, World, add_dana, open_world
from sqlalchemy import text
from test_web_console import CAMPAIGN, seed

from drip.domain.enums import Channel, MessageKind, SenderRole, TextStatus
from drip.services import assignment, contact_ops, lifecycle, pausing
from drip.services.contacts import add_agent
from drip.services.queue import queue_view
from drip.store.migrate import MIGRATIONS_DIR
from drip.store.models import ScheduledSend
from drip.store.queue import fold


def _migration() -> ModuleType:
    path = MIGRATIONS_DIR / "versions" / "0018_queue_tallies.py"
    spec = importlib.util.spec_from_file_location("m0017", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_KEYS = (
    "campaign_id, step_id, kind, channel, sender_phone, sender_role, held_to_window,"
    " agent_id, state, timezone, text_status, can_text, due_hour"
)


def _counts(conn: Any) -> dict[tuple[object, ...], int]:
    rows = conn.execute(
        text(
            f"SELECT {_KEYS}, SUM(n) FROM (SELECT {_KEYS}, n FROM queue_tallies UNION ALL"  # noqa: S608
            f" SELECT {_KEYS}, n FROM queue_tally_deltas) AS t GROUP BY {_KEYS}"
            " HAVING SUM(n) <> 0"
        )
    )
    return {tuple(bool(v) if isinstance(v, bool) else v for v in r[:-1]): int(r[-1]) for r in rows}


def _kept_and_recount(world: World) -> tuple[dict[tuple[object, ...], int], dict[Any, int]]:
    """The kept counts, then a recount from the sends (which replaces them)."""
    m = _migration()
    with world.deps.engine.begin() as conn:
        kept = _counts(conn)
        conn.execute(text("DELETE FROM queue_tallies"))
        conn.execute(text("DELETE FROM queue_tally_deltas"))
        conn.execute(text(m.backfill(conn.dialect.name)))
        recount = _counts(conn)
    return kept, recount


def test_kept_queue_counts_equal_a_recount_after_every_kind_of_write(
    db_url: str, tmp_path: Path
) -> None:
    """After enrolling, firing, replies, an opt-out, a reassignment, pauses, an unenrollment
    and a text-status change, the triggers' counts equal a recount from the pending sends."""
    with open_world(db_url, tmp_path) as world:
        dana, omar, rita = seed(world)
        kept, recount = _kept_and_recount(world)
        assert kept == recount and sum(recount.values()) > 0
        now = world.now
        add_agent(world.deps, "Ana", "Ortiz", "+16175550177", now)
        assignment.reassign(world.deps, dana, "+16175550177", now, why="test")
        pausing.pause_contact(world.deps, omar, None, now, operator="test")
        contact_ops.change_text_status(
            world.deps, omar, TextStatus.CANNOT_BE_TEXTED, by="test", now=now
        )
        kept, recount = _kept_and_recount(world)
        assert kept == recount
        assert any(k[7] != 0 for k in recount), "dana's sends moved to Ana's group"
        lifecycle.unenroll(world.deps, dana, CAMPAIGN, now)
        lifecycle.pause(world.deps, CAMPAIGN, now)
        with world.deps.sessions() as session:  # the tick's fold changes no count
            fold(session)
        kept, recount = _kept_and_recount(world)
        assert kept == recount
        assert rita  # opted out in seed: her sends were skipped or are counted as not textable


def test_campaign_counts_from_the_kept_counts_equal_a_count_of_the_sends(
    db_url: str, tmp_path: Path
) -> None:
    """drip campaigns' pending sends, earliest due time and active enrollments, read from the
    running counts, equal a direct count of the sends and enrollments."""
    from drip.store.lifecycle import campaign_counts

    with open_world(db_url, tmp_path) as world:
        seed(world)
        with world.deps.sessions() as session:
            counts = campaign_counts(session)
            direct = session.execute(
                text(
                    "SELECT campaign_id, COUNT(*), MIN(due_at) FROM scheduled_sends"
                    " WHERE state = 'pending' AND campaign_id IS NOT NULL GROUP BY campaign_id"
                )
            ).all()
            active = session.execute(
                text(
                    "SELECT campaign_id, COUNT(*) FROM enrollments WHERE status = 'active'"
                    " GROUP BY campaign_id"
                )
            ).all()
    assert direct and active
    for cid, n, raw in direct:
        assert counts[cid].pending_sends == n
        due = raw if isinstance(raw, datetime) else datetime.fromisoformat(raw)
        due = due.astimezone(UTC) if due.tzinfo else due.replace(tzinfo=UTC)
        assert counts[cid].next_due_at == due
    assert {cid: c.active_enrollments for cid, c in counts.items()} == dict(active)


def _pending(world: World, contact_id: int, due: Any, body: str) -> None:
    with world.deps.sessions.begin() as session:
        session.add(
            ScheduledSend(
                contact_id=contact_id,
                kind=MessageKind.BULK,
                channel=Channel.SMS,
                sender_role=SenderRole.AGENT,
                body=body,
                due_at=due,
                created_at=world.now,
            )
        )


def test_queue_cuts_the_hours_of_now_and_of_the_horizon_exactly(
    db_url: str, tmp_path: Path
) -> None:
    """Texts due earlier and later in the current hour, and either side of the 24 h horizon in
    its hour, count as due now, next 24 h and not at all, as their due times say."""
    from services_support import add_sam

    with open_world(db_url, tmp_path) as world:
        add_sam(world)
        dana = add_dana(world)
        now = world.at(world.now + timedelta(minutes=20))  # 10:20 in New York
        for minutes in (-10, -1, 0):  # due now (at or before now)
            _pending(world, dana, now + timedelta(minutes=minutes), "Hi")
        for minutes in (1, 30):  # later in this hour
            _pending(world, dana, now + timedelta(minutes=minutes), "Hi")
        _pending(world, dana, now + timedelta(hours=23, minutes=50), "Hi")  # by the horizon
        _pending(world, dana, now + timedelta(hours=24), "Hi")  # at it: counted
        _pending(world, dana, now + timedelta(hours=24, minutes=5), "Hi")  # after: not
        view = queue_view(world.deps, now)
        (row,) = view.rows
        assert (row.sender, row.due_now, row.next_24h) == (AGENT_PHONE, 3, 4)
        assert view.forecast and "7 texts" in view.forecast[0]


def test_recount_repairs_a_drift_and_says_how_large_it_was(db_url: str, tmp_path: Path) -> None:
    """A group counted wrong (tally and unfolded delta) is put right by the recount service."""
    from drip.services.queue import recount

    with open_world(db_url, tmp_path) as world:
        seed(world)
        kept, truth = _kept_and_recount(world)
        assert kept == truth
        with world.deps.engine.begin() as conn:
            key = dict(zip(_KEYS.replace(" ", "").split(","), next(iter(truth)), strict=True))
            cols = ", ".join(key)
            marks = ", ".join(f":{k}" for k in key)
            conn.execute(
                text(f"INSERT INTO queue_tally_deltas ({cols}, n) VALUES ({marks}, 2)"),  # noqa: S608
                key,
            )
            conn.execute(text("UPDATE queue_tallies SET n = n + 3 WHERE n > 0 AND due_hour = :h"),
                         {"h": key["due_hour"]})  # fmt: skip
        found = recount(world.deps)
        assert found.groups >= 1 and found.off_by >= 5
        assert found.pending == sum(truth.values())
        with world.deps.engine.connect() as conn:
            assert _counts(conn) == truth
        assert recount(world.deps).groups == 0
