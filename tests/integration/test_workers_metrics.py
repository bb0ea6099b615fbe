"""A Celery worker serves /metrics on DRIP_METRICS_PORT, adding up its prefork pool's counters."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from net_support import free_port
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import CeleryCommand, CeleryRig


def sent_total(port: int) -> float:
    """``drip_sends_total{outcome="sent"}`` summed over reasons, from the worker's endpoint."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = answer.read().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == "drip_sends_total" and s.labels.get("outcome") == "sent"
    )


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_worker_metrics_add_up_every_pool_process(
    make_celery_rig: Callable[..., CeleryRig],
    celery_command: Callable[..., CeleryCommand],
    tmp_path: Path,
) -> None:
    """A prefork pool fires 30 sends; the worker's main process serves /metrics counting all 30."""
    real_now = datetime.now(UTC)
    celery_rig = make_celery_rig(start=real_now, key_prefix=False)
    rig = celery_rig.rig
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(30, timezone=rig.midday_zone(real_now)), "one-step")
    folder = tmp_path / "prometheus"
    folder.mkdir()
    port = free_port()
    env = celery_rig.env(
        DRIP_TICK_SECONDS="1", DRIP_METRICS_PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(folder)
    )
    worker = celery_command(
        "worker", ["worker", "-c", "2", "-n", "w@%h", "--without-mingle", "--without-gossip"], env
    )
    beat = celery_command(
        "beat", ["beat", "-s", str(tmp_path / "beat-schedule"), "--max-interval", "1"], env
    )
    celery_rig.wait_settled(30, timeout=90)
    assert rig.states() == {"sent": 30}
    # The sends were counted in pool processes and are served by the worker's main
    # process: only the multiprocess folder carries them across.
    assert sent_total(port) == 30
    assert list(folder.glob("counter_*.db"))
    assert beat.stop() == 0
    assert worker.stop() == 0
