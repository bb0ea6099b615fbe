"""Helpers for the service integration tests: a wired ``Deps`` on virtual time, and shortcuts.

Each ``World`` is built with ``drip.bootstrap.build`` on a real database (the
``db_url`` fixture), a ``VirtualClock`` and one ``RecordingTransport`` for
texts and emails, exactly as replay wires the services. Helpers read rows
back in fresh sessions so that tests see what was committed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner, Result
from sqlalchemy import select

from drip.bootstrap import build
from drip.campaigns.loader import load_campaigns
from drip.clock import VirtualClock
from drip.config import Settings
from drip.domain.account import AccountSettings, AgentProfile
from drip.domain.campaign import Campaign
from drip.domain.enums import ConsentSource, MessageKind
from drip.domain.pacing import Senders
from drip.services.consent import ConsentEvidence
from drip.services.contacts import ContactInput, add_agent, add_contact, send_now
from drip.services.deps import Deps
from drip.services.dispatch import TickSummary, tick
from drip.services.fire import FireResult
from drip.services.sync import sync_campaigns
from drip.store import repository as repo
from drip.store.models import Conversation, Message, ScheduledSend, SendDecision
from drip.transports.recording import RecordingTransport

REPO = Path(__file__).resolve().parents[2]
CAMPAIGNS_DIR = REPO / "campaigns"
NEW_YORK = "America/New_York"
NY = ZoneInfo(NEW_YORK)
AGENT_PHONE = "+16175550100"
CONCIERGE_PHONE = "+16175550199"
DANA_PHONE = "+16175550123"
CONSENT_TEXT = "Yes, text me about homes. Msg & data rates may apply. Reply STOP to opt out."
#: Monday 2 March 2026, 10:00 in New York (EST): the seed example's start.
START = datetime(2026, 3, 2, 10, 0, tzinfo=NY).astimezone(UTC)

ACCOUNT = AccountSettings(
    default_agent=AgentProfile("Sam", "Lee", AGENT_PHONE),
    concierge_phone=CONCIERGE_PHONE,
    # Pacing stays on, at a rate that never binds: these tests are not about throughput.
    senders=Senders(default_rate=10_000),
)


@dataclasses.dataclass
class World:
    """The services' dependencies plus the handles a test drives them with."""

    deps: Deps
    clock: VirtualClock
    transport: RecordingTransport

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def at(self, when: datetime) -> datetime:
        """Move virtual time to ``when`` (never backwards) and return it."""
        self.clock.set(when)
        return self.clock.now()


@contextmanager
def open_world(
    db_url: str, home: Path, *, start: datetime = START, account: AccountSettings = ACCOUNT
) -> Iterator[World]:
    """A ``World`` on ``db_url``; the engine is disposed at the end."""
    clock = VirtualClock(start)
    transport = RecordingTransport(clock=clock)
    settings = Settings(home=home, database_url=db_url, outbox=home / "outbox.jsonl")
    deps = build(settings, clock=clock, sms=transport, email=transport, account=account)
    try:
        yield World(deps, clock, transport)
    finally:
        deps.engine.dispose()


def bundled_campaigns() -> dict[str, Campaign]:
    """The campaigns shipped in ``campaigns/``, by name."""
    loaded = load_campaigns(CAMPAIGNS_DIR)
    assert loaded.ok, loaded.errors
    return loaded.campaigns


def sync_bundled(world: World, *names: str) -> dict[str, Campaign]:
    """Store the named bundled campaigns (all of them when none is named)."""
    campaigns = bundled_campaigns()
    chosen = [campaigns[n] for n in names] if names else list(campaigns.values())
    sync_campaigns(world.deps, chosen, world.now)
    return {c.name: c for c in chosen}


def add_dana(
    world: World,
    *,
    phone: str = DANA_PHONE,
    timezone: str | None = None,
    state: str | None = None,
    consent: bool = True,
    email: str | None = "dana@example.com",
    first_name: str = "Dana",
) -> int:
    """A registration contact, with consent evidence unless ``consent`` is False."""
    evidence = (
        ConsentEvidence(world.now, ConsentSource.REGISTRATION, CONSENT_TEXT) if consent else None
    )
    data = ContactInput(
        first_name,
        "Ruiz",
        phone,
        email,
        state,
        timezone,
        None,
        ConsentSource.REGISTRATION if consent else ConsentSource.MANUAL,
    )
    return add_contact(world.deps, data, evidence, world.now).contact_id


def add_sam(world: World) -> int:
    """The agent Sam Lee, texting from ``AGENT_PHONE``."""
    return add_agent(world.deps, "Sam", "Lee", AGENT_PHONE, world.now)


def manual_text(world: World, contact_id: int, body: str) -> FireResult:
    """A manual text from the contact's agent, now."""
    return send_now(world.deps, contact_id, MessageKind.MANUAL, body, world.now)


def run_until(world: World, until: datetime | None = None) -> list[TickSummary]:
    """Tick at each due time in order, as a dispatcher would, until nothing is due by ``until``."""
    summaries: list[TickSummary] = []
    for _ in range(1000):
        with world.deps.sessions() as session:
            due = repo.next_due_at(session)
        if due is None or (until is not None and due > until):
            break
        summaries.append(tick(world.deps, world.at(max(due, world.now))))
    else:  # pragma: no cover - a runaway schedule
        raise AssertionError("the schedule never ran dry")
    if until is not None and until > world.now:
        world.at(until)
    return summaries


def local_at(day: date, wall: time) -> datetime:
    """``wall`` on ``day`` in New York, as UTC."""
    return datetime.combine(day, wall, tzinfo=NY).astimezone(UTC)


def day_of(at: datetime, start: datetime = START) -> int:
    """Local (New York) calendar days between ``start`` and ``at``."""
    return (at.astimezone(NY).date() - start.astimezone(NY).date()).days


def sends(world: World, contact_id: int) -> list[ScheduledSend]:
    """A contact's scheduled sends, in original due order."""
    with world.deps.sessions() as session:
        return repo.sends_of_contact(session, contact_id)


def plan(world: World, contact_id: int) -> list[ScheduledSend]:
    """A contact's campaign sends (no manual texts or compliance replies), in due order."""
    return [s for s in sends(world, contact_id) if s.enrollment_id is not None]


def send_by_step(world: World, contact_id: int, step_id: str) -> ScheduledSend:
    """The one scheduled send of a contact for a campaign step."""
    found = [s for s in sends(world, contact_id) if s.step_id == step_id]
    assert len(found) == 1, [s.step_id for s in sends(world, contact_id)]
    return found[0]


def outbound(world: World, contact_id: int) -> list[Message]:
    """A contact's outbound messages in send order."""
    with world.deps.sessions() as session:
        rows = repo.messages_of(session, contact_id)
    return [m for m in rows if m.direction == "outbound"]


def decisions(world: World, send_id: int) -> list[SendDecision]:
    """The decision trail of one scheduled send."""
    with world.deps.sessions() as session:
        return repo.decisions_of(session, send_id)


def conversation(world: World, sender_phone: str, contact_id: int) -> Conversation | None:
    """The (sender, contact) conversation row, if any."""
    with world.deps.sessions() as session:
        return session.scalars(
            select(Conversation).where(
                Conversation.sender_phone == sender_phone, Conversation.contact_id == contact_id
            )
        ).one_or_none()


def footers_by_day(messages: list[Message]) -> list[tuple[int, str, bool]]:
    """(local day, kind, footer) of each text, for comparing with the SPEC's seed example."""
    return [
        (day_of(m.sent_at or m.created_at), m.kind.value if m.kind else "?", m.footer)
        for m in messages
        if m.channel.value == "sms"
    ]


def edited(campaign: Campaign, **changes: object) -> Campaign:
    """A copy of ``campaign`` with fields replaced (``steps`` as a tuple of ``Step``)."""
    return dataclasses.replace(campaign, **changes)


def later(at: datetime, **delta: float) -> datetime:
    """``at`` plus a ``timedelta(**delta)``."""
    return at + timedelta(**delta)


def run_cli(world: World, *args: str) -> Result:
    """``drip ARGS`` in this process on the world's database (JSON logs, warnings only)."""
    from drip.cli import app as drip_cli

    env = {
        "DRIP_DATABASE_URL": world.deps.settings.database_url,
        "DRIP_HOME": str(world.deps.settings.home),
        "DRIP_CAMPAIGNS_DIR": str(world.deps.settings.home),
        "DRIP_LOG_LEVEL": "WARNING",
        "DRIP_LOG_FORMAT": "json",
    }
    return CliRunner().invoke(drip_cli, list(args), env=env, prog_name="drip")


def store_without_applying(deps: Deps, events: list[dict[str, object]], now: datetime) -> None:
    """Ingest ``events`` as a process that stops between storing them and applying them."""
    import pytest

    from drip.services import events as service

    def stopped(*_: object) -> None:
        raise RuntimeError("the process stopped here")

    with pytest.MonkeyPatch.context() as m:
        m.setattr(service.BatchApplier, "apply", stopped)
        with pytest.raises(RuntimeError, match="the process stopped here"):
            service.ingest(deps, events, now)
