"""A bounded part of the fault suite in CI: real worker processes, the fake server's faults.

``benchmarks/faults.py`` runs three faults with 30 sends each (about two
minutes): a gateway 500 after acceptance (unknown, then reconciled), a 429
outage (deferred, then sent) and three kill -9 of the worker mid-run. Its
last line must report no duplicate, nothing lost, nothing left unknown and no
send failed without a refusal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "benchmarks" / "faults.py"
CI_FAULTS = "gateway_500,outage_429,kill_9"


@pytest.mark.slow
def test_the_bounded_fault_suite_meets_every_goal(
    pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]], redis_url: str
) -> None:
    """No duplicate, nothing lost, no unknown left, no failure without a refusal, per fault."""
    admin_url, _ = pg_admin
    env = {
        **os.environ,
        "DRIP_BENCH_DATABASE_URL": admin_url,
        "DRIP_FAULTS_REDIS_URL": redis_url,
    }
    for name in ("DRIP_DATABASE_URL", "DRIP_BROKER_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(SUITE), "--only", CI_FAULTS, "--sends", "30"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout + done.stderr
    summary = json.loads(lines[-1])
    assert set(summary["faults"]) == set(CI_FAULTS.split(","))
    for name, result in summary["faults"].items():
        assert result["sends"] == 30, name
        assert result["sent"] == 30, (name, result)
        for key in ("duplicates", "lost", "unknown_after_reconcile", "failed_not_refused"):
            assert result[key] == 0, (name, key, result)
    assert summary["total"]["goals_met"] == 1
    assert done.returncode == 0


@pytest.mark.slow
def test_webhook_faults_lose_and_duplicate_nothing(
    pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]], redis_url: str
) -> None:
    """A resetting receiver and a killed delivery worker: every event arrives, in order, once
    beyond the round the killed worker could not record."""
    admin_url, _ = pg_admin
    env = {**os.environ, "DRIP_BENCH_DATABASE_URL": admin_url, "DRIP_FAULTS_REDIS_URL": redis_url}
    env.pop("DRIP_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(SUITE), "--only", "webhook_receiver_reset,webhook_worker_kill_9",
         "--sends", "100"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout + done.stderr
    summary = json.loads(lines[-1])
    for name, result in summary["faults"].items():
        assert result["webhooks_events"] == 100, name
        for key in ("webhooks_lost", "webhooks_duplicated_beyond_retry", "webhooks_out_of_order"):
            assert result[key] == 0, (name, key, result)
    assert summary["faults"]["webhook_receiver_reset"]["webhooks_faulty_answers"] > 0
    assert summary["total"]["goals_met"] == 1
    assert done.returncode == 0
