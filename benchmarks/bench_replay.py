"""5. Replay: seconds for the 400-day seed scenario and for all of tests/scenarios/ (--smoke: the seed).

Runs ``drip replay FILE...`` as a subprocess (the way QA runs it), on its own
embedded SQLite home in the benchmark's temporary folder, so that process
start-up is included. "n/a" when the command or the scenarios are missing.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from harness import PYTHON, ROOT, Context, base_env, say

SCENARIOS = ROOT / "tests" / "scenarios"


def _drip_cli() -> list[str]:
    script = Path(PYTHON).with_name("drip")
    return [str(script)] if script.exists() else [PYTHON, "-m", "drip.cli"]


def _has_replay() -> bool:
    # The command lives in the CLI package (drip/cli/replay.py) since the CLI became
    # one package; the older places are kept so the benchmark still runs on old checkouts.
    return any(
        (ROOT / "drip" / path).exists()
        for path in ("cli/replay.py", "replay/commands.py", "replay/cli.py")
    )


def _seed_scenario(files: list[Path]) -> Path | None:
    """The seed example (docs/replay.md): a scenario running to ``until: day 400``."""
    for path in files:
        text = path.read_text(errors="replace")
        if "day 400" in text and ("seed" in path.name or "seed" in text.lower()):
            return path
    for path in files:
        if "day 400" in path.read_text(errors="replace"):
            return path
    return None


def _replay(ctx: Context, files: list[Path], label: str) -> tuple[float, int]:
    env = base_env(ctx.workdir)
    for name in ("DRIP_DATABASE_URL", "DRIP_BROKER_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        env.pop(name, None)
    env["DRIP_HOME"] = str(ctx.workdir / f"replay-{label}")
    env["DRIP_LOG_LEVEL"] = "WARNING"
    t0 = time.perf_counter()
    done = subprocess.run(
        [*_drip_cli(), "replay", *(str(f) for f in files)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    if done.returncode not in (0, 1):  # 1: an expectation failed, which is QA's news, not ours
        raise RuntimeError(
            f"drip replay ({label}) exited {done.returncode}:\n{done.stderr[-2000:]}"
        )
    return elapsed, done.returncode


def run(ctx: Context) -> dict[str, Any]:
    files = sorted(SCENARIOS.glob("*.yaml")) + sorted(SCENARIOS.glob("*.yml"))
    if not _has_replay():
        return {"replay_unavailable": "drip replay is not present yet"}
    if not files:
        return {"replay_unavailable": "tests/scenarios/ holds no scenario yet"}
    out: dict[str, Any] = {"replay_scenarios": len(files)}
    seed = _seed_scenario(files)
    if seed is not None:
        say(f"replay: {seed.name}")
        out["replay_seed_s"], out["replay_seed_exit"] = _replay(ctx, [seed], "seed")
        out["replay_seed_file"] = str(seed.relative_to(ROOT))
    if ctx.sizes.replay == "all":
        say(f"replay: all {len(files)} scenarios")
        out["replay_all_s"], out["replay_all_exit"] = _replay(ctx, files, "all")
    return out
