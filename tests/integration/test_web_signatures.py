"""Twilio signature checks on both webhooks: only requests signed for our URL change anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web_support import (
    AGENT_PHONE,
    AUTH_TOKEN,
    DANA_PHONE,
    PUBLIC_URL,
    Web,
    open_web,
)
from twilio.request_validator import RequestValidator

from drip.store.models import Message

STOP = {
    "MessageSid": "SM" + "a" * 32,
    "From": DANA_PHONE,
    "To": AGENT_PHONE,
    "Body": "STOP",
}


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database."""
    with open_web(db_url, tmp_path) as w:
        yield w


@pytest.fixture
def dana(web: Web) -> int:
    """Dana, registered with consent (her opt-in confirmation is sent)."""
    return web.add_dana()


def test_valid_signature_is_accepted(web: Web, dana: int) -> None:
    """A STOP signed for DRIP_PUBLIC_URL + path is processed and answered with empty TwiML."""
    response = web.post_twilio("/twilio/sms", STOP)

    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    assert response.get_data(as_text=True).endswith("<Response/>")
    assert web.contact(dana).sms_opted_out_at == web.now
    assert web.count(Message) == 3  # opt-in confirmation, the STOP, the opt-out confirmation


@pytest.mark.parametrize(
    ("case", "headers_signature", "signed_url", "token"),
    [
        pytest.param("missing", "", None, AUTH_TOKEN, id="missing"),
        pytest.param("wrong", "bm90IGEgc2lnbmF0dXJl", None, AUTH_TOKEN, id="wrong"),
        pytest.param(
            "other-url", None, "https://evil.example.com/twilio/sms", AUTH_TOKEN, id="other-url"
        ),
        pytest.param(
            "other-path", None, PUBLIC_URL + "/twilio/status", AUTH_TOKEN, id="other-path"
        ),
        pytest.param("other-token", None, None, "another-auth-token", id="other-token"),
    ],
)
@pytest.mark.usefixtures("dana")
def test_bad_signature_is_refused_and_changes_nothing(
    web: Web, case: str, headers_signature: str | None, signed_url: str | None, token: str
) -> None:
    """Missing, wrong, or computed for another URL or token: 403 and not even the message is stored."""
    before = web.snapshot()

    response = web.post_twilio(
        "/twilio/sms", STOP, signature=headers_signature, signed_url=signed_url, token=token
    )

    assert response.status_code == 403, case
    assert response.get_json()["field"] in ("X-Twilio-Signature", "signature")
    assert web.snapshot() == before


@pytest.mark.usefixtures("dana")
def test_signature_over_other_params_is_refused(web: Web) -> None:
    """A signature computed for a HELP body does not cover the STOP actually posted."""
    before = web.snapshot()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC_URL + "/twilio/sms", {**STOP, "Body": "HELP"}
    )

    response = web.post_twilio("/twilio/sms", STOP, signature=signature)

    assert response.status_code == 403
    assert web.snapshot() == before


@pytest.mark.usefixtures("dana")
def test_query_string_is_part_of_the_signed_url(web: Web) -> None:
    """Twilio signs the full URL: with the query string it verifies, without it it does not."""
    with_query = web.post_twilio("/twilio/sms", {**STOP, "Body": "HELP"}, query="a=1")
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC_URL + "/twilio/sms", {**STOP, "Body": "HELP", "MessageSid": "SM" + "b" * 32}
    )
    without_query = web.client.post(
        "/twilio/sms?a=1",
        data={**STOP, "Body": "HELP", "MessageSid": "SM" + "b" * 32},
        headers={"X-Twilio-Signature": signature},
    )

    assert with_query.status_code == 200
    assert without_query.status_code == 403


@pytest.mark.usefixtures("dana")
def test_status_callback_needs_a_signature(web: Web) -> None:
    """An unsigned delivery callback is refused and the message keeps its status."""
    sid = web.transport.sms[0].sid  # the opt-in confirmation
    before = web.snapshot()

    response = web.post_twilio(
        "/twilio/status",
        {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "21610"},
        signature="",
    )

    assert response.status_code == 403
    assert web.snapshot() == before


def test_no_auth_token_configured_refuses_every_webhook(db_url: str, tmp_path: Path) -> None:
    """Embedded mode has no Twilio token: nothing can be verified, so both webhooks answer 403."""
    with open_web(db_url, tmp_path, twilio_account_sid=None, twilio_auth_token=None) as web:
        web.add_dana()
        before = web.snapshot()

        sms = web.post_twilio("/twilio/sms", STOP)
        status = web.post_twilio(
            "/twilio/status", {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered"}
        )

        assert sms.status_code == 403
        assert status.status_code == 403
        assert "TWILIO_AUTH_TOKEN" in sms.get_json()["error"]
        assert web.snapshot() == before
