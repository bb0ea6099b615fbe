"""Every entry point reads the one clock: ``drip tick`` and the webhook app at frozen instants.

The real CLI (click's in-process runner) and the real Flask app run against
one SQLite file in a temporary ``DRIP_HOME``, with freezegun holding the
wall clock at chosen instants: 07:59:59 and 08:00:00 local in each zone of a
448 number (Eastern and Central), a step due inside the spring-forward gap,
and a Sunday 11:59 in Texas. What each entry point decides is compared with
what the pure policy decides for the same inputs.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from freezegun import freeze_time
from sqlalchemy import select

from drip.bootstrap import build
from drip.cli import app as cli_app
from drip.domain.enums import MessageKind
from drip.domain.policy import ContactState, ConversationState, Defer, Outgoing, decide
from drip.rules import bundled_state_rules
from drip.store.models import Message, ScheduledSend, SendDecision
from drip.web.app import create_app

REPO = Path(__file__).resolve().parents[2]
TOKEN = "frozen-clock-token"
SAM = "+16175550100"
NY, CHI = "America/New_York", "America/Chicago"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class World:
    """The ``drip`` CLI and the webhook app on one embedded database."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def drip(self, *args: str) -> str:
        result = self.runner.invoke(cli_app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result.output

    def web(self) -> FlaskClient:
        return create_app(build()).test_client()

    def register(self, phone: str, **extra: str) -> int:
        """POST /contacts with consent, as the registration form does; the contact id."""
        response = self.web().post(
            "/contacts",
            json={
                "first_name": "Pat",
                "last_name": "Gale",
                "phone": phone,
                "agent_phone": SAM,
                "sms_consent": True,
                "consent_text": "I agree to receive texts from Acme Realty.",
                **extra,
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        assert body["opt_in_confirmation"] == "sent"
        return int(body["contact_id"])

    def greeting(self, contact_id: int, step: str = "greeting") -> ScheduledSend:
        with build().sessions() as session:
            row = session.scalars(
                select(ScheduledSend).where(
                    ScheduledSend.contact_id == contact_id, ScheduledSend.step_id == step
                )
            ).one()
            session.expunge(row)
            return row

    def decisions(self, send_id: int) -> list[SendDecision]:
        with build().sessions() as session:
            rows = list(
                session.scalars(
                    select(SendDecision)
                    .where(SendDecision.send_id == send_id)
                    .order_by(SendDecision.id)
                )
            )
            session.expunge_all()
            return rows

    def sent_at(self, contact_id: int, kind: MessageKind) -> list[datetime]:
        with build().sessions() as session:
            return list(
                session.scalars(
                    select(Message.sent_at)
                    .where(Message.contact_id == contact_id, Message.kind == kind)
                    .order_by(Message.id)
                )
            )


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns")
    for name in list(os.environ):
        if name.startswith(("DRIP_", "TWILIO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DRIP_HOME", str(tmp_path / ".drip"))
    monkeypatch.setenv("DRIP_CAMPAIGNS_DIR", str(tmp_path / "campaigns"))
    monkeypatch.setenv("DRIP_OUTBOX", str(tmp_path / "outbox.jsonl"))
    monkeypatch.setenv("DRIP_API_TOKEN", TOKEN)
    monkeypatch.setenv("DRIP_LOG_FORMAT", "json")
    w = World()
    with freeze_time("2026-01-05 15:00:00"):
        w.drip("db", "upgrade")
        w.drip("sync")
        w.drip("agents", "Sam", "Lee", SAM)
    return w


def _register_enroll_tick(world: World, phone: str, instant: str, **extra: str) -> int:
    with freeze_time(instant):
        contact = world.register(phone, **extra)
        world.drip("enroll", phone, "concierge-default")
        world.drip("tick")
    return contact


def test_multi_zone_number_waits_for_eight_in_its_westernmost_zone(world: World) -> None:
    """448 is Eastern and Central: 07:59:59 and 08:00:00 Eastern and 07:59:59 Central all wait
    for 08:00:00 Central; at that instant every one goes, and the opt-in went at once each time."""
    instants = [
        "2026-06-01 11:59:59",  # 07:59:59 EDT, 06:59:59 CDT
        "2026-06-01 12:00:00",  # 08:00:00 EDT, 07:00:00 CDT
        "2026-06-01 12:59:59",  # 08:59:59 EDT, 07:59:59 CDT
    ]
    contacts = [
        _register_enroll_tick(world, f"+1448555017{i}", instant)
        for i, instant in enumerate(instants)
    ]
    opens = utc("2026-06-01 13:00:00")  # 08:00:00 CDT
    for contact, instant in zip(contacts, instants, strict=True):
        assert world.sent_at(contact, MessageKind.OPT_IN_CONFIRMATION) == [utc(instant)]
        send = world.greeting(contact)
        (decision,) = world.decisions(send.id)
        assert decision.outcome == "deferred"
        assert decision.deferred_until == opens
        assert "America/Chicago" in decision.reason
        assert world.sent_at(contact, MessageKind.CAMPAIGN) == []
        # The pure core, given the same inputs, decides the same.
        pure = decide(
            ContactState(
                timezone=NY,
                zones=(NY, CHI),
                state="FL",
                states=("FL",),
                sms_consent_at=utc(instant),
            ),
            ConversationState(),
            Outgoing(MessageKind.CAMPAIGN, send.original_due_at),
            utc(instant),
            state_rules=bundled_state_rules(),
        )
        assert isinstance(pure, Defer) and pure.until == decision.deferred_until
    last = _register_enroll_tick(world, "+14485550179", "2026-06-01 13:00:00")
    for contact in [*contacts, last]:
        assert world.sent_at(contact, MessageKind.CAMPAIGN) == [opens]
    assert [d.outcome for d in world.decisions(world.greeting(last).id)] == ["sent"]


def test_step_due_inside_the_spring_forward_gap(world: World) -> None:
    """A day-2 step due at 02:30 on the spring-forward day is due at 03:00 EDT, the gap's end;
    a tick at that instant defers it to 08:00 EDT, and a tick then sends it."""
    contact = _register_enroll_tick(world, "+16175550181", "2026-03-06 07:30:00")  # 02:30 EST
    step = world.greeting(contact, "day-2-follow-up")
    assert step.due_at == utc("2026-03-08 07:00:00")  # 03:00 EDT, the first instant after the gap
    with freeze_time("2026-03-06 13:00:00"):  # 08:00 EST: the greeting goes
        world.drip("tick")
    with freeze_time("2026-03-08 07:00:00"):
        world.drip("tick")
    (deferred,) = world.decisions(step.id)
    assert deferred.outcome == "deferred"
    assert deferred.deferred_until == utc("2026-03-08 12:00:00")  # 08:00 EDT
    with freeze_time("2026-03-08 12:00:00"):
        world.drip("tick")
    sent = world.sent_at(contact, MessageKind.CAMPAIGN)
    assert sent == [utc("2026-03-06 13:00:00"), utc("2026-03-08 12:00:00")]


def test_texas_sunday_one_minute_before_noon(world: World) -> None:
    """A Texas number (214) on Sunday at 11:59 waits for 12:00 (Tex. Bus. & Com. Code 301.051)."""
    contact = _register_enroll_tick(world, "+12145550182", "2026-06-07 16:59:00")  # 11:59 CDT
    send = world.greeting(contact)
    (decision,) = world.decisions(send.id)
    assert decision.deferred_until == utc("2026-06-07 17:00:00")
    assert "TX rule, Sunday 12:00-21:00" in decision.reason and "301.051" in decision.reason
    with freeze_time("2026-06-07 17:00:00"):
        output = world.drip("tick")
    assert "1 sent" in output
    assert world.sent_at(contact, MessageKind.CAMPAIGN) == [utc("2026-06-07 17:00:00")]
