"""PostgreSQL's own cost of the fire path: backend CPU and WAL per send, in process (no Celery).

    .venv/bin/python benchmarks/profile_pg.py [N] [ROUNDS] [--backlog B]
    # default 600 sends, 3 rounds, no backlog

A scratch database (``DRIP_BENCH_DATABASE_URL``, as ``run.py``) migrated to
the head, the fake Twilio server in a process of its own: each round makes N
consenting contacts with one campaign send due, then claims and fires them
with :func:`drip.services.dispatch.fire` in batches of 50 (the claim, the
``queued -> sending`` start and the record of each send, as a worker does).
Around the claim and the firing only, it reads the CPU of every backend of the
scratch database (``/proc/<pid>/stat``) and the WAL written between the two
LSNs that references the scratch database (``pg_walinspect``: records with a
block of one of its relations, plus the commit records of their transactions;
other sessions' WAL is left out). Prints both sides of each ratio, and the WAL
records per relation of the last round.

``--backlog B`` first fills the table with B future pending sends of the
campaign (as the full run's ``memory`` section leaves it, 1,000,000, before
``fire`` runs), to see whether a send costs more on a large table.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fire
from harness import (
    SIZES,
    analyze,
    connect,
    cpu_seconds,
    database_backends,
    fake_twilio_deps,
    fill_future_sends,
    scratch_context,
    seed_contacts,
)

_WAL = """
WITH r AS (SELECT * FROM pg_get_wal_records_info(%(lo)s::pg_lsn, pg_current_wal_flush_lsn())),
mine AS (SELECT DISTINCT xid FROM r WHERE block_ref LIKE %(db)s AND xid <> '0')
SELECT resource_manager, record_type, record_length, fpi_length, block_ref
FROM r WHERE block_ref LIKE %(db)s OR (resource_manager = 'Transaction' AND xid IN (SELECT xid FROM mine))
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=600, help="sends per round (600)")
    parser.add_argument("rounds", nargs="?", type=int, default=3, help="measured rounds (3)")
    parser.add_argument("--backlog", type=int, default=0, help="future pending sends first (0)")
    args = parser.parse_args(argv)
    from drip.services.dispatch import chunks, claim
    from drip.services.dispatch import fire as fire_batch

    with scratch_context(SIZES["quick"], redis=False) as ctx, fake_twilio_deps(ctx) as deps:
        url, now, campaign_id = ctx.url, ctx.now, ctx.campaign_id
        with connect(url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            row = conn.execute(
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).fetchone()
            assert row is not None
            db_pattern = f"%/{row[0]}/%"
        if args.backlog:
            seed_contacts(url, 10_000, now, agent_id=ctx.agent_id)
            fill_future_sends(url, args.backlog, now, campaign_id=campaign_id)
            analyze(url)
        retried = 0

        def fire(k: int, offset: int) -> tuple[float, int, int, list[tuple[str, ...]]]:
            bench_fire._due_sends(ctx, k, datetime.now(now.tzinfo), offset)
            with connect(url) as conn:
                conn.execute("CHECKPOINT")  # full-page images: the same start every round
                lsn = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
            assert lsn is not None
            pids = database_backends(url)
            cpu0 = cpu_seconds(pids)
            at = datetime.now(now.tzinfo)
            ids = claim(deps, at, k)
            results = [r for batch in chunks(ids, 50) for r in fire_batch(deps, batch, at)]
            cpu = cpu_seconds(pids) - cpu0
            if set(database_backends(url)) - set(pids):
                raise RuntimeError("a backend was opened during the round: CPU not counted")
            sent = sum(r.outcome == "sent" for r in results)
            if sent != k:
                raise RuntimeError(f"expected {k} sent, got {sent}")
            with connect(url) as conn:
                records = conn.execute(_WAL, {"lo": lsn[0], "db": db_pattern}).fetchall()
            wal = sum(int(r[2]) for r in records)
            fpi = sum(int(r[3]) for r in records)
            return cpu, wal, fpi, records

        fire(100, 0)  # warm-up: connections, prepared statements, caches
        results = []
        offset = 1_000
        while len(results) < args.rounds:
            try:
                results.append(fire(args.n, offset))
            except psycopg.errors.UndefinedFile:
                # Another session's WAL made the server recycle this round's segments
                # before they were read: the round is run again with new contacts.
                print("a round's WAL was recycled before it was read: run again")
                retried += 1
                if retried > 3:
                    raise
            offset += args.n
        with connect(url) as conn:
            names = dict(
                conn.execute(
                    "SELECT relfilenode::text, relname FROM pg_class WHERE relfilenode <> 0"
                ).fetchall()
            )
    n = args.n
    for i, (cpu, wal, fpi, records) in enumerate(results, 1):
        print(
            f"round {i}: {n} sends, PostgreSQL backends {cpu * 1000:.0f} ms CPU = "
            f"{cpu / n * 1000:.3f} ms/send; WAL {wal} B = {wal / n:.0f} B/send "
            f"(full-page images {fpi} B), {len(records)} records = {len(records) / n:.1f}/send"
        )

    def relation(block_ref: str) -> str:
        if not block_ref:
            return "-"
        node = block_ref.split("rel ", 1)[1].split(maxsplit=1)[0].rsplit("/", 1)[-1]
        return names.get(node, node)

    per_rel: Counter[str] = Counter()
    for rm, kind, _length, _fpi, block_ref in results[-1][3]:
        per_rel[f"{relation(block_ref)} {rm}/{kind.split()[0]}"] += 1
    print("WAL records per send of the last round, by relation (first block) and type:")
    for key, count in sorted(per_rel.items(), key=lambda kv: -kv[1]):
        print(f"  {count / n:6.2f}  {key}")
    # Pages touched for the first time since the round's checkpoint: how far a round's
    # writes spread (a growing figure means more distinct pages per send).
    print("Full-page image bytes per send, by relation (first block), first and last round:")
    first, last = Counter[str](), Counter[str]()
    for counter, round_ in ((first, results[0]), (last, results[-1])):
        for _rm, _kind, _length, fpi_length, block_ref in round_[3]:
            counter[relation(block_ref)] += int(fpi_length)
    for rel in sorted(set(first) | set(last), key=lambda r: -last[r]):
        if first[rel] or last[rel]:
            print(f"  {first[rel] / n:8.0f} {last[rel] / n:8.0f}  {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
