"""``drip demo`` as a subprocess: from a clean folder (bundled campaigns) and from the repo root."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drip.replay.demo import (
    DEMO_CAMPAIGNS,
    SAMPLES,
    choose_project,
    sample_scenarios,
    used_campaigns,
)
from drip.replay.scenario import bundled_project

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))


def clean_env(home: Path) -> dict[str, str]:
    """Only what a fresh shell has: no DRIP_* or TWILIO_* variables, HOME in a temporary folder."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
    }


def demo(
    cwd: Path, env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.perf_counter()
    done = subprocess.run(
        [DRIP, "demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done, time.perf_counter() - began


def test_demo_from_a_clean_folder(tmp_path: Path) -> None:
    """In an empty folder with a fresh HOME: exit 0, bundled campaigns, every contact in the HTML."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    done, seconds = demo(work, clean_env(tmp_path / "home"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # A bound against a hang, not a speed goal (speed is measured in benchmarks/): the
    # demo takes a few seconds alone, several times that on a machine busy with other work.
    assert seconds < 120
    out = done.stdout
    assert f"campaigns from {bundled_project() / 'campaigns'}" in out
    assert "bundled with drip" in out
    found = re.search(r"^HTML timeline: (.+)$", out, re.MULTILINE)
    assert found is not None
    page_path = Path(found.group(1))
    assert page_path == work / ".drip" / "demo.html"
    page = page_path.read_text(encoding="utf-8")
    names = [s.contact.full_name for s in sample_scenarios(bundled_project())]
    assert len(names) >= 12
    for name in names:
        assert name in page, name
        assert f"{name}:" in out, name
    assert "Summary" in out and "skipped by reason:" in out and "deferred by reason:" in out
    assert re.search(r"sent: \d+ text\(s\) \(\d+ segment\(s\)\), \d+ email\(s\)", out)
    assert not (work / "campaigns").exists()


def test_demo_from_the_repo_root_uses_its_campaigns(tmp_path: Path) -> None:
    """Run where `make demo` runs it, the demo uses ./campaigns and writes under DRIP_HOME."""
    env = clean_env(tmp_path / "home") | {"DRIP_HOME": str(tmp_path / "drip-home")}
    done, _ = demo(REPO, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(the working directory's campaigns/ folder)" in done.stdout
    assert (tmp_path / "drip-home" / "demo.html").is_file()


def test_samples_cover_the_lives_the_demo_promises() -> None:
    """The built-in contacts include each promised life and only use the bundled campaigns."""
    scenarios = sample_scenarios(bundled_project())
    assert len(scenarios) == len(SAMPLES) >= 12
    assert used_campaigns(scenarios) == set(DEMO_CAMPAIGNS)
    keys = {sample.key for sample in SAMPLES}
    for life in (
        "never-replies",
        "replies-day-20",
        "stop-day-100",
        "no-consent",
        "imported-no-evidence",
        "florida",
        "concierge-buyer",
        "seller",
        "email-only",
    ):
        assert life in keys
    by_key = dict(zip((s.key for s in SAMPLES), scenarios, strict=True))
    assert by_key["no-consent"].contact.sms_consent is False
    assert by_key["imported-no-evidence"].contact.source.value == "import"
    assert by_key["email-only"].contact.phone is None
    assert by_key["florida"].contact.state == "FL"
    assert by_key["chicago"].zone == "America/Chicago"


@pytest.mark.parametrize("content", [None, "partial"])
def test_demo_falls_back_to_bundled_campaigns(tmp_path: Path, content: str | None) -> None:
    """Without ./campaigns, or with one lacking the demo's campaigns, the bundled ones are used."""
    if content == "partial":
        (tmp_path / "campaigns").mkdir()
        (tmp_path / "campaigns" / "x.yaml").write_text(
            "name: only-one\nkind: nurture\nsteps:\n  - {day: 1, body: Hi}\n", encoding="utf-8"
        )
    chosen = choose_project(tmp_path)
    assert chosen.root == bundled_project()
    assert "bundled" in chosen.why
