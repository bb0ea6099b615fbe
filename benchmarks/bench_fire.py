"""4. Firing rate: sends per second end to end, against a no-op Celery task on the same pool.

One Celery worker of drip (``celery -A workers.celery_app worker -Q
send,dispatch -c N``, configured through the environment like production:
``DRIP_DATABASE_URL``, ``DRIP_BROKER_URL``, ``TWILIO_ACCOUNT_SID``,
``TWILIO_AUTH_TOKEN`` and ``DRIP_TWILIO_BASE_URL``) fires due campaign sends
through the whole pipeline: ``dispatch_due`` claims them and publishes
``fire_sends`` batches; each batch re-reads contacts and conversations,
decides every send with the policy (consent, window, caps, footer), renders,
appends the footer, sends each text with the real twilio SDK to the fake
Twilio server (a process of its own) and records the outcomes. A round is
timed from publishing ``dispatch_due`` until every send of the round is
settled in the database (``dispatch_due`` is published again whenever its
queue is empty and sends of the round are still ``pending``, due and not
yet claimed, like a short beat tick).

The baseline: ``bench.noop`` tasks (see ``bench_tasks``) on the same worker
pool, from a queue of their own that it consumes all along. They are
published to a staging queue first and handed over in one atomic Redis
``RENAME``; the round is timed from the first one run to the last. Their
publishing is therefore not timed, while drip's (inside ``dispatch_due``) is.

Rounds alternate, drip / no-op / no-op / drip / drip / no-op ..., so that
load from elsewhere on the machine falls on both alike. The contacts live in zones
where it is day now, so that the sends are due and inside the send window.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench_memory import drip_app, drip_worker_env
from harness import (
    Context,
    connect,
    copy_rows,
    cpu_seconds,
    database_backends,
    descendants,
    queue_length,
    rate,
    say,
    seed_contacts,
    start_celery_worker,
    zones_in_window,
)

if TYPE_CHECKING:
    from drip.testing.fake_twilio import FakeTwilioProcess

FINAL = ("sent", "skipped", "failed", "unknown", "cancelled")
STEP = "day-15-check-in"
PHONE_OFFSET = 600_000  # phone numbers clear of the scheduling benchmark's contacts


def _due_sends(ctx: Context, n: int, now: datetime, offset: int) -> tuple[int, int]:
    """``n`` fresh consenting contacts, enrolled, each with one campaign send due a minute ago.

    Returns the (first, last) send id of the round.
    """
    zones = [(zone, area, None) for zone, area in zones_in_window(now)]
    contact_ids = seed_contacts(
        ctx.url, n, now - timedelta(days=20), agent_id=ctx.agent_id, zones=zones,
        phone_offset=PHONE_OFFSET + offset,
    )  # fmt: skip
    enrolled_at = now - timedelta(days=15, minutes=1)
    with connect(ctx.url) as conn, conn.transaction():
        first_row = conn.execute("SELECT coalesce(max(id), 0) FROM enrollments").fetchone()
        first = int(first_row[0]) if first_row else 0
        copy_rows(
            conn,
            "enrollments",
            ("contact_id", "campaign_id", "enrolled_at", "status"),
            ((c, ctx.campaign_id, enrolled_at, "active") for c in contact_ids),
        )
        enrollments = conn.execute(
            "SELECT id, contact_id FROM enrollments WHERE id > %s ORDER BY id", (first,)
        ).fetchall()
        before = conn.execute("SELECT coalesce(max(id), 0) FROM scheduled_sends").fetchone()
        due = now - timedelta(minutes=1)
        copy_rows(
            conn,
            "scheduled_sends",
            (
                "enrollment_id", "contact_id", "campaign_id", "step_id", "kind", "channel",
                "sender_role", "due_at", "original_due_at", "state", "attempts", "catching_up",
                "created_at", "updated_at",
            ),
            (
                (e, c, ctx.campaign_id, STEP, "campaign", "sms", "agent", due, due, "pending",
                 0, False, enrolled_at, enrolled_at)
                for e, c in enrollments
            ),
        )  # fmt: skip
        last = conn.execute("SELECT max(id) FROM scheduled_sends").fetchone()
    lo = (int(before[0]) if before else 0) + 1
    hi = int(last[0]) if last and last[0] is not None else 0
    if hi - lo + 1 != n:
        raise RuntimeError(f"expected {n} due sends, made {hi - lo + 1}")
    with connect(ctx.url) as conn:
        conn.execute("ANALYZE scheduled_sends")
        conn.execute("ANALYZE contacts")
        conn.execute("ANALYZE enrollments")
    return lo, hi


def _outcomes(url: str, lo: int, hi: int) -> dict[str, int]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT state, count(*) FROM scheduled_sends WHERE id BETWEEN %s AND %s GROUP BY state",
            (lo, hi),
        ).fetchall()
    return {str(state): int(n) for state, n in rows}


def _redis_cpu(ctx: Context) -> float:
    """CPU seconds the Redis server has used (all its clients: other users of it included)."""
    info = ctx.redis.client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _cpu(
    ctx: Context, worker: Any, fake: FakeTwilioProcess, exclude: int | None = None
) -> dict[str, float]:
    """CPU seconds used so far by each process a round involves.

    ``pool``: the Celery worker and its pool processes (the ratio's figure),
    split into ``celery_parent`` (it fetches from Redis and hands tasks to the
    pool) and ``pool_children``; ``twilio``: the fake Twilio server;
    ``postgres``: our database's backends but ``exclude`` (the round's own
    poller); ``redis``: the whole Redis server; ``bench``: this process (the
    poller) and its backend.
    """
    backends = [p for p in database_backends(ctx.url) if p != exclude]
    parent = cpu_seconds([worker.pid])
    children = cpu_seconds(descendants(worker.pid))
    return {
        "pool": parent + children,
        "celery_parent": parent,
        "pool_children": children,
        "twilio": cpu_seconds([fake.pid]),
        "postgres": cpu_seconds(backends),
        "redis": _redis_cpu(ctx),
        "bench": cpu_seconds([os.getpid(), *([exclude] if exclude else [])]),
    }


def _drip_round(
    ctx: Context, app: Any, worker: Any, fake: FakeTwilioProcess, ids: tuple[int, int]
) -> tuple[float, dict[str, float]]:
    """Seconds from publishing dispatch_due until sends lo..hi are settled, and the CPU used."""
    from workers.celery_app import DISPATCH_QUEUE, DISPATCH_TASK

    lo, hi = ids
    n = hi - lo + 1
    # Is any send of the round still open, and is any still pending (due, unclaimed:
    # only these give another dispatch anything to do)? Each question reads the
    # primary key downwards from the round's last id and stops at the first match.
    # The sends are claimed in id order (all due at the same time), so the open and
    # pending ones are the highest ids: a poll reads a row or two, where a count of
    # the round read all its rows and their dead versions every 20 ms (3.8 ms a poll
    # at 5,000 sends a round, 15% of a core next to the pool; 0.5 ms at 750), and
    # made the full run's rounds slower than the quick run's.
    open_sql = (
        "SELECT id FROM scheduled_sends WHERE id BETWEEN %s AND %s"
        " AND state IN ('pending', 'queued', 'sending') ORDER BY id DESC LIMIT 1"
    )
    # Once nothing is pending this reads the whole round: asked at most every 0.5 s,
    # when a dispatch would be published.
    pending_sql = (
        "SELECT id FROM scheduled_sends WHERE id BETWEEN %s AND %s"
        " AND state = 'pending' ORDER BY id DESC LIMIT 1"
    )
    with connect(ctx.url) as conn:
        own = conn.info.backend_pid
        cpu0 = _cpu(ctx, worker, fake, own)
        t0 = time.perf_counter()
        app.send_task(DISPATCH_TASK, queue=DISPATCH_QUEUE)
        last_dispatch = t0
        deadline = t0 + max(120.0, n / 20)
        top = hi  # the sends above the highest open one are settled (final states stay)
        while True:
            row = conn.execute(open_sql, (lo, top)).fetchone()
            if row is None:
                break
            top = int(row[0])
            now = time.perf_counter()
            if now > deadline:
                from workers.celery_app import SEND_QUEUE

                states = _outcomes(ctx.url, lo, hi)
                queued = {
                    q: queue_length(ctx.redis.client, q) for q in (SEND_QUEUE, DISPATCH_QUEUE)
                }
                raise TimeoutError(
                    f"sends of the round still open after {now - t0:.0f}s: states {states}, "
                    f"queues {queued}; worker log: {worker.log}"
                )
            if worker.proc.poll() is not None:
                raise RuntimeError(f"the drip worker exited:\n{worker.tail()}")
            # Re-dispatched only while some are still pending: the sends a dispatch
            # claimed are in fire tasks already, and a dispatch with nothing to claim
            # still costs a pool process 30-110 ms (recovery, claim, budget counts)
            # taken from the sends: every 0.5 s, that was 6-10 % of a worker, 30 times
            # the production tick (15 s), and nothing like it in the no-op rounds.
            if now - last_dispatch > 0.5 and queue_length(ctx.redis.client, DISPATCH_QUEUE) == 0:
                last_dispatch = now  # asked again in 0.5 s at the earliest, either way
                if conn.execute(pending_sql, (lo, top)).fetchone() is not None:
                    app.send_task(DISPATCH_TASK, queue=DISPATCH_QUEUE)
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        cpu1 = _cpu(ctx, worker, fake, own)
    return elapsed, {k: cpu1[k] - cpu0[k] for k in cpu0}


def _noop_round(
    ctx: Context, app: Any, worker: Any, queue: str, n: int
) -> tuple[int, float, dict[str, float]]:
    """(tasks timed, seconds, CPU seconds by process) of ``n`` no-op tasks queued beforehand.

    The worker consumes ``queue`` all along. The tasks are published to a
    staging queue nobody consumes, then the staging list is renamed to
    ``queue`` in one atomic Redis step: the pool finds them all at once, and
    no consumer is added or cancelled on the running worker (remote control
    of consumers is fragile with prefetching). Timed from the first task that
    ran to the last.
    """
    from bench_tasks import NOOP_TASK

    key = os.environ["DRIP_BENCH_NOOP_KEY"]
    staging = f"{queue}-staging"
    client = ctx.redis.client
    client.set(key, 0)
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task(NOOP_TASK, queue=staging, producer=producer)
    if queue_length(client, staging) != n or queue_length(client, queue) != 0:
        raise RuntimeError(f"staging holds {queue_length(client, staging)} of {n} no-op tasks")
    client.rename(staging, queue)
    deadline = time.perf_counter() + max(120.0, n / 20)
    first = 0
    while first == 0:
        first = int(client.get(key) or 0)
        if time.perf_counter() > deadline:
            raise TimeoutError(f"no no-op task ran; worker log: {worker.log}")
        time.sleep(0.001)
    t0 = time.perf_counter()
    children = descendants(worker.pid)
    cpu0 = _noop_cpu(ctx, worker.pid, children)
    while int(client.get(key) or 0) < n:
        if time.perf_counter() > deadline:
            done = int(client.get(key) or 0)
            raise TimeoutError(f"only {done} of {n} no-op tasks ran; worker log: {worker.log}")
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    cpu1 = _noop_cpu(ctx, worker.pid, children)
    return n - first, elapsed, {k: cpu1[k] - cpu0[k] for k in cpu0}


def _noop_cpu(ctx: Context, parent: int, children: list[int]) -> dict[str, float]:
    """CPU seconds so far of the no-op round's processes (see :func:`_cpu`)."""
    parent_s, children_s = cpu_seconds([parent]), cpu_seconds(children)
    return {
        "pool": parent_s + children_s,
        "celery_parent": parent_s,
        "pool_children": children_s,
        "redis": _redis_cpu(ctx),
        "bench": cpu_seconds([os.getpid()]),
    }


def _profiler(ctx: Context, worker: Any) -> Any:
    """With ``DRIP_BENCH_PYSPY=FILE`` (and py-spy installed): sample the pool during a round."""
    out = os.environ.get("DRIP_BENCH_PYSPY")
    if not out:
        return None
    argv = ["py-spy", "record", "--subprocesses", "--nonblocking", "--idle", "-r", "200", "-f", "raw",
            "-o", out, "-p", str(worker.pid)]  # fmt: skip
    from harness import PYTHON

    spy_bin = os.path.join(os.path.dirname(PYTHON), "py-spy")
    if os.path.exists(spy_bin):
        argv[0] = spy_bin
    child = ctx.processes.start("py-spy", argv, dict(os.environ))
    time.sleep(1.0)
    return child


def _scaling(  # noqa: PLR0917 - the round's parts, as run() holds them
    ctx: Context,
    app: Any,
    env: dict[str, str],
    fake: FakeTwilioProcess,
    prepare: Any,
    n: int,
) -> dict[str, Any]:
    """``fire_scaling_2v1``: drip sends/s with a pool of 2 worker processes ÷ with 1.

    A worker of each size is started afresh for each of its rounds (only one
    worker consumes the send queue at a time), warmed up with a small round,
    then timed on ``n`` fresh due sends. Pacing is as configured for the
    main rounds: on, at a rate that never binds (``harness.BENCH_SENDERS``),
    so every send reserves its slot with one Lua call on its sender's Redis
    key, the same key for the two workers (about 10 us of Redis time each).
    """
    from workers.celery_app import DISPATCH_QUEUE, SEND_QUEUE

    seconds = {1: 0.0, 2: 0.0}
    sends = {1: 0, 2: 0}
    cpu: dict[int, dict[str, float]] = {1: {}, 2: {}}
    # Alternating (1, 2, 2, 1), so that load from elsewhere falls on both alike.
    for size in ctx.sizes.scaling_order:
        worker = start_celery_worker(
            ctx.processes, f"drip-scale-{size}", "workers.celery_app",
            [SEND_QUEUE, DISPATCH_QUEUE], env, concurrency=size, include="bench_tasks",
        )  # fmt: skip
        try:
            _drip_round(ctx, app, worker, fake, prepare(min(n, 100 * size)))
            lo, hi = prepare(n)
            say(f"fire: scaling round, {n:,} sends, {size} worker process(es)")
            elapsed, used = _drip_round(ctx, app, worker, fake, (lo, hi))
        finally:
            ctx.processes.stop(worker)
        states = _outcomes(ctx.url, lo, hi)
        if states.get("sent", 0) != n:
            raise RuntimeError(f"scaling round: expected {n} texts sent, got {states}")
        seconds[size] += elapsed
        sends[size] += n
        cpu[size] = {k: cpu[size].get(k, 0.0) + v for k, v in used.items()}
    one, two = rate(sends[1], seconds[1]), rate(sends[2], seconds[2])
    return {
        "fire_scaling_sends_per_s_1": one,
        "fire_scaling_sends_per_s_2": two,
        "fire_scaling_cpu_ms_per_send": {
            str(k): round(cpu[k]["pool"] / sends[k] * 1000, 3) for k in (1, 2)
        },
        "fire_scaling_cpu_ms_per_send_by_process": {
            str(k): {p: round(v / sends[k] * 1000, 3) for p, v in cpu[k].items()} for k in (1, 2)
        },
        "fire_scaling_2v1": two / one,
    }


def run(ctx: Context) -> dict[str, Any]:
    from drip.testing.fake_twilio import FakeTwilioProcess

    say("fire: starting the fake Twilio server")
    with FakeTwilioProcess() as fake:
        return _run(ctx, fake)


def _run(ctx: Context, fake: FakeTwilioProcess) -> dict[str, Any]:
    sizes = ctx.sizes
    rounds = sizes.fire_rounds  # half drip, half no-op: drip, no-op, no-op, drip, drip, ...
    per_round = max(1, sizes.fire_sends // (rounds // 2))
    noop_round = max(1, sizes.noop_tasks // (rounds // 2))
    concurrency = int(os.environ.get("DRIP_BENCH_WORKER_CONCURRENCY") or sizes.worker_concurrency)

    env = drip_worker_env(ctx, ctx.url)
    env.update(
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        DRIP_TWILIO_BASE_URL=fake.base_url,
        DRIP_LOG_LEVEL=os.environ.get("DRIP_BENCH_WORKER_LOG_LEVEL", "INFO"),
        DRIP_BENCH_NOOP_KEY=f"drip-bench:noop:{os.getpid()}",
        DRIP_SECRET_KEY="drip-benchmark-secret",  # noqa: S106 - signs nothing that leaves the run
    )
    os.environ["DRIP_BENCH_NOOP_KEY"] = env["DRIP_BENCH_NOOP_KEY"]
    os.environ["DRIP_BENCH_COUNTER_URL"] = ctx.redis_url
    # Each round's sends are made just before it, so that a round's dispatch finds only them.
    made = 0

    def prepare(n: int) -> tuple[int, int]:
        nonlocal made
        ids = _due_sends(ctx, n, datetime.now(ctx.now.tzinfo), offset=made)
        made += n
        return ids

    from workers.celery_app import DISPATCH_QUEUE, SEND_QUEUE

    app = drip_app(ctx, ctx.url)
    queue = f"drip-bench-noop-{os.getpid()}"
    worker = start_celery_worker(
        ctx.processes,
        "drip-pool",
        "workers.celery_app",
        [SEND_QUEUE, DISPATCH_QUEUE, queue],
        env,
        concurrency=concurrency,
        include="bench_tasks",
    )
    try:
        say("fire: warm-up (each pool process builds its engine and Twilio client)")
        _drip_round(ctx, app, worker, fake, prepare(min(per_round, 4 * concurrency * 50)))
        _noop_round(ctx, app, worker, queue, min(noop_round, 200))
        fake.reset()
        drip_ids: list[tuple[int, int]] = []
        drip_s = noop_s = 0.0
        drip_n = noop_n = 0
        drip_cpu: dict[str, float] = {}
        noop_cpus: dict[str, float] = {}
        for i in range(rounds):
            if i % 4 in (0, 3):
                lo, hi = prepare(per_round)
                drip_ids.append((lo, hi))
                say(f"fire: drip round, {hi - lo + 1:,} sends")
                spy = _profiler(ctx, worker) if not drip_n else None
                elapsed, cpu = _drip_round(ctx, app, worker, fake, (lo, hi))
                drip_s += elapsed
                drip_cpu = {k: drip_cpu.get(k, 0.0) + v for k, v in cpu.items()}
                if spy is not None:
                    spy.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                    spy.proc.wait(timeout=60)
                    ctx.processes.stop(spy)
                drip_n += hi - lo + 1
            else:
                say(f"fire: no-op round, {noop_round:,} tasks")
                timed, elapsed, used = _noop_round(ctx, app, worker, queue, noop_round)
                noop_s += elapsed
                noop_cpus = {k: noop_cpus.get(k, 0.0) + v for k, v in used.items()}
                noop_n += timed
        outcomes: dict[str, int] = {}
        for lo, hi in drip_ids:
            for state, k in _outcomes(ctx.url, lo, hi).items():
                outcomes[state] = outcomes.get(state, 0) + k
        stats = fake.stats()
    finally:
        ctx.processes.stop(worker)
        with app.connection_for_write() as conn:
            for name in (queue, f"{queue}-staging"):
                conn.default_channel.queue_purge(name)
    if outcomes.get("sent", 0) != drip_n or stats.get("accepted") != drip_n:
        raise RuntimeError(
            f"expected {drip_n} texts sent, got outcomes {outcomes} and fake Twilio stats {stats}"
        )
    scaling = _scaling(ctx, app, env, fake, prepare, sizes.scaling_sends)
    fire_rate = rate(drip_n, drip_s)
    noop_cpu = noop_cpus["pool"]
    noop_rate = rate(noop_n, noop_s)
    return {
        "fire_sends": drip_n,
        "fire_concurrency": concurrency,
        "fire_s": drip_s,
        "fire_sends_per_s": fire_rate,
        "fire_outcomes": outcomes,
        "fire_twilio_requests": stats.get("count"),
        "noop_tasks": noop_n,
        "noop_s": noop_s,
        "noop_tasks_per_s": noop_rate,
        "fire_vs_celery_noop": fire_rate / noop_rate,
        # CPU time per send / per no-op task: a view that load from elsewhere on the
        # machine barely moves (a rate does). "pool" is the Celery worker and its
        # pool processes, "postgres" the backends of the benchmark's database.
        "fire_cpu_ms_per_send": {k: round(v / drip_n * 1000, 3) for k, v in drip_cpu.items()},
        "noop_cpu_ms_per_task": round(noop_cpu / noop_n * 1000, 3),
        "noop_cpu_ms_per_task_by_process": {
            k: round(v / noop_n * 1000, 3) for k, v in noop_cpus.items()
        },
        "fire_vs_celery_noop_cpu": (noop_cpu / noop_n) / (drip_cpu["pool"] / drip_n),
        # The name for the same figure the other way up (goal <= 1.0).
        "fire_cpu_vs_noop": (drip_cpu["pool"] / drip_n) / (noop_cpu / noop_n),
        **scaling,
        "fire_send_batch": int(os.environ.get("DRIP_SEND_BATCH", "50")),
        "fire_zones": [z for z, _ in zones_in_window(datetime.now(ctx.now.tzinfo))],
    }
