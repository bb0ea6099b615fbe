"""gunicorn settings for drip's web app: ``gunicorn -c python:drip.web.gunicorn_conf ...``.

In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), a worker that exits has
its live gauges dropped, so ``/metrics`` adds up only the workers running.
"""

from __future__ import annotations

from typing import Any

from drip import metrics


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's hook when a worker process exited."""
    metrics.mark_process_dead(int(worker.pid))
