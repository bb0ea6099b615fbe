"""`drip serve` as a real process: registration, Twilio callbacks and a signed STOP over HTTP."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from net_support import free_port
from twilio.request_validator import RequestValidator

from drip.testing.fake_twilio import FakeTwilioServer

AGENT = "+16175550100"
DANA = "+16175550123"
API_TOKEN = "acceptance-api-token"
CONSENT = "Yes, text me about homes. Msg & data rates may apply. Reply STOP to opt out."


def _wait_for_status(env: dict[str, str], kind: str, status: str, timeout: float = 10) -> bool:
    """Poll the SQLite file until the message of ``kind`` has ``status``."""
    path = env["DRIP_DATABASE_URL"].removeprefix("sqlite:///")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            row = conn.execute("SELECT status FROM messages WHERE kind = ?", (kind,)).fetchone()
        if row is not None and row[0] == status:
            return True
        time.sleep(0.1)
    return False


def _drip(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    drip = Path(sys.executable).with_name("drip")
    return subprocess.run(
        [str(drip), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def fake() -> Iterator[FakeTwilioServer]:
    """The fake Twilio API, posting signed status callbacks like Twilio does."""
    with FakeTwilioServer(send_status_callbacks=True) as server:
        yield server


@pytest.fixture
def served(tmp_path: Path, fake: FakeTwilioServer) -> Iterator[tuple[str, dict[str, str]]]:
    """`drip serve` on a free port over a fresh SQLite file; yields its URL and environment."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "TWILIO_"))}
    env.update(
        DRIP_HOME=str(tmp_path / "home"),
        DRIP_DATABASE_URL=f"sqlite:///{tmp_path / 'drip.db'}",
        DRIP_PUBLIC_URL=base,
        DRIP_API_TOKEN=API_TOKEN,
        DRIP_TWILIO_BASE_URL=fake.base_url,
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        DRIP_LOG_FORMAT="json",
    )
    assert _drip(env, "db", "upgrade").returncode == 0
    assert _drip(env, "agents", "Sam", "Lee", AGENT).returncode == 0
    log = (tmp_path / "serve.log").open("w")
    drip = Path(sys.executable).with_name("drip")
    process = subprocess.Popen(
        [str(drip), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "drip serve did not become healthy"
            time.sleep(0.1)
        yield base, env
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_registration_callbacks_and_signed_stop_through_drip_serve(
    served: tuple[str, dict[str, str]], fake: FakeTwilioServer
) -> None:
    """Register with consent, receive Twilio's callbacks, text STOP: `drip history` shows it all."""
    base, env = served

    registered = requests.post(
        f"{base}/contacts",
        json={
            "first_name": "Dana",
            "last_name": "Ruiz",
            "phone": "617-555-0123",
            "agent_phone": AGENT,
            "sms_consent": True,
            "consent_text": CONSENT,
        },
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["opt_in_confirmation"] == "sent"
    assert fake.wait_for_callbacks(3, timeout=15)  # sending, sent, delivered
    assert [c.response_status for c in fake.callbacks] == [200, 200, 200]
    # The callbacks may overtake the commit of the message row; the app applies them late.
    assert _wait_for_status(env, "opt_in_confirmation", "delivered")

    stop = {
        "MessageSid": "SM" + "9" * 32,
        "AccountSid": fake.account_sid,
        "From": DANA,
        "To": AGENT,
        "Body": "STOP",
    }
    signature = RequestValidator(fake.auth_token).compute_signature(f"{base}/twilio/sms", stop)
    unsigned = requests.post(f"{base}/twilio/sms", data={**stop, "Body": "HELP"}, timeout=10)
    signed = requests.post(
        f"{base}/twilio/sms", data=stop, headers={"X-Twilio-Signature": signature}, timeout=10
    )

    assert unsigned.status_code == 403
    assert signed.status_code == 200
    assert signed.headers["Content-Type"].startswith("text/xml")
    assert signed.text.endswith("<Response/>")
    bodies = [r.body or "" for r in fake.requests if r.status == 201]
    assert len(bodies) == 2
    assert "subscribed" in bodies[0]
    assert bodies[1].startswith("You have been unsubscribed")

    history = _drip(env, "history", DANA)

    assert history.returncode == 0, history.stderr
    out = history.stdout
    assert "sms: opted out" in out
    assert "consent given via registration" in out
    assert "consent revoked_keyword via keyword (STOP): STOP" in out
    assert "<- STOP" in out
    assert "opt_in_confirmation sms from +16175550100 (delivered)" in out
    assert "opt_out_confirmation sms" in out
    assert "HELP" not in out.split("<- STOP")[0].split("\n")[-1]  # the unsigned HELP left no trace
