"""The benchmark harness runs end to end (``benchmarks/run.py --smoke``); no timing is asserted.

It needs PostgreSQL and Redis: skipped without them, failed under ``CI=true``
(the ``pg_admin`` and ``redis_url`` fixtures decide). The benchmark creates
and drops its own scratch databases next to the admin database and gets a
Redis database of its own from ``redis_url``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "benchmarks" / "run.py"
KEYS = (
    "schedule_vs_copy",
    "worker_rss_growth_mib",
    "claim_backlog_ratio",
    "fire_vs_celery_noop",
    "fire_cpu_vs_noop",
    "fire_scaling_2v1",
    "pacing_accuracy",
    "pacing_overhead",
    "enroll_many_cli_vs_copy",
    "import_vs_copy",
    "cli_start_vs_python",
    "replay_suite_s_per_scenario",
    "events_vs_copy",
    "post_events_per_s",
    "lookup_overhead",
)
RAW = (
    "schedule_drip_steps_per_s",
    "schedule_copy_steps_per_s",
    "schedule_apscheduler_jobs_per_s",
    "schedule_celery_eta_jobs_per_s",
    "memory_drip_empty_mib",
    "memory_drip_full_mib",
    "naive_rss_growth_mib",
    "claim_small_ms",
    "claim_large_ms",
    "fire_sends_per_s",
    "noop_tasks_per_s",
    "fire_scaling_sends_per_s_1",
    "fire_scaling_sends_per_s_2",
    "enroll_many_cli_steps_per_s",
    "import_rows_per_s",
    "cli_history_s",
    "python_import_sqlalchemy_s",
    "replay_suite_s",
    "replay_seed_s",
    "events_ingest_per_s",
    "lookup_on_sends_per_s",
    "lookup_off_sends_per_s",
)


@pytest.mark.slow
def test_smoke_run_prints_the_table_then_one_json_line(
    pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]], redis_url: str
) -> None:
    admin_url, admin = pg_admin
    env = {
        **os.environ,
        "DRIP_BENCH_DATABASE_URL": admin_url,
        "DRIP_BENCH_REDIS_URL": redis_url,
    }
    for name in ("DRIP_DATABASE_URL", "DRIP_BROKER_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(RUN), "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    lines = done.stdout.strip().splitlines()
    assert len(lines) > 5, done.stdout  # the table comes first
    result = json.loads(lines[-1])
    assert isinstance(result, dict)
    for key in (*KEYS, *RAW):
        assert key in result, f"{key} missing from {sorted(result)}"
        value = result[key]
        assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    assert result["mode"] == "smoke"
    assert not [k for k in result if k.endswith(("_error", "_unavailable"))], result
    # The scratch databases the run created are gone again.
    created = result["scratch_databases"]
    assert created, result
    left = admin.execute(
        "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (created,)
    ).fetchall()
    assert not left, left
    # So are its Redis keys (the fixture's database was empty when it started).
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0, sorted(client.scan_iter(count=100))[:20]
    finally:
        client.close()
