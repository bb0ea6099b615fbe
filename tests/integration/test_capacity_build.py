"""The capacity benchmark's fast build counts what drip's triggers count (``capacity.py --verify``).

``benchmarks/capacity.py --scale`` loads its large database with the
triggers off and computes ``send_tallies``, ``queue_tallies`` and
``reply_marks`` afterwards with the backfills of migrations 0010 and 0018;
its figures only mean something if those counts are the ones the triggers
would have kept. A migration that adds a trigger-kept count without a
matching backfill makes this test fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
CAPACITY = ROOT / "benchmarks" / "capacity.py"


@pytest.mark.slow
def test_the_fast_build_counts_what_the_triggers_count(
    pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]],
) -> None:
    """600 leads built both ways: the three trigger-kept tables hold the same rows."""
    admin_url, _ = pg_admin
    env = {**os.environ, "DRIP_BENCH_DATABASE_URL": admin_url}
    env.pop("DRIP_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, str(CAPACITY), "--verify", "600"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    found = re.findall(r"^(\w+): (\d+) rows fast, (\d+) through the triggers: equal$",
                       done.stdout, re.MULTILINE)  # fmt: skip
    assert {name for name, _, _ in found} == {"send_tallies", "queue_tallies", "reply_marks"}
    for name, fast, triggers in found:
        assert int(fast) == int(triggers) > 0, name
