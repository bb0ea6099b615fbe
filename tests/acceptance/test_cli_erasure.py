"""``drip contacts erase`` and ``drip purge`` from a shell: confirmation, exit codes, messages.

The real ``drip`` console script in a temporary folder with a copy of
``campaigns/`` (SQLite file in ``DRIP_HOME``, console transport).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))


class Shell:
    """Runs ``drip`` in one folder with one environment; stdin is never a terminal here."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
        self.env.update(DRIP_HOME=str(workdir / ".drip"), DRIP_LOG_FORMAT="json")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [DRIP, *args],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    """A folder with the bundled campaigns, a migrated database, agent Sam and Zelda."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    sh = Shell(tmp_path)
    sh.ok("db", "upgrade")
    sh.ok("agents", "Sam", "Lee", "+16175550100")
    sh.ok(
        "contacts", "add", "-f", "Zelda", "-l", "Quackenbush", "--phone", "617-555-0177",
        "--email", "zq@example.org", "--agent", "+16175550100",
        "--sms-consent", "--consent-text", "Yes, text me",
    )  # fmt: skip
    return sh


def test_erase_needs_yes_off_a_terminal_then_erases_once(shell: Shell) -> None:
    """Without --yes and without a terminal: exit 2, nothing erased; with --yes the contact
    is erased by the --as name; a second erase says so and exits 0; the phone no longer finds it."""
    refused = shell.run("contacts", "erase", "1")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "Zelda" in shell.ok("contacts", "list")

    said = shell.ok("contacts", "erase", "+16175550177", "--yes", "--as", "Pat Compliance")
    assert said.startswith("contact 1 erased by Pat Compliance: personal data removed")
    assert "2 hash(es) on the suppression list" in said
    assert "Zelda" not in shell.ok("contacts", "list")
    assert "erased by Pat Compliance" in shell.ok("history", "1")
    outbox = (shell.workdir / ".drip" / "outbox.jsonl").read_text("utf-8")
    assert "Zelda" not in outbox and "+16175550177" not in outbox

    twice = shell.ok("contacts", "erase", "1", "--yes")
    assert "already erased" in twice and "by Pat Compliance; nothing changed" in twice
    gone = shell.run("contacts", "erase", "+16175550177", "--yes")
    assert gone.returncode == 1 and "no contact '+16175550177'" in gone.stderr


def test_erase_of_an_unknown_contact_exits_1_with_a_message(shell: Shell) -> None:
    """An id nobody has: exit 1 and a sentence naming it, before any question."""
    done = shell.run("contacts", "erase", "42")
    assert done.returncode == 1 and "no contact '42'" in done.stderr


def test_purge_dry_run_then_real_run_prints_counts(shell: Shell) -> None:
    """With retention at 1 day nothing is old yet: both runs print zero counts and the
    period; the dry run says it changed nothing."""
    account = shell.workdir / "campaigns" / "account.yaml"
    account.write_text(
        account.read_text("utf-8").replace("message_bodies_days: 1461", "message_bodies_days: 1")
    )
    dry = shell.ok("purge", "--dry-run")
    assert "older than 1 days" in dry and "would remove 0 message body(ies)" in dry
    assert "dry run: nothing changed" in dry
    real = shell.ok("purge")
    assert "removed 0 message body(ies)" in real and "consent evidence kept" in real
