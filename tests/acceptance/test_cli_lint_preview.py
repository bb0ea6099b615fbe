"""``drip lint`` and ``drip preview`` as a user runs them, plus the preview computation itself.

The CLI runs as a subprocess in a temporary folder holding a copy of
``campaigns/``, with ``DRIP_HOME`` and ``DRIP_CAMPAIGNS_DIR`` pointing there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from drip.campaigns.account_file import load_account
from drip.campaigns.loader import load_campaign
from drip.campaigns.preview import (
    Preview,
    next_monday_morning,
    parse_contact,
    parse_start,
    preview,
)
from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign, OptOutSettings, Step
from drip.domain.enums import CampaignKind, Channel, OptOutMode, SenderRole
from drip.errors import ValidationError

REPO = Path(__file__).resolve().parents[2]
DRIP = str(Path(sys.executable).with_name("drip"))
SMART = "campaigns/smart_drip_new_lead.yaml"
NY = ZoneInfo("America/New_York")
INTRO = "Hi {VisitorFirstName}, this is {AgentFirstName} with {CompanyName}."
FIXED_NOW = datetime(2026, 2, 25, 12, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A temporary folder with a copy of the bundled ``campaigns/``."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    return tmp_path


def drip(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``drip`` CLI in ``workdir`` with a clean, embedded environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(
        DRIP_HOME=str(workdir / ".drip"),
        DRIP_CAMPAIGNS_DIR=str(workdir / "campaigns"),
        DRIP_OUTBOX=str(workdir / "outbox.jsonl"),
        DRIP_LOG_FORMAT="json",
        COLUMNS="100",
    )
    return subprocess.run(
        [DRIP, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def preview_json(workdir: Path, *args: str) -> dict[str, Any]:
    """``drip preview ... --json``, checked for exit 0, parsed."""
    result = drip(workdir, "preview", *args, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def footers(data: dict[str, Any]) -> list[tuple[str, int, bool]]:
    """(step, local day, footer) of each row of a preview."""
    return [(r["step"], r["day"], r["footer"]) for r in data["rows"]]


# --------------------------------------------------------------------------- drip lint


def test_lint_bundled_campaigns_is_clean(workdir: Path) -> None:
    """The bundled campaigns lint clean: exit 0 and a one-line summary."""
    result = drip(workdir, "lint", "campaigns/")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "10 files, 9 campaigns: 0 errors, 0 warnings"


#: Broken copies of the Smart-Drip file: (file name, text replaced, by, the expected error).
BROKEN = [
    (
        "unknown_variable.yaml",
        "{VisitorFirstName}, it's",
        "{VisitorFirstname}, it's",
        r"unknown_variable\.yaml:11:\d+: error: step 1 body: unknown template variable "
        r"\{VisitorFirstname\}; did you mean \{VisitorFirstName\}\?",
    ),
    (
        "bad_at.yaml",
        "  - id: day-45-market-update\n    day: 45\n",
        '  - id: day-45-market-update\n    day: 45\n    at: "9am"\n',
        r'bad_at\.yaml:15:9: error: step 2: at must be a time "HH:MM", got a text "9am"',
    ),
    (
        "shortener.yaml",
        "Want me to send them over?",
        "See https://bit.ly/3xYz now",
        r"shortener\.yaml:\d+:\d+: error: step 4 body: .*link shortener bit\.ly",
    ),
    (
        "yaml_syntax.yaml",
        "stop_on_reply: false",
        "stop_on_reply: [false",
        r"yaml_syntax\.yaml:\d+:\d+: error: YAML syntax error",
    ),
]


def test_lint_broken_copies_exit_1_with_located_errors(workdir: Path) -> None:
    """Each broken copy gives ``path:line:col: error: ...`` naming its problem, and exit 1."""
    original = (workdir / SMART).read_text(encoding="utf-8")
    for name, old, new, _ in BROKEN:
        assert old in original
        (workdir / "campaigns" / name).write_text(original.replace(old, new, 1), encoding="utf-8")

    result = drip(workdir, "lint", "campaigns/")

    assert result.returncode == 1
    for name, _, _, expected in BROKEN:
        assert re.search(r"^campaigns/" + expected, result.stdout, re.MULTILINE), (
            name,
            result.stdout,
        )
    # The three copies that parse reuse the original's name: that clash shows in the same
    # round, at the copies (the original, which loads, keeps its name).
    clashes = re.findall(
        r"^campaigns/(\w+)\.yaml:4:7: error: duplicate campaign name 'smart-drip-new-lead': "
        r"campaigns/smart_drip_new_lead\.yaml already defines it",
        result.stdout,
        re.MULTILINE,
    )
    assert sorted(clashes) == ["bad_at", "shortener", "unknown_variable"], result.stdout
    assert result.stdout.splitlines()[-1] == "14 files, 9 campaigns: 7 errors, 0 warnings"


def test_lint_missing_path_exits_2(workdir: Path) -> None:
    """A path that does not exist is a usage error: exit 2, and the path is named."""
    result = drip(workdir, "lint", "no-such-folder")

    assert result.returncode == 2
    assert "no-such-folder" in result.stderr


def test_lint_strict_fails_on_a_warning(workdir: Path) -> None:
    """A plain http:// link is a warning: exit 0 normally, exit 1 with --strict."""
    path = workdir / SMART
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("Want me to send them over?", "See http://acmerealty.com/new"),
        encoding="utf-8",
    )

    relaxed = drip(workdir, "lint", "campaigns/")
    strict = drip(workdir, "lint", "--strict", "campaigns/")

    assert relaxed.returncode == 0
    assert re.search(r"smart_drip_new_lead\.yaml:\d+:\d+: warning: .*http://", relaxed.stdout)
    assert relaxed.stdout.strip().endswith("0 errors, 1 warning")
    assert strict.returncode == 1


# --------------------------------------------------------------------------- drip preview


def test_preview_default_start_footer_on_every_text(workdir: Path) -> None:
    """No earlier text: the footer on all five (F1 on day 15, then F3), starting next Monday 10:00."""
    data = preview_json(workdir, SMART)

    start = datetime.fromisoformat(data["start"]).astimezone(NY)
    assert (start.weekday(), start.time()) == (0, time(10, 0))
    assert start > datetime.now(UTC)
    rows = data["rows"]
    assert [(r["step_day"], r["day"]) for r in rows] == [(d, d) for d in (15, 45, 180, 270, 360)]
    assert [r["footer_rule"] for r in rows][2:] == ["F3", "F3", "F3"]
    assert rows[0]["footer_rule"] == "F1"
    # Day 45 is F3 whenever 30 x 24 h lie between day 15 and day 45, i.e. unless the
    # spring-forward DST change falls between them (then it is one hour short: F4).
    elapsed = datetime.fromisoformat(rows[1]["send_at"]) - datetime.fromisoformat(
        rows[0]["send_at"]
    )
    assert rows[1]["footer"] is (elapsed >= timedelta(days=30))


def test_preview_seed_start_footer_on_all_five_texts(workdir: Path) -> None:
    """From 2026-03-02 10:00 New York: every one of the five texts carries the footer."""
    data = preview_json(workdir, SMART, "--start", "2026-03-02 10:00")

    assert footers(data) == [
        ("day-15-check-in", 15, True),
        ("day-45-market-update", 45, True),
        ("day-180-timing", 180, True),
        ("day-270-new-listings", 270, True),
        ("day-360-anniversary", 360, True),
    ]
    assert [r["footer_rule"] for r in data["rows"]] == ["F1", "F3", "F3", "F3", "F3"]
    assert data["rows"][0]["local_time"] == "2026-03-17 Tue 10:00"
    assert data["totals"] == {
        "texts": 5,
        "emails": 0,
        "footers": 5,
        "segments": 10,
        "not_sent": 0,
    }


def test_preview_with_intro_moves_the_first_footer_to_day_0(workdir: Path) -> None:
    """With --intro on day 0: footer on day 0, 45, 180, 270 and 360, not on day 15."""
    data = preview_json(workdir, SMART, "--start", "2026-03-02 10:00", "--intro", INTRO)

    assert footers(data) == [
        ("intro", 0, True),
        ("day-15-check-in", 15, False),
        ("day-45-market-update", 45, True),
        ("day-180-timing", 180, True),
        ("day-270-new-listings", 270, True),
        ("day-360-anniversary", 360, True),
    ]
    intro = data["rows"][0]
    assert intro["kind"] == "manual"
    assert intro["text"].startswith("Hi Dana, this is Sam with Acme Realty. [This part")
    # 15 calendar days are one hour short of 15 x 24 h across the DST change.
    assert "only 14 days 23 hours since the last footer on 2026-03-02" in data["rows"][1]["reason"]


def test_preview_with_intro_and_default_start(workdir: Path) -> None:
    """With --intro and the default start, day 15 never carries the footer and day 45 does."""
    data = preview_json(workdir, SMART, "--intro", INTRO)

    assert [r["footer"] for r in data["rows"]] == [True, False, True, True, True, True]


def test_preview_table_shows_each_text_with_footer_and_size(workdir: Path) -> None:
    """The table names each step, its local time, footer rule, encoding and segments; exit 0."""
    result = drip(workdir, "preview", SMART, "--start", "2026-03-02 10:00", "--intro", INTRO)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "smart-drip-new-lead: Dana Ruiz (America/New_York), enrolled 2026-03-02 Mon 10:00" in out
    for needle in ("day-15-check-in", "2026-03-17 Tue", "F4", "F3", "GSM-7", "2 seg", "1 seg"):
        assert needle in out
    assert "per contact: 6 texts (5 with the footer), 11 segments" in out


def test_preview_by_campaign_name_and_options(workdir: Path) -> None:
    """A campaign name, a reply on day 20, a Florida contact and a sample name all apply."""
    data = preview_json(
        workdir,
        "smart-drip-new-lead",
        "--start",
        "2026-03-02 07:00",
        "--state",
        "florida",
        "--intro",
        INTRO,
        "--two-way-on-day",
        "20",
        "--contact",
        "Jo Ann Smith",
    )

    assert data["state"] == "FL"
    assert [r["footer"] for r in data["rows"]] == [True, False, False, False, False, False]
    assert [r["footer_rule"] for r in data["rows"]][2:] == ["F2"] * 4
    # Manual intro at 07:00 is not held; campaign texts wait for 08:00 (FL window 08-20).
    assert [r["local_time"][-5:] for r in data["rows"]] == ["07:00"] + ["08:00"] * 5
    assert (
        "outside the send window 08:00-20:00 (FL rule: Fla. Stat. 501.616"
        in (data["rows"][1]["deferrals"][0])
    )
    assert data["rows"][1]["text"].startswith("Hi Jo, it's Sam with Acme Realty.")


def test_preview_with_a_multi_zone_phone_shows_the_zone_set_and_why(workdir: Path) -> None:
    """--phone with a 448 number: both zones and Florida apply; the preview says why."""
    data = preview_json(workdir, SMART, "--start", "2026-03-02 10:00", "--phone", "+14485550123")

    assert data["zones"] == ["America/New_York", "America/Chicago"]
    assert data["states"] == ["FL"]
    assert "area code 448" in data["zone_detail"] and "correction" in data["zone_detail"]
    table = drip(
        workdir, "preview", SMART, "--start", "2026-03-02 10:00", "--phone", "+14485550123"
    )
    assert table.returncode == 0, table.stderr
    assert "Dana Ruiz (America/New_York + America/Chicago, FL)" in table.stdout


def test_preview_unknown_campaign_exits_2(workdir: Path) -> None:
    """An unknown campaign name is a usage error (exit 2) that lists the known campaigns."""
    by_name = drip(workdir, "preview", "no-such-campaign")

    assert by_name.returncode == 2
    assert "no campaign named 'no-such-campaign'" in by_name.stderr
    assert "smart-drip-new-lead" in by_name.stderr


def test_preview_broken_campaign_exits_1_with_located_error(workdir: Path) -> None:
    """A campaign file with an error is not previewed: exit 1 and the located error."""
    path = workdir / SMART
    path.write_text(path.read_text().replace("{AgentFirstName}", "{Agent}", 1), encoding="utf-8")

    result = drip(workdir, "preview", SMART)

    assert result.returncode == 1
    assert re.search(r"smart_drip_new_lead\.yaml:\d+:\d+: error: .*\{Agent\}", result.stderr)


# --------------------------------------------------------------------------- preview(), in process


def _account() -> AccountSettings:
    return load_account(REPO / "campaigns" / "account.yaml")


def _smart() -> Campaign:
    return load_campaign(REPO / SMART)


def _campaign(*steps: Step, **fields: Any) -> Campaign:
    return Campaign(name="t", kind=CampaignKind.SMART_DRIP, steps=steps, **fields)


def _start(text: str = "2026-03-02 10:00") -> datetime:
    return parse_start(text, "America/New_York")


def _run(campaign: Campaign, **options: Any) -> Preview:
    options.setdefault("start", _start())
    return preview(campaign, _account(), now=FIXED_NOW, **options)


def test_next_monday_morning_is_strictly_ahead() -> None:
    """Monday before 10:00 gives that day; Monday after 10:00 and Sunday give the next Monday."""
    tz = "America/New_York"

    def at(day: int, hour: int) -> datetime:
        return datetime(2026, 3, day, hour, 0, tzinfo=NY)

    assert next_monday_morning(at(2, 9), tz) == at(2, 10)
    assert next_monday_morning(at(2, 10), tz) == at(9, 10)
    assert next_monday_morning(at(8, 23), tz) == at(9, 10)
    assert next_monday_morning(at(4, 12), tz).astimezone(NY) == at(9, 10)


def test_parse_start_and_contact_reject_nonsense() -> None:
    """Starts are local wall times in the given zone; a bad start or empty name is refused."""
    assert parse_start("2026-07-01 09:30", "America/Chicago") == datetime(
        2026, 7, 1, 14, 30, tzinfo=UTC
    )
    assert parse_contact("Mary Jo Smith") == ("Mary", "Jo Smith")
    assert parse_contact("Cher") == ("Cher", "")
    with pytest.raises(ValidationError, match="not a local time"):
        parse_start("next tuesday", "America/New_York")
    with pytest.raises(ValidationError, match="empty"):
        parse_contact("  ")


def test_preview_default_start_comes_from_now() -> None:
    """Without a start the plan begins the first Monday 10:00 after the ``now`` passed in."""
    result = preview(_smart(), _account(), now=FIXED_NOW)

    assert result.local(result.start) == "2026-03-02 Mon 10:00"


def test_preview_state_cap_defers_the_fourth_text_by_a_day() -> None:
    """Florida allows 3 campaign texts in 24 h: the 4th and 5th move to when the cap allows."""
    steps = [
        Step(id=f"s{i}", position=i, day=1, body=f"Text {i} from {{CompanyName}}")
        for i in range(1, 6)
    ]
    result = _run(_campaign(*steps), state="FL")

    times = [r.local_time for r in result.rows]
    assert times == [
        "2026-03-03 Tue 10:00",
        "2026-03-03 Tue 10:00",
        "2026-03-03 Tue 10:00",
        "2026-03-04 Wed 10:00",
        "2026-03-04 Wed 10:00",
    ]
    assert "FL allows at most 3 campaign or bulk texts in 24 h" in result.rows[3].deferrals[0]
    unlimited = _run(_campaign(*steps), state="MA")
    assert {r.local_time for r in unlimited.rows} == {"2026-03-03 Tue 10:00"}


def test_preview_window_at_always_and_interval_override() -> None:
    """``at`` outside the window waits for 08:00; F5 always; a 10-day interval brings F3 sooner."""
    campaign = _campaign(
        Step(id="late", position=1, day=0, at=time(22, 15), body="Hi {VisitorFirstName}"),
        Step(id="always", position=2, day=2, body="Hello again", opt_out=OptOutMode.ALWAYS),
        Step(id="day-5", position=3, day=5, body="Still there?"),
        Step(id="day-13", position=4, day=13, body="Checking in"),
        opt_out=OptOutSettings(interval_days=10),
    )

    result = _run(campaign)

    assert [(r.local_time, r.footer, r.footer_rule) for r in result.rows] == [
        ("2026-03-03 Tue 08:00", True, "F1"),
        ("2026-03-04 Wed 10:00", True, "F5"),
        ("2026-03-07 Sat 10:00", False, "F4"),
        ("2026-03-15 Sun 10:00", True, "F3"),
    ]
    assert result.rows[0].day == 1 and result.rows[0].step_day == 0


def test_preview_concierge_stops_on_reply_and_keeps_its_own_conversation() -> None:
    """A concierge plan: separate footer state from the agent's intro, and a reply stops it."""
    concierge = load_campaign(REPO / "campaigns" / "concierge_buyer.yaml")

    result = _run(concierge, intro="Hi, it's Sam.", two_way_day=3)

    summary = [(r.label, r.sender, r.outcome, r.footer_rule) for r in result.rows]
    assert summary[:3] == [
        ("intro", SenderRole.AGENT, "sent", "F1"),
        ("greeting", SenderRole.CONCIERGE, "sent", "F5"),
        ("day-2-preferences", SenderRole.CONCIERGE, "sent", "F4"),
    ]
    assert {(r.outcome, r.send_at) for r in result.rows[3:]} == {("stopped", None)}
    assert "stop_on_reply" in result.rows[3].reason
    assert result.totals.not_sent == 4


def test_preview_email_steps_have_no_footer_and_no_segments() -> None:
    """Email steps render subject and body, go out outside the text window, and cost no segments."""
    nurture = load_campaign(REPO / "campaigns" / "new_lead_nurture.yaml")

    result = _run(nurture, start=_start("2026-03-02 06:30"))

    email = result.rows[0]
    assert (email.channel, email.footer, email.segments, email.encoding) == (
        Channel.EMAIL,
        False,
        None,
        None,
    )
    assert email.subject == "Welcome to your home search with Acme Realty"
    assert email.local_time == "2026-03-02 Mon 06:30"
    assert result.rows[1].local_time == "2026-03-03 Tue 08:00"
    assert result.totals.emails == 5


def test_preview_uses_the_account_default_agent_and_counts_ucs2() -> None:
    """Agent names come from ``default_agent``; a curly quote makes a text UCS-2."""
    from drip.domain.account import AgentProfile

    account = replace(_account(), default_agent=AgentProfile("Ada", "Byron", "+13125550100"))
    campaign = _campaign(
        Step(id="curly", position=1, day=1, body="Hi, it\u2019s {AgentFirstName} {AgentPhone}")
    )

    result = preview(campaign, account, now=FIXED_NOW, start=_start())

    row = result.rows[0]
    assert row.text.startswith("Hi, it\u2019s Ada (312) 555-0100 [This part")
    assert (row.encoding, row.characters, row.segments) == ("UCS-2", len(row.text), 3)


CAPPED_CAMPAIGN = """\
name: capped-week
kind: nurture
steps:
  - {id: hello, day: 0, body: "Hi {VisitorFirstName}, it's {AgentFirstName} with {CompanyName}."}
  - {id: listings, day: 1, body: "New listings near you today."}
  - {id: rates, day: 2, body: "Rates dropped this week."}
  - {id: open-house, day: 3, expires_after: 2d, body: "Open house Thursday 1-3pm at 12 Elm St."}
"""


def test_preview_shows_how_many_texts_the_frequency_cap_holds_back(workdir: Path) -> None:
    """With at most 2 texts in 7 days, day 2's text waits until day 7 and day 3's, which
    expires after 2 days, is skipped: the preview says the cap holds back 2 of them."""
    campaigns = workdir / "campaigns"
    with (campaigns / "account.yaml").open("a", encoding="utf-8") as account:
        account.write("frequency_cap: {texts: 2, days: 7}\n")
    (campaigns / "capped_week.yaml").write_text(CAPPED_CAMPAIGN, encoding="utf-8")
    start = ("--start", "2026-06-01 10:00")

    data = preview_json(workdir, "campaigns/capped_week.yaml", *start)
    table = drip(workdir, "preview", "capped_week", *start)

    rows = {r["step"]: r for r in data["rows"]}
    assert {s: (r["day"], r["outcome"], r["held_by_frequency_cap"]) for s, r in rows.items()} == {
        "hello": (0, "sent", False),
        "listings": (1, "sent", False),
        "rates": (7, "sent", True),
        "open-house": (None, "skipped", True),
    }
    assert "expired" in rows["open-house"]["reason"]
    assert data["frequency_cap"] == {"texts": 2, "days": 7, "held_back": 2}
    assert table.returncode == 0, table.stderr
    assert (
        "frequency cap (2 campaign or bulk texts in 7 days): holds back 2 of these texts "
        "for this contact; texts of other campaigns and bulks count too"
    ) in " ".join(table.stdout.split())


def test_preview_without_a_frequency_cap_holds_nothing_back(workdir: Path) -> None:
    """The bundled account has no cap: every step goes on its day and no cap line is shown."""
    (workdir / "campaigns" / "capped_week.yaml").write_text(CAPPED_CAMPAIGN, encoding="utf-8")

    data = preview_json(workdir, "campaigns/capped_week.yaml", "--start", "2026-06-01 10:00")
    table = drip(workdir, "preview", "capped_week", "--start", "2026-06-01 10:00")

    assert [(r["day"], r["held_by_frequency_cap"]) for r in data["rows"]] == [
        (0, False),
        (1, False),
        (2, False),
        (3, False),
    ]
    assert data["frequency_cap"] is None
    assert "frequency cap" not in table.stdout
