"""The reassigned-numbers check on the fire path, through the real twilio SDK and the fake server."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select, update

from drip.bootstrap import build_lookup
from drip.domain.account import AccountSettings
from drip.domain.enums import ConsentEventKind
from drip.domain.pacing import Senders
from drip.domain.reassigned import BACKOFF_BASE, ReassignedNumbers
from drip.services.circuit import circuit_for
from drip.store import repository as repo
from drip.store.models import Contact, NumberCheck
from drip.transports.base import ErrorClass
from drip.transports.lookup import LookupFailedError
from drip.transports.twilio_lookup import TwilioLookup

if TYPE_CHECKING:
    from conftest import Rig, RigFactory

    from drip.services.fire import FireResult
    from drip.testing.fake_twilio import FakeTwilioServer


def _checking(make_rig: RigFactory, **settings: Any) -> Rig:
    """A rig whose account checks reassigned numbers (``settings`` override the section)."""
    rig = make_rig(**settings.pop("rig", {}))
    section = ReassignedNumbers(enabled=True, **settings)
    account = AccountSettings(senders=Senders(default_rate=10_000), reassigned_numbers=section)
    rig.deps = replace(rig.deps, account=account, lookup=build_lookup(rig.deps.settings))
    return rig


def _enrolled(rig: Rig, days: list[int], *, name: str = "nurture") -> int:
    """One contact (consent now) enrolled in a campaign with a step on each of ``days``."""
    rig.add_campaign(name, days)
    [contact] = rig.add_contacts(1)
    rig.enroll([contact], name)
    return contact


def _fire_day(rig: Rig, day: int) -> list[FireResult]:
    rig.at(rig.start + timedelta(days=day, minutes=1))
    return rig.fire_due()


def test_a_reassigned_number_voids_consent_and_skips_the_text(make_rig: RigFactory) -> None:
    """Lookup says yes: the day-45 text is skipped, consent void, the answer kept as evidence."""
    rig = _checking(make_rig)
    contact = _enrolled(rig, [0, 45])
    [first] = _fire_day(rig, 0)
    assert first.outcome == "sent"
    assert rig.twilio.lookups == []  # fresh consent: no check
    rig.twilio.mark_reassigned(rig.phone_of(0), date(2026, 4, 1))

    [result] = _fire_day(rig, 45)
    assert (result.outcome, result.code) == ("skipped", "number_reassigned")
    assert rig.twilio.lookups == [(rig.phone_of(0), "20260302")]
    assert rig.twilio.count == 1  # the skipped text never reached Messages
    assert rig.contact(contact).sms_consent_at is None
    with rig.deps.sessions() as session:
        events = repo.consent_events_of(session, contact)
    [voided] = [e for e in events if e.kind is ConsentEventKind.NUMBER_REASSIGNED]
    assert voided.source == "reassigned_numbers"
    assert json.loads(voided.evidence or "{}") == {
        "last_verified_date": "2026-03-02",
        "is_number_reassigned": "yes",
        "error_code": None,
    }
    assert rig.phone_of(0) not in (voided.evidence or "")


def test_not_reassigned_records_the_verification_and_the_next_text_needs_no_lookup(
    make_rig: RigFactory,
) -> None:
    """Lookup says no: the text goes, the verification is kept, day 60 is sent unchecked."""
    rig = _checking(make_rig)
    contact = _enrolled(rig, [0, 45, 60])
    _fire_day(rig, 0)
    [day45] = _fire_day(rig, 45)
    assert day45.outcome == "sent"
    assert "reassigned-numbers check: the number was not reassigned since 2026-03-02" in (
        day45.reason
    )
    assert len(rig.twilio.lookups) == 1
    with rig.deps.sessions() as session:
        [kept] = session.scalars(select(NumberCheck)).all()
    assert (kept.answer, kept.last_verified_date, kept.contact_id) == (
        "no",
        date(2026, 3, 2),
        contact,
    )
    assert kept.checked_at == rig.now
    [day60] = _fire_day(rig, 60)
    assert day60.outcome == "sent"
    assert len(rig.twilio.lookups) == 1  # verified 15 days ago: within max_age_days


def test_one_answer_per_number_and_date_is_asked_once(make_rig: RigFactory) -> None:
    """Two texts to one reassigned number in one batch: one Lookup, both skipped."""
    rig = _checking(make_rig)
    rig.add_campaign("a", [45])
    rig.add_campaign("b", [45])
    [contact] = rig.add_contacts(1)
    rig.enroll([contact], "a")
    rig.enroll([contact], "b")
    rig.twilio.mark_reassigned(rig.phone_of(0), date(2026, 4, 1))
    results = _fire_day(rig, 45)
    assert sorted(r.code for r in results) == ["number_reassigned", "number_reassigned"]
    assert len(rig.twilio.lookups) == 1


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("refuse", 503, 20503), ("refuse", 500, 20500), ("malformed", 200, 0)],
)
def test_no_answer_defers_with_backoff_and_never_sends_unchecked(
    make_rig: RigFactory, kind: str, status: int, code: int
) -> None:
    """An outage or a malformed answer: deferred (reassigned_check_unavailable), then sent."""
    rig = _checking(make_rig)
    contact = _enrolled(rig, [45])
    rig.twilio.lookup_fault(kind, status=status, code=code)
    [result] = _fire_day(rig, 45)
    assert (result.outcome, result.code) == ("deferred", "reassigned_check_unavailable")
    assert result.deferred_until == rig.now + BACKOFF_BASE
    assert rig.twilio.count == 0
    assert rig.contact(contact).sms_consent_at is not None

    rig.twilio.lookup_fault(None)
    rig.at(rig.now + BACKOFF_BASE)
    [later] = rig.fire_due()
    assert later.outcome == "sent"
    assert rig.twilio.count == 1


def test_a_slow_lookup_times_out_and_defers(make_rig: RigFactory) -> None:
    """A Lookup held past DRIP_LOOKUP_TIMEOUT_SECONDS: deferred, nothing sent."""
    rig = _checking(make_rig, rig={"lookup_timeout_seconds": 1})
    _enrolled(rig, [45])
    rig.twilio.lookup_fault("hang", hang=2.5)
    [result] = _fire_day(rig, 45)
    assert (result.outcome, result.code) == ("deferred", "reassigned_check_unavailable")
    assert rig.twilio.count == 0


@pytest.mark.parametrize(("on_unknown", "outcome"), [("defer", "deferred"), ("send", "sent")])
def test_no_data_for_an_old_date_follows_on_unknown(
    make_rig: RigFactory, on_unknown: str, outcome: str
) -> None:
    """Consent from 2020 gets no_data_available: deferred under defer, sent under send."""
    rig = _checking(make_rig, on_unknown=on_unknown)
    contact = _enrolled(rig, [45])
    with rig.deps.sessions.begin() as session:
        session.execute(
            update(Contact)
            .where(Contact.id == contact)
            .values(sms_consent_at=datetime(2020, 6, 1, tzinfo=UTC))
        )
    [result] = _fire_day(rig, 45)
    assert result.outcome == outcome
    if outcome == "sent":
        assert "sent unchecked: no answer from the reassigned-numbers check" in result.reason
        assert "no disconnection data for 2020-06-01" in result.reason
    assert rig.twilio.lookups == [(rig.phone_of(0), "20200601")]
    with rig.deps.sessions() as session:
        assert session.scalars(select(NumberCheck)).all() == []  # no answer is not kept


def test_lookup_auth_failure_opens_the_provider_circuit(make_rig: RigFactory) -> None:
    """401/20003 from Lookup: deferred provider_auth_failed; Messages waits on the same circuit."""
    rig = _checking(make_rig)
    _enrolled(rig, [45])
    rig.twilio.lookup_fault("refuse", status=401, code=20003)
    [result] = _fire_day(rig, 45)
    assert (result.outcome, result.code) == ("deferred", "provider_auth_failed")
    circuit = circuit_for(rig.deps.sms, "twilio")
    assert circuit.blocked_until(rig.now) is not None
    assert "20003" in circuit.reason
    assert rig.twilio.count == 0


def test_the_fake_answers_lookup_as_twilio_documents(fake_twilio: FakeTwilioServer) -> None:
    """The real SDK against the fake: yes/no/no-data answers, 404 for a bad number, 401."""
    lookup = TwilioLookup(
        fake_twilio.account_sid, fake_twilio.auth_token, base_url=fake_twilio.base_url
    )
    phone = "+16172000001"
    fake_twilio.mark_reassigned(phone, date(2026, 5, 1))
    assert lookup.reassigned(phone, date(2026, 4, 30)).is_number_reassigned == "yes"
    answer = lookup.reassigned(phone, date(2026, 5, 2))
    assert (answer.is_number_reassigned, answer.last_verified_date) == ("no", "2026-05-02")
    assert lookup.reassigned("+16172000002", date(2020, 12, 31)).is_number_reassigned == (
        "no_data_available"
    )
    with pytest.raises(LookupFailedError) as bad:
        lookup.reassigned("not-a-number", date(2026, 1, 1))
    assert (bad.value.status, bad.value.code, bad.value.error_class) == (
        404,
        20404,
        ErrorClass.FAILED,
    )
    wrong = TwilioLookup(fake_twilio.account_sid, "wrong", base_url=fake_twilio.base_url)
    with pytest.raises(LookupFailedError) as refused:
        wrong.reassigned(phone, date(2026, 1, 1))
    assert (refused.value.code, refused.value.error_class) == (20003, ErrorClass.AUTH)
    assert fake_twilio.lookups[0] == (phone, "20260430")


def test_control_endpoints_mark_a_number_and_set_a_lookup_fault(
    fake_twilio: FakeTwilioServer,
) -> None:
    """POST /_fake/reassigned and /_fake/lookup_fault reach a server in another process."""
    import urllib3

    http = urllib3.PoolManager()
    phone = "+16172000003"
    marked = http.request(
        "POST",
        f"{fake_twilio.base_url}/_fake/reassigned",
        fields={"phone": phone, "since": "2026-05-01"},
        encode_multipart=False,
    )
    assert marked.status == 200
    bad = http.request(
        "POST",
        f"{fake_twilio.base_url}/_fake/reassigned",
        fields={"phone": phone, "since": "May 1st"},
        encode_multipart=False,
    )
    assert bad.status == 400 and b"bad /_fake/reassigned request" in bad.data
    lookup = TwilioLookup(
        fake_twilio.account_sid, fake_twilio.auth_token, base_url=fake_twilio.base_url
    )
    assert lookup.reassigned(phone, date(2026, 4, 1)).is_number_reassigned == "yes"
    faulted = http.request(
        "POST",
        f"{fake_twilio.base_url}/_fake/lookup_fault",
        fields={"kind": "refuse", "status": "500", "code": "20500"},
        encode_multipart=False,
    )
    assert faulted.status == 200
    with pytest.raises(LookupFailedError) as caught:
        lookup.reassigned(phone, date(2026, 4, 1))
    assert (caught.value.status, caught.value.error_class) == (500, ErrorClass.UNKNOWN)
    cleared = http.request(
        "POST",
        f"{fake_twilio.base_url}/_fake/lookup_fault",
        fields={"kind": ""},
        encode_multipart=False,
    )
    assert cleared.status == 200
    assert lookup.reassigned(phone, date(2026, 5, 2)).is_number_reassigned == "no"
