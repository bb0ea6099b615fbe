"""The replay scenario loader (SPEC §6): values, defaults, and errors located at path:line:col."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, time
from pathlib import Path

import pytest

from drip.domain.enums import Channel, ConsentSource, MessageKind, SenderRole, TextStatus
from drip.replay.scenario import (
    NO_VALIDITY,
    Backlog,
    Bulk,
    CarrierReport,
    Consent,
    DayTime,
    Downtime,
    Enroll,
    Erase,
    LeadEvent,
    ManualText,
    Reply,
    Scenario,
    ScenarioError,
    SetTextStatus,
    find_project,
    load_scenario,
    scenario_files,
)

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"

HEAD = """\
name: t
start: "2026-06-01 10:00"
timezone: America/New_York
agent: {first_name: Sam, phone: "+16175550100"}
contact: {first_name: Dana, phone: "+16175550123"}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Scenario:
    return load_scenario(write(tmp_path, text), project=REPO)


def problems(tmp_path: Path, text: str, *, project: Path = REPO) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, project=project)
    return caught.value.problems


def test_seed_example_loads_every_spec_field() -> None:
    """The SPEC §6 seed example gives the contact, agent, account overrides, events and expectations."""
    s = load_scenario(SCENARIOS / "seed_never_replies.yaml")
    assert s.name == "seed example, the lead never replies"
    assert s.start == datetime(2026, 3, 2, 10, 0)
    assert s.zone == "America/New_York"
    assert s.contact.phone == "+16175550123"
    assert s.contact.state == "MA"
    assert s.contact.sms_consent is True
    assert s.agent is not None and s.agent.phone == "+16175550100"
    assert s.account.company == "Acme Realty"
    assert s.account.concierge_phone == "+16175550199"
    assert [e.kind for e in s.events] == ["text", "enroll"]
    enroll = s.events[1].action
    assert isinstance(enroll, Enroll) and enroll.campaign.name == "smart-drip-new-lead"
    assert s.until == DayTime(400)
    assert s.expect is not None and len(s.expect) == 7
    assert s.expect[0].kind is MessageKind.OPT_IN_CONFIRMATION
    assert s.expect[1].footer is True and s.expect[2].day == 15


def test_every_event_kind_becomes_its_action(tmp_path: Path) -> None:
    """Each event kind of SPEC §6 (and the extensions) is read into its own value."""
    s = load(
        tmp_path,
        HEAD
        + textwrap.dedent(
            """\
        concierge: {phone: "+16175550199"}
        events:
          - {at: day 0 10:05, text: "hi", from: concierge}
          - {at: day 0 10:06, enroll: smart-drip-new-lead}
          - {at: day 1, reply: "ok", reply_to: concierge, opt_out_type: HELP}
          - {at: day 2, consent: false}
          - {at: day 3, text_status: cannot_be_texted}
          - {at: day 4, bulk: "Open house"}
          - {at: day 5, downtime_until: day 9 08:00}
        """
        ),
    )
    actions = [e.action for e in s.events]
    assert actions[0] == ManualText("hi", SenderRole.CONCIERGE)
    assert actions[2] == Reply("ok", SenderRole.CONCIERGE, "HELP")
    assert actions[3] == Consent(False)
    assert actions[4] == SetTextStatus(TextStatus.CANNOT_BE_TEXTED)
    assert actions[5] == Bulk("Open house")
    assert actions[6] == Downtime(DayTime(9, time(8, 0)))


def test_enroll_by_name_and_by_path_give_the_same_campaign(tmp_path: Path) -> None:
    """A campaign name and the file that defines it (relative to the project root) resolve alike."""
    s = load(
        tmp_path,
        HEAD
        + textwrap.dedent(
            """\
        events:
          - {at: day 0 10:05, enroll: smart-drip-new-lead}
          - {at: day 0 10:06, enroll: campaigns/smart_drip_new_lead.yaml}
        """
        ),
    )
    first, second = (e.action for e in s.events)
    assert isinstance(first, Enroll) and isinstance(second, Enroll)
    assert first.campaign == second.campaign
    assert second.path == REPO / "campaigns" / "smart_drip_new_lead.yaml"


def test_unknown_top_level_field_is_an_error_at_its_key(tmp_path: Path) -> None:
    """An unknown field is reported at its own line and column, with the file's path."""
    found = problems(tmp_path, HEAD + "colour: red\n")
    assert found == [
        f"{tmp_path / 's.yaml'}:6:1: error: unknown field 'colour' in the scenario; "
        "allowed: name, start, timezone, company, agent, concierge, contact, until, events, expect, "
        "state_rules, blackouts, frequency_cap, reassigned_numbers, agents, sync"
    ]


def test_bad_event_time_is_located(tmp_path: Path) -> None:
    """An event time that is not "day N [HH:MM]" is an error at the value."""
    found = problems(tmp_path, HEAD + "events:\n  - {at: tomorrow, text: hi}\n")
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 's.yaml'}:7:10: error: event 1 at must be")


def test_impossible_time_of_day_is_an_error(tmp_path: Path) -> None:
    """25:00 is not a time of day."""
    found = problems(tmp_path, HEAD + "events:\n  - {at: day 1 25:00, text: hi}\n")
    assert found == [
        f'{tmp_path / "s.yaml"}:7:10: error: event 1 at: "25:00" is not a time of day '
        "(00:00 to 23:59)"
    ]


def test_unknown_event_kind_is_an_error_at_its_key(tmp_path: Path) -> None:
    """An event kind drip does not know is reported where it is written."""
    found = problems(tmp_path, HEAD + "events:\n  - {at: day 1, wave: hello}\n")
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 's.yaml'}:7:17: error: unknown event kind 'wave'")


def test_events_out_of_order_are_an_error_at_the_later_line(tmp_path: Path) -> None:
    """An event earlier than the one before it is an error naming both times."""
    found = problems(
        tmp_path,
        HEAD + "events:\n  - {at: day 5, text: a}\n  - {at: day 2 09:00, text: b}\n",
    )
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 's.yaml'}:8:5: error: events must be in time order")
    assert "day 2 09:00" in found[0] and "day 5" in found[0]


def test_event_before_the_start_is_an_error(tmp_path: Path) -> None:
    """day 0 at 09:00 is before a 10:00 start: the contact does not exist yet."""
    found = problems(tmp_path, HEAD + "events:\n  - {at: day 0 09:00, text: a}\n")
    assert len(found) == 1 and "is before the start" in found[0]


def test_unknown_campaign_name_lists_the_known_ones(tmp_path: Path) -> None:
    """enroll of a name no file defines is an error that lists the project's campaigns."""
    found = problems(tmp_path, HEAD + "events:\n  - {at: day 1, enroll: no-such-plan}\n")
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 's.yaml'}:7:25: error: event 1 enroll:")
    assert "smart-drip-new-lead" in found[0]


def test_modifier_on_the_wrong_kind_and_two_kinds_are_errors(tmp_path: Path) -> None:
    """reply_to goes with reply only, and one event holds one kind."""
    found = problems(
        tmp_path,
        HEAD
        + "events:\n  - {at: day 1, text: a, reply_to: agent}\n"
        + "  - {at: day 2, text: a, bulk: b}\n",
    )
    assert any("reply_to goes with reply, not with text" in p for p in found)
    assert any("has two kinds (text and bulk)" in p for p in found)


def test_until_before_an_event_is_an_error(tmp_path: Path) -> None:
    """until must leave room for every event and expectation."""
    found = problems(tmp_path, HEAD + "until: day 3\nevents:\n  - {at: day 5, text: a}\n")
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 's.yaml'}:6:8: error: until")


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    """Broken YAML is reported at the place the parser stopped."""
    found = problems(tmp_path, HEAD + "events: [\n")
    assert len(found) == 1 and ": error: YAML syntax error" in found[0]
    assert found[0].startswith(f"{tmp_path / 's.yaml'}:7:")


def test_bad_expectation_fields_are_errors(tmp_path: Path) -> None:
    """Unknown expectation fields and values outside their vocabulary are errors."""
    found = problems(
        tmp_path,
        HEAD + "expect:\n  - {day: 0, kind: greeting}\n  - {day: 1, colour: red}\n",
    )
    assert any("expectation 1 kind must be one of" in p for p in found)
    assert any("unknown field 'colour' in expectation 2" in p for p in found)


def test_consent_defaults_follow_the_source(tmp_path: Path) -> None:
    """Registration with a phone consents by default; an import does not; no phone cannot."""
    registered = load(tmp_path, HEAD)
    assert registered.contact.sms_consent is True
    assert registered.contact.source is ConsentSource.REGISTRATION
    imported = load(
        tmp_path, HEAD.replace('phone: "+16175550123"}', 'phone: "+16175550123", source: import}')
    )
    assert imported.contact.sms_consent is False
    found = problems(
        tmp_path,
        HEAD.replace('phone: "+16175550123"}', "email: d@example.com, sms_consent: true}"),
    )
    assert any("sms_consent: true needs a contact phone" in p for p in found)


def test_default_until_is_thirty_days_after_the_last_event(tmp_path: Path) -> None:
    """Without until, the run ends 30 days after the last event or expectation."""
    s = load(tmp_path, HEAD + "events:\n  - {at: day 3 12:00, text: a}\nexpect:\n  - {day: 10}\n")
    assert s.end == DayTime(40)
    s = load(tmp_path, HEAD + "events:\n  - {at: day 30 12:00, text: a}\nexpect:\n  - {day: 10}\n")
    assert s.end == DayTime(60, time(12, 0))


def test_day_times_keep_the_local_wall_clock_across_dst(tmp_path: Path) -> None:
    """day N is the start's local time N calendar days later, whatever the UTC offset."""
    s = load(tmp_path, HEAD.replace("2026-06-01", "2026-03-02"))
    assert s.instant(DayTime(0)) == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # EST
    assert s.instant(DayTime(15)) == datetime(2026, 3, 17, 14, 0, tzinfo=UTC)  # EDT
    assert s.instant(DayTime(15, time(8, 0))) == datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def test_zone_comes_from_the_area_code_without_a_timezone(tmp_path: Path) -> None:
    """A contact with no timezone and a 312 number lives in America/Chicago (SPEC §4)."""
    text = HEAD.replace("timezone: America/New_York\n", "").replace("+16175550123", "+13125550148")
    s = load(tmp_path, text)
    assert s.timezone is None
    assert s.zone == "America/Chicago"


def test_company_and_concierge_override_the_account(tmp_path: Path) -> None:
    """company and concierge.phone of the scenario replace the account settings'."""
    s = load(tmp_path, HEAD + 'company: Zenith Homes\nconcierge: {phone: "+16175550999"}\n')
    assert s.account.company == "Zenith Homes"
    assert s.account.concierge_phone == "+16175550999"
    assert "Zenith Homes" in s.consent_text


def test_reply_to_a_missing_concierge_is_an_error(tmp_path: Path) -> None:
    """Without a concierge number anywhere, a reply to the concierge cannot be delivered."""
    project = tmp_path / "proj"
    (project / "campaigns").mkdir(parents=True)
    (project / "campaigns" / "account.yaml").write_text("company: Solo Realty\n")
    found = problems(
        tmp_path,
        HEAD + "events:\n  - {at: day 1, reply: hi, reply_to: concierge}\n",
        project=project,
    )
    assert len(found) == 1 and "needs a concierge number" in found[0]


def test_find_project_prefers_a_folder_with_account_settings(tmp_path: Path) -> None:
    """A nearer campaigns/ without account.yaml (test campaigns) does not hide the project."""
    project = tmp_path / "proj"
    (project / "campaigns").mkdir(parents=True)
    (project / "campaigns" / "account.yaml").write_text("company: A\n")
    inner = project / "tests" / "scenarios"
    (inner / "campaigns").mkdir(parents=True)
    assert find_project(inner) == project
    bare = tmp_path / "bare"
    (bare / "campaigns").mkdir(parents=True)
    assert find_project(bare) == bare


def test_scenario_files_lists_a_folder_in_name_order(tmp_path: Path) -> None:
    """A folder stands for its own *.yaml files, sorted, not its subfolders."""
    (tmp_path / "b.yaml").write_text("x")
    (tmp_path / "a.yml").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("x")
    assert scenario_files([tmp_path]) == [tmp_path / "a.yml", tmp_path / "b.yaml"]


def test_expectation_fields_are_read(tmp_path: Path) -> None:
    """Every expectation field of SPEC §6 is kept; fields left out stay None."""
    s = load(
        tmp_path,
        HEAD
        + "expect:\n"
        + "  - {at: day 2 08:00, channel: email, kind: campaign, footer: false,"
        + " contains: Hi, from: agent}\n  - {}\n",
    )
    assert s.expect is not None
    full, empty = s.expect
    assert full.at == DayTime(2, time(8, 0)) and full.channel is Channel.EMAIL
    assert full.kind is MessageKind.CAMPAIGN and full.footer is False
    assert full.contains == "Hi" and full.sender is SenderRole.AGENT
    assert empty.day is None and empty.kind is None and empty.footer is None


def test_at_utc_expectation_and_scenario_rules_are_read(tmp_path: Path) -> None:
    """at_utc is an absolute UTC minute; scenario blackouts and rows extend the account's."""
    scenario = load(
        tmp_path,
        HEAD
        + 'blackouts:\n  - {states: [LA], from: "2026-08-28", until: "2026-09-04", reason: storm}\n'
        + "state_rules:\n  - {state: WA, enabled: false}\n"
        + 'expect:\n  - {at_utc: "2026-06-02 12:00", kind: bulk}\n',
    )
    assert scenario.expect is not None
    assert scenario.expect[0].at_utc == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)
    assert 'at_utc: "2026-06-02 12:00"' in scenario.expect[0].describe()
    assert [b.reason for b in scenario.account.blackouts] == ["storm"]
    assert not next(r for r in scenario.account.state_rules if r.state == "WA").enabled


def test_bad_at_utc_is_located(tmp_path: Path) -> None:
    """An at_utc that is not "YYYY-MM-DD HH:MM" is reported at its value."""
    found = problems(tmp_path, HEAD + 'expect:\n  - {at_utc: "tomorrow"}\n')
    assert len(found) == 1
    assert 'expectation 1 at_utc must be a UTC time "YYYY-MM-DD HH:MM"' in found[0]


def test_carrier_events_and_expectations_are_read(tmp_path: Path) -> None:
    """backlog, carrier: expired, validity (a number or none), deferred, status and error."""
    scenario = load(
        tmp_path,
        HEAD
        + "events:\n"
        + "  - {at: day 0 10:00, backlog: {from: agent, segments: 600}}\n"
        + "  - {at: day 0 11:00, carrier: expired}\n"
        + "expect:\n"
        + "  - {day: 0, validity: none}\n"
        + "  - {day: 0, validity: 3600, deferred: pacing, status: failed, error: 30036}\n",
    )
    assert [e.action for e in scenario.events] == [
        Backlog(SenderRole.AGENT, 600),
        CarrierReport("expired"),
    ]
    assert scenario.expect is not None
    first, second = scenario.expect
    assert first.validity == NO_VALIDITY
    assert "validity: none" in first.describe()
    assert (second.validity, second.deferred, second.status, second.error) == (
        3600,
        "pacing",
        "failed",
        30036,
    )


def test_bad_carrier_events_and_expectations_are_located(tmp_path: Path) -> None:
    """A backlog without segments, an unknown carrier report, a validity over Twilio's
    36,000 and an unknown deferral code are each reported at their line."""
    found = problems(
        tmp_path,
        HEAD
        + "events:\n"
        + "  - {at: day 0 10:00, backlog: {from: agent}}\n"
        + "  - {at: day 0 11:00, carrier: delivered}\n"
        + "expect:\n"
        + "  - {day: 0, validity: 40000, deferred: later}\n",
    )
    text = "\n".join(found)
    assert ":7:" in text and "segments" in text
    assert ":8:" in text and "delivered" in text
    assert ":10:" in text and "validity" in text and "36000" in text
    assert "deferred" in text and "pacing" in text


def test_a_bulk_expiry_is_read_and_must_come_after_the_bulk(tmp_path: Path) -> None:
    """expires_at on a bulk becomes its DayTime; one not after the event, or on another kind,
    is a located error."""
    scenario = load(
        tmp_path, HEAD + 'events:\n  - {at: day 1 09:00, bulk: b, expires_at: "day 1 13:00"}\n'
    )
    action = scenario.events[0].action
    assert isinstance(action, Bulk)
    assert (action.body, action.expires_at) == ("b", DayTime(1, time(13, 0)))

    found = problems(
        tmp_path,
        HEAD
        + 'events:\n  - {at: day 1 14:00, bulk: b, expires_at: "day 1 13:00"}\n'
        + '  - {at: day 2, text: a, expires_at: "day 3"}\n',
    )
    assert any(
        ":7:" in p and "expires_at day 1 13:00 is already past at day 1 14:00" in p for p in found
    ), found
    assert any("expires_at goes with bulk, not with text" in p for p in found), found


def test_erase_is_read_and_a_malformed_one_is_located(tmp_path: Path) -> None:
    """erase: true becomes Erase; false, a text, or a modifier of another kind is an error
    at its line and column."""
    scenario = load(
        tmp_path,
        HEAD
        + "events:\n  - {at: day 1, erase: true}\n"
        + "  - {at: day 2, event: lead.created, data: {first_name: Dana}}\n",
    )
    assert [e.action for e in scenario.events] == [
        Erase(),
        LeadEvent("lead.created", (("first_name", "Dana"),)),
    ]
    assert scenario.events[0].kind == "erase"

    found = problems(
        tmp_path,
        HEAD
        + "events:\n  - {at: day 1, erase: false}\n"
        + "  - {at: day 2, erase: soon}\n"
        + "  - {at: day 3, erase: true, data: {by: me}}\n",
    )
    path = tmp_path / "s.yaml"
    assert found == [
        f"{path}:7:24: error: event 1 erase: only true means something (the contact is erased)",
        f'{path}:8:24: error: event 2 erase must be true or false, got a text "soon"',
        f"{path}:9:30: error: data goes with event, not with erase",
    ]


def test_events_for_an_erased_contact_are_errors_until_it_is_added_again(tmp_path: Path) -> None:
    """After erase only a reply and the world's events may come, until lead.created or
    consent: true adds the person again; each event about the erased contact is located."""
    found = problems(
        tmp_path,
        HEAD
        + "events:\n"
        + "  - {at: day 1, erase: true}\n"
        + "  - {at: day 2, enroll: smart-drip-new-lead}\n"
        + "  - {at: day 3, erase: true}\n"
        + '  - {at: day 4, reply: "hello"}\n'
        + "  - {at: day 5, event: lead.updated, data: {stage: hot}}\n"
        + "  - {at: day 6, event: lead.created, data: {first_name: Dana}}\n"
        + "  - {at: day 7, enroll: smart-drip-new-lead}\n"
        + "  - {at: day 8, erase: true}\n"
        + "  - {at: day 9, text: hi}\n"
        + "  - {at: day 10, consent: true}\n"
        + "  - {at: day 11, text: hi}\n",
    )
    path = tmp_path / "s.yaml"
    again = (
        "add it again first with {event: lead.created, data: {first_name: ...}} or consent: true"
    )
    assert found == [
        f"{path}:8:5: error: enroll at day 2: the contact was erased at day 1 (line 7); {again}",
        f"{path}:9:5: error: erase at day 3: the contact was erased at day 1 (line 7); {again}",
        f"{path}:11:5: error: event at day 5: the contact was erased at day 1 (line 7); {again}",
        f"{path}:15:5: error: text at day 9: the contact was erased at day 8 (line 14); {again}",
    ]
