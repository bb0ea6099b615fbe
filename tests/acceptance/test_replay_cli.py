"""``drip replay`` as a user runs it: exit codes 0/1/2, the differences, --json and --html."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))
SEED = REPO / "tests" / "scenarios" / "seed_never_replies.yaml"


def replay(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DRIP, "replay", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def wrong_seed(tmp_path: Path) -> Path:
    """The seed example with one wrong expectation: day 15 said to carry the footer."""
    text = SEED.read_text(encoding="utf-8").replace(
        "  - {day: 15, footer: false}", "  - {day: 15, footer: true}"
    )
    text = text.replace("campaigns/smart_drip_new_lead.yaml", "smart-drip-new-lead")
    path = tmp_path / "wrong.yaml"
    path.write_text(text, encoding="utf-8")
    return path


#: The line of the seed's day-15 expectation, which wrong_seed turns wrong.
DAY_15_LINE = 1 + SEED.read_text(encoding="utf-8").splitlines().index(
    "  - {day: 15, footer: false}"
)


def test_wrong_expectation_exits_1_and_shows_the_difference(tmp_path: Path) -> None:
    """A failed expectation gives exit 1, the expected and actual side by side, and why."""
    done = replay(str(wrong_seed(tmp_path)))
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "FAIL: 1 difference(s); 7 message(s) expected, 7 sent" in out
    assert f"    message 3 (line {DAY_15_LINE}):" in out
    assert "      expected  {day: 15, footer: true}" in out
    assert re.search(r"      actual +3 +15 +2026-03-17 10:06 EDT +agent +sms +campaign", out)
    assert "differs   footer: expected true, got false (F4: no footer: only" in out


def test_missing_and_extra_messages_are_reported(tmp_path: Path) -> None:
    """An expectation with nothing sent in its place, and a message nobody expected, both fail."""
    text = SEED.read_text(encoding="utf-8")
    short = tmp_path / "short.yaml"
    short.write_text(text.replace("  - {day: 360, footer: true}\n", ""), encoding="utf-8")
    long = tmp_path / "long.yaml"
    long.write_text(text + "  - {day: 361}\n", encoding="utf-8")
    done = replay(str(short), str(long))
    assert done.returncode == 1
    assert "sent, but not expected: nothing else may be sent" in done.stdout
    assert "expected a message, but nothing more was sent" in done.stdout
    assert "      actual    (nothing sent)" in done.stdout


def test_malformed_file_exits_2_with_its_location(tmp_path: Path) -> None:
    """An invalid scenario gives exit 2 and path:line:col: error: for each problem."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            name: broken
            start: "2026-06-01 10:00"
            contact: {first_name: Dana, phone: "+16175550123"}
            events:
              - {at: day 3, text: "hi"}
              - {at: day 1, text: "earlier"}
              - {at: day 4 26:00, text: "bad time"}
              - {at: day 5, dance: true}
            surprise: 1
            """
        ),
        encoding="utf-8",
    )
    done = replay(str(bad))
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr
    assert f"{bad}:6:5: error: events must be in time order" in err
    assert f'{bad}:7:10: error: event 3 at: "26:00" is not a time of day' in err
    assert f"{bad}:8:17: error: unknown event kind 'dance'" in err
    assert f"{bad}:9:1: error: unknown field 'surprise' in the scenario" in err


def test_an_invalid_file_among_good_ones_exits_2_and_the_good_ones_still_run(
    tmp_path: Path,
) -> None:
    """Exit 2 wins over 0, and the valid files are still replayed and reported."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    done = replay(str(SEED), str(bad), str(tmp_path / "missing.yaml"))
    assert done.returncode == 2
    assert "PASS: 7 message(s) sent" in done.stdout
    assert f"{bad}:2:1: error: YAML syntax error" in done.stderr
    assert f"{tmp_path / 'missing.yaml'}:1:1: error: no such file or folder" in done.stderr


def test_json_is_one_document_with_messages_decisions_and_verdicts(tmp_path: Path) -> None:
    """--json prints one JSON document on stdout: scenarios, messages, decisions, pass/fail."""
    done = replay("--json", str(SEED), str(wrong_seed(tmp_path)))
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["passed"] is False and document["exit_code"] == 1
    seed, wrong = document["scenarios"]
    assert seed["passed"] is True and wrong["passed"] is False
    assert [m["day"] for m in seed["messages"]] == [0, 0, 15, 45, 180, 270, 360]
    assert [m["footer"] for m in seed["messages"]] == [False, True, False, True, True, True, True]
    assert seed["messages"][2]["footer_rule"] == "F4"
    assert seed["messages"][0]["kind"] == "opt_in_confirmation"
    assert seed["timezone"] == "America/New_York"
    assert wrong["mismatches"][0]["position"] == 3
    assert wrong["mismatches"][0]["expected"] == {"line": DAY_15_LINE, "day": 15, "footer": True}
    assert any(e["what"] == "enroll" for e in seed["events"])


def test_json_reports_decisions_with_reasons() -> None:
    """Skipped and deferred sends appear in the JSON with their outcome, code and reason."""
    scenario = REPO / "tests" / "scenarios" / "c3_opt_in_not_held_by_quiet_hours.yaml"
    done = replay("--json", str(scenario))
    assert done.returncode == 0
    decisions = json.loads(done.stdout)["scenarios"][0]["decisions"]
    assert decisions, "the late greeting should have been deferred"
    first = decisions[0]
    assert first["outcome"] == "deferred" and first["code"] == "window"
    assert first["deferred_until"] == "2026-06-02T12:00:00+00:00"
    assert "outside the send window" in first["reason"]


class _Resources(HTMLParser):
    """Collects every attribute that could make a browser fetch something."""

    FETCHING = frozenset({"src", "href", "srcset", "action", "formaction", "poster", "data"})

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in self.FETCHING and value and not value.startswith("#"):
                self.fetches.append(f"<{tag} {name}={value}>")


def test_html_report_is_self_contained(tmp_path: Path) -> None:
    """--html writes one page with a lane per scenario that loads nothing from anywhere."""
    out = tmp_path / "report" / "timeline.html"
    scenarios = REPO / "tests" / "scenarios"
    done = replay("--html", str(out), str(SEED), str(scenarios / "window_deferral.yaml"))
    assert done.returncode == 0
    assert f"HTML timeline: {out}" in done.stdout
    page = out.read_text(encoding="utf-8")
    parser = _Resources()
    parser.feed(page)
    assert parser.fetches == []
    assert not {"link", "img", "iframe", "object", "embed", "base"} & set(parser.tags)
    assert "url(" not in page and "@import" not in page
    for call in ("fetch(", "XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon"):
        assert call not in page
    assert "default-src 'none'" in page
    assert page.count("<details id=table-") == 2
    assert "Dana Ruiz" in page and "Wes Pike" in page
