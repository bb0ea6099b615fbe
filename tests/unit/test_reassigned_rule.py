"""Reassigned numbers: the pure rule, the settings as read from YAML, and reading Lookup's answer."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from drip.campaigns.account_file import load_account
from drip.domain.enums import Channel, MessageKind
from drip.domain.policy import Defer, DeferCode, Skip, SkipCode
from drip.domain.reassigned import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    LookupAnswer,
    Proceed,
    Reassigned,
    ReassignedNumbers,
    check_date,
    number_digest,
    verdict,
)
from drip.errors import CampaignError, ValidationError
from drip.replay.scenario import LookupOutage, NumberReassigned, ScenarioError, load_scenario
from drip.replay.scenario.values import DayTime
from drip.services.fire.reassigned import read_answer
from drip.transports.base import ErrorClass
from drip.transports.lookup import (
    LookupFailedError,
    ReassignedAnswer,
    RecordingLookup,
    rnd_answer,
)
from drip.transports.twilio_lookup import parse_reassigned

ON = ReassignedNumbers(enabled=True)
NOW = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def _date(consent: datetime, verified: datetime | None = None, **kw: object) -> date | None:
    args: dict[str, object] = {
        "kind": MessageKind.CAMPAIGN,
        "channel": Channel.SMS,
        "consent_at": consent,
        "verified_at": verified,
        "now": NOW,
    }
    args.update(kw)
    settings = args.pop("settings", ON)
    assert isinstance(settings, ReassignedNumbers)
    return check_date(settings, **args)  # type: ignore[arg-type]


def test_only_old_consent_on_campaign_and_bulk_texts_is_checked() -> None:
    """Consent older than max_age_days on a campaign or bulk text: checked with its UTC date."""
    old = NOW - timedelta(days=31)
    assert _date(old) == old.date()
    assert _date(old, kind=MessageKind.BULK) == old.date()
    assert _date(NOW - timedelta(days=30)) is None  # exactly max_age_days: still fresh
    assert _date(old, kind=MessageKind.MANUAL) is None
    assert _date(old, kind=MessageKind.OPT_IN_CONFIRMATION) is None
    assert _date(old, channel=Channel.EMAIL) is None
    assert _date(old, settings=ReassignedNumbers()) is None  # off by default
    assert _date(None) is None  # type: ignore[arg-type]


def test_a_recent_verification_replaces_the_consent_date() -> None:
    """The later of consent and last verification counts; a recent one needs no check."""
    consent = NOW - timedelta(days=400)
    assert _date(consent, NOW - timedelta(days=10)) is None
    verified = NOW - timedelta(days=45)
    assert _date(consent, verified) == verified.date()
    late_evening = datetime(2026, 3, 1, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    assert _date(late_evening) == date(2026, 3, 2)  # the UTC date of the instant


def test_yes_skips_no_proceeds_and_unknown_follows_on_unknown() -> None:
    """yes: skip (number_reassigned); no: go, verified; unknown: defer with backoff or send."""
    asked = date(2026, 3, 1)
    yes = verdict(ON, LookupAnswer(Reassigned.YES, asked, "{}"), NOW, 1)
    assert isinstance(yes, Skip) and yes.code is SkipCode.NUMBER_REASSIGNED
    assert "2026-03-01" in yes.reason
    no = verdict(ON, LookupAnswer(Reassigned.NO, asked, "{}"), NOW, 1)
    assert no == Proceed(True, "the number was not reassigned since 2026-03-01")
    unknown = LookupAnswer(Reassigned.UNKNOWN, asked, "", "HTTP 503")
    first = verdict(ON, unknown, NOW, 1)
    assert isinstance(first, Defer)
    assert (first.code, first.until) == (DeferCode.REASSIGNED_CHECK_UNAVAILABLE, NOW + BACKOFF_BASE)
    assert "HTTP 503" in first.reason and "never sent unchecked" in first.reason
    third = verdict(ON, unknown, NOW, 3)
    assert isinstance(third, Defer) and third.until == NOW + BACKOFF_BASE * 4
    capped = verdict(ON, unknown, NOW, 30)
    assert isinstance(capped, Defer) and capped.until == NOW + BACKOFF_CAP
    send = verdict(ReassignedNumbers(enabled=True, on_unknown="send"), unknown, NOW, 1)
    assert isinstance(send, Proceed) and send.verified is False


def test_settings_refuse_impossible_values() -> None:
    """max_age_days outside 1..3650 and an unknown on_unknown are refused."""
    with pytest.raises(ValidationError, match="max_age_days"):
        ReassignedNumbers(max_age_days=0)
    with pytest.raises(ValidationError, match="on_unknown"):
        ReassignedNumbers(on_unknown="skip")


def test_the_digest_is_keyed_and_hides_the_number() -> None:
    """The kept digest depends on the key and does not contain the number."""
    a = number_digest("k1", "+16175550123")
    assert a != number_digest("k2", "+16175550123")
    assert "6175550123" not in a and len(a) == 64


def _account_problems(tmp_path: Path, text: str) -> list[tuple[int, int, str]]:
    path = tmp_path / "account.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(CampaignError) as info:
        load_account(path)
    found = []
    for problem in info.value.problems:
        m = re.match(r"^.+:(\d+):(\d+): error: (.*)$", problem)
        assert m is not None, problem
        found.append((int(m.group(1)), int(m.group(2)), m.group(3)))
    return found


def test_account_yaml_reads_the_section_and_defaults_it(tmp_path: Path) -> None:
    """reassigned_numbers in account.yaml is read; left out, the check is off with 30 and defer."""
    path = tmp_path / "account.yaml"
    path.write_text("reassigned_numbers: {enabled: true, max_age_days: 90}\n", encoding="utf-8")
    assert load_account(path).reassigned_numbers == ReassignedNumbers(True, 90, "defer")
    path.write_text("company: Acme\n", encoding="utf-8")
    assert load_account(path).reassigned_numbers == ReassignedNumbers(False, 30, "defer")


def test_account_yaml_errors_are_located(tmp_path: Path) -> None:
    """A bad value or an unknown field of reassigned_numbers is an error at its place."""
    found = _account_problems(tmp_path, "reassigned_numbers:\n  enabled: true\n  ttl: 3\n")
    assert found[0][:2] == (3, 3) and "unknown field 'ttl' in reassigned_numbers" in found[0][2]
    found = _account_problems(
        tmp_path,
        """\
        reassigned_numbers:
          enabled: yes please
          max_age_days: 0
          on_unknown: skip
        """,
    )
    lines = {line: msg for line, _col, msg in found}
    assert "enabled must be true or false" in lines[2]
    assert "max_age_days" in lines[3]
    assert "on_unknown must be one of defer | send" in lines[4]


def test_a_scenario_turns_the_check_on_and_reads_its_events(tmp_path: Path) -> None:
    """Top-level reassigned_numbers and the number_reassigned / lookup_outage_until events."""
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            start: "2026-06-01 10:00"
            timezone: America/New_York
            reassigned_numbers: {enabled: true, on_unknown: send}
            agent: {first_name: Sam, phone: "+16175550100"}
            contact: {first_name: Dana, phone: "+16175550123"}
            events:
              - {at: day 3, number_reassigned: true}
              - {at: day 4 09:00, lookup_outage_until: "day 5 09:00"}
            """
        ),
        encoding="utf-8",
    )
    s = load_scenario(path, project=REPO)
    assert s.account.reassigned_numbers == ReassignedNumbers(True, 30, "send")
    assert [e.action for e in s.events] == [
        NumberReassigned(),
        LookupOutage(DayTime(5, datetime(2000, 1, 1, 9, 0).time())),
    ]


def test_a_scenario_refuses_number_reassigned_false_and_an_outage_ending_early(
    tmp_path: Path,
) -> None:
    """number_reassigned: false means nothing; an outage must end after it starts."""
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            start: "2026-06-01 10:00"
            agent: {first_name: Sam, phone: "+16175550100"}
            contact: {first_name: Dana, phone: "+16175550123"}
            events:
              - {at: day 3, number_reassigned: false}
              - {at: day 4 09:00, lookup_outage_until: "day 4 08:00"}
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path, project=REPO)
    text = "\n".join(caught.value.problems)
    assert ":5:" in text and "only true means something" in text
    assert "lookup_outage_until day 4 08:00 must be after day 4 09:00" in text


def test_the_answer_rule_follows_the_disconnection_date() -> None:
    """yes on or after the disconnection; no_data before 27 January 2021; no otherwise."""
    assert rnd_answer(date(2026, 5, 1), date(2026, 5, 1)) == "yes"
    assert rnd_answer(date(2026, 5, 1), date(2026, 5, 2)) == "no"
    assert rnd_answer(None, date(2020, 12, 31)) == "no_data_available"
    assert rnd_answer(None, date(2021, 1, 26)) == "no_data_available"
    assert rnd_answer(None, date(2021, 1, 27)) == "no"


def test_reading_lookups_answer() -> None:
    """yes/no are answers; no data, an error code or another date than asked are not."""
    asked = date(2026, 3, 2)

    def read(said: str | None, when: str | None = "2026-03-02", code: int | None = None) -> str:
        return read_answer(ReassignedAnswer(said, when, code, "{}"), asked).status.value

    assert read("yes") == "yes"
    assert read("no") == "no"
    assert read("no", "20260302") == "no"
    assert read("no_data_available") == "unknown"
    assert read("no", code=60600) == "unknown"
    assert read("no", "2026-03-01") == "unknown"
    assert read(None) == "unknown"
    assert read("maybe") == "unknown"


def test_a_malformed_reassigned_number_object_is_no_answer() -> None:
    """Not an object, or fields of the wrong type: LookupFailedError of class unknown."""
    for bad in (None, "yes", {"is_number_reassigned": True}, {"error_code": [1]}):
        with pytest.raises(LookupFailedError) as caught:
            parse_reassigned(bad)
        assert caught.value.error_class is ErrorClass.UNKNOWN
    good = parse_reassigned(
        {"last_verified_date": "2026-03-02", "is_number_reassigned": "no", "error_code": None}
    )
    assert (good.is_number_reassigned, good.error_code) == ("no", None)


def test_the_recording_lookup_fails_until_its_clock_reaches_the_end() -> None:
    """fail(until=...) raises before that instant and answers after it."""

    class Clock:
        at = NOW

        def now(self) -> datetime:
            return self.at

    clock = Clock()
    lookup = RecordingLookup(clock=clock)
    lookup.mark_reassigned("+16175550123", date(2026, 5, 1))
    lookup.fail(503, 20503, until=NOW + timedelta(hours=1))
    with pytest.raises(LookupFailedError) as caught:
        lookup.reassigned("+16175550123", date(2026, 4, 1))
    assert caught.value.error_class is ErrorClass.UNKNOWN
    clock.at = NOW + timedelta(hours=1)
    assert lookup.reassigned("+16175550123", date(2026, 4, 1)).is_number_reassigned == "yes"
    assert lookup.calls == 2


def test_bootstrap_builds_twilio_lookup_only_with_twilio_and_the_check_on(tmp_path: Path) -> None:
    """build_lookup: Twilio Lookup with the settings' base URL and timeout; None without Twilio."""
    from drip.bootstrap import build
    from drip.config import Settings
    from drip.domain.account import AccountSettings
    from drip.transports.twilio_lookup import TwilioLookup

    twilio = Settings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'd.db'}",
        outbox=tmp_path / "outbox.jsonl",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="token",
        twilio_base_url="http://127.0.0.1:9",
        lookup_timeout_seconds=2,
    )
    console = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'd.db'}")
    on = build(twilio, account=AccountSettings(reassigned_numbers=ON))
    off = build(twilio, account=AccountSettings())
    untwilioed = build(console, account=AccountSettings(reassigned_numbers=ON))
    try:
        assert isinstance(on.lookup, TwilioLookup)
        assert on.lookup.base_url == "http://127.0.0.1:9"
        assert off.lookup is None  # the check is off: no client is built
        assert untwilioed.lookup is None  # no Twilio: the check has no source
    finally:
        for deps in (on, off, untwilioed):
            deps.engine.dispose()
