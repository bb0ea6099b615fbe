"""`drip reconcile` end to end: a text Twilio accepted behind a gateway 500 is found and recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from test_cli_flow import DANA, REPO, SAM, Shell

from drip.testing.fake_twilio import FakeTwilioServer


def test_reconcile_finds_the_text_a_gateway_500_hid(tmp_path: Path) -> None:
    """drip text gets a 500 after Twilio accepted: unknown; drip reconcile marks it sent once."""
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    with FakeTwilioServer() as twilio:
        drip = Shell(tmp_path)
        drip.env.update(
            TWILIO_ACCOUNT_SID=twilio.account_sid,
            TWILIO_AUTH_TOKEN=twilio.auth_token,
            DRIP_TWILIO_BASE_URL=twilio.base_url,
            DRIP_PUBLIC_URL="http://127.0.0.1:9",
        )
        drip("db", "upgrade")
        drip("sync")
        drip("agents", "Sam", "Lee", SAM)
        drip(
            "contacts", "add", "--first-name", "Dana", "--last-name", "Ruiz", "--phone", DANA,
            "--agent", SAM, "--sms-consent", "--consent-source", "registration",
            "--consent-text", "Yes, text me about homes. Msg & data rates may apply.",
        )  # fmt: skip
        twilio.fault("accept_then_error", status=500, code=20500, times=1)
        out = drip("text", DANA, "Hi Dana, this is Sam.", code=1)
        assert "unknown" in out.lower()
        assert twilio.accepted == 2  # the opt-in confirmation, then this text

        lines = drip("reconcile", "--json").splitlines()

        [settled] = [json.loads(line) for line in lines]
        [accepted] = [m for m in twilio.ledger() if m["body"].startswith("Hi Dana")]
        assert (settled["outcome"], settled["sid"]) == ("sent", accepted["sid"])
        assert "0 unknown send(s)" in drip("reconcile")
        assert twilio.accepted == 2
