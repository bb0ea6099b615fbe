"""Warm starts of ``drip replay``: real ``drip`` processes and a real warm server.

Each test has a runtime folder of its own (``XDG_RUNTIME_DIR``) and stops
its servers, which would exit by themselves after a minute anyway
(``DRIP_WARM_IDLE_SECONDS``). They run on one xdist worker, in turn
(``SERIAL_FILES`` in tests/conftest.py): one of them gives a drip file a new
mtime, which would make another one's server exit under it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "tests" / "scenarios" / "seed_never_replies.yaml"
DRIP = [str(Path(sys.executable).with_name("drip"))]
if not Path(DRIP[0]).exists():
    DRIP = [sys.executable, "-m", "drip.cli"]


class Warm:
    """``drip`` commands with warm starts on, in a runtime folder of their own."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.folder = base / "drip"
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(base)}
        self.env["DRIP_WARM"] = "1"
        self.env["DRIP_WARM_IDLE_SECONDS"] = "60"

    def run(self, *argv: str, warm: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, DRIP_WARM="1" if warm else "0")
        if "stdout" not in kwargs:
            kwargs["capture_output"] = True
        return subprocess.run(
            [*DRIP, *argv], env=env, cwd=REPO, text=True, timeout=120, check=False, **kwargs
        )

    def status(self) -> dict[str, Any]:
        done = self.run("warm", "status", "--json")
        assert done.returncode == 0, done.stderr
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def current(self) -> dict[str, Any] | None:
        return next((s for s in self.status()["servers"] if s["current"]), None)

    def wait_for_server(self, seconds: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            server = self.current()
            if server is not None:
                return server
            time.sleep(0.2)
        raise AssertionError(f"no warm server came up; log: {self.logs()}")

    def logs(self) -> str:
        return "".join(p.read_text() for p in self.folder.glob("*.log"))


@pytest.fixture
def warm() -> Iterator[Warm]:
    # Short: a socket's path must fit in 108 bytes, which pytest's tmp_path may not.
    base = Path(tempfile.mkdtemp(prefix="dw", dir="/tmp"))
    os.chmod(base, 0o700)
    helper = Warm(base)
    try:
        yield helper
    finally:
        helper.run("warm", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _same(text: str) -> str:
    """Output without the run's own duration, the one part that differs between runs."""
    return re.sub(r"; \d+\.\d\d s$", "; N s", text, flags=re.M)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _failing_scenario(folder: Path) -> Path:
    """The seed scenario with one expectation it does not meet (day 15 has no footer)."""
    text = SEED.read_text().replace("{day: 15, footer: false}", "{day: 15, footer: true}")
    path = folder / "seed_expects_a_footer.yaml"
    path.write_text(text)
    return path


def test_a_second_replay_is_served_warm_with_the_same_output_and_exit(warm: Warm) -> None:
    """The first run starts a server; later runs, served by it, print and exit as in process."""
    failing = _failing_scenario(warm.base)
    cold_pass = warm.run("replay", str(SEED), warm=False)
    cold_fail = warm.run("replay", str(failing), warm=False)
    assert (cold_pass.returncode, cold_fail.returncode) == (0, 1)
    assert not warm.folder.exists()  # DRIP_WARM=0 started nothing

    first = warm.run("replay", str(SEED))
    assert first.returncode == 0, first.stderr
    server = warm.wait_for_server()
    assert server["served"] == 0

    for cold in (cold_pass, cold_fail):
        scenario = str(SEED) if cold is cold_pass else str(failing)
        served = warm.run("replay", scenario)
        assert served.returncode == cold.returncode
        assert _same(served.stdout) == _same(cold.stdout)
        assert served.stderr == cold.stderr
    out = warm.base / "out.txt"
    with out.open("w") as file:
        to_file = warm.run("replay", str(failing), stdout=file, stderr=subprocess.PIPE)
    assert to_file.returncode == 1
    assert _same(out.read_text()) == _same(cold_fail.stdout)
    after = warm.current()
    assert after is not None and after["pid"] == server["pid"], warm.logs()
    assert after["served"] == 3


def test_an_edited_source_file_makes_the_next_run_cold_and_the_old_server_exit(
    warm: Warm,
) -> None:
    """A new mtime on a drip file is new code: the old server exits, the next run starts one."""
    warm.run("replay", str(SEED))
    old = warm.wait_for_server()
    source = REPO / "drip" / "cli" / "db.py"
    before = source.stat()
    try:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000))
        edited = warm.run("replay", str(SEED))
        assert edited.returncode == 0, edited.stderr
        deadline = time.monotonic() + 20
        while _alive(old["pid"]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(old["pid"])
        new = warm.wait_for_server()
        assert new["pid"] != old["pid"]
        assert new["served"] == 0  # the edited run was not served: it ran cold
    finally:
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_drip_warm_0_never_starts_a_server(warm: Warm) -> None:
    """With DRIP_WARM=0 replays run in process and leave no server or socket."""
    for _ in range(2):
        assert warm.run("replay", str(SEED), warm=False).returncode == 0
    time.sleep(1.0)
    assert not warm.folder.exists() or not list(warm.folder.glob("*.sock"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_client_stops_the_command_in_the_server(warm: Warm, signum: int) -> None:
    """SIGINT or SIGTERM to a served client reaches its child: both stop as in process."""
    warm.run("replay", str(SEED))
    warm.wait_for_server()
    client = subprocess.Popen(
        [*DRIP, "replay", str(REPO / "tests" / "scenarios")],  # every scenario: many seconds
        env=warm.env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while (server := warm.current()) is not None and server["running"] == 0:
        assert time.monotonic() < deadline, "the command never started in the server"
        time.sleep(0.05)
    # Forked is not yet told to go (a signal before "go" stops the client and the child
    # never runs, which is right but not what this test is about): the handshake takes
    # milliseconds.
    time.sleep(1.0)
    client.send_signal(signum)
    _, err = client.communicate(timeout=30)
    if signum == signal.SIGINT:
        # As in process: click turns the KeyboardInterrupt into "Aborted!" and exit 1.
        assert client.returncode == 1, err
        assert "Aborted!" in err
    else:  # the child died of it, and so does the client, for its shell to see
        assert client.returncode == -signum, err
    server = warm.current()
    assert server is not None and server["running"] == 0 and server["served"] == 1


def test_a_killed_server_falls_back_to_running_in_process(warm: Warm) -> None:
    """A dead server's socket is refused: the replay runs here, once, and a new server starts."""
    warm.run("replay", str(SEED))
    old = warm.wait_for_server()
    os.kill(old["pid"], signal.SIGKILL)
    while _alive(old["pid"]):
        time.sleep(0.05)
    assert list(warm.folder.glob("*.sock"))  # left behind
    done = warm.run("replay", str(SEED))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("PASS") == 1
    new = warm.wait_for_server()
    assert new["pid"] != old["pid"] and new["served"] == 0


def test_a_runtime_folder_others_can_open_is_not_used(warm: Warm) -> None:
    """A runtime folder with group/other access (or another owner) is refused: no server."""
    warm.folder.mkdir(mode=0o755)
    os.chmod(warm.folder, 0o755)  # noqa: S103 - the unsafe mode under test
    done = warm.run("replay", str(SEED))
    assert done.returncode == 0, done.stderr
    time.sleep(1.0)
    assert not list(warm.folder.glob("*.sock"))
    status = warm.status()
    assert "mode 755" in status["problem"] and status["servers"] == []
    if os.getuid() == 0:  # root can give the folder away: another owner is refused too
        os.chmod(warm.folder, 0o700)
        os.chown(warm.folder, 54321, -1)
        assert "belongs to uid 54321" in warm.status()["problem"]
        assert warm.run("replay", str(SEED)).returncode == 0
        assert not list(warm.folder.glob("*.sock"))


def test_looking_for_a_server_imports_nothing_heavy(warm: Warm) -> None:
    """The client's look-up (no server there) leaves SQLAlchemy, click and the replay unimported."""
    probe = (
        "import sys, time\n"
        "t0 = time.perf_counter()\n"
        "from drip.cli import warm_client\n"
        f"assert warm_client.run_warm(['replay', {str(SEED)!r}]) is None\n"
        "elapsed = time.perf_counter() - t0\n"
        "heavy = [m for m in ('sqlalchemy', 'click', 'drip.replay', 'drip.cli.framework')"
        " if m in sys.modules]\n"
        "print(heavy, elapsed)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=warm.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    heavy, elapsed = done.stdout.rsplit(maxsplit=1)
    assert heavy == "[]"
    # About 15 ms of imports and 2 ms of fingerprint on an idle machine; loose for a busy one.
    assert float(elapsed) < 1.0
