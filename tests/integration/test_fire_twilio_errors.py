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


def test_5xx_beyond_the_retry_bound_fails_with_the_code_and_leaves_the_contact_textable(
    rig: Rig,
) -> None:
    """Four 503s (the first try and 3 retries): failed with the code; step 2 still goes out."""
    contact, (first, second) = _two_steps(rig)
    rig.twilio.fail(rig.phone_of(0), code=20500, status=503, times=4)

    rig.at(rig.start + timedelta(minutes=1))
    [result] = rig.fire_due()
    assert (result.outcome, result.code) == ("failed", "provider_retryable")
    assert "20500" in result.reason
    assert rig.twilio.count == 4
    with rig.deps.sessions() as session:
        [message] = [m for m in repo.messages_of(session, contact) if m.send_id == first]
        [decision] = repo.decisions_of(session, first)
    assert (message.status, message.error_code) == ("failed", 20500)
    assert (decision.outcome, decision.code) == ("failed", "provider_retryable")
    assert rig.contact(contact).text_status is TextStatus.TEXTABLE

    _fire_step(rig, 1)
    assert [(s.id, s.state) for s in rig.sends_of(contact)] == [
        (first, SendState.FAILED),
        (second, SendState.SENT),
    ]
    assert rig.twilio.count == 5


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
