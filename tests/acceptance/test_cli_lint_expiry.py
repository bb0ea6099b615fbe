"""``drip lint`` on ``expires_after``: an expiry no text of the step can meet is an error, one
that some contacts' texts cannot meet (a state's window, the night) a warning.

The CLI runs as a subprocess on campaign files in a temporary copy of ``campaigns/``, whose
``account.yaml`` (window 08:00-21:00, the bundled state rules) is the one lint uses.
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


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A temporary folder with a copy of the bundled ``campaigns/``."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    return tmp_path


def lint(workdir: Path, step: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """``drip lint`` on ``campaigns/expiring.yaml``, a campaign of one intro and ``step``."""
    (workdir / "campaigns" / "expiring.yaml").write_text(
        "name: expiring\n"
        "kind: nurture\n"
        "steps:\n"
        '  - {day: 0, body: "Hi {VisitorFirstName}, it\'s {AgentFirstName} with {CompanyName}."}\n'
        f"  - {step}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(DRIP_HOME=str(workdir / ".drip"), DRIP_LOG_FORMAT="json")
    return subprocess.run(
        [DRIP, "lint", *flags, "campaigns/expiring.yaml", "campaigns/account.yaml"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_expiry_before_the_window_opens_after_at_is_refused_where_it_is_written(
    workdir: Path,
) -> None:
    """at 22:00 with expires_after 9h: the window opens at 08:00, 10 h later, so no text could
    go; exit 1 with the error at the expires_after value."""
    result = lint(workdir, '{day: 2, at: "22:00", expires_after: 9h, body: "Open house!"}')

    assert result.returncode == 1, result.stdout
    assert (
        "campaigns/expiring.yaml:5:42: error: step 2: expires_after 9h ends before the send "
        "window opens (08:00, 10h after at 22:00): every text of this step would expire unsent"
    ) in result.stdout


def test_an_expiry_some_states_windows_cannot_meet_is_a_warning_naming_them(
    workdir: Path,
) -> None:
    """at 20:15 with expires_after 1h goes in Massachusetts, but Florida's window (08:00-20:00)
    is closed then and reopens after the expiry: a warning naming FL; --strict fails on it."""
    step = '{day: 2, at: "20:15", expires_after: 1h, body: "Open house tonight!"}'

    relaxed = lint(workdir, step)
    strict = lint(workdir, step, "--strict")

    assert relaxed.returncode == 0, relaxed.stdout
    line = next(x for x in relaxed.stdout.splitlines() if "expires_after 1h is too short" in x)
    assert line.startswith("campaigns/expiring.yaml:5:42: warning: step 2: ")
    assert "FL" in line and "MD" in line and "OK" in line and "(every day)" in line
    assert "MA" not in line.split("contacts in ")[1]
    assert "their texts of this step expire unsent" in line
    assert strict.returncode == 1


def test_an_expiry_no_longer_than_the_night_warns_for_evening_due_texts(workdir: Path) -> None:
    """A step with no at is due at the enrollment's time of day: with expires_after 6h the
    texts due from 21:00 to 02:00 expire before 08:00, which lint says as a warning."""
    result = lint(workdir, '{day: 2, expires_after: 6h, body: "New listings this week."}')

    assert result.returncode == 0, result.stdout
    assert (
        "campaigns/expiring.yaml:5:29: warning: step 2: expires_after 6h is no longer than the "
        "11h the send window 08:00-21:00 is closed overnight: a text of this step that falls "
        "due from 21:00 to 02:00 (the enrollment's time of day) expires unsent"
    ) in result.stdout


def test_an_expiry_every_window_meets_is_clean(workdir: Path) -> None:
    """at 10:00 with expires_after 2d, and no at with 12h: every state's window meets them."""
    at_ten = lint(workdir, '{day: 2, at: "10:00", expires_after: 2d, body: "Open house!"}')
    no_at = lint(workdir, '{day: 2, expires_after: 12h, body: "New listings this week."}')

    for result in (at_ten, no_at):
        assert result.returncode == 0, result.stdout
        assert result.stdout.strip().endswith("0 errors, 0 warnings"), result.stdout
