"""The console transport: readable output and a JSON Lines outbox."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drip.clock import VirtualClock
from drip.errors import TransportError
from drip.transports.base import OutboundEmail, OutboundSms
from drip.transports.console import ConsoleTransport

AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_sms_and_email_are_printed_and_appended_as_json_lines(tmp_path: Path) -> None:
    """Each message prints its parties and text and adds one parseable JSON line to the outbox."""
    outbox = tmp_path / "out" / "outbox.jsonl"
    stream = io.StringIO()
    transport = ConsoleTransport(outbox, stream, clock=VirtualClock(AT))

    receipt = transport.send_sms(
        OutboundSms("+16175550100", "+16175550123", "Hi Dana, it's Sam.", "https://h/cb")
    )
    email_receipt = transport.send_email(
        OutboundEmail(
            "sam@acme.test",
            "dana@example.com",
            "Homes you may like",
            "Three new listings.",
            {"List-Unsubscribe": "<https://h/u/t>"},
        )
    )

    assert re.fullmatch(r"CON[0-9a-f]{32}", receipt.sid)
    assert re.fullmatch(r"CON[0-9a-f]{32}", email_receipt.message_id)
    assert receipt.sid != email_receipt.message_id
    printed = stream.getvalue()
    for part in ("+16175550100", "+16175550123", "Hi Dana, it's Sam.", "Homes you may like"):
        assert part in printed

    lines = outbox.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    sms, email = (json.loads(line) for line in lines)
    assert sms == {
        "channel": "sms",
        "sid": receipt.sid,
        "at": AT.isoformat(),
        "from": "+16175550100",
        "to": "+16175550123",
        "body": "Hi Dana, it's Sam.",
        "status_callback": "https://h/cb",
    }
    assert email["channel"] == "email"
    assert email["subject"] == "Homes you may like"
    assert email["headers"] == {"List-Unsubscribe": "<https://h/u/t>"}


def test_outbox_is_appended_not_overwritten(tmp_path: Path) -> None:
    """A second transport on the same outbox keeps the lines written before, and non-ASCII text."""
    outbox = tmp_path / "outbox.jsonl"
    ConsoleTransport(outbox, io.StringIO()).send_sms(OutboundSms("+1", "+2", "first"))
    ConsoleTransport(outbox, io.StringIO()).send_sms(OutboundSms("+1", "+2", "señor 🏡"))
    bodies = [json.loads(line)["body"] for line in outbox.read_text("utf-8").splitlines()]
    assert bodies == ["first", "señor 🏡"]


def test_without_outbox_only_prints() -> None:
    """With no outbox path the transport still accepts and prints the text."""
    stream = io.StringIO()
    receipt = ConsoleTransport(None, stream).send_sms(OutboundSms("+1", "+2", "hello"))
    assert receipt.sid in stream.getvalue()
    assert "hello" in stream.getvalue()


def test_unwritable_outbox_is_a_transport_error(tmp_path: Path) -> None:
    """An outbox that cannot be written fails the send and prints nothing."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    stream = io.StringIO()
    transport = ConsoleTransport(blocker / "outbox.jsonl", stream)
    with pytest.raises(TransportError, match="outbox"):
        transport.send_sms(OutboundSms("+1", "+2", "hello"))
    assert stream.getvalue() == ""
