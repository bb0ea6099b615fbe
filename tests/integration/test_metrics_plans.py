"""The gauge queries of /metrics read indexes, not the schedule: EXPLAIN with 1,000,000 pending sends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

import psycopg
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from drip.store import gauges
from drip.store.migrate import upgrade

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ROWS = 1_000_000


def make_pending(libpq: str, rows: int, now: datetime) -> None:
    """One contact and ``rows`` pending sends in one INSERT ... SELECT (half due, half later)."""
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO contacts (first_name, last_name, phone, state, timezone, source,"
            " sms_consent_at, created_at, updated_at) VALUES ('Lead', 'One', '+16175550123',"
            " 'MA', 'America/New_York', 'import', %(now)s, %(now)s, %(now)s)",
            {"now": now},
        )
        conn.execute(
            "INSERT INTO scheduled_sends (contact_id, kind, channel, sender_role, body, due_at,"
            " original_due_at, created_at, updated_at)"
            " SELECT c.id, 'bulk', 'sms', 'agent', 'hi',"
            " %(now)s + (g - %(half)s) * interval '1 second',"
            " %(now)s + (g - %(half)s) * interval '1 second', %(now)s, %(now)s"
            " FROM generate_series(1, %(rows)s) AS g CROSS JOIN (SELECT min(id) AS id FROM contacts) c",
            {"now": now, "rows": rows, "half": rows // 2},
        )
        # Lead events, all applied but four (the gauges of events left stored).
        conn.execute(
            "INSERT INTO inbox_events (event_id, type, occurred_at, contact_ref, data, digest,"
            " received_at, processed_at, outcome) SELECT 'e' || g, 'lead.updated', %(now)s,"
            " '{}', '{}', 'd', %(now)s, CASE WHEN g %% 12500 = 0 THEN NULL ELSE %(now)s END,"
            " 'no change' FROM generate_series(1, 50000) AS g",
            {"now": now},
        )
        conn.execute("ANALYZE")


@pytest.fixture
def million(pg_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL database with 1,000,000 pending sends; truncated afterwards."""
    upgrade(pg_url)
    make_pending(pg_url.replace("postgresql+psycopg", "postgresql"), ROWS, NOW)
    engine = create_engine(pg_url)
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(
            pg_url.replace("postgresql+psycopg", "postgresql"), autocommit=True
        ) as conn:
            conn.execute("TRUNCATE contacts, send_tally_deltas, send_tallies, inbox_events CASCADE")


def plan_of(session: Session, stmt: object) -> str:
    """PostgreSQL's plan of ``stmt`` (EXPLAIN with its parameters bound)."""
    from sqlalchemy import text

    compiled = stmt.compile(  # type: ignore[attr-defined]
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    rows = session.execute(text("EXPLAIN " + str(compiled).replace(":", r"\:"))).scalars()
    return "\n".join(rows)


@pytest.mark.postgres
def test_gauge_queries_use_indexes_with_a_million_pending_sends(
    million: Engine, tmp_path: Path
) -> None:
    """No gauge query scans scheduled_sends or the inbox sequentially, and a whole scrape's queries stay quick."""
    with Session(million) as session:
        queries = {**gauges.statements(), "combined": gauges.combined()}
        for name, stmt in queries.items():
            plan = plan_of(session, stmt.params(now=NOW))
            assert "Seq Scan on scheduled_sends" not in plan, f"{name}:\n{plan}"
            assert "Seq Scan on inbox_events" not in plan, f"{name}:\n{plan}"
        values = gauges.read(session, NOW)  # warm
        began = perf_counter()
        values = gauges.read(session, NOW)
        took = perf_counter() - began
    assert values.open_by_campaign == {"(none)": ROWS}
    assert values.oldest_due_at is not None and values.oldest_due_at < NOW
    assert values.unknown == 0 and values.queued == 0
    assert (values.inbox_unapplied, values.inbox_oldest_at) == (4, NOW)
    assert took < 0.5, f"the gauge queries took {took * 1000:.0f} ms"
