"""The transport values and the classification of Twilio refusals."""

from __future__ import annotations

import dataclasses

import pytest

from drip.errors import TransportError
from drip.transports.base import (
    ErrorClass,
    OutboundEmail,
    OutboundSms,
    SmsSendError,
    classify_twilio_error,
    sms_send_error,
)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 20429, ErrorClass.RETRYABLE),
        (429, None, ErrorClass.RETRYABLE),
        (400, 20429, ErrorClass.RETRYABLE),
        (500, 20500, ErrorClass.UNKNOWN),
        (502, None, ErrorClass.UNKNOWN),
        (503, 20503, ErrorClass.UNKNOWN),
        (599, None, ErrorClass.UNKNOWN),
        (400, 21610, ErrorClass.OPTED_OUT),
        (400, 21211, ErrorClass.UNDELIVERABLE),
        (400, 21612, ErrorClass.UNDELIVERABLE),
        (400, 21614, ErrorClass.UNDELIVERABLE),
        (400, 21635, ErrorClass.UNDELIVERABLE),
        (400, 30007, ErrorClass.FAILED),
        (400, 21602, ErrorClass.FAILED),
        (401, 20003, ErrorClass.AUTH),
        (401, None, ErrorClass.AUTH),
        (404, 20404, ErrorClass.FAILED),
        (400, None, ErrorClass.FAILED),
        (600, None, ErrorClass.FAILED),
    ],
)
def test_classify_twilio_error_table(status: int, code: int | None, expected: ErrorClass) -> None:
    """Each HTTP status / Twilio code pair falls in the class the transport contract gives it."""
    assert classify_twilio_error(status, code) is expected


def test_specific_code_wins_over_a_server_error_status() -> None:
    """An opt-out code is an opt-out even if it came with a 5xx status, never a retry."""
    assert classify_twilio_error(503, 21610) is ErrorClass.OPTED_OUT


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(429, 20429, True), (503, None, False), (400, 21610, False), (400, 30007, False)],
)
def test_sms_send_error_is_a_transport_error_with_class(
    status: int, code: int | None, retryable: bool
) -> None:
    """The built error is a TransportError whose retryable flag follows its class."""
    error = sms_send_error(status, code, "detail", "+16175550123")
    assert isinstance(error, TransportError)
    assert isinstance(error, SmsSendError)
    assert error.retryable is retryable
    assert error.code == code
    assert error.status == status
    assert error.error_class is classify_twilio_error(status, code)
    assert "+16175550123" in str(error)


def test_outbound_email_headers_are_frozen_and_hashable() -> None:
    """Headers given as a dict are stored immutably, so the email value hashes and compares."""
    headers = {"List-Unsubscribe": "<https://x/u/1>", "List-Unsubscribe-Post": "One-Click"}
    email = OutboundEmail("a@x.test", "b@y.test", "Subject", "Body", headers)
    headers["List-Unsubscribe"] = "changed"
    assert email.headers["List-Unsubscribe"] == "<https://x/u/1>"
    assert list(email.headers) == ["List-Unsubscribe", "List-Unsubscribe-Post"]
    same = OutboundEmail(
        "a@x.test",
        "b@y.test",
        "Subject",
        "Body",
        {"List-Unsubscribe": "<https://x/u/1>", "List-Unsubscribe-Post": "One-Click"},
    )
    assert email == same
    assert hash(email) == hash(same)
    with pytest.raises(TypeError):
        email.headers["X"] = "y"  # type: ignore[index]


def test_outbound_values_are_frozen() -> None:
    """An outbound text cannot be changed after it is built."""
    sms = OutboundSms("+16175550100", "+16175550123", "Hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sms.body = "changed"  # type: ignore[misc]
    assert sms.status_callback is None
