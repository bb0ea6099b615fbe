"""``celery -A workers.celery_app worker`` and ``... beat`` as processes, configured by DRIP_*."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import CeleryCommand, CeleryRig

REPO = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_beat_and_a_worker_from_the_environment_fire_due_sends(
    make_celery_rig: Callable[..., CeleryRig],
    celery_command: Callable[..., CeleryCommand],
    tmp_path: Path,
) -> None:
    """Beat ticks every DRIP_TICK_SECONDS, a prefork worker fires; logs are drip's, masked."""
    real_now = datetime.now(UTC)
    celery_rig = make_celery_rig(start=real_now, key_prefix=False)
    rig = celery_rig.rig
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(30, timezone=rig.midday_zone(real_now)), "one-step")
    env = celery_rig.env(DRIP_TICK_SECONDS="1")

    worker = celery_command(
        "worker", ["worker", "-c", "2", "-n", "w@%h", "--without-mingle", "--without-gossip"], env
    )
    beat = celery_command(
        "beat", ["beat", "-s", str(tmp_path / "beat-schedule"), "--max-interval", "1"], env
    )
    celery_rig.wait_settled(30, timeout=90)

    assert rig.states() == {"sent": 30}
    assert rig.twilio.count == 30
    assert beat.stop() == 0
    assert worker.stop() == 0
    records = [json.loads(line) for line in worker.text().splitlines() if line.startswith("{")]
    decided = [r for r in records if r.get("event") == "send_decided"]
    assert len(decided) == 30
    assert {r["to"] for r in decided} == {f"+1******{i:04d}" for i in range(30)}
    assert rig.phone_of(0) not in worker.text()  # no record shows a whole number
    assert sum(r["claimed"] for r in records if r.get("event") == "dispatched") == 30


def _bare_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_", "CELERY_"))}
    env["DRIP_HOME"] = str(tmp_path)
    return env


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_worker_and_beat_refuse_to_start_without_a_broker(tmp_path: Path, command: str) -> None:
    """Without DRIP_BROKER_URL the command exits 1 at once and says what to set."""
    done = subprocess.run(
        [CELERY, "-A", "workers.celery_app", command, "-s", str(tmp_path / "schedule")]
        if command == "beat"
        else [CELERY, "-A", "workers.celery_app", command],
        cwd=REPO,
        env=_bare_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "DRIP_BROKER_URL is not set" in done.stderr
    assert "drip run" in done.stderr
