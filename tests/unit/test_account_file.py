"""``campaigns/account.yaml``: settings, compliance-text checks and located errors."""

from __future__ import annotations

import re
import textwrap
from dataclasses import fields
from datetime import date, time
from pathlib import Path

import pytest

from drip.campaigns.account_file import ACCOUNT_FIELDS, compliance_problems, load_account
from drip.domain.account import (
    DEFAULT_HELP,
    DEFAULT_OPT_IN,
    DEFAULT_OPT_OUT,
    DEFAULT_RESUBSCRIBE,
    AccountSettings,
    AgentProfile,
)
from drip.domain.campaign import DEFAULT_FOOTER
from drip.domain.window import Blackout, SendWindow, StateRule
from drip.errors import CampaignError
from drip.rules import bundled_state_rules

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "account.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[tuple[int, int, str]]:
    """The problems of an account file that must fail, as (line, column, message)."""
    path = write(tmp_path, text)
    with pytest.raises(CampaignError) as info:
        load_account(path)
    found = []
    for problem in info.value.problems:
        m = re.match(r"^(.+):(\d+):(\d+): error: (.*)$", problem)
        assert m is not None, problem
        assert m.group(1) == str(path)
        found.append((int(m.group(2)), int(m.group(3)), m.group(4)))
    return found


def test_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    """No account.yaml means the built-in settings."""
    assert load_account(tmp_path / "account.yaml") == AccountSettings()
    assert load_account(tmp_path) == AccountSettings()


def test_bundled_account_file() -> None:
    """campaigns/account.yaml loads with Acme Realty's settings and the bundled rule pack."""
    account = load_account(ROOT / "campaigns")
    assert account.company == "Acme Realty"
    assert account.default_timezone == "America/New_York"
    assert account.footer == DEFAULT_FOOTER
    assert account.concierge_phone == "+16175550199"
    assert account.state_rules == bundled_state_rules()
    capped = {r.state for r in account.state_rules if r.max_per_24h == 3}
    assert capped == {"FL", "OK", "MD"}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("opt_in_confirmation", DEFAULT_OPT_IN),
        ("help_reply", DEFAULT_HELP),
        ("opt_out_confirmation", DEFAULT_OPT_OUT),
        ("resubscribe_confirmation", DEFAULT_RESUBSCRIBE),
        ("footer", DEFAULT_FOOTER),
    ],
)
def test_default_texts_meet_the_checks(name: str, text: str) -> None:
    """The built-in texts satisfy their own compliance checks."""
    assert compliance_problems(name, text, "Acme Realty") == []


def test_fields_are_read(tmp_path: Path) -> None:
    """Every field given reaches the settings; the others keep their defaults."""
    path = write(
        tmp_path,
        """\
        company: Harbor Homes
        default_timezone: America/Chicago
        send_window: {start: "09:00", end: "20:00"}
        twilio_sends_opt_out_confirmation: true
        support_phone: "+13125550100"
        support_email: help@harbor.example
        """,
    )
    account = load_account(path)
    assert account.company == "Harbor Homes"
    assert account.default_timezone == "America/Chicago"
    assert account.send_window == SendWindow(time(9), time(20))
    assert account.twilio_sends_opt_out_confirmation is True
    assert (account.support_phone, account.support_email) == ("+13125550100", "help@harbor.example")
    assert account.help_reply == AccountSettings().help_reply


def test_every_account_setting_can_be_written() -> None:
    """account.yaml accepts exactly the fields of AccountSettings (a new field fails here)."""
    assert set(ACCOUNT_FIELDS) == {f.name for f in fields(AccountSettings)}


def test_default_agent(tmp_path: Path) -> None:
    """default_agent is read as an AgentProfile; a bad phone is located."""
    path = write(
        tmp_path, 'default_agent: {first_name: Sam, last_name: Lee, phone: "+16175550100"}\n'
    )
    assert load_account(path).default_agent == AgentProfile("Sam", "Lee", "+16175550100")
    found = problems(tmp_path, "default_agent: {first_name: Sam, last_name: Lee, phone: x}\n")
    assert found == [
        (1, 57, 'default_agent: phone must be an E.164 phone number such as "+16175550100"')
    ]


def test_state_rules_override_and_extend_the_defaults(tmp_path: Path) -> None:
    """A row for FL replaces the bundled one, a new state is added, enabled: false turns WA off."""
    path = write(
        tmp_path,
        """\
        state_rules:
          - {state: FL, window: {start: "09:00", end: "19:00"}, max_per_24h: 2}
          - {state: NJ, window: {start: "09:00", end: "20:00"}, source: "counsel memo"}
          - {state: WA, enabled: false}
        """,
    )
    rules = {r.state: r for r in load_account(path).state_rules}
    bundled = {r.state: r for r in bundled_state_rules()}
    assert rules["FL"] == StateRule(
        "FL", SendWindow(time(9), time(19)), max_per_24h=2, source=f"{path}:2"
    )
    assert rules["NJ"].source == "counsel memo" and rules["NJ"].max_per_24h is None
    assert rules["OK"] == bundled["OK"]
    assert not rules["WA"].enabled and rules["WA"].window == bundled["WA"].window
    assert set(rules) == set(bundled) | {"NJ"}


def test_blackouts_are_read(tmp_path: Path) -> None:
    """A blackout names its states, from/until dates and reason; a reversed range is an error."""
    path = write(
        tmp_path,
        """\
        blackouts:
          - {states: [LA], from: "2026-08-28", until: 2026-09-04, reason: "declared emergency"}
        """,
    )
    assert load_account(path).blackouts == (
        Blackout(frozenset({"LA"}), date(2026, 8, 28), date(2026, 9, 4), "declared emergency"),
    )
    found = problems(
        tmp_path,
        'blackouts:\n  - {states: [LA], from: "2026-09-04", until: "2026-08-28", reason: x}\n',
    )
    assert [(line, message) for line, _, message in found] == [
        (2, "blackout 1: until 2026-08-28 is before from 2026-09-04")
    ]


def test_send_window_outside_federal_hours_is_an_error(tmp_path: Path) -> None:
    """An account send window reaching past 21:00 is refused, citing the federal rule."""
    ((line, _col, message),) = problems(tmp_path, 'send_window: {start: "08:00", end: "21:30"}\n')
    assert line == 1
    assert "outside the federal hours 08:00-21:00" in message
    assert "47 CFR 64.1200(c)(1)" in message


def test_unknown_field(tmp_path: Path) -> None:
    """An unknown field names the allowed ones."""
    ((line, col, message),) = problems(tmp_path, "company: Acme\ncompnay: Acme\n")
    assert (line, col) == (2, 1)
    assert message.startswith("unknown field 'compnay' in the account settings; did you mean")


def test_unknown_time_zone(tmp_path: Path) -> None:
    """A time zone that does not exist is an error at the value."""
    ((line, col, message),) = problems(tmp_path, "company: Acme\ndefault_timezone: Eastern\n")
    assert (line, col) == (2, 19)
    assert message.startswith("default_timezone 'Eastern' is not a known time zone")


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        (
            "Acme: texts. Msg & data rates may apply. Reply HELP for help, STOP to opt out.",
            "frequency",
        ),
        ("Acme: texts. Msg frequency varies. Reply HELP for help, STOP to opt out.", "rates"),
        ("Acme: texts. Msg frequency varies. Msg & data rates may apply. Reply STOP.", "HELP"),
        ("Acme: texts. Msg frequency varies. Msg & data rates may apply. Reply HELP.", "STOP"),
        ("Texts. Msg frequency varies. Msg & data rates may apply. Reply HELP, STOP.", "program"),
    ],
)
def test_opt_in_confirmation_checks(tmp_path: Path, text: str, missing: str) -> None:
    """Each element carriers require in the opt-in confirmation is checked, at the text."""
    found = problems(tmp_path, f'company: Acme\nopt_in_confirmation: "{text}"\n')
    assert len(found) == 1
    line, col, message = found[0]
    assert (line, col) == (2, 22)
    assert message.startswith("opt_in_confirmation must ")
    assert missing in message


def test_rates_phrase_accepts_message_and(tmp_path: Path) -> None:
    """'Message and data rates may apply' is the same phrase written out."""
    text = "Acme: Msg frequency varies. Message and data rates may apply. Reply HELP or STOP."
    assert compliance_problems("opt_in_confirmation", text, "Acme") == []


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("{CompanyName}: Msg & data rates may apply. Reply STOP to opt out.", "support"),
        ("{CompanyName}: help at {SupportEmail}. Reply STOP to opt out.", "rates"),
        ("{CompanyName}: call {SupportPhone}. Msg & data rates may apply.", "STOP"),
        ("Call {SupportPhone}. Msg & data rates may apply. Reply STOP to end.", "program"),
    ],
)
def test_help_reply_checks(text: str, missing: str) -> None:
    """The help reply names the program, support, STOP and the rates phrase."""
    (problem,) = compliance_problems("help_reply", text, "Acme")
    assert missing in problem


def test_help_reply_accepts_written_support_contacts() -> None:
    """A phone number or email written out is a way to reach support."""
    for support in ("(617) 555-0100", "help@acme.example"):
        text = f"Acme: help at {support}. Msg & data rates may apply. Reply STOP to opt out."
        assert compliance_problems("help_reply", text, "Acme") == []


def test_opt_out_confirmation_must_not_carry_a_link(tmp_path: Path) -> None:
    """No marketing in the STOP confirmation: a link is an error at the link."""
    text = "You have been unsubscribed. Reply START to resubscribe. See acme.example/deals"
    found = problems(tmp_path, f'opt_out_confirmation: "{text}"\n')
    assert found == [
        (1, 84, "opt_out_confirmation must carry no marketing: remove the link acme.example/deals")
    ]


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("You will receive no further messages. Reply START to resubscribe.", "unsubscribed"),
        ("You have been unsubscribed and will receive no further messages.", "START"),
    ],
)
def test_opt_out_confirmation_checks(text: str, missing: str) -> None:
    """The STOP confirmation says unsubscribed and how to come back."""
    (problem,) = compliance_problems("opt_out_confirmation", text, "Acme")
    assert missing in problem


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("You are subscribed again. Reply HELP for help, STOP to opt out.", "program"),
        ("{CompanyName}: subscribed again. Reply STOP to opt out.", "HELP"),
        ("{CompanyName}: subscribed again. Reply HELP for help.", "STOP"),
    ],
)
def test_resubscribe_confirmation_checks(text: str, missing: str) -> None:
    """The START confirmation names the program and gives HELP and STOP."""
    (problem,) = compliance_problems("resubscribe_confirmation", text, "Acme")
    assert missing in problem


def test_footer_must_say_how_to_opt_out(tmp_path: Path) -> None:
    """The account footer must name an opt-out keyword."""
    assert problems(tmp_path, 'footer: "Thanks for reading"\n') == [
        (1, 9, 'footer must tell how to opt out ("reply STOP" or "reply END")')
    ]


def test_unknown_variable_in_an_account_text(tmp_path: Path) -> None:
    """Account texts may use {SupportPhone}, but not a made-up name; the brace is located."""
    text = (
        "{CompanyName}: call {SupportPhone} or {Support}. Msg & data rates may apply. Reply STOP."
    )
    found = problems(tmp_path, f'help_reply: "{text}"\n')
    assert len(found) == 1
    assert found[0][:2] == (1, 52)
    assert "unknown template variable {Support}" in found[0][2]


def test_bad_phone_email_and_boolean(tmp_path: Path) -> None:
    """Support contacts and flags are checked for type and form, each at its value."""
    found = problems(
        tmp_path,
        """\
        support_phone: 617-555-0100
        support_email: nobody
        concierge_phone: "+16175550199"
        twilio_sends_opt_out_confirmation: "no"
        """,
    )
    assert [(line, col) for line, col, _ in found] == [(1, 16), (2, 16), (4, 36)]
    assert "E.164" in found[0][2]
    assert "email address" in found[1][2]
    assert found[2][2] == 'twilio_sends_opt_out_confirmation must be true or false, got a text "no"'


def test_state_rule_problems(tmp_path: Path) -> None:
    """A bad code, a bad window, a zero cap and a repeated state are each located."""
    found = problems(
        tmp_path,
        """\
        state_rules:
          - {state: fl, window: {start: "08:00", end: "20:00"}}
          - {state: OK, window: {start: "20:00", end: "08:00"}}
          - {state: MD, window: {start: "08:00", end: "20:00"}, max_per_24h: 0}
          - {state: TX, window: {start: "08:00", end: "20:00"}}
          - {state: TX, window: {start: "08:00", end: "20:00"}}
        """,
    )
    assert [(line, col) for line, col, _ in found] == [(2, 13), (3, 47), (4, 70), (6, 13)]
    assert "two-letter code" in found[0][2]
    assert "must be after its start" in found[1][2]
    assert "max_per_24h must not be less than 1" in found[2][2]
    assert found[3][2] == "state rule 5: TX already has a rule (line 5)"


def test_every_problem_of_the_file_is_reported(tmp_path: Path) -> None:
    """Problems in several fields are all reported, in file order."""
    found = problems(
        tmp_path,
        """\
        company: 12
        default_timezone: Nowhere/City
        send_window: {start: "9", end: "21:00"}
        opt_out_confirmation: "Bye"
        """,
    )
    assert [(line, col) for line, col, _ in found] == [(1, 10), (2, 19), (3, 22), (4, 23), (4, 23)]


def test_a_100000_character_help_text_is_checked_in_linear_time() -> None:
    """The support-contact check finds no address in 100,000 characters in well under a second."""
    import time

    from drip.campaigns.account_file import compliance_problems

    text = (
        "Acme Realty help " + "a" * 100_000 + " Reply STOP to opt out. Msg & data rates may apply."
    )
    # CPU time of this thread: the work the check does, not how long other tests held the cores.
    started = time.thread_time()
    problems = compliance_problems("help_reply", text, "Acme Realty")
    assert time.thread_time() - started < 1.0
    assert any("support" in p for p in problems)
    with_email = text + " Write to help@acme.example."
    assert not any("support" in p for p in compliance_problems("help_reply", with_email, "Acme"))
