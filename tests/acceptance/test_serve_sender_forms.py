"""`drip serve` as a new user runs it: signed inbound texts from every sender form (issue 11)."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
import requests
from test_serve_subprocess import API_TOKEN, CONSENT, DANA, fake, served  # noqa: F401

from drip.testing.fake_twilio import FakeTwilioServer

AGENT = "+16175550100"


def _inbound(env: dict[str, str]) -> list[tuple[str, str]]:
    path = env["DRIP_DATABASE_URL"].removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT from_addr, body FROM messages WHERE direction = 'inbound' ORDER BY id"
        ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


@pytest.mark.parametrize("sender", ["22395", "+16245550123", "+13575550123", "+447700900123"])
def test_signed_inbound_from_every_sender_form_is_200_and_recorded(
    served: tuple[str, dict[str, str]],  # noqa: F811
    fake: FakeTwilioServer,  # noqa: F811
    sender: str,
) -> None:
    """Delivered by the fake Twilio exactly as Twilio signs it: 200, and the text is stored."""
    base, env = served

    status = fake.deliver_inbound(f"{base}/twilio/sms", sender, AGENT, "Is it still for sale?")

    assert status == 200
    assert _inbound(env) == [(sender, "Is it still for sale?")]


def test_stop_before_registration_keeps_the_new_contact_opted_out(
    served: tuple[str, dict[str, str]],  # noqa: F811
    fake: FakeTwilioServer,  # noqa: F811
) -> None:
    """A number that texted STOP, then registered with the box ticked, gets no text at all."""
    base, _ = served
    assert fake.deliver_inbound(f"{base}/twilio/sms", DANA, AGENT, "STOP") == 200
    before = fake.count

    registered = requests.post(
        f"{base}/contacts",
        json={
            "first_name": "Dana",
            "last_name": "Ruiz",
            "phone": DANA,
            "agent_phone": AGENT,
            "sms_consent": True,
            "consent_text": CONSENT,
        },
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )

    assert registered.status_code == 201, registered.text
    assert registered.json()["sms_consent"] is False
    assert registered.json()["opt_in_confirmation"] is None
    assert fake.count == before  # nothing was sent to a number that said STOP
