"""The recording transport: what was sent, in order, and injected failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drip.clock import VirtualClock
from drip.errors import TransportError
from drip.transports.base import ErrorClass, OutboundEmail, OutboundSms, SmsSendError
from drip.transports.recording import RecordingTransport, SentEmail, SentSms

AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_records_texts_and_emails_in_order_with_deterministic_ids() -> None:
    """Accepted messages are kept in order with the clock's time and counter-based ids."""
    clock = VirtualClock(AT)
    transport = RecordingTransport(clock=clock)
    first = transport.send_sms(OutboundSms("+1", "+16175550123", "one"))
    transport.send_email(OutboundEmail("a@x.test", "b@y.test", "s", "two"))
    transport.send_sms(OutboundSms("+1", "+16175550124", "three"))

    assert first.sid == "REC" + "0" * 31 + "1"
    assert first.status == "queued"
    sent = transport.sent
    assert [type(item) for item in sent] == [SentSms, SentEmail, SentSms]
    assert [item.msg.body for item in sent] == ["one", "two", "three"]
    assert all(item.at == AT for item in sent)
    assert [s.msg.to for s in transport.sms] == ["+16175550123", "+16175550124"]
    assert len(transport.emails) == 1


def test_injected_failure_raises_the_twilio_error_and_records_nothing() -> None:
    """A failure given in the constructor raises SmsSendError with the Twilio class and code."""
    transport = RecordingTransport(failures={"+16175550123": (21610, 400)})
    with pytest.raises(SmsSendError) as info:
        transport.send_sms(OutboundSms("+1", "+16175550123", "hi"))
    assert info.value.error_class is ErrorClass.OPTED_OUT
    assert info.value.code == 21610
    assert info.value.retryable is False
    assert transport.sent == []
    assert transport.attempts == 1
    transport.send_sms(OutboundSms("+1", "+16175550999", "other number is fine"))
    assert len(transport.sms) == 1


def test_limited_failure_stops_after_the_given_times() -> None:
    """A failure for two sends fails twice with a retryable error, then the number works."""
    transport = RecordingTransport()
    transport.fail("+16175550123", code=20429, status=429, times=2)
    for _ in range(2):
        with pytest.raises(SmsSendError) as info:
            transport.send_sms(OutboundSms("+1", "+16175550123", "hi"))
        assert info.value.retryable is True
    receipt = transport.send_sms(OutboundSms("+1", "+16175550123", "hi"))
    assert transport.sms[0].sid == receipt.sid
    assert transport.attempts == 3


def test_email_failure_and_reset() -> None:
    """An injected email failure raises TransportError; reset forgets failures and history."""
    transport = RecordingTransport()
    transport.fail_email("b@y.test", code=451, retryable=True)
    with pytest.raises(TransportError) as info:
        transport.send_email(OutboundEmail("a@x.test", "b@y.test", "s", "b"))
    assert info.value.code == 451
    assert info.value.retryable is True
    transport.send_sms(OutboundSms("+1", "+2", "kept until reset"))
    transport.reset()
    transport.send_email(OutboundEmail("a@x.test", "b@y.test", "s", "b"))
    assert [type(item) for item in transport.sent] == [SentEmail]
    assert transport.attempts == 1
