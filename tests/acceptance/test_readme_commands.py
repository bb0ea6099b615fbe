"""Every command of the README's ``sh`` blocks runs, in order, in a scratch folder, and exits 0.

The scratch folder holds copies of ``campaigns/``, ``examples/`` and
``tests/scenarios/``, as a checkout does; ``drip`` is this environment's
console script, first on ``PATH``. Two kinds of line are checked without
being run, because running them here would be the whole job of another
target: ``make demo`` / ``make test`` (rebuild the virtualenv, run this very
suite) are checked with ``make -n`` (the target exists and expands), and the
benchmark line is checked with ``--help`` (``tests/integration/
test_benchmarks_smoke.py`` runs the benchmarks themselves).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


#: Benchmark scripts: checked with ``--help`` (running them is their own job, minutes long).
BENCHMARKS = ("benchmarks/run.py", "benchmarks/faults.py")
#: How long a serving command must stay up to count as serving.
SERVE_SECONDS = 6.0
#: What a serving command prints when its port is taken, and how long to wait for it.
PORT_TAKEN = "Address already in use"
PORT_WAIT_SECONDS = 60.0


def _serves(command: str, cwd: Path, env: dict[str, str]) -> None:
    """A command that serves until stopped: it must start and still be serving after a while."""
    deadline = time.monotonic() + PORT_WAIT_SECONDS
    while True:
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the shell and the server stop together
        )
        try:
            process.wait(timeout=SERVE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)  # still serving: what the README says it does
            process.communicate(timeout=30)
            return
        output = process.communicate()[0]
        if PORT_TAKEN in output and time.monotonic() < deadline:
            # The README's default port (8000) is held by another program: on a shared
            # machine, another test run serving it for a few seconds. Wait for it.
            time.sleep(1.0)
            continue
        raise AssertionError((command, f"exited {process.returncode}", output[-2000:]))


def readme_commands() -> list[str]:
    """The commands of every ``sh`` block of README.md, continuation lines joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            if shlex.split(line, comments=True):
                commands.append(line.strip())  # bash ignores the comment; globs stay globs
    return commands


def test_readme_lists_the_operator_commands() -> None:
    """The README's blocks include the lifecycle, bulk enrollment and numbers commands."""
    commands = readme_commands()
    for needed in (
        "drip enroll-many smart-drip-new-lead --textable --yes",
        "drip campaigns pause smart-drip-new-lead",
        "drip bulk cancel 1",
        "drip stats smart-drip-new-lead",
        "drip queue",
        "drip preview campaigns/smart_drip_new_lead.yaml --intro",
    ):
        assert any(c.split("#")[0].strip() == needed for c in commands), needed


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    """Each README command exits 0 in a scratch folder (make and the benchmark: see the module)."""
    for folder in ("campaigns", "examples", "tests/scenarios"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    ran = 0
    for command in readme_commands():
        words = shlex.split(command, comments=True)
        if words[0] == "make":
            check = subprocess.run(
                ["make", "-n", *words[1:]], cwd=REPO, capture_output=True, text=True, check=False
            )
            assert check.returncode == 0, (command, check.stderr)
            continue
        if words[0].endswith("python") and words[1] in BENCHMARKS:
            check = subprocess.run(
                [sys.executable, str(REPO / words[1]), "--help"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, (command, check.stderr)
            assert "--quick" in check.stdout
            continue
        if "drip serve" in command or "drip run" in command:
            _serves(command, tmp_path, env)
            ran += 1
            continue
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
        ran += 1
    assert ran >= 25
