"""Benchmark-only additions to drip's worker, loaded with ``celery ... worker --include bench_tasks``.

- ``bench.noop``: the no-op baseline of the firing benchmark, on drip's own
  app and worker pool. It counts itself with one Redis ``INCR`` (about 50 us,
  against a Celery task overhead of a millisecond or more) so that the
  benchmark knows when the last one ran.
- A ``worker_ready`` receiver that touches ``DRIP_BENCH_READY_FILE``: the
  benchmark waits for it instead of parsing the worker's log.
- With ``DRIP_BENCH_CPROFILE=DIR``: each pool process runs under cProfile
  with the process CPU clock as timer, from its fork on, and writes
  ``DIR/<pid>.prof`` at most once a second after a task (a pool process is
  killed with its group, so it cannot wait for its shutdown). For finding
  what the pool spends outside ``fire_batch``; it slows the pool down.
- With ``DRIP_BENCH_TASK_CPU=DIR``: each pool process adds up the CPU
  seconds spent in each task (by name, Celery's tracing included) and in
  all, and writes them to ``DIR/<pid>.json`` the same way: what is left is
  the pool process's own polling and message handling. Cheap enough to
  leave the figures unbiased.

Nothing here changes how drip's tasks run.
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import time
from pathlib import Path
from typing import Any

import redis
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready

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


class _Profiler:
    """The pool process's cProfile (``DRIP_BENCH_CPROFILE``), dumped now and then."""

    def __init__(self) -> None:
        self.profile: cProfile.Profile | None = None
        self.dumped = 0.0

    def start(self, **_: Any) -> None:
        if os.environ.get("DRIP_BENCH_CPROFILE"):
            self.profile = cProfile.Profile(time.process_time)
            self.profile.enable()

    def dump(self, **_: Any) -> None:
        folder = os.environ.get("DRIP_BENCH_CPROFILE")
        if self.profile is None or not folder or time.monotonic() - self.dumped < 1.0:
            return
        self.dumped = time.monotonic()
        self.profile.disable()
        try:
            path = Path(folder) / f"{os.getpid()}.prof"
            self.profile.dump_stats(path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)  # whole, even if killed while writing
        finally:
            self.profile.enable()


_profiler = _Profiler()
# Connected only when asked for: a receiver of task_prerun/postrun costs every task
# (the no-op baseline's included) two signal dispatches that Celery skips otherwise.
if os.environ.get("DRIP_BENCH_CPROFILE"):
    worker_process_init.connect(_profiler.start)
    task_postrun.connect(_profiler.dump)


class _TaskCpu:
    """CPU seconds of this pool process by task name (``DRIP_BENCH_TASK_CPU``)."""

    def __init__(self) -> None:
        self.folder = ""
        self.started = 0.0
        self.at_fork = 0.0
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.dumped = 0.0
        self.gc_started = 0.0

    def fork(self, **_: Any) -> None:
        self.folder = os.environ.get("DRIP_BENCH_TASK_CPU", "")
        self.at_fork = time.process_time()
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        """The garbage collector's CPU seconds, by generation (under ``gc <n>``)."""
        if phase == "start":
            self.gc_started = time.process_time()
            return
        name = f"gc {info['generation']}"
        self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - self.gc_started
        self.counts[name] = self.counts.get(name, 0) + 1

    def before(self, **_: Any) -> None:
        self.started = time.process_time()

    def after(self, task: Any = None, **_: Any) -> None:
        if not self.folder:
            return
        name = getattr(task, "name", "?")
        if not any(k.startswith(("first", "workers", "bench")) for k in self.counts):
            name = f"first {name}"  # it builds the process's Deps: not a task's usual cost
        self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - self.started
        self.counts[name] = self.counts.get(name, 0) + 1
        if time.monotonic() - self.dumped < 0.5:
            return
        self.dumped = time.monotonic()
        path = Path(self.folder) / f"{os.getpid()}.json"
        total = time.process_time() - self.at_fork
        record = {"total": total, "seconds": self.seconds, "counts": self.counts}
        path.with_suffix(".tmp").write_text(json.dumps(record))
        path.with_suffix(".tmp").replace(path)


_task_cpu = _TaskCpu()
if os.environ.get("DRIP_BENCH_TASK_CPU"):
    worker_process_init.connect(_task_cpu.fork)
    task_prerun.connect(_task_cpu.before)
    task_postrun.connect(_task_cpu.after)
