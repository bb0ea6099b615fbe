"""The approach drip does not take, for comparison: one Celery ETA task per campaign step.

Used two ways by the benchmarks: in the benchmark process to time
``apply_async(eta=...)`` (scheduling), and as ``celery -A naive_app worker``
whose resident memory is measured while it holds the ETA tasks it prefetched
(memory). Configured from the environment: ``DRIP_BENCH_NAIVE_BROKER`` and
``DRIP_BENCH_NAIVE_QUEUE``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_ready

app = Celery("drip_bench_naive")
app.conf.update(
    broker_url=os.environ.get("DRIP_BENCH_NAIVE_BROKER", "redis://127.0.0.1:6379/15"),
    task_default_queue=os.environ.get("DRIP_BENCH_NAIVE_QUEUE", "drip-bench-naive"),
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # The Redis default: an unacknowledged (prefetched ETA) task goes back to
    # the queue after an hour; a benchmark run is far shorter than that.
    broker_transport_options={"visibility_timeout": 3600},
)


def _fire_step(contact_id: int, step_id: str) -> None:
    """Would look the contact up and send the step; never runs in the benchmark."""


# Celery ships no type hints, hence the call forms rather than decorators.
fire_step: Any = app.task(name="naive.fire_step")(_fire_step)


def _ready(**_: Any) -> None:
    """Tell the benchmark the worker is consuming (it waits for this file)."""
    path = os.environ.get("DRIP_BENCH_READY_FILE")
    if path:
        Path(path).write_text("ready\n")


worker_ready.connect(_ready)
