"""3. Claim cost: claiming the due sends must not slow down as the future backlog grows.

Two backlogs of pending sends, each mostly *not* due (15 to 360 days ahead)
plus ``claim_batch`` due ones, the realistic shape of a drip schedule. After
each load ``VACUUM ANALYZE`` runs, as autovacuum would. One measurement is
``drip.store.claims.claim_due(session, now, claim_batch)``, the real claim
(``FOR UPDATE SKIP LOCKED`` in a materialized CTE, ``UPDATE ... RETURNING``,
commit); the claimed rows are then deleted and a fresh due batch inserted, so
every repetition sees the same table. Each backlog has a scratch database of
its own and the measurements alternate between them, so that load from
elsewhere on the machine falls on both alike. Median of ``claim_reps`` after
one warm-up pair.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from harness import (
    Context,
    add_agent,
    analyze,
    connect,
    count,
    drip_deps,
    fill_future_sends,
    median,
    say,
    seed_contacts,
)


def _insert_due(url: str, n: int, now: Any) -> None:
    """``n`` pending sends that fell due within the last hour."""
    with connect(url) as conn:
        conn.execute(
            """
            INSERT INTO scheduled_sends (
                contact_id, step_id, kind, channel, sender_role, due_at, original_due_at,
                state, attempts, catching_up, created_at, updated_at)
            SELECT c.ids[1 + mod(g, array_length(c.ids, 1))], 'day-15-check-in', 'campaign',
                   'sms', 'agent', %(now)s - mod(g, 3600) * interval '1 second',
                   %(now)s - mod(g, 3600) * interval '1 second',
                   'pending', 0, false, %(now)s, %(now)s
            FROM generate_series(1, %(n)s) AS g,
                 (SELECT array_agg(id) AS ids FROM (SELECT id FROM contacts LIMIT 10000) s) AS c
            """,
            {"now": now, "n": n},
        )


def _prepare(ctx: Context, backlog: int) -> tuple[str, Any]:
    """A scratch database holding ``backlog - claim_batch`` future pending sends."""
    from drip.store.migrate import upgrade

    url = ctx.dbs.create(f"_claim{backlog}")
    upgrade(url)
    seed_contacts(url, 1000, ctx.now - timedelta(days=1), agent_id=add_agent(url, ctx.now))
    fill_future_sends(url, backlog - ctx.sizes.claim_batch, ctx.now, campaign_id=None)
    return url, drip_deps(url, ctx.workdir)


def _claim_once(ctx: Context, url: str, deps: Any, backlog: int) -> float:
    """Insert a due batch, VACUUM ANALYZE, time one claim, delete what it claimed."""
    from drip.store.claims import claim_due

    batch = ctx.sizes.claim_batch
    _insert_due(url, batch, ctx.now)
    analyze(url)
    pending = count(url, "SELECT count(*) FROM scheduled_sends WHERE state = 'pending'")
    if pending != backlog:
        raise RuntimeError(f"claim backlog holds {pending} pending sends, expected {backlog}")
    with deps.sessions() as session:
        t0 = time.perf_counter()
        ids = claim_due(session, ctx.now, batch)
        elapsed = time.perf_counter() - t0
    if len(ids) != batch:
        raise RuntimeError(f"claim_due took {len(ids)} sends, expected {batch}")
    with connect(url) as conn:
        conn.execute("DELETE FROM scheduled_sends WHERE state = 'queued'")
    return elapsed


def run(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    say(f"claim: backlogs of {sizes.claim_small:,} and {sizes.claim_large:,} pending sends")
    small_db = _prepare(ctx, sizes.claim_small)
    large_db = _prepare(ctx, sizes.claim_large)
    small: list[float] = []
    large: list[float] = []
    try:
        # Alternate the two (and which goes first) so that load from elsewhere on
        # the machine falls on both alike; the first pair warms caches and is dropped.
        for rep in range(sizes.claim_reps + 1):
            order = [(small_db, sizes.claim_small, small), (large_db, sizes.claim_large, large)]
            for (url, deps), backlog, out in order if rep % 2 else reversed(order):
                elapsed = _claim_once(ctx, url, deps, backlog)
                if rep:
                    out.append(elapsed)
    finally:
        small_db[1].engine.dispose()
        large_db[1].engine.dispose()
    return {
        "claim_batch": sizes.claim_batch,
        "claim_small_backlog": sizes.claim_small,
        "claim_large_backlog": sizes.claim_large,
        "claim_small_ms": median(small) * 1000,
        "claim_large_ms": median(large) * 1000,
        "claim_small_all_ms": [round(t * 1000, 2) for t in small],
        "claim_large_all_ms": [round(t * 1000, 2) for t in large],
        "claim_backlog_ratio": median(large) / median(small),
    }
