"""Helpers for the webhook app tests (no tests here): a wired app on a real database.

``open_web`` builds ``Deps`` with :func:`drip.bootstrap.build` on the test
database, a ``VirtualClock`` and a ``RecordingTransport`` (or a given
transport), then the Flask app with :func:`drip.web.app.create_app`; requests
go through Flask's test client. Twilio signatures are computed with the real
``RequestValidator``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator
from werkzeug.test import TestResponse

from drip.bootstrap import build
from drip.campaigns.loader import load_campaign
from drip.clock import VirtualClock
from drip.config import Settings
from drip.domain.account import AccountSettings
from drip.domain.enums import ConsentSource
from drip.domain.pacing import Senders
from drip.services.consent import ConsentEvidence
from drip.services.contacts import ContactInput, add_agent, add_contact
from drip.services.deps import Deps
from drip.services.dispatch import TickSummary, tick
from drip.services.sync import sync_campaigns
from drip.store import repository as repo
from drip.store.models import ConsentEvent, Contact, Conversation, Message, ScheduledSend
from drip.transports.base import EmailTransport, SmsTransport
from drip.transports.recording import RecordingTransport
from drip.web.app import create_app

PUBLIC_URL = "https://drip.example.com"
AUTH_TOKEN = "test-twilio-auth-token"
ACCOUNT_SID = "AC" + "0" * 30 + "01"
API_TOKEN = "test-api-token"
SECRET_KEY = "test-secret-key"
AGENT_PHONE = "+16175550100"
CONCIERGE_PHONE = "+16175550199"
DANA_PHONE = "+16175550123"
CONSENT_TEXT = "Yes, text me about homes. Msg & data rates may apply. Reply STOP to opt out."
NY = ZoneInfo("America/New_York")
#: Monday 2 March 2026, 10:00 in New York.
START = datetime(2026, 3, 2, 10, 0, tzinfo=NY).astimezone(UTC)
POSTAL_ADDRESS = "Acme Realty, 100 Main Street, Boston, MA 02108"
ACCOUNT = AccountSettings(
    company="Acme Realty",
    concierge_phone=CONCIERGE_PHONE,
    postal_address=POSTAL_ADDRESS,
    # Pacing stays on, at a rate that never binds: these tests are not about throughput.
    senders=Senders(default_rate=10_000),
)

CAMPAIGN_YAML = """\
name: web-test-drip
kind: smart_drip
steps:
  - id: day-1-text
    day: 1
    body: "Hi {VisitorFirstName}, it's {AgentFirstName}. Any questions about the homes?"
  - id: day-2-email
    day: 2
    channel: email
    subject: "Homes for you, {VisitorFirstName}"
    body: "Hi {VisitorFirstName}, here are a few homes."
  - id: day-3-email
    day: 3
    channel: email
    subject: "More homes"
    body: "Hi {VisitorFirstName}, a few more."
"""
CAMPAIGN = "web-test-drip"


@dataclasses.dataclass
class Web:
    """The app, its dependencies, and the handles a test drives them with."""

    deps: Deps
    clock: VirtualClock
    transport: RecordingTransport
    client: FlaskClient
    home: Path

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def later(self, **delta: float) -> datetime:
        """Move virtual time forward by ``timedelta(**delta)``."""
        self.clock.set(self.clock.now() + timedelta(**delta))
        return self.clock.now()

    def post_twilio(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        signature: str | None = None,
        signed_url: str | None = None,
        token: str = AUTH_TOKEN,
        query: str = "",
    ) -> TestResponse:
        """POST ``params`` as Twilio would, signed for ``signed_url`` unless ``signature``."""
        full = path + (f"?{query}" if query else "")
        url = signed_url if signed_url is not None else PUBLIC_URL + full
        if signature is None:
            signature = RequestValidator(token).compute_signature(url, dict(params))
        headers = {"X-Twilio-Signature": signature} if signature else {}
        return self.client.post(full, data=dict(params), headers=headers)

    def sms(
        self,
        body: str,
        *,
        sid: str,
        from_: str = DANA_PHONE,
        to: str = AGENT_PHONE,
        opt_out_type: str | None = None,
    ) -> TestResponse:
        """An inbound text from Dana to her agent, signed."""
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
        }
        if opt_out_type is not None:
            params["OptOutType"] = opt_out_type
        return self.post_twilio("/twilio/sms", params)

    def status(self, sid: str, status: str, error_code: int | None = None) -> TestResponse:
        """A delivery status callback, signed."""
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": ACCOUNT_SID,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return self.post_twilio("/twilio/status", params)

    def tick(self) -> TickSummary:
        return tick(self.deps, self.now)

    # -- reading back ------------------------------------------------------

    def contact(self, contact_id: int) -> Contact:
        with self.deps.sessions() as session:
            found = session.get(Contact, contact_id)
            assert found is not None
            return found

    def events(self, contact_id: int) -> list[ConsentEvent]:
        with self.deps.sessions() as session:
            return repo.consent_events_of(session, contact_id)

    def messages(self, contact_id: int) -> list[Message]:
        with self.deps.sessions() as session:
            return repo.messages_of(session, contact_id)

    def sends(self, contact_id: int) -> list[ScheduledSend]:
        with self.deps.sessions() as session:
            return repo.sends_of_contact(session, contact_id)

    def count(self, model: type[Any]) -> int:
        with self.deps.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def conversation(self, contact_id: int, sender: str = AGENT_PHONE) -> Conversation | None:
        with self.deps.sessions() as session:
            return session.scalars(
                select(Conversation).where(
                    Conversation.contact_id == contact_id, Conversation.sender_phone == sender
                )
            ).one_or_none()

    def snapshot(self) -> dict[str, Any]:
        """Every row that an inbound webhook could change, for 'nothing changed' checks."""
        with self.deps.sessions() as session:
            contacts = [
                (c.id, c.sms_consent_at, c.sms_opted_out_at, c.text_status, c.email_opted_out)
                for c in session.scalars(select(Contact).order_by(Contact.id))
            ]
            messages = [
                (m.id, m.status, m.error_code)
                for m in session.scalars(select(Message).order_by(Message.id))
            ]
            events = session.scalar(select(func.count()).select_from(ConsentEvent))
            conversations = [
                (c.id, c.two_way_at, c.footer_last_sent_at)
                for c in session.scalars(select(Conversation).order_by(Conversation.id))
            ]
            sends = [
                (s.id, s.state)
                for s in session.scalars(select(ScheduledSend).order_by(ScheduledSend.id))
            ]
        return {
            "contacts": contacts,
            "messages": messages,
            "events": events,
            "conversations": conversations,
            "sends": sends,
            "sent": len(self.transport.sent),
        }

    # -- setting up --------------------------------------------------------

    def add_dana(
        self,
        *,
        phone: str = DANA_PHONE,
        consent: bool = True,
        email: str | None = "dana@example.com",
        first_name: str = "Dana",
        state: str | None = None,
    ) -> int:
        """Dana, registered with consent evidence (unless ``consent`` is False), agent Sam."""
        evidence = (
            ConsentEvidence(self.now, ConsentSource.REGISTRATION, CONSENT_TEXT) if consent else None
        )
        data = ContactInput(
            first_name,
            "Ruiz",
            phone,
            email,
            state,
            None,
            AGENT_PHONE,
            ConsentSource.REGISTRATION if consent else ConsentSource.MANUAL,
        )
        return add_contact(self.deps, data, evidence, self.now).contact_id

    def sync_campaign(self, yaml_text: str = CAMPAIGN_YAML) -> None:
        path = self.home / "campaign.yaml"
        path.write_text(yaml_text)
        sync_campaigns(self.deps, [load_campaign(path)], self.now)


def settings_for(db_url: str, home: Path, **overrides: Any) -> Settings:
    """Test settings: Twilio token and API token set, a public URL to sign against."""
    values: dict[str, Any] = {
        "home": home,
        "database_url": db_url,
        "outbox": home / "outbox.jsonl",
        "web_spool": home / "web-spool.db",
        "public_url": PUBLIC_URL,
        "api_token": API_TOKEN,
        "secret_key": SECRET_KEY,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def open_web(
    db_url: str,
    home: Path,
    *,
    sms: SmsTransport | None = None,
    email: EmailTransport | None = None,
    start: datetime = START,
    agent: bool = True,
    account: AccountSettings = ACCOUNT,
    **overrides: Any,
) -> Iterator[Web]:
    """A ``Web`` on ``db_url`` with agent Sam; the engine is disposed at the end."""
    clock = VirtualClock(start)
    transport = RecordingTransport(clock=clock)
    deps = build(
        settings_for(db_url, home, **overrides),
        clock=clock,
        sms=sms or transport,
        email=email or transport,
        account=account,
    )
    app = create_app(deps)
    app.testing = True
    try:
        if agent:
            add_agent(deps, "Sam", "Lee", AGENT_PHONE, clock.now())
        yield Web(deps, clock, transport, app.test_client(), home)
    finally:
        app.extensions["drip.late_callbacks"].clear()  # no retries against the next test's rows
        app.extensions["drip.spool_drainer"].stop()
        deps.engine.dispose()
