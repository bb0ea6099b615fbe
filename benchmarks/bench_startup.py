"""8. Start-up: what a command costs before it does its work.

- ``cli_start_vs_python``: wall time of ``drip history 1`` as a subprocess,
  on a small migrated SQLite database (one contact) in its own embedded home,
  against ``python -c "import sqlalchemy"`` with the same interpreter. The
  two run alternately, medians of N each. Goal <= 2.0: a database command
  should cost little more than the database library it needs.
- ``replay_seed_vs_inprocess``: ``drip replay`` of the seed scenario
  (``tests/scenarios/seed_never_replies.yaml``) as a subprocess, against
  ``replay(load_scenario(...))`` of the same file in this process, modules
  already imported. Medians of N each, after one run of each that is not
  counted (the subprocess's warm-up makes the cached migrated template that
  every later ``drip replay`` process finds, and starts the warm server that
  serves the later ones, as for a person running replays one after another;
  the in-process one imports what the replay imports lazily). The warm
  server (``drip.cli.warm_client``) lives in a runtime folder of the
  benchmark's own and is stopped at the end. Goal <= 2.0.
- ``replay_seed_cold_s`` / ``replay_seed_cold_vs_inprocess`` (informational):
  the same subprocess with ``DRIP_WARM=0``, what the first run after a code
  change or a ``pip install`` costs (every import paid), measured in the same
  alternation.

Both measure drip as installed: its modules byte-compiled (``python -m
compileall drip`` first, as ``pip install`` does). Without that, a process with
``PYTHONDONTWRITEBYTECODE=1`` in its environment (this machine's default)
compiles every drip module from source on every start, about 0.1-0.2 s,
while SQLAlchemy's own bytecode was written when it was installed.

Measure where an import goes with ``python -X importtime -m drip.cli history 1``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import PYTHON, ROOT, Context, base_env, median, say

SEED = ROOT / "tests" / "scenarios" / "seed_never_replies.yaml"
#: Runs of each side per mode (alternating).
REPS = {"smoke": 3, "quick": 7, "full": 11}
REPLAY_REPS = {"smoke": 2, "quick": 4, "full": 6}


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


def _replay_in_process() -> float:
    from drip.logging import configure_logging
    from drip.replay.runner import replay
    from drip.replay.scenario import load_scenario

    configure_logging("json", "ERROR")  # as `drip replay` does: the report, not the log
    try:
        t0 = time.perf_counter()
        result = replay(load_scenario(SEED))
        elapsed = time.perf_counter() - t0
    finally:
        configure_logging("json", "WARNING")
    if not result.passed:
        raise RuntimeError(f"{SEED.name} failed in process")
    return elapsed


def _wait_for_warm_server(env: dict[str, str]) -> bool:
    """Whether a warm server for this code came up (the warm-up run starts it) within 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = subprocess.run(
            [*_drip_cli(), "warm", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0 and any(s["current"] for s in json.loads(done.stdout)["servers"]):
            return True
        time.sleep(0.2)
    return False


def _replay(ctx: Context) -> dict[str, Any]:
    env = _env(ctx, "startup-replay")
    # A short runtime folder of its own (a socket's path must fit in 108 bytes).
    runtime = tempfile.mkdtemp(prefix="drip-warm-bench-")
    env.update(XDG_RUNTIME_DIR=runtime, DRIP_WARM="1")
    cold_env = dict(env, DRIP_WARM="0")
    command = [*_drip_cli(), "replay", str(SEED)]
    try:
        _timed(command, env)  # warm-up: not counted; starts the warm server
        warm = _wait_for_warm_server(env)
        _replay_in_process()  # warm-up: not counted
        reps = REPLAY_REPS.get(ctx.sizes.mode, 4)
        sub_s: list[float] = []
        cold_s: list[float] = []
        in_s: list[float] = []
        for _ in range(reps):
            sub_s.append(_timed(command, env))
            in_s.append(_replay_in_process())
            cold_s.append(_timed(command, cold_env))
    finally:
        subprocess.run([*_drip_cli(), "warm", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(runtime, ignore_errors=True)
    out: dict[str, Any] = {
        "replay_seed_subprocess_s": median(sub_s),
        "replay_seed_inprocess_s": median(in_s),
        "replay_seed_cold_s": median(cold_s),
        "replay_seed_warm_server": warm,
    }
    out["replay_seed_vs_inprocess"] = (
        out["replay_seed_subprocess_s"] / out["replay_seed_inprocess_s"]
    )
    out["replay_seed_cold_vs_inprocess"] = (
        out["replay_seed_cold_s"] / out["replay_seed_inprocess_s"]
    )
    return out


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
    if SEED.exists():
        say(f"startup: drip replay {SEED.name}, subprocess vs in process")
        out.update(_replay(ctx))
    else:
        out["replay_seed_vs_inprocess_unavailable"] = f"{SEED.relative_to(ROOT)} is missing"
    return out
