"""8. Start-up: what a command costs before it does its work, and a QA suite's pace.

- ``cli_start_vs_python``: wall time of ``drip history 1`` as a subprocess,
  on a small migrated SQLite database (one contact) in its own embedded home,
  against ``python -c "import sqlalchemy"`` with the same interpreter. The
  two run alternately, medians of N each. Goal <= 2.5: a database command
  should cost little more than the database library it needs.
- ``replay_suite_s_per_scenario``: every scenario file of ``tests/scenarios/``
  replayed by ONE ``drip replay`` process (a subprocess, the way QA runs a
  suite), its wall time divided by the number of scenarios (``--smoke``: the
  first few files only). The process starts with an empty cache folder of
  its own, so its one-off costs (imports, the migrated template database)
  are included and shared by every scenario. Goal <= 0.25 s. Median of 1 /
  1 / 3 runs (smoke / quick / full).

Both measure drip as installed: its modules byte-compiled (``python -m
compileall drip`` first, as ``pip install`` does). Without that, a process with
``PYTHONDONTWRITEBYTECODE=1`` in its environment (this machine's default)
compiles every drip module from source on every start, about 0.1-0.2 s,
while SQLAlchemy's own bytecode was written when it was installed.

Measure where an import goes with ``python -X importtime -m drip.cli history 1``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from harness import PYTHON, ROOT, Context, base_env, median, say

SCENARIOS = ROOT / "tests" / "scenarios"
#: Runs of each side per mode (alternating).
REPS = {"smoke": 3, "quick": 7, "full": 11}
#: Runs of the whole suite per mode, and how many files ``--smoke`` replays.
SUITE_RUNS = {"smoke": 1, "quick": 1, "full": 3}
SMOKE_SCENARIOS = 4


def _drip_cli() -> list[str]:
    script = Path(PYTHON).with_name("drip")
    return [str(script)] if script.exists() else [PYTHON, "-m", "drip.cli"]


def _env(ctx: Context, home: str) -> dict[str, str]:
    env = base_env(ctx.workdir)
    for name in ("DRIP_DATABASE_URL", "DRIP_BROKER_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        env.pop(name, None)
    env["DRIP_HOME"] = str(ctx.workdir / home)
    env["DRIP_LOG_LEVEL"] = "WARNING"
    return env


def _timed(command: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[-3:])} exited {done.returncode}:\n{done.stderr[-2000:]}"
        )
    return elapsed


def _cli_start(ctx: Context) -> dict[str, Any]:
    env = _env(ctx, "startup-home")
    drip = _drip_cli()
    _timed([*drip, "db", "upgrade"], env)
    _timed([*drip, "contacts", "add", "--phone", "+13055550123", "-f", "Ann"], env)
    history = [*drip, "history", "1"]
    python = [PYTHON, "-c", "import sqlalchemy"]
    _timed(history, env)  # warm the file cache; not counted
    reps = REPS.get(ctx.sizes.mode, 7)
    hist_s: list[float] = []
    python_s: list[float] = []
    for _ in range(reps):
        python_s.append(_timed(python, env))
        hist_s.append(_timed(history, env))
    out: dict[str, Any] = {
        "cli_history_s": median(hist_s),
        "python_import_sqlalchemy_s": median(python_s),
        "cli_start_reps": reps,
    }
    out["cli_start_vs_python"] = out["cli_history_s"] / out["python_import_sqlalchemy_s"]
    return out


def _suite_files(mode: str) -> list[Path]:
    files = sorted(SCENARIOS.glob("*.yaml")) + sorted(SCENARIOS.glob("*.yml"))
    return files[:SMOKE_SCENARIOS] if mode == "smoke" else files


def _replay_suite(ctx: Context) -> dict[str, Any]:
    files = _suite_files(ctx.sizes.mode)
    command = [*_drip_cli(), "replay", *(str(f) for f in files)]
    runs: list[float] = []
    for n in range(SUITE_RUNS.get(ctx.sizes.mode, 1)):
        env = _env(ctx, f"startup-suite-{n}")
        env["XDG_CACHE_HOME"] = str(ctx.workdir / f"startup-suite-cache-{n}")  # empty: cold
        runs.append(_timed(command, env))
    seconds = median(runs)
    return {
        "replay_suite_scenarios": len(files),
        "replay_suite_s": seconds,
        "replay_suite_s_per_scenario": seconds / len(files),
    }


def _byte_compile() -> None:
    """Write drip's bytecode, as an installed drip has it (see the module docstring)."""
    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", str(ROOT / "drip")],
        check=True,
        capture_output=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    )


def run(ctx: Context) -> dict[str, Any]:
    say("startup: byte-compile drip (as installed), then drip history vs import sqlalchemy")
    _byte_compile()
    out = _cli_start(ctx)
    if _suite_files(ctx.sizes.mode):
        say("startup: every scenario of tests/scenarios/ in one drip replay process")
        out.update(_replay_suite(ctx))
    else:
        out["replay_suite_unavailable"] = f"{SCENARIOS.relative_to(ROOT)} holds no scenario"
    return out
