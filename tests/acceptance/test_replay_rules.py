"""``drip replay`` on the zone and state-rule scenarios: ``at_utc`` checks and the federal lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))
SCENARIOS = REPO / "tests" / "scenarios"


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DRIP, "replay", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_campaign_window_outside_federal_hours_makes_the_scenario_invalid() -> None:
    """A scenario enrolling a campaign whose window opens at 07:00 exits 2, naming line and law."""
    done = replay(str(SCENARIOS / ".invalid" / "federal_window.yaml"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "early_bird.yaml:6:14: error: send_window 07:00-21:00 reaches outside" in done.stderr
    assert "federal hours 08:00-21:00" in done.stderr
    assert "47 CFR 64.1200(c)(1)" in done.stderr


def test_wrong_at_utc_exits_1_and_shows_both_instants(tmp_path: Path) -> None:
    """An at_utc expectation one hour off fails (exit 1) and prints both instants."""
    text = (SCENARIOS / "zone_689_is_eastern.yaml").read_text(encoding="utf-8")
    wrong = tmp_path / "wrong_zone.yaml"
    wrong.write_text(
        text.replace('at_utc: "2026-06-02 12:00"', 'at_utc: "2026-06-02 13:00"'), encoding="utf-8"
    )
    done = replay(str(wrong))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "at_utc: expected 2026-06-02 13:00, got 2026-06-02 12:00" in done.stdout


def test_wrong_validity_and_deferral_exit_1_and_say_what_differs(tmp_path: Path) -> None:
    """A validity 60 s off and a deferral reason that did not happen fail (exit 1), both named."""
    text = (SCENARIOS / "carrier_pacing_backlog.yaml").read_text(encoding="utf-8")
    wrong = tmp_path / "wrong_validity.yaml"
    wrong.write_text(
        text.replace("deferred: pacing, validity: 35997", "deferred: window, validity: 35937"),
        encoding="utf-8",
    )
    done = replay(str(wrong))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "validity: expected 35937 s (within 2), got 35997 s" in done.stdout
    assert "deferred: expected a deferral for window, got pacing" in done.stdout


def test_an_expiry_with_no_text_at_the_carrier_is_a_broken_run(tmp_path: Path) -> None:
    """carrier: expired when the carrier holds no text says so instead of passing silently."""
    scenario = tmp_path / "nothing_held.yaml"
    scenario.write_text(
        "# SPEC §4a: an expiry needs a text at the carrier.\n"
        'start: "2026-06-01 10:00"\n'
        "timezone: America/New_York\n"
        'agent: {first_name: Sam, phone: "+16175550100"}\n'
        'contact: {first_name: Dana, phone: "+16175550123", source: manual, sms_consent: false}\n'
        "events:\n"
        "  - {at: day 0 11:00, carrier: expired}\n"
        "expect: []\n",
        encoding="utf-8",
    )
    done = replay(str(scenario))
    assert done.returncode != 0
    assert "the carrier holds no text for the contact" in done.stdout + done.stderr
