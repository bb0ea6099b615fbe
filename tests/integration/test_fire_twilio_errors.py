"""Each Twilio error class, through the real SDK and the fake server, on the fire path."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from drip.domain.enums import ConsentEventKind, SendState, TextStatus
from drip.store import repository as repo

if TYPE_CHECKING:
    from conftest import Rig


def _two_steps(rig: Rig) -> tuple[int, list[int]]:
    """One contact on a day-0 and day-1 campaign; its id and its two send ids."""
    rig.add_campaign("two-steps", [0, 1])
    [contact] = rig.add_contacts(1)
    rig.enroll([contact], "two-steps")
    return contact, [s.id for s in rig.sends_of(contact)]


def _fire_step(rig: Rig, day: int) -> None:
    """Move to a minute after the step of ``day`` and fire what is due."""
    rig.at(rig.start + timedelta(days=day, minutes=1))
    rig.fire_due()


def test_21610_fails_the_send_opts_the_contact_out_and_skips_later_steps(rig: Rig) -> None:
    """Twilio 21610: the send fails, consent is revoked by the carrier, step 2 is skipped."""
    contact, (first, second) = _two_steps(rig)
    phone = rig.phone_of(0)
    rig.twilio.fail(phone, code=21610, status=400)

    rig.at(rig.start + timedelta(minutes=1))
    [result] = rig.fire_due()
    assert (result.send_id, result.outcome, result.code) == (first, "failed", "provider_opted_out")
    assert "unsubscribed" in result.reason
    row = rig.contact(contact)
    assert row.sms_opted_out_at == rig.now
    assert row.sms_opted_out_how == "carrier"
    with rig.deps.sessions() as session:
        events = repo.consent_events_of(session, contact)
        [message] = [m for m in repo.messages_of(session, contact) if m.send_id == first]
    assert [e.kind for e in events] == [ConsentEventKind.REVOKED_CARRIER]
    assert events[0].detail == "21610"
    assert (message.status, message.error_code) == ("failed", 21610)

    _fire_step(rig, 1)
    assert {s.id: (s.state, s.decision_code) for s in rig.sends_of(contact)} == {
        first: (SendState.FAILED, "provider_opted_out"),
        second: (SendState.SKIPPED, "opted_out"),
    }
    assert rig.twilio.count == 1  # the skipped step never reached Twilio


@pytest.mark.parametrize("code", [21211, 21612, 21614, 21635])
def test_an_undeliverable_number_is_marked_and_later_steps_are_skipped(rig: Rig, code: int) -> None:
    """21211/21612/21614/21635: text_status undeliverable with the code; step 2 skipped."""
    contact, (first, second) = _two_steps(rig)
    rig.twilio.fail(rig.phone_of(0), code=code, status=400)

    _fire_step(rig, 0)
    row = rig.contact(contact)
    assert (row.text_status, row.undeliverable_code) == (TextStatus.UNDELIVERABLE, code)
    assert row.sms_opted_out_at is None  # undeliverable is not an opt-out

    _fire_step(rig, 1)
    assert {s.id: (s.state, s.decision_code) for s in rig.sends_of(contact)} == {
        first: (SendState.FAILED, "provider_undeliverable"),
        second: (SendState.SKIPPED, "undeliverable"),
    }
    assert rig.twilio.count == 1


def test_20429_is_retried_and_then_sent_once(rig: Rig) -> None:
    """Two 429/20429 refusals, then acceptance: one message, sent, with the accepted sid."""
    contact, (first, _) = _two_steps(rig)
    rig.twilio.fail(rig.phone_of(0), code=20429, status=429, times=2)

    rig.at(rig.start + timedelta(minutes=1))
    [result] = rig.fire_due()
    assert (result.outcome, result.code) == ("sent", "F1")
    assert (rig.twilio.count, rig.twilio.accepted) == (3, 1)
    accepted = [r for r in rig.twilio.requests if r.status == 201]
    with rig.deps.sessions() as session:
        messages = [m for m in repo.messages_of(session, contact) if m.send_id == first]
    assert [(m.status, m.provider_sid, m.error_code) for m in messages] == [
        ("queued", accepted[0].sid, None)
    ]
    assert rig.sends_of(contact)[0].state is SendState.SENT


def test_a_5xx_is_unknown_and_never_retried(rig: Rig) -> None:
    """A 503 (maybe accepted by Twilio behind a gateway): one request, unknown, step 2 still goes."""
    contact, (first, second) = _two_steps(rig)
    rig.twilio.fail(rig.phone_of(0), code=20500, status=503, times=4)

    rig.at(rig.start + timedelta(minutes=1))
    [result] = rig.fire_due()
    assert (result.outcome, result.code) == ("unknown", "provider_unknown")
    assert "20500" in result.reason
    assert rig.twilio.count == 1
    with rig.deps.sessions() as session:
        [message] = [m for m in repo.messages_of(session, contact) if m.send_id == first]
        [decision] = repo.decisions_of(session, first)
    assert (message.status, message.error_code) == ("unknown", 20500)
    assert (decision.outcome, decision.code) == ("unknown", "provider_unknown")
    assert rig.contact(contact).text_status is TextStatus.TEXTABLE

    rig.twilio.reset()
    _fire_step(rig, 1)
    assert [(s.id, s.state) for s in rig.sends_of(contact)] == [
        (first, SendState.UNKNOWN),
        (second, SendState.SENT),
    ]
    assert rig.twilio.count == 1


def test_429_past_the_retries_defers_the_send_and_it_goes_out_later(rig: Rig) -> None:
    """429 on every try: deferred (provider_unavailable) with a backoff, then sent once it is back."""
    contact, (first, _) = _two_steps(rig)
    rig.twilio.fail(rig.phone_of(0), code=20429, status=429, times=4)

    fired_at = rig.at(rig.start + timedelta(minutes=1))
    [result] = rig.fire_due()
    assert (result.outcome, result.code) == ("deferred", "provider_unavailable")
    assert result.deferred_until is not None and result.deferred_until > fired_at
    assert rig.twilio.count == 4 and rig.twilio.accepted == 0
    send = rig.sends_of(contact)[0]
    assert (send.state, send.due_at) == (SendState.PENDING, result.deferred_until)

    rig.at(result.deferred_until)
    [again] = rig.fire_due()
    assert (again.send_id, again.outcome) == (first, "sent")
    assert rig.twilio.accepted == 1


def test_wrong_credentials_open_the_circuit_and_sends_stay_pending(rig: Rig) -> None:
    """401/20003: one request, the send stays pending; later sends are not even tried."""
    rig.add_campaign("one-step", [0])
    contacts = rig.add_contacts(3)
    rig.enroll(contacts, "one-step")
    for index in range(3):
        rig.twilio.fail(rig.phone_of(index), code=20003, status=401)

    rig.at(rig.start + timedelta(minutes=1))
    results = rig.fire_due()
    assert {(r.outcome, r.code) for r in results} == {("deferred", "provider_auth_failed")}
    assert rig.twilio.count == 1
    states = [s.state for c in contacts for s in rig.sends_of(c)]
    assert states == [SendState.PENDING] * 3

    for index in range(3):
        rig.twilio.fail(rig.phone_of(index), code=21610, status=400, times=None)
    rig.twilio.reset()  # the credentials work again
    rig.at(max(r.deferred_until for r in results if r.deferred_until is not None))
    later = rig.fire_due()
    assert sorted(r.outcome for r in later) == ["sent"] * 3
    assert rig.twilio.accepted == 3


def test_30007_and_other_errors_fail_the_send_with_the_code_only(rig: Rig) -> None:
    """30007 (carrier filtered): failed with the code, not retried; the contact stays textable."""
    contact, (first, second) = _two_steps(rig)
    rig.twilio.fail(rig.phone_of(0), code=30007, status=400, times=1)

    rig.at(rig.start + timedelta(minutes=1))
    [result] = rig.fire_due()
    assert (result.send_id, result.outcome, result.code) == (first, "failed", "provider_failed")
    assert rig.twilio.count == 1
    with rig.deps.sessions() as session:
        [message] = [m for m in repo.messages_of(session, contact) if m.send_id == first]
    assert (message.status, message.error_code) == ("failed", 30007)
    row = rig.contact(contact)
    assert (row.text_status, row.sms_opted_out_at) == (TextStatus.TEXTABLE, None)

    _fire_step(rig, 1)
    assert [s.state for s in rig.sends_of(contact)] == [SendState.FAILED, SendState.SENT]
    assert rig.twilio.count == 2
    assert rig.sends_of(contact)[1].id == second
