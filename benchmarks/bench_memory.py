"""2. Worker memory: a drip worker holds nothing of the schedule; an ETA-task worker holds it all.

Resident memory is ``VmRSS`` from ``/proc/<pid>/status``, summed over the
worker process and its pool (``-c 1``), read once it has stopped moving.

- drip: ``celery -A workers.celery_app worker -Q send,dispatch`` on a
  database holding ``memory_drip_sends`` future sends (the schedule the
  scheduling benchmark made, topped up), after running ``dispatch_due`` a few
  times, against the same worker on an empty database, after the same
  tasks. ``worker_rss_growth_mib`` is the difference.
- naive: ``celery -A naive_app worker`` consuming a queue of
  ``memory_naive_tasks`` ETA tasks due 15 to 360 days ahead, once it has
  prefetched them all (the queue in Redis is empty; they sit in the worker),
  against the same worker with an empty queue.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

from harness import (
    Context,
    analyze,
    base_env,
    count,
    drip_deps,
    fill_future_sends,
    median,
    prepare_database,
    queue_length,
    say,
    seed_contacts,
    settled_rss_mib,
    start_celery_worker,
    wait_for,
)

DISPATCH_RUNS = 3


def drip_app(ctx: Context, database_url: str) -> Any:
    """drip's Celery app in this process, configured to publish to the benchmark's Redis."""
    from dataclasses import replace

    from harness import drip_settings

    from workers.celery_app import configure

    settings = replace(drip_settings(database_url, ctx.workdir), broker_url=ctx.redis_url)
    return configure(settings)


def drip_worker_env(ctx: Context, database_url: str) -> dict[str, str]:
    env = base_env(ctx.workdir)
    env.update(
        DRIP_DATABASE_URL=database_url,
        DRIP_BROKER_URL=ctx.redis_url,
        DRIP_LOG_LEVEL="WARNING",
        DRIP_BENCH_COUNTER_URL=ctx.redis_url,
    )
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "DRIP_TWILIO_BASE_URL"):
        env.pop(name, None)
    return env


def _drip_worker_rss(ctx: Context, database_url: str) -> float:
    from workers.celery_app import DISPATCH_QUEUE, DISPATCH_TASK, SEND_QUEUE

    app = drip_app(ctx, database_url)
    worker = start_celery_worker(
        ctx.processes,
        "drip-worker",
        "workers.celery_app",
        [SEND_QUEUE, DISPATCH_QUEUE],
        drip_worker_env(ctx, database_url),
        concurrency=1,
        include="bench_tasks",
    )
    try:
        for _ in range(DISPATCH_RUNS):
            app.send_task(DISPATCH_TASK, queue=DISPATCH_QUEUE)
        wait_for(
            "dispatch_due to be consumed",
            lambda: queue_length(ctx.redis.client, DISPATCH_QUEUE) == 0,
            timeout=60,
            child=worker,
        )
        time.sleep(ctx.sizes.settle_window / 2)
        return settled_rss_mib(worker.pid, window=ctx.sizes.settle_window)
    finally:
        ctx.processes.stop(worker)


def _naive_worker_rss(ctx: Context, queue: str, tasks: int) -> float:
    import naive_app

    env = base_env(ctx.workdir)
    env.update(DRIP_BENCH_NAIVE_BROKER=ctx.redis_url, DRIP_BENCH_NAIVE_QUEUE=queue)
    if tasks:
        naive_app.app.conf.broker_url = ctx.redis_url
        with naive_app.app.producer_or_acquire() as producer:
            for i in range(tasks):
                eta = ctx.now + timedelta(days=15 + i % 345, seconds=i % 86400)
                naive_app.fire_step.apply_async(
                    args=(i, "day-45-market-update"), eta=eta, queue=queue, producer=producer
                )
    worker = start_celery_worker(
        ctx.processes, "naive-worker", "naive_app", [queue], env, concurrency=1
    )
    try:
        wait_for(
            f"the naive worker to prefetch {tasks:,} ETA tasks",
            lambda: queue_length(ctx.redis.client, queue) == 0,
            timeout=600,
            interval=0.25,
            child=worker,
        )
        time.sleep(ctx.sizes.settle_window / 2)
        return settled_rss_mib(worker.pid, window=ctx.sizes.settle_window, timeout=60)
    finally:
        ctx.processes.stop(worker, timeout=5)
        with naive_app.app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)


def run(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    reps = sizes.rss_reps
    empty_url = ctx.dbs.create("_empty")
    empty_deps = drip_deps(empty_url, ctx.workdir)
    try:
        prepare_database(empty_url, empty_deps, ctx.now)
    finally:
        empty_deps.engine.dispose()
    if count(ctx.url, "SELECT count(*) FROM contacts") == 0:  # the scheduling run was skipped
        seed_contacts(ctx.url, 1000, ctx.now, agent_id=ctx.agent_id)
    future = "SELECT count(*) FROM scheduled_sends WHERE state = 'pending' AND due_at > now()"
    have = count(ctx.url, future)
    if have < sizes.memory_drip_sends:
        say(f"memory: topping the schedule up from {have:,} to {sizes.memory_drip_sends:,} sends")
        fill_future_sends(
            ctx.url, sizes.memory_drip_sends - have, ctx.now, campaign_id=ctx.campaign_id
        )
        analyze(ctx.url)
    held = count(ctx.url, future)

    empty, full = [], []
    for _ in range(reps):
        say("memory: drip worker, empty database")
        empty.append(_drip_worker_rss(ctx, empty_url))
        say(f"memory: drip worker, {held:,} future sends in the database")
        full.append(_drip_worker_rss(ctx, ctx.url))

    queue = f"drip-bench-naive-{os.getpid()}"
    naive_empty, naive_full = [], []
    for _ in range(reps):
        say("memory: naive Celery worker, empty queue")
        naive_empty.append(_naive_worker_rss(ctx, queue, 0))
        say(f"memory: naive Celery worker, {sizes.memory_naive_tasks:,} ETA tasks")
        naive_full.append(_naive_worker_rss(ctx, queue, sizes.memory_naive_tasks))

    naive_growth = median(naive_full) - median(naive_empty)
    return {
        "memory_drip_sends": held,
        "memory_naive_tasks": sizes.memory_naive_tasks,
        "memory_drip_empty_mib": median(empty),
        "memory_drip_full_mib": median(full),
        "worker_rss_growth_mib": median(full) - median(empty),
        "memory_naive_empty_mib": median(naive_empty),
        "memory_naive_full_mib": median(naive_full),
        "naive_rss_growth_mib": naive_growth,
        "naive_rss_growth_mib_per_1k": naive_growth / (sizes.memory_naive_tasks / 1000),
    }
