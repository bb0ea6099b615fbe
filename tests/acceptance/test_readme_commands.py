"""Every command of the ``sh`` blocks of README.md and docs/*.md runs as written and exits 0.

Each page runs in a scratch folder of its own, its blocks in order: the
folder holds copies of ``campaigns/``, ``examples/`` and ``tests/scenarios/``,
as a checkout does, and ``drip`` is this environment's console script, first
on ``PATH``. A page's blocks therefore start from nothing (a page that needs a
database says ``drip db upgrade`` first), as a reader arriving at that page
would. The pages are separate tests, so pytest-xdist runs them side by side.

Some lines are checked without being run, because running them here would be
the whole job of another target or needs services a test does not start
(``CHECKED_NOT_RUN`` and ``_check_not_run``): ``make`` lines are checked with
``make -n`` (the target exists and expands); the benchmark and fault scripts
and ``celery -A workers.celery_app ...`` with ``--help`` (the script or the
Celery app loads and takes those options; ``tests/integration/
test_benchmarks_smoke.py`` runs the benchmarks themselves); ``docker
compose`` lines against ``docker-compose.yml`` (every service they name
exists). Commands that serve until stopped (``drip serve``, ``drip run``,
gunicorn) must start and still be serving after a few seconds.

Every fenced block that is not ``sh`` (YAML, sample output) is left alone;
that is how a page shows a command's output or a file without running it.
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

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: The pages whose ``sh`` blocks run: the README and every page of docs/.
PAGES = ("README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")))
#: Benchmark scripts: checked with ``--help`` (running them is their own job, minutes long).
BENCHMARKS = ("benchmarks/run.py", "benchmarks/faults.py")
#: Programs whose lines are checked, not run (see the module docstring).
CHECKED_NOT_RUN = ("make", "celery", "docker")
#: Commands that serve until stopped.
SERVERS = ("drip serve", "drip run", "gunicorn ")
#: How long a serving command must stay up to count as serving.
SERVE_SECONDS = 6.0
#: What a serving command prints when its port is taken (drip's, gunicorn's), and how
#: long to wait for it.
PORT_TAKEN = ("Address already in use", "Connection in use")
PORT_WAIT_SECONDS = 60.0
#: A variable assignment before a command (``NAME=value drip serve``).
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
#: A link to a page of this project: ``](docs/x.md#anchor)`` or ``](x.md)``.
LINK = re.compile(r"\]\((?!https?://)([^)#\s]*)(?:#([^)\s]+))?\)")


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
            os.killpg(process.pid, signal.SIGTERM)  # still serving: what the page says it does
            process.communicate(timeout=30)
            return
        output = process.communicate()[0]
        if any(taken in output for taken in PORT_TAKEN) and time.monotonic() < deadline:
            # The pages' default port (8000) is held by another program: on a shared
            # machine, another test (or page) serving it for a few seconds. Wait for it.
            time.sleep(1.0)
            continue
        raise AssertionError((command, f"exited {process.returncode}", output[-2000:]))


def page_commands(page: str) -> list[str]:
    """The commands of every ``sh`` block of a page, continuation lines joined."""
    text = (REPO / page).read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            if shlex.split(line, comments=True):
                commands.append(line.strip())  # bash ignores the comment; globs stay globs
    return commands


def _program(words: list[str]) -> list[str]:
    """The words of a command without the variable assignments before it."""
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    return words


def _check_not_run(command: str) -> bool:
    """Check a line that is not run (see the module docstring); False when it is to be run."""
    words = _program(shlex.split(command, comments=True))
    if words[0] == "make":
        check = subprocess.run(
            ["make", "-n", *words[1:]], cwd=REPO, capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, (command, check.stderr)
        return True
    if words[0].endswith("python") and words[1] in BENCHMARKS:
        check = subprocess.run(
            [sys.executable, str(REPO / words[1]), "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, (command, check.stderr)
        assert "--quick" in check.stdout
        return True
    if words[:3] == ["celery", "-A", "workers.celery_app"]:
        check = subprocess.run(
            [str(BIN / "celery"), *words[1:], "--help"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, (command, check.stderr)
        return True
    if words[:2] == ["docker", "compose"]:
        compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
        named = [w for w in words[3:] if not w.startswith("-")]
        assert set(named) <= set(compose["services"]), (command, sorted(compose["services"]))
        return True
    assert words[0] not in CHECKED_NOT_RUN, (command, "no check for this line")
    return False


def test_readme_lists_the_operator_commands() -> None:
    """The README's blocks include the lifecycle, bulk enrollment and numbers commands."""
    commands = page_commands("README.md")
    for needed in (
        "drip enroll-many smart-drip-new-lead --textable --yes",
        "drip campaigns pause smart-drip-new-lead",
        "drip bulk cancel 1",
        "drip stats smart-drip-new-lead",
        "drip queue",
        "drip preview campaigns/smart_drip_new_lead.yaml --intro",
        "drip replay tests/scenarios/",
    ):
        assert any(c.split("#")[0].strip() == needed for c in commands), needed


def test_every_docs_page_has_commands_and_no_spec_citation() -> None:
    """Each page of docs/ has at least one ``sh`` block, and no page cites a SPEC section."""
    assert len(PAGES) >= 8, PAGES
    for page in PAGES:
        text = (REPO / page).read_text(encoding="utf-8")
        assert page_commands(page), page
        assert "SPEC" not in text and "\u00a7" not in text, page


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page."""
    headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_links_between_pages_resolve() -> None:
    """Every link from a page to a file of the project exists, and its #anchor is a heading."""
    broken: list[str] = []
    for page in PAGES:
        source = REPO / page
        for target, anchor in LINK.findall(source.read_text(encoding="utf-8")):
            path = (source.parent / target).resolve() if target else source
            if not path.exists():
                broken.append(f"{page}: {target}")
            elif anchor and anchor not in _anchors(path):
                broken.append(f"{page}: {target}#{anchor}")
    assert broken == []


def test_the_check_catches_a_broken_anchor(tmp_path: Path) -> None:
    """The anchor rule reads headings as GitHub does: punctuation dropped, spaces to hyphens."""
    page = tmp_path / "page.md"
    page.write_text("# The carrier's clock\n## JSON output\n", encoding="utf-8")
    assert _anchors(page) == {"the-carriers-clock", "json-output"}


@pytest.mark.parametrize("page", PAGES)
def test_every_command_of_the_page_runs_as_written(page: str, tmp_path: Path) -> None:
    """Each command of the page's blocks exits 0 in a scratch folder (checked lines: see the module)."""
    for folder in ("campaigns", "examples", "tests/scenarios"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    ran = 0
    for command in page_commands(page):
        if _check_not_run(command):
            continue
        if any(server in command for server in SERVERS):
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
    if page == "README.md":
        assert ran >= 20, ran  # the first hour's shell flow, not only checked lines
