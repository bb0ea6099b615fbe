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
    assert "early_bird.yaml:5:14: error: send_window 07:00-21:00 reaches outside" in done.stderr
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
