"""The cost of /metrics' database gauges as the pending backlog grows (PostgreSQL; not in CI).

For each size in ``--rows`` (default 100,000 and 1,000,000), a scratch
database gets that many pending sends in one ``INSERT ... SELECT`` (half of
them due, half ahead, plus 1,000 unknown and 1,000 sending), ``ANALYZE``, then
:func:`drip.store.gauges.read` (every query a scrape runs) is timed
``--reps`` times after one warm-up, the sizes taking turns; the median is
printed with its ratio to the smallest size. The goal is a scrape under 50 ms with 5,000,000 pending sends:
every query reads an index, so the time must not grow with the backlog.

    .venv/bin/python benchmarks/bench_metrics.py --rows 100000 1000000
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime

import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from drip.store import gauges
from drip.store.migrate import upgrade

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def load(libpq: str, rows: int) -> None:
    """One contact, ``rows`` pending sends, 1,000 unknown and 1,000 sending ones."""
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO contacts (first_name, last_name, phone, state, timezone, source,"
            " sms_consent_at, created_at, updated_at) VALUES ('Lead', 'One', '+16175550123',"
            " 'MA', 'America/New_York', 'import', %(now)s, %(now)s, %(now)s)",
            {"now": NOW},
        )
        for state, n in (("pending", rows), ("unknown", 1000), ("sending", 1000)):
            conn.execute(
                "INSERT INTO scheduled_sends (contact_id, kind, channel, sender_role, body,"
                " due_at, original_due_at, state, created_at, updated_at)"
                " SELECT c.id, 'bulk', 'sms', 'agent', 'hi',"
                " %(now)s + (g - %(half)s) * interval '1 second',"
                " %(now)s + (g - %(half)s) * interval '1 second', %(state)s, %(now)s, %(now)s"
                " FROM generate_series(1, %(n)s) AS g"
                " CROSS JOIN (SELECT min(id) AS id FROM contacts) c",
                {"now": NOW, "n": n, "half": n // 2, "state": state},
            )
        conn.execute("VACUUM ANALYZE")


def scratch(rows: int, prefix: str = "drip_bench_metrics_") -> str:
    """A scratch database with ``rows`` pending sends; returns its URL."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    began = time.perf_counter()
    load(url.replace("postgresql+psycopg", "postgresql"), rows)
    print(f"  {rows:>10,} pending loaded in {time.perf_counter() - began:.0f} s", flush=True)
    return url


def drop(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(urls: dict[int, str], reps: int) -> dict[int, float]:
    """Median seconds of one scrape's gauge queries per size, the sizes taking turns.

    Alternating spreads the load from elsewhere on the machine over every size alike.
    """
    engines = {rows: create_engine(url) for rows, url in urls.items()}
    sessions = {rows: Session(engine) for rows, engine in engines.items()}
    times: dict[int, list[float]] = {rows: [] for rows in urls}
    try:
        for session in sessions.values():
            gauges.read(session, NOW)  # warm: connection, statement cache
            session.rollback()
        for _ in range(reps):
            for rows, session in sessions.items():
                began = time.perf_counter()
                gauges.read(session, NOW)
                times[rows].append(time.perf_counter() - began)
                session.rollback()
    finally:
        for session in sessions.values():
            session.close()
        for engine in engines.values():
            engine.dispose()
    return {rows: statistics.median(values) for rows, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--prefix", default="drip_bench_metrics_", help="scratch databases' names")
    args = parser.parse_args()
    urls: dict[int, str] = {}
    try:
        for rows in sorted(args.rows):
            urls[rows] = scratch(rows, args.prefix)
        medians = measure(urls, args.reps)
    finally:
        for url in urls.values():
            drop(url)
    results = sorted(medians.items())
    base = results[0][1]
    print(f"{'pending sends':>14}  {'gauge scrape (median)':>22}  ratio")
    for rows, seconds in results:
        print(f"{rows:>14,}  {seconds * 1000:>19.1f} ms  {seconds / base:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
