"""State rules as data, zone sets and "which state" in the pure policy (SPEC §4, §4a)."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pendulum
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.campaigns.lint import lint_paths
from drip.campaigns.loader import load_campaign
from drip.domain.enums import Channel, MessageKind
from drip.domain.policy import (
    ContactState,
    ConversationState,
    Defer,
    DeferCode,
    Outgoing,
    Send,
    decide,
)
from drip.domain.window import Blackout, SendWindow, StateRule, state_holiday
from drip.domain.zones import resolve_states, resolve_timezone
from drip.errors import CampaignError
from drip.rules import area_code_table, bundled_pack, bundled_state_rules

RULES = bundled_state_rules()
CONSENTED = datetime(2026, 1, 1, tzinfo=UTC)
NY, CHI, LA_ZONE = "America/New_York", "America/Chicago", "America/Los_Angeles"

#: Local dates in June 2026 (none is a holiday anywhere in the US).
WED, THU, SAT, SUN, MON = (date(2026, 6, d) for d in (3, 4, 6, 7, 8))
XMAS, BOXING = date(2026, 12, 25), date(2026, 12, 26)


def at(day: date, hhmm: str, tz: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return pendulum.datetime(day.year, day.month, day.day, hour, minute, tz=tz).in_timezone("UTC")


def person(tz: str, *states: str, zones: tuple[str, ...] = (), **kw: object) -> ContactState:
    return ContactState(
        timezone=tz,
        zones=zones,
        state=states[0] if states else None,
        states=states,
        sms_consent_at=CONSENTED,
        **kw,  # type: ignore[arg-type]
    )


def text(due: datetime, kind: MessageKind = MessageKind.CAMPAIGN, **kw: object) -> Outgoing:
    return Outgoing(kind=kind, due_at=due, **kw)  # type: ignore[arg-type]


#: For each bundled row: the zone its residents mostly live in, and (due, first opening)
#: pairs in local time, written from the law's text rather than from the YAML.
ROW_CASES: dict[str, tuple[str, list[tuple[tuple[date, str], tuple[date, str]]]]] = {
    "FL": (NY, [((WED, "07:59"), (WED, "08:00")), ((WED, "20:00"), (THU, "08:00"))]),
    "OK": (CHI, [((WED, "07:59"), (WED, "08:00")), ((WED, "20:00"), (THU, "08:00"))]),
    "MD": (NY, [((WED, "07:59"), (WED, "08:00")), ((WED, "20:00"), (THU, "08:00"))]),
    "WA": (LA_ZONE, [((WED, "07:59"), (WED, "08:00")), ((WED, "20:00"), (THU, "08:00"))]),
    "CT": (NY, [((WED, "08:59"), (WED, "09:00")), ((WED, "20:00"), (THU, "09:00"))]),
    "TX": (
        CHI,
        [
            ((WED, "08:59"), (WED, "09:00")),
            ((WED, "21:00"), (THU, "09:00")),
            ((SUN, "11:59"), (SUN, "12:00")),
            ((SAT, "21:00"), (SUN, "12:00")),
        ],
    ),
    "LA": (
        CHI,
        [
            ((WED, "07:59"), (WED, "08:00")),
            ((SAT, "20:00"), (MON, "08:00")),
            ((SUN, "12:00"), (MON, "08:00")),
            ((XMAS, "10:00"), (BOXING, "08:00")),
        ],
    ),
    "AL": (
        CHI,
        [
            ((WED, "07:59"), (WED, "08:00")),
            ((SAT, "20:00"), (MON, "08:00")),
            ((XMAS, "10:00"), (BOXING, "08:00")),
        ],
    ),
    "MS": (CHI, [((WED, "20:00"), (THU, "08:00")), ((SUN, "10:00"), (MON, "08:00"))]),
    "RI": (
        NY,
        [
            ((WED, "08:59"), (WED, "09:00")),
            ((WED, "18:00"), (THU, "09:00")),
            ((SAT, "09:59"), (SAT, "10:00")),
            ((SAT, "17:00"), (MON, "09:00")),
            ((XMAS, "10:00"), (BOXING, "10:00")),
        ],
    ),
}


def test_every_bundled_row_has_a_case_a_source_and_a_date() -> None:
    """The pack ships the ten rows of issue 10, each citing its law and the date it was checked."""
    assert {r.state for r in RULES} == set(ROW_CASES)
    for rule in RULES:
        assert rule.source and rule.checked == date(2026, 11, 30), rule.state
        assert rule.enabled
    assert bundled_pack().federal == SendWindow(time(8), time(21))
    assert "64.1200" in bundled_pack().federal_source


@pytest.mark.parametrize(
    ("state", "zone", "due", "opens"),
    [
        (state, zone, due, opens)
        for state, (zone, cases) in ROW_CASES.items()
        for due, opens in cases
    ],
)
def test_bundled_row_defers_to_its_first_opening(
    state: str, zone: str, due: tuple[date, str], opens: tuple[date, str]
) -> None:
    """A due time in a row's closed hours or days waits for its first opening, citing the row."""
    when = at(*due, zone)
    decision = decide(person(zone, state), ConversationState(), text(when), when, state_rules=RULES)
    assert isinstance(decision, Defer), decision
    assert decision.until == at(*opens, zone)
    rule = next(r for r in RULES if r.state == state)
    assert rule.source in decision.reason
    opened = decide(
        person(zone, state), ConversationState(), text(when), decision.until, state_rules=RULES
    )
    assert isinstance(opened, Send)


def test_holidays_come_from_the_library() -> None:
    """Christmas 2026 is an Alabama holiday by the holidays package; the reason names it."""
    assert state_holiday("AL", XMAS) == "Christmas Day"
    assert state_holiday("AL", date(2026, 4, 27)) == "Confederate Memorial Day"
    assert state_holiday("AL", WED) is None
    when = at(XMAS, "10:00", CHI)
    decision = decide(person(CHI, "AL"), ConversationState(), text(when), when, state_rules=RULES)
    assert isinstance(decision, Defer) and decision.code is DeferCode.HOLIDAY
    assert "Christmas Day" in decision.reason


def test_blackout_defers_past_its_last_day() -> None:
    """A Louisiana blackout through Sept 4 holds a Friday text until Saturday Sept 5, 08:00."""
    blackout = Blackout(
        frozenset({"LA"}), date(2026, 8, 28), date(2026, 9, 4), "declared emergency"
    )
    when = at(date(2026, 8, 28), "10:00", CHI)
    decision = decide(
        person(CHI, "LA"),
        ConversationState(),
        text(when, MessageKind.BULK),
        when,
        state_rules=RULES,
        blackouts=(blackout,),
    )
    assert isinstance(decision, Defer) and decision.code is DeferCode.BLACKOUT
    assert decision.until == at(date(2026, 9, 5), "08:00", CHI)
    assert "declared emergency" in decision.reason
    texan = decide(person(CHI, "TX"), ConversationState(), text(when), when, blackouts=(blackout,))
    assert isinstance(texan, Send)


def test_address_state_and_florida_area_code_both_apply() -> None:
    """A Massachusetts address with a 305 number gets Florida's 20:00 close and its cap."""
    states = resolve_states("MA", "+13055550123")
    assert states == ("MA", "FL")
    when = at(WED, "20:15", NY)
    decision = decide(person(NY, *states), ConversationState(), text(when), when, state_rules=RULES)
    assert isinstance(decision, Defer) and decision.until == at(THU, "08:00", NY)
    assert "FL rule" in decision.reason


def test_smallest_cap_of_every_state_applies() -> None:
    """With a cap of 2 for one state and 3 for the other, the third text in 24 h waits."""
    strict = StateRule("MA", SendWindow(time(8), time(21)), max_per_24h=2, source="test row")
    when = at(WED, "12:00", NY)
    sent = (when - timedelta(hours=3), when - timedelta(hours=2))
    c = person(NY, "MA", "FL", marketing_sent=sent)
    decision = decide(c, ConversationState(), text(when), when, state_rules=(*RULES, strict))
    assert isinstance(decision, Defer) and decision.code is DeferCode.STATE_CAP
    assert decision.until == sent[0] + timedelta(hours=24)
    assert "MA allows at most 2" in decision.reason


def test_disabled_row_does_not_apply() -> None:
    """A row turned off with enabled: false no longer narrows the window."""
    off = tuple(replace(r, enabled=False) if r.state == "FL" else r for r in RULES)
    when = at(WED, "20:30", NY)
    assert isinstance(
        decide(person(NY, "FL"), ConversationState(), text(when), when, state_rules=off), Send
    )


def test_every_zone_of_the_set_must_be_open() -> None:
    """448 (Eastern and Central): 08:30 Eastern is 07:30 Central, so the text waits for 08:00 CT."""
    zone = resolve_timezone(None, "+14485550123", NY)
    assert zone.zones == (NY, CHI)
    c = person(zone.name, zones=zone.zones)
    when = at(WED, "08:30", NY)
    decision = decide(c, ConversationState(), text(when), when)
    assert isinstance(decision, Defer)
    assert decision.until == at(WED, "08:00", CHI) == at(WED, "09:00", NY)
    assert "America/Chicago" in decision.reason
    assert isinstance(decide(c, ConversationState(), text(when), decision.until), Send)


def test_window_closes_at_is_the_earliest_close_of_any_zone_and_rule() -> None:
    """A Florida 448 text at 10:00 ET closes at 20:00 Eastern, the first of both zones' closes."""
    c = person(NY, "FL", zones=(NY, CHI))
    when = at(WED, "10:00", NY)
    decision = decide(c, ConversationState(), text(when), when, state_rules=RULES)
    assert isinstance(decision, Send)
    assert decision.window_closes_at == at(WED, "20:00", NY)
    assert decision.window_closes_at.utcoffset() == timedelta(0)
    texan = decide(
        person(CHI, "TX"),
        ConversationState(),
        text(at(SUN, "12:30", CHI)),
        at(SUN, "12:30", CHI),
        state_rules=RULES,
    )
    assert isinstance(texan, Send) and texan.window_closes_at == at(SUN, "21:00", CHI)


@pytest.mark.parametrize(
    "outgoing",
    [
        Outgoing(MessageKind.MANUAL, at(WED, "10:00", NY)),
        Outgoing(MessageKind.OPT_IN_CONFIRMATION, at(WED, "10:00", NY)),
        Outgoing(MessageKind.CAMPAIGN, at(WED, "10:00", NY), channel=Channel.EMAIL),
    ],
)
def test_window_closes_at_is_none_without_a_window(outgoing: Outgoing) -> None:
    """Manual texts, compliance replies and email have no window to close."""
    c = person(NY, "FL", has_email=True)
    decision = decide(c, ConversationState(), outgoing, outgoing.due_at, state_rules=RULES)
    assert isinstance(decision, Send) and decision.window_closes_at is None


@pytest.mark.parametrize("phone", ["+16245550100", "+13575550100"])
def test_unknown_area_code_uses_the_default_and_never_crashes(phone: str) -> None:
    """624 and 357 are not in the phone metadata yet: account default zone, no state, a decision."""
    zone = resolve_timezone(None, phone, CHI)
    assert (zone.name, zone.source) == (CHI, "default")
    assert "not" in zone.detail or "no zone" in zone.detail
    states = resolve_states(None, phone)
    when = at(WED, "07:00", CHI)
    c = person(zone.name, *states, zones=zone.zones)
    decision = decide(c, ConversationState(), text(when), when, state_rules=RULES)
    assert isinstance(decision, Defer) and decision.until == at(WED, "08:00", CHI)


# --- property: the correction table ---------------------------------------------------

CORRECTED = ["689", "448", "364", "930", "458"]
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def _open_everywhere(when: datetime, zones: tuple[str, ...], states: tuple[str, ...]) -> bool:
    """Independent check: inside 08:00-21:00 and every state row's hours in every zone."""
    rules = [r for r in RULES if r.state in states]
    for zone in zones:
        local = pendulum.instance(when).in_timezone(zone)
        wall = time(local.hour, local.minute, local.second, local.microsecond)
        day = date(local.year, local.month, local.day)
        if not SendWindow(time(8), time(21)).contains(wall):
            return False
        for rule in rules:
            hours = rule.window_on(day.weekday())
            if hours is None or not hours.contains(wall):
                return False
            if rule.holidays and state_holiday(rule.state, day) is not None:
                return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from(CORRECTED),
    now=instants,
    lateness=st.integers(0, 3 * 3600),
    kind=st.sampled_from([MessageKind.CAMPAIGN, MessageKind.BULK]),
    address=st.sampled_from([None, "TX", "AL", "MA"]),
)
def test_corrected_area_codes_only_send_inside_every_zone(
    code: str, now: datetime, lateness: int, kind: MessageKind, address: str | None
) -> None:
    """For any corrected area code, a campaign or bulk text goes only inside the window in
    every zone of its set and state, and never before it was due."""
    phone = f"+1{code}5550123"
    zone = resolve_timezone(None, phone, NY)
    assert zone.zones == area_code_table()[code].zones
    states = resolve_states(address, phone)
    c = person(zone.name, *states, zones=zone.zones)
    due = now - timedelta(seconds=lateness)
    decision = decide(c, ConversationState(), text(due, kind), now, state_rules=RULES)
    if isinstance(decision, Send):
        assert _open_everywhere(now, zone.zones, states)
        assert decision.window_closes_at is not None and decision.window_closes_at > now
    else:
        assert isinstance(decision, Defer)
        assert decision.until > now >= due
        assert _open_everywhere(decision.until, zone.zones, states)
        again = decide(c, ConversationState(), text(due, kind), decision.until, state_rules=RULES)
        assert isinstance(again, Send)


def test_campaign_window_outside_federal_hours_is_a_lint_error(tmp_path: Path) -> None:
    """A campaign send_window from 07:00 is an error at its line, citing the federal rule."""
    path = tmp_path / "early.yaml"
    path.write_text(
        "name: early-bird\nkind: nurture\n"
        'send_window: {start: "07:00", end: "21:00"}\n'
        'steps:\n  - {day: 1, body: "Hi {VisitorFirstName}, it\'s {AgentFirstName}."}\n',
        encoding="utf-8",
    )
    with pytest.raises(CampaignError) as info:
        load_campaign(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:3:14: error: send_window 07:00-21:00 reaches outside")
    assert "47 CFR 64.1200(c)(1)" in problem
    inside = path.read_text(encoding="utf-8").replace("07:00", "08:00")
    path.write_text(inside, encoding="utf-8")
    assert load_campaign(path).send_window == SendWindow(time(8), time(21))


def test_zone_data_is_what_the_script_generates_from_the_installed_phonenumbers() -> None:
    """scripts/gen_area_code_zones.py reproduces the committed data; rerun it after upgrading."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "gen_area_code_zones.py"
    spec = importlib.util.spec_from_file_location("gen_area_code_zones", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads(module.TARGET.read_text(encoding="utf-8"))
    assert committed["area_codes"] == module.area_code_zones()
    assert committed["source"].startswith(f"phonenumbers {phonenumbers.__version__}")


def test_lint_warns_when_account_yaml_loosens_a_bundled_row(tmp_path: Path) -> None:
    """Rows giving Florida 21:00 and no cap, or Texas Sunday mornings, load with located warnings."""
    (tmp_path / "account.yaml").write_text(
        'default_sender: "+16175550199"\n'
        "state_rules:\n"
        '  - {state: FL, window: {start: "08:00", end: "21:00"}}\n'
        '  - {state: TX, window: {start: "10:00", end: "20:00"}}\n',
        encoding="utf-8",
    )
    report = lint_paths([tmp_path])
    assert report.errors == []
    warning, texas = [w for w in report.warnings if "account.yaml" in w]
    assert warning.startswith(
        f"{tmp_path / 'account.yaml'}:3:5: warning: state rule FL allows more"
    )
    assert "Fla. Stat. 501.616" in warning
    assert "every day 08:00-21:00 where the bundled row allows 08:00-20:00" in warning
    assert "a cap of none instead of 3" in warning
    assert texas.startswith(f"{tmp_path / 'account.yaml'}:4:5: warning: state rule TX allows more")
    assert texas.endswith("sun 10:00-20:00 where the bundled row allows 12:00-21:00")
