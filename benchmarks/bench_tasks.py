"""Benchmark-only additions to drip's worker, loaded with ``celery ... worker --include bench_tasks``.

- ``bench.noop``: the no-op baseline of the firing benchmark, on drip's own
  app and worker pool. It counts itself with one Redis ``INCR`` (about 50 us,
  against a Celery task overhead of a millisecond or more) so that the
  benchmark knows when the last one ran.
- A ``worker_ready`` receiver that touches ``DRIP_BENCH_READY_FILE``: the
  benchmark waits for it instead of parsing the worker's log.

Nothing here changes how drip's tasks run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import redis
from celery.signals import worker_ready

from workers.celery_app import app

NOOP_TASK = "bench.noop"
_client: redis.Redis | None = None


def _counter() -> redis.Redis:
    global _client  # noqa: PLW0603 - one client per pool process, made after the fork
    if _client is None:
        _client = redis.Redis.from_url(os.environ["DRIP_BENCH_COUNTER_URL"])
    return _client


def _noop() -> None:
    _counter().incr(os.environ.get("DRIP_BENCH_NOOP_KEY", "drip-bench:noop"))


# Celery ships no type hints, hence the call forms rather than decorators.
noop: Any = app.task(name=NOOP_TASK, ignore_result=True)(_noop)


def _ready(**_: Any) -> None:
    path = os.environ.get("DRIP_BENCH_READY_FILE")
    if path:
        Path(path).write_text("ready\n")


worker_ready.connect(_ready)
