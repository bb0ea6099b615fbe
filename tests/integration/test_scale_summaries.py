"""Summaries that do not grow with history, statements that do not grow with data, one-line errors.

The running counts (``send_tallies``, kept by triggers) must equal a recount
from the sends; ``drip queue`` and ``drip stats`` must work past 65,535
pending sends (PostgreSQL's bind-parameter limit, where an ``IN`` list of ids
collected in Python breaks); a database that refuses a query shows a person
one line, from the CLI and from the console.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from services_support import ACCOUNT, open_world, sync_bundled
from sqlalchemy import text
from test_web_console import CAMPAIGN, TOKEN, seed
from werkzeug.serving import make_server

from drip.services.queue import queue_view
from drip.services.stats import campaign_stats
from drip.store.migrate import MIGRATIONS_DIR
from drip.web.app import create_app

DRIP = str(Path(sys.executable).with_name("drip"))


def _migration(name: str = "0010_send_tallies") -> ModuleType:
    path = MIGRATIONS_DIR / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"m{name[:4]}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _counts(conn: object) -> dict[tuple[object, ...], int]:
    rows = conn.execute(  # type: ignore[attr-defined]
        text(
            "SELECT campaign_id, bucket, metric, code, SUM(n) FROM (SELECT campaign_id, bucket,"
            " metric, code, n FROM send_tallies UNION ALL SELECT campaign_id, bucket, metric,"
            " code, n FROM send_tally_deltas) AS t GROUP BY 1, 2, 3, 4 HAVING SUM(n) <> 0"
        )
    )
    return {tuple(r[:4]): int(r[4]) for r in rows}


@pytest.mark.parametrize("per_range", [None, 1], ids=["in-one-statement", "a-contact-at-a-time"])
def test_running_counts_equal_a_recount_from_the_sends(
    db_url: str, tmp_path: Path, per_range: int | None
) -> None:
    """After enrolling, firing, replies and an opt-out, the triggers' counts equal a full recount."""
    m = _migration()
    with open_world(db_url, tmp_path) as world:
        seed(world)
        with world.deps.engine.begin() as conn:
            kept = _counts(conn)
            conn.execute(text("DELETE FROM reply_marks"))
            conn.execute(text("DELETE FROM send_tallies"))
            conn.execute(text("DELETE FROM send_tally_deltas"))
            for statement in (m._BACKFILL_SENDS, m._BACKFILL_DEFERRED):
                conn.execute(text(statement))
            conn.execute(
                text(
                    m._ENROLLMENTS.format(
                        "SELECT campaign_id, status, 1 AS sign FROM enrollments"
                        " WHERE campaign_id IS NOT NULL"
                    )
                )
            )
            # The replies' and opt-outs' marks again: their triggers count them.
            m18 = _migration("0018_queue_tallies")
            ranges: list[tuple[int, int] | None] = [None]
            if per_range is not None:
                low, high = conn.execute(text("SELECT MIN(id), MAX(id) FROM contacts")).one()
                ranges = list(m18.contact_ranges(low, high, per_range))
                assert len(ranges) > 1
            for within in ranges:
                for statement in m18.backfill_marks(within):
                    conn.execute(text(statement))
            recount = _counts(conn)
        assert kept == recount
        assert any(k[2] == "sent" for k in kept) and any(k[2] == "enrollments" for k in kept)
        assert any(k[2] == "replied" for k in kept) and any(k[2] == "opted_out" for k in kept)
        stats = campaign_stats(world.deps, world.now, CAMPAIGN)
        total = stats.campaigns[0].total
        assert total.sent > 0 and total.replied == 1 and total.opted_out == 1


def test_fold_moves_the_deltas_and_keeps_every_count(db_url: str, tmp_path: Path) -> None:
    """Folding empties send_tally_deltas (PostgreSQL's triggers append there) and changes no count."""
    from sqlalchemy.orm import Session

    from drip.store.summary import fold

    with open_world(db_url, tmp_path) as world:
        seed(world)
        engine = world.deps.engine
        with engine.connect() as conn:
            before = _counts(conn)
            waiting = conn.execute(text("SELECT COUNT(*) FROM send_tally_deltas")).scalar_one()
        postgres = db_url.startswith("postgresql")
        assert (waiting > 0) == postgres
        with Session(engine) as session:
            changed = fold(session, batch=3)
        assert (changed > 0) == postgres
        with engine.connect() as conn:
            assert _counts(conn) == before
            assert conn.execute(text("SELECT COUNT(*) FROM send_tally_deltas")).scalar_one() == 0


@pytest.fixture
def many_pending(db_url: str, tmp_path: Path) -> Iterator[object]:
    """70,000 contacts, each with one pending campaign send due now (PostgreSQL, generate_series)."""
    with open_world(db_url, tmp_path) as world:
        sync_bundled(world, CAMPAIGN)
        now = world.now
        with world.deps.engine.begin() as conn:
            cid = conn.execute(text("SELECT id FROM campaigns WHERE name = :n"), {"n": CAMPAIGN})
            campaign_id = cid.scalar_one()
            conn.execute(
                text(
                    "INSERT INTO contacts (first_name, last_name, phone, state, timezone, source,"
                    " sms_consent_at, created_at, updated_at) SELECT 'Lead', 'N' || g,"
                    " '+1617' || lpad(g::text, 7, '0'), 'MA', 'America/New_York', 'import',"
                    " :now, :now, :now FROM generate_series(1, 70000) AS g"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO scheduled_sends (contact_id, campaign_id, step_id, kind,"
                    " channel, sender_role, due_at, original_due_at, created_at, updated_at)"
                    " SELECT id, :c, 'welcome', 'campaign', 'sms', 'agent', :now, :now, :now,"
                    " :now FROM contacts"
                ),
                {"c": campaign_id, "now": now},
            )
        yield world
    # TRUNCATE, not the per-test DELETE: deleting 70,000 contacts runs one foreign-key
    # check per row, and on tables the planner has not analysed yet each check can be a
    # sequential scan over 70,000 dead sends (minutes, where CI's timeout struck).
    with psycopg.connect(
        db_url.replace("postgresql+psycopg", "postgresql"), autocommit=True
    ) as conn:
        conn.execute("TRUNCATE contacts CASCADE")


# The bind-parameter limit is PostgreSQL's: SQLite has no such case to test.
@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_queue_and_stats_answer_past_65535_pending_sends(many_pending: object) -> None:
    """drip queue and drip stats count 70,000 pending sends: no statement grows with them."""
    world = many_pending
    q = queue_view(world.deps, world.now)  # type: ignore[attr-defined]
    assert q.due_now == 70000
    stats = campaign_stats(world.deps, world.now)  # type: ignore[attr-defined]
    (c,) = [c for c in stats.campaigns if c.name == CAMPAIGN]
    assert c.total.scheduled == 70000 and c.total.pending == 70000


def test_cli_database_error_is_one_line_exit_2(tmp_path: Path) -> None:
    """When the database refuses a query, drip stats prints one line (no SQL, no traceback), exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(DRIP_HOME=str(tmp_path / ".drip"), DRIP_LOG_FORMAT="json")

    def drip(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DRIP, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert drip("db", "upgrade").returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / ".drip" / "drip.db") as db:
        db.execute("DROP TABLE send_tallies")
    done = drip("stats")
    assert done.returncode == 2
    assert done.stdout == ""
    person = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert person == [
        "error: drip stats: the database refused the request (no such table: send_tallies)"
    ]
    assert "Traceback" not in done.stderr and "SELECT" not in "\n".join(person)


def test_console_database_error_is_a_503_page_of_one_line(db_url: str, tmp_path: Path) -> None:
    """Over real HTTP, a console page whose query the database refuses is a 503 with one line."""
    import dataclasses

    with open_world(db_url, tmp_path, account=ACCOUNT) as world:
        sync_bundled(world, CAMPAIGN)
        settings = dataclasses.replace(world.deps.settings, console_token=TOKEN)
        app = create_app(dataclasses.replace(world.deps, settings=settings))
        with world.deps.engine.begin() as conn:
            conn.execute(text("DROP TABLE send_tallies"))
        server = make_server("127.0.0.1", 0, app)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.port}/console/",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)  # noqa: S310 -- an http://127.0.0.1 URL built here
            page = refused.value.read().decode()
        finally:
            server.shutdown()
            thread.join(timeout=10)
        assert refused.value.code == 503
        assert "error: the page /console/: the database refused the request (" in page
        assert "SELECT" not in page and "Traceback" not in page and "send_tallies.n" not in page
