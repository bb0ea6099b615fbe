"""Run scenarios on virtual time through the real pipeline (SPEC §6).

Each run gets a fresh SQLite database in a temporary folder, migrated with
``drip.store.migrate.upgrade``, a :class:`VirtualClock` and one
:class:`RecordingTransport` for texts and emails. Everything else is the code
the workers and the webhook app run: ``add_contact`` registers the contact
with its consent evidence (and sends the opt-in confirmation), ``enroll``
schedules steps, ``dispatch.tick`` claims and fires what is due (policy,
footer, transport, records), ``handle_inbound`` takes replies, ``send_now``
manual texts, ``set_text_status`` and the consent functions of
``services.contacts`` the operator's changes, ``sync_campaigns`` edits.

Virtual time: the clock jumps from event to event and, in between, to each
next due time (``repository.next_due_at``), firing what is due at that very
instant. A send due at 08:00 is sent at 08:00, and a year takes a fraction of
a second because nothing waits.

Pacing (SPEC §4a) is on as in production: a :class:`~drip.pacing.LocalPacer`
whose clock is the virtual one, so a sender's slots are virtual instants; a
send that waits a few seconds for its slot does not sleep and is recorded
at the instant it was cleared (its ValidityPeriod counts the wait). The
recording transport keeps the ValidityPeriod of each text, and
``carrier: expired`` sends a 30036 status callback through
``services.status.handle_status``, the service the webhook app calls.

``drip replay`` runs each scenario alone; ``drip demo`` runs many scenarios
(one contact each) together in one database, so that they share agents,
campaigns and bulk texts the way an account does.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import time as timer
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, event

from drip.bootstrap import build
from drip.clock import VirtualClock
from drip.config import Settings
from drip.domain.account import AccountSettings
from drip.domain.campaign import Campaign
from drip.domain.enums import (
    Channel,
    ConsentSource,
    MessageKind,
    SenderRole,
    SendState,
)
from drip.errors import DripError
from drip.logging import current_level
from drip.pacing import LocalPacer
from drip.replay.scenario import (
    NO_VALIDITY,
    Archive,
    Backlog,
    Bulk,
    CarrierOptOut,
    CarrierReport,
    Consent,
    Downtime,
    EditCampaign,
    EmailUnsubscribe,
    Enroll,
    Event,
    Expectation,
    ManualText,
    Pause,
    Reply,
    Resume,
    Scenario,
    SetTextStatus,
    Unenroll,
)

# The services of the rarer events (replies, bulk texts, a campaign's lifecycle) are
# imported by their handlers: a scenario without such events does not load them.
from drip.services.contacts import (
    ConsentEvidence,
    ContactInput,
    add_agent,
    add_contact,
    send_now,
    set_text_status,
    withdraw_consent,
)
from drip.services.deps import Deps
from drip.services.dispatch import tick
from drip.services.enrollment import enroll
from drip.services.sync import sync_campaigns
from drip.store import repository as repo
from drip.store.engine import make_engine
from drip.store.models import Contact, ScheduledSend
from drip.transports.recording import RecordingTransport

#: A run that ticks this often without the clock reaching its end is stuck.
MAX_TICKS = 200_000
#: Twilio's "the recipient unsubscribed" error, for ``carrier_opt_out``.
TWILIO_UNSUBSCRIBED = 21610
#: Twilio's "validity period expired" error (never sent), for ``carrier: expired``.
TWILIO_EXPIRED = 30036
#: Provider statuses after which the carrier holds the text no more.
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})
#: ``validity:`` expectations hold to within this many seconds (a slot's wait).
VALIDITY_SLACK = 2


class ReplayError(DripError):
    """A scenario could not be run (not a failed expectation: a broken run)."""


# -- results -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One outbound message the provider accepted."""

    position: int  # 1-based, in send order, as ``expect`` counts
    at: datetime  # UTC
    local: datetime  # aware, in the contact's zone
    day: int  # local date difference from the start
    sender: SenderRole
    kind: MessageKind
    channel: Channel
    footer: bool
    footer_rule: str | None
    reason: str
    body: str
    subject: str | None
    segments: int | None
    send_id: int | None
    campaign: str | None
    step: str | None
    #: The ValidityPeriod it was handed to the provider with (None: without one).
    validity: int | None = None
    #: The provider status at the end of the run, and its error code.
    status: str = ""
    error_code: int | None = None
    #: Reason codes its send was deferred with before it went (SPEC §4, §4a).
    deferrals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision not to send (now): skipped, deferred, failed, cancelled, rescheduled."""

    at: datetime
    local: datetime
    day: int
    outcome: str
    code: str
    reason: str
    send_id: int
    kind: MessageKind
    channel: Channel
    sender: SenderRole
    campaign: str | None
    step: str | None
    deferred_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Happening:
    """Something the scenario did (registration, an event) and what the service said."""

    at: datetime
    local: datetime
    day: int
    what: str
    text: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Expectation ``position`` and the message sent in its place, and what differs."""

    position: int
    expected: Expectation | None
    actual: OutMessage | None
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario did and whether its expectations held."""

    scenario: Scenario
    contact_id: int
    start: datetime
    end: datetime
    messages: tuple[OutMessage, ...]
    decisions: tuple[DecisionRecord, ...]
    happenings: tuple[Happening, ...]
    mismatches: tuple[Mismatch, ...]
    pending: int
    seconds: float

    @property
    def checked(self) -> bool:
        return self.scenario.expect is not None

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.scenario.zone))

    def day_of(self, at: datetime) -> int:
        return day_number(self.scenario, at)


def day_number(scenario: Scenario, at: datetime) -> int:
    """The local date difference between ``at`` and the scenario's start."""
    local = at.astimezone(ZoneInfo(scenario.zone)).date()
    return (local - scenario.start.date()).days


# -- running -------------------------------------------------------------------------


def replay(scenario: Scenario, *, folder: Path | None = None) -> ScenarioResult:
    """Run one scenario alone in a fresh database."""
    return run_together([scenario], folder=folder)[0]


def run_together(
    scenarios: Sequence[Scenario],
    *,
    folder: Path | None = None,
    campaigns: Sequence[Campaign] = (),
    account: AccountSettings | None = None,
    broadcasts: Sequence[tuple[datetime, str]] = (),
) -> list[ScenarioResult]:
    """Run scenarios in one fresh database and one virtual clock; one result each.

    ``campaigns`` are synced as well as those the scenarios enroll in;
    ``account`` defaults to the first scenario's; ``broadcasts`` are bulk
    texts to every contact (``drip bulk BODY``) at the given instants. The
    database lives in ``folder`` when given (kept), else in a temporary
    folder (removed).
    """
    if not scenarios:
        return []
    chosen = account or scenarios[0].account
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        return _World(folder, chosen, scenarios, campaigns, broadcasts).run()
    with tempfile.TemporaryDirectory(prefix="drip-replay-") as tmp:
        return _World(Path(tmp), chosen, scenarios, campaigns, broadcasts).run()


@dataclass
class _Life:
    index: int
    scenario: Scenario
    contact_id: int = 0
    happenings: list[Happening] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Step:
    at: datetime
    order: tuple[int, int]
    life: _Life | None  # None: a broadcast to every contact
    event: Event | None  # None: the registration at the start, or a broadcast
    body: str = ""  # a broadcast's text


class _World:
    def __init__(
        self,
        folder: Path,
        account: AccountSettings,
        scenarios: Sequence[Scenario],
        campaigns: Sequence[Campaign],
        broadcasts: Sequence[tuple[datetime, str]],
    ) -> None:
        database = folder / "replay.db"
        fresh_database(database)
        url = f"sqlite:///{database}"
        self.lives = [_Life(i, s) for i, s in enumerate(scenarios)]
        first = min(s.start_instant for s in scenarios)
        self.clock = VirtualClock(first)
        self.transport = RecordingTransport(clock=self.clock)
        # Pacing as in production (SPEC §4a), on virtual time: a sender's slots are
        # instants of the virtual clock, and a send that waits a few seconds for its
        # slot does not sleep (it is recorded at the instant it was cleared).
        clock = self.clock
        self.pacer = LocalPacer(
            account.senders, sleep=lambda _seconds: None, clock=lambda: clock.now().timestamp()
        )
        settings = Settings(
            home=folder,
            database_url=url,
            outbox=folder / "outbox.jsonl",
            log_level=current_level(),
        )
        self.deps: Deps = build(
            settings,
            clock=self.clock,
            sms=self.transport,
            email=self.transport,
            account=account,
            pacer=self.pacer,
            engine=_engine_for(database),
        )
        self.campaigns = list(campaigns)
        self.broadcasts = list(broadcasts)
        self.downtimes: list[tuple[datetime, datetime]] = []
        self.ticks = 0
        self.replies = 0

    # -- the clock -----------------------------------------------------------------

    def run(self) -> list[ScenarioResult]:
        began = timer.perf_counter()
        try:
            self._sync_initial()
            steps = self._steps()
            for step in steps:
                self._advance(step.at)
                self._apply(step)
                if self._down_until(self.clock.now()) is None:
                    self._tick(self.clock.now())
            end = max(life.scenario.instant(life.scenario.end) for life in self.lives)
            self._advance(end)
            results = [self._result(life) for life in self.lives]
        finally:
            self.deps.engine.dispose()
        seconds = timer.perf_counter() - began
        share = seconds / len(results)
        return [_with_seconds(r, share) for r in results]

    def _steps(self) -> list[_Step]:
        steps: list[_Step] = []
        for life in self.lives:
            s = life.scenario
            steps.append(_Step(s.start_instant, (life.index, -1), life, None))
            for i, happening in enumerate(s.events):
                steps.append(_Step(s.instant(happening.at), (life.index, i), life, happening))
        for i, (at, body) in enumerate(self.broadcasts):
            steps.append(_Step(at, (len(self.lives), i), None, None, body))
        # Same instant: one life's events in file order; lives in the order given.
        return sorted(steps, key=lambda st: (st.at, st.order))

    def _advance(self, until: datetime) -> None:
        """Fire everything due up to ``until``, jumping from one due time to the next."""
        while True:
            with self.deps.sessions() as session:
                due = repo.next_due_at(session)
            if due is None or due > until:
                break
            at = max(due, self.clock.now())
            back = self._down_until(at)
            if back is not None:
                if back > until:
                    break
                at = back
            self.clock.set(at)
            self._tick(at)
        if until > self.clock.now():
            self.clock.set(until)

    def _tick(self, at: datetime) -> None:
        self.ticks += 1
        if self.ticks > MAX_TICKS:
            raise ReplayError(f"the replay made no progress at {at:%Y-%m-%d %H:%M} UTC")
        tick(self.deps, at)

    def _down_until(self, at: datetime) -> datetime | None:
        """The end of the downtime ``at`` falls in, or None when the dispatcher runs."""
        ends = [end for begin, end in self.downtimes if begin <= at < end]
        return max(ends) if ends else None

    # -- setting up ----------------------------------------------------------------

    def _sync_initial(self) -> None:
        wanted: dict[str, Campaign] = {c.name: c for c in self.campaigns}
        for life in self.lives:
            for campaign in life.scenario.campaigns:
                wanted.setdefault(campaign.name, campaign)
        if wanted:
            sync_campaigns(self.deps, list(wanted.values()), self.clock.now())

    def _register(self, life: _Life, now: datetime) -> str:
        s = life.scenario
        c = s.contact
        agent_phone = None
        if s.agent is not None:
            add_agent(self.deps, s.agent.first_name, s.agent.last_name, s.agent.phone, now)
            agent_phone = s.agent.phone
        data = ContactInput(
            c.first_name, c.last_name, c.phone, c.email, c.state, s.timezone, agent_phone, c.source
        )
        evidence = ConsentEvidence(now, c.source, s.consent_text) if c.sms_consent else None
        result = add_contact(self.deps, data, evidence, now)
        life.contact_id = result.contact_id
        how = {
            ConsentSource.REGISTRATION: "registration form",
            ConsentSource.IMPORT: "import",
            ConsentSource.MANUAL: "created by hand",
        }.get(c.source, c.source.value)
        consent = (
            f"sms consent recorded ({c.source.value} evidence)"
            if result.consent_recorded
            else "no sms consent"
        )
        notes = "".join(f"; {n}" for n in result.notes)
        return f"{c.full_name} added by {how}: {consent}{notes}"

    # -- events --------------------------------------------------------------------

    def _apply(self, step: _Step) -> None:
        life, now = step.life, step.at
        if life is None:
            said = "; ".join(self._broadcast(step.body, now))
            for each in self.lives:
                each.happenings.append(
                    Happening(
                        now,
                        now.astimezone(ZoneInfo(each.scenario.zone)),
                        day_number(each.scenario, now),
                        "bulk",
                        f"bulk to every contact {first_line(step.body)!r}: {said}",
                    )
                )
            return
        line: int | None = None
        if step.event is None:
            text, what = self._register(life, now), "register"
        else:
            text, what = self._event(life, step.event, now), step.event.kind
            line = step.event.where.line
        life.happenings.append(
            Happening(
                now,
                now.astimezone(ZoneInfo(life.scenario.zone)),
                day_number(life.scenario, now),
                what,
                text,
                line,
            )
        )

    def _event(self, life: _Life, event: Event, now: datetime) -> str:
        handler = _HANDLERS.get(type(event.action))
        if handler is None:  # pragma: no cover - every action has a handler
            raise ReplayError(f"no handler for {event.kind}")
        return handler(self, life, event.action, now)

    def _text(self, life: _Life, action: ManualText, now: datetime) -> str:
        r = send_now(
            self.deps,
            life.contact_id,
            MessageKind.MANUAL,
            action.body,
            now,
            sender_role=action.sender,
        )
        said = f"manual text from the {action.sender.value}"
        return said if r.outcome == "sent" else f"{said}: {r.outcome}"

    def _enroll(self, life: _Life, action: Enroll, now: datetime) -> str:
        return enroll(self.deps, life.contact_id, action.campaign.name, now).message

    def _reply(self, life: _Life, action: Reply, now: datetime) -> str:
        s = life.scenario
        phone = s.contact.phone
        if phone is None:
            raise ReplayError(f"{s.label}: a reply needs the contact's phone")
        to = self._sender_phone(s, action.to)
        self.replies += 1
        from drip.services.inbound import handle_inbound  # with the keywords: replies only

        result = handle_inbound(
            self.deps,
            from_phone=phone,
            to_phone=to,
            body=action.body,
            now=now,
            message_sid=f"SMREPLAY{self.replies:024d}",
            opt_out_type=action.opt_out_type,
        )
        matched = result.classification
        what = matched.kind.value + (f" {matched.keyword!r}" if matched.keyword else "")
        detail = f": {result.detail}" if result.detail else ""
        return f"reply {action.body!r} to the {action.to.value} ({what}) -> {result.action}{detail}"

    def _sender_phone(self, s: Scenario, role: SenderRole) -> str:
        account = self.deps.account
        if role is SenderRole.CONCIERGE:
            phone = account.concierge_phone
        else:
            agent = s.agent or account.default_agent
            phone = agent.phone if agent else None
        if phone is None:
            raise ReplayError(f"{s.label}: no {role.value} number to reply to")
        return phone

    def _consent(self, life: _Life, action: Consent, now: datetime) -> str:
        s = life.scenario
        if action.given:
            c = s.contact
            data = ContactInput(
                c.first_name, c.last_name, c.phone, c.email, c.state, s.timezone, None, c.source
            )
            evidence = ConsentEvidence(now, ConsentSource.API, s.consent_text)
            result = add_contact(self.deps, data, evidence, now)
            said = "consent recorded" if result.consent_recorded else "consent NOT recorded"
            if result.confirmation is not None:
                said += f"; opt-in confirmation {result.confirmation.outcome}"
            return said + "".join(f"; {n}" for n in result.notes)
        with self.deps.sessions.begin() as session:
            contact = session.get(Contact, life.contact_id)
            if contact is None:  # pragma: no cover - registered at the start
                raise ReplayError(f"{s.label}: the contact is gone")
            changed = withdraw_consent(
                session, contact, now, evidence="consent withdrawn (scenario event consent: false)"
            )
        return "consent revoked by an operator" if changed else "already opted out"

    def _text_status(self, life: _Life, action: SetTextStatus, now: datetime) -> str:
        set_text_status(self.deps, life.contact_id, action.status, now, by="replay scenario")
        return f"text status set to {action.status.value}"

    def _bulk(self, life: _Life, action: Bulk, now: datetime) -> str:
        """The bulk service's plan, limited to this contact, then its scheduled send.

        Alone in its database (``drip replay``) the plan is the contact's own;
        among many (``drip demo``) the others are left out: a scenario's bulk
        event is about its contact. Use ``broadcasts`` for a bulk to everyone.
        """
        from drip.services.bulk import BulkFilters, BulkPlan, plan_bulk, schedule_bulk

        plan = plan_bulk(self.deps, action.body, BulkFilters(), now)
        mine = [c for c in plan.recipients if c == life.contact_id]
        schedule_bulk(self.deps, BulkPlan(plan.body, mine), now)
        if mine:
            return "bulk text scheduled for the contact, due now"
        if len(self.lives) == 1:
            return "bulk text not for this contact: " + "; ".join(
                " ".join(line.split()) for line in plan.lines()[1:]
            )
        return "bulk text not for this contact: the bulk plan excluded it"

    def _broadcast(self, body: str, now: datetime) -> list[str]:
        from drip.services.bulk import BulkFilters, plan_bulk, schedule_bulk

        plan = plan_bulk(self.deps, body, BulkFilters(), now)
        schedule_bulk(self.deps, plan, now)
        return [" ".join(line.split()) for line in plan.lines()]

    def _pause(self, life: _Life, action: Pause, now: datetime) -> str:
        from drip.services import lifecycle

        return lifecycle.pause(self.deps, action.campaign, now).message

    def _resume(self, life: _Life, action: Resume, now: datetime) -> str:
        from drip.services import lifecycle

        return lifecycle.resume(self.deps, action.campaign, now).message

    def _archive(self, life: _Life, action: Archive, now: datetime) -> str:
        from drip.services import lifecycle

        return lifecycle.archive(self.deps, action.campaign, now).message

    def _unenroll(self, life: _Life, action: Unenroll, now: datetime) -> str:
        from drip.services import lifecycle

        return lifecycle.unenroll(self.deps, life.contact_id, action.campaign, now).message

    def _edit(self, life: _Life, action: EditCampaign, now: datetime) -> str:
        summary = sync_campaigns(self.deps, [action.campaign], now)
        return f"campaign file {action.ref} synced: " + "; ".join(summary.lines())

    def _downtime(self, life: _Life, action: Downtime, now: datetime) -> str:
        back = life.scenario.instant(action.until)
        self.downtimes.append((now, back))
        local = back.astimezone(ZoneInfo(life.scenario.zone))
        return f"dispatcher down until {local:%Y-%m-%d %H:%M} ({action.until})"

    def _email_unsubscribe(self, life: _Life, action: EmailUnsubscribe, now: datetime) -> str:
        """The unsubscribe link of an email, followed and its button pressed (the app's routes).

        The GET shows the page and changes nothing (SPEC §7); the POST opts out.
        """
        from drip.services.unsubscribe import token_for
        from drip.web.app import create_app

        token = token_for(self.deps.settings.secret_key, life.contact_id)
        client = create_app(self.deps).test_client()
        page = client.get(f"/unsubscribe/{token}")
        if page.status_code != 200:
            raise ReplayError(f"the unsubscribe page answered HTTP {page.status_code}")
        answer = client.post(f"/unsubscribe/{token}")
        if answer.status_code != 200:
            raise ReplayError(f"the unsubscribe link answered HTTP {answer.status_code}")
        return "followed the email unsubscribe link: no more emails"

    def _carrier(self, life: _Life, action: CarrierOptOut, now: datetime) -> str:
        phone = life.scenario.contact.phone
        if phone is None:
            raise ReplayError(f"{life.scenario.label}: carrier_opt_out needs the contact's phone")
        self.transport.fail(phone, TWILIO_UNSUBSCRIBED, 400)
        return f"the carrier now refuses texts to the contact (Twilio {TWILIO_UNSUBSCRIBED})"

    def _backlog(self, life: _Life, action: Backlog, now: datetime) -> str:
        """Other traffic queued on the sender's number: its next free slot moves on."""
        phone = self._sender_phone(life.scenario, action.sender)
        free = datetime.fromtimestamp(self.pacer.occupy(phone, action.segments), UTC)
        local = free.astimezone(ZoneInfo(life.scenario.zone))
        return (
            f"{action.segments} segment(s) of other traffic queued on the {action.sender.value}'s "
            f"number: it has no free slot before {local:%Y-%m-%d %H:%M:%S %Z}"
        )

    def _carrier_report(self, life: _Life, action: CarrierReport, now: datetime) -> str:
        """The carrier expired the latest text it holds for the contact: a ``failed`` 30036
        status callback through the status service the webhook app calls."""
        from drip.services.status import handle_status

        with self.deps.sessions() as session:
            held = [
                m
                for m in repo.messages_of(session, life.contact_id)
                if m.direction == "outbound"
                and m.channel is Channel.SMS
                and m.provider_sid is not None
                and m.status not in FINAL_STATUSES
            ]
        if not held:
            raise ReplayError(
                f"{life.scenario.label}: carrier: {action.what} at {now:%Y-%m-%d %H:%M} UTC, "
                "but the carrier holds no text for the contact"
            )
        latest = max(held, key=lambda m: (m.sent_at or m.created_at, m.id))
        assert latest.provider_sid is not None
        result = handle_status(
            self.deps,
            message_sid=latest.provider_sid,
            status="failed",
            now=now,
            error_code=TWILIO_EXPIRED,
            error_message="Message expired (validity period elapsed in the queue)",
        )
        with self.deps.sessions() as session:
            send = session.get(ScheduledSend, latest.send_id) if latest.send_id else None
            state = send.state.value if send is not None else "no scheduled send"
        return (
            f"the carrier expired the text of {latest.sent_at or latest.created_at:%H:%M} UTC "
            f"(Twilio {TWILIO_EXPIRED}, never sent): callback {result.action}; its send is {state}"
        )

    # -- results -------------------------------------------------------------------

    def _result(self, life: _Life) -> ScenarioResult:
        s = life.scenario
        zone = ZoneInfo(s.zone)
        end = s.instant(s.end)
        with self.deps.sessions() as session:
            sends = {x.id: x for x in repo.sends_of_contact(session, life.contact_id)}
            decisions = repo.decisions_of_sends(session, list(sends))
            names = {
                cid: row.name
                for cid, row in repo.campaigns_by_id(
                    session, (x.campaign_id for x in sends.values() if x.campaign_id)
                ).items()
            }
            rows = repo.messages_of(session, life.contact_id)
        sent_decisions = [d for d in decisions if d.outcome == "sent"]  # in time order
        messages: list[OutMessage] = []
        outbound = [
            m
            for m in rows
            if m.direction == "outbound" and m.sent_at is not None and m.sent_at <= end
        ]
        outbound.sort(key=lambda m: (m.sent_at or m.created_at, m.id))
        validity = {x.sid: x.msg.validity_seconds for x in self.transport.sms}
        went: dict[int, datetime] = {}  # send id -> when its previous message went
        for m in outbound:
            assert m.sent_at is not None
            send = sends.get(m.send_id) if m.send_id else None
            # A send that went twice (put back after an expiry) has a sent decision each time.
            decided = next(
                (
                    d
                    for d in reversed(sent_decisions)
                    if d.send_id == m.send_id and d.at <= m.sent_at
                ),
                None,
            )
            role = send.sender_role if send else _role_of(self.deps.account, m.from_addr)
            messages.append(
                OutMessage(
                    position=len(messages) + 1,
                    at=m.sent_at,
                    local=m.sent_at.astimezone(zone),
                    day=day_number(s, m.sent_at),
                    sender=role,
                    kind=m.kind or MessageKind.MANUAL,
                    channel=m.channel,
                    footer=m.footer,
                    footer_rule=decided.footer_rule if decided else None,
                    reason=decided.reason if decided else "",
                    body=m.body,
                    subject=m.subject,
                    segments=m.segments,
                    send_id=m.send_id,
                    campaign=names.get(send.campaign_id) if send and send.campaign_id else None,
                    step=send.step_id if send else None,
                    validity=validity.get(m.provider_sid or ""),
                    status=m.status,
                    error_code=m.error_code,
                    deferrals=_deferrals(decisions, m.send_id, went, m.sent_at),
                )
            )
        records: list[DecisionRecord] = []
        cancelled_ids = {d.send_id for d in decisions if d.outcome == "cancelled"}
        for d in decisions:
            if d.outcome == "sent" or d.at > end:
                continue
            send = sends[d.send_id]
            records.append(
                _record(
                    s,
                    send,
                    names,
                    at=d.at,
                    outcome=d.outcome,
                    code=d.code,
                    reason=d.reason,
                    deferred_until=d.deferred_until,
                )
            )
        pending = 0
        for send in sends.values():
            if send.state is SendState.PENDING:
                pending += 1
            elif (
                send.state is SendState.CANCELLED
                and send.id not in cancelled_ids
                and send.updated_at <= end
            ):
                # stop_on_reply and STOP cancel without a decision row: show them too.
                records.append(
                    _record(
                        s,
                        send,
                        names,
                        at=send.updated_at,
                        outcome="cancelled",
                        code=send.decision_code or "cancelled",
                        reason=send.decision_reason or "cancelled",
                        deferred_until=None,
                    )
                )
        records.sort(key=lambda r: (r.at, r.send_id))
        mismatches = check(s, messages)
        return ScenarioResult(
            scenario=s,
            contact_id=life.contact_id,
            start=s.start_instant,
            end=end,
            messages=tuple(messages),
            decisions=tuple(records),
            happenings=tuple(life.happenings),
            mismatches=tuple(mismatches),
            pending=pending,
            seconds=0.0,
        )


_Handler = Callable[[_World, _Life, Any, datetime], str]
_HANDLERS: dict[type, _Handler] = {
    ManualText: _World._text,
    Enroll: _World._enroll,
    Reply: _World._reply,
    Consent: _World._consent,
    SetTextStatus: _World._text_status,
    Bulk: _World._bulk,
    Pause: _World._pause,
    Resume: _World._resume,
    Archive: _World._archive,
    Unenroll: _World._unenroll,
    EditCampaign: _World._edit,
    Downtime: _World._downtime,
    CarrierOptOut: _World._carrier,
    EmailUnsubscribe: _World._email_unsubscribe,
    Backlog: _World._backlog,
    CarrierReport: _World._carrier_report,
}


def _deferrals(
    decisions: Sequence[Any], send_id: int | None, went: dict[int, datetime], sent_at: datetime
) -> tuple[str, ...]:
    """The codes the send was deferred with since its previous message (a requeued send
    goes twice), in order, once each; records this message's time in ``went``."""
    if send_id is None:
        return ()
    since = went.get(send_id)
    went[send_id] = sent_at
    codes = [
        d.code
        for d in decisions
        if d.send_id == send_id
        and d.outcome == "deferred"
        and d.at <= sent_at
        and (since is None or d.at > since)
    ]
    return tuple(dict.fromkeys(codes))


def _record(
    s: Scenario,
    send: ScheduledSend,
    names: dict[int, str],
    *,
    at: datetime,
    outcome: str,
    code: str,
    reason: str,
    deferred_until: datetime | None,
) -> DecisionRecord:
    return DecisionRecord(
        at=at,
        local=at.astimezone(ZoneInfo(s.zone)),
        day=day_number(s, at),
        outcome=outcome,
        code=code,
        reason=reason,
        send_id=send.id,
        kind=send.kind,
        channel=send.channel,
        sender=send.sender_role,
        campaign=names.get(send.campaign_id) if send.campaign_id else None,
        step=send.step_id,
        deferred_until=deferred_until,
    )


_template: Path | None = None


def fresh_database(path: Path) -> None:
    """A new SQLite database at ``path``, migrated to the latest schema.

    ``drip.store.migrate.upgrade`` (Alembic's imports and migrations) runs
    once into a template file, and every run starts from a byte copy of it:
    the same fresh, migrated database for a fraction of the cost. The template
    is kept in the user's cache folder (:mod:`drip.user_cache`, checked to be
    this user's own before use), named by the migration files' digest and the
    SQLAlchemy and SQLite versions, so the next ``drip replay`` process finds
    it made; without a usable cache folder it lives in a temporary folder for
    this process only.
    """
    global _template  # noqa: PLW0603 - one template per process, made on first use
    if _template is None or not _template.exists():
        _template = _cached_template() or _process_template()
    shutil.copyfile(_template, path)


def _template_name() -> str:
    import hashlib

    import sqlalchemy

    from drip.store.schema_version import migrations_digest

    key = f"{migrations_digest()}\0{sqlalchemy.__version__}\0{sqlite3.sqlite_version}"
    return f"replay-template-{hashlib.sha256(key.encode()).hexdigest()[:16]}.db"


def _make_template(target: Path) -> None:
    from drip.store.migrate import upgrade  # Alembic: imported only when needed

    upgrade(f"sqlite:///{target}")
    with closing(sqlite3.connect(target)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to copy


def _cached_template() -> Path | None:
    """The shared template for the shipped migrations, made if missing; None if not possible."""
    from drip.user_cache import private_cache_folder

    folder = private_cache_folder()
    if folder is None:
        return None
    target = folder / _template_name()
    try:
        if target.exists():
            return target
        scratch = Path(tempfile.mkdtemp(prefix=".template-", dir=folder))
        try:
            _make_template(scratch / "template.db")
            os.replace(scratch / "template.db", target)  # atomic: readers never see half a file
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except OSError:
        return None
    return target


def _process_template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="drip-replay-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    template = folder / "template.db"
    _make_template(template)
    return template


#: The one engine of this process's replays, and the database its connections open.
_engine: Engine | None = None
_database: Path | None = None


def _engine_for(database: Path) -> Engine:
    """The process's replay engine, its new connections opening ``database``.

    SQLAlchemy keeps the SQL it compiled per engine: one engine for every
    world of a ``drip replay`` call compiles each statement once, not once per
    scenario (about a fifth of a scenario's CPU time). A world empties the
    pool when it ends (``dispose``), so the next one's connections open the
    next file. Worlds run one at a time.
    """
    global _engine, _database  # noqa: PLW0603 - one engine per process, made on first use
    _database = database
    if _engine is None:
        _engine = make_engine(f"sqlite:///{database}", creator=_connect)
        _no_fsync(_engine)
    return _engine


def _connect() -> sqlite3.Connection:
    assert _database is not None
    # As SQLAlchemy opens a file database for its pool: usable from any thread.
    return sqlite3.connect(_database, check_same_thread=False)


def _no_fsync(engine: Engine) -> None:
    """A replay database is thrown away: skip fsync on commit (SQLite ``synchronous = OFF``).

    Everything else (WAL, BEGIN IMMEDIATE claims, the transactions of every
    service) stays as in production; only durability across a power cut is
    given up, which a temporary file does not need. A commit then costs
    microseconds instead of an fsync, which is most of a replay's time.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA synchronous = OFF")
        finally:
            cursor.close()


def first_line(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _role_of(account: AccountSettings, phone: str) -> SenderRole:
    if account.concierge_phone and phone == account.concierge_phone:
        return SenderRole.CONCIERGE
    return SenderRole.AGENT


def _with_seconds(result: ScenarioResult, seconds: float) -> ScenarioResult:
    from dataclasses import replace

    return replace(result, seconds=seconds)


# -- checking ------------------------------------------------------------------------


def check(scenario: Scenario, messages: Sequence[OutMessage]) -> list[Mismatch]:
    """Every expectation against the message in its place; extra and missing ones too."""
    expected = scenario.expect
    if expected is None:
        return []
    out: list[Mismatch] = []
    for i in range(max(len(expected), len(messages))):
        e = expected[i] if i < len(expected) else None
        a = messages[i] if i < len(messages) else None
        if e is not None and a is not None:
            problems = differences(scenario, e, a)
            if problems:
                out.append(Mismatch(i + 1, e, a, tuple(problems)))
        elif e is not None:
            out.append(Mismatch(i + 1, e, None, ("expected a message, but nothing more was sent",)))
        else:
            out.append(
                Mismatch(i + 1, None, a, ("sent, but not expected: nothing else may be sent",))
            )
    return out


def differences(scenario: Scenario, e: Expectation, a: OutMessage) -> list[str]:
    """What of ``e`` does not hold for ``a``, one phrase per field."""
    problems: list[str] = []
    if e.day is not None and a.day != e.day:
        problems.append(f"day: expected {e.day}, got {a.day}")
    if e.at is not None:
        want = scenario.instant(e.at)
        if _minute(want) != _minute(a.at):
            local = want.astimezone(ZoneInfo(scenario.zone))
            problems.append(
                f"at: expected {e.at} ({local:%Y-%m-%d %H:%M}), got {a.local:%Y-%m-%d %H:%M}"
            )
    if e.at_utc is not None and _minute(e.at_utc) != _minute(a.at):
        problems.append(f"at_utc: expected {e.at_utc:%Y-%m-%d %H:%M}, got {a.at:%Y-%m-%d %H:%M}")
    if e.channel is not None and a.channel is not e.channel:
        problems.append(f"channel: expected {e.channel.value}, got {a.channel.value}")
    if e.kind is not None and a.kind is not e.kind:
        problems.append(f"kind: expected {e.kind.value}, got {a.kind.value}")
    if e.footer is not None and a.footer != e.footer:
        rule = f" ({a.footer_rule}: {a.reason})" if a.footer_rule else ""
        problems.append(
            f"footer: expected {str(e.footer).lower()}, got {str(a.footer).lower()}{rule}"
        )
    if e.contains is not None and e.contains not in a.body:
        problems.append(f"contains: {e.contains!r} is not in the text")
    if e.sender is not None and a.sender is not e.sender:
        problems.append(f"from: expected {e.sender.value}, got {a.sender.value}")
    if e.validity is not None:
        if e.validity == NO_VALIDITY:
            if a.validity is not None:
                problems.append(f"validity: expected none, got {a.validity} s")
        elif a.validity is None or abs(a.validity - e.validity) > VALIDITY_SLACK:
            got = "none" if a.validity is None else f"{a.validity} s"
            problems.append(
                f"validity: expected {e.validity} s (within {VALIDITY_SLACK}), got {got}"
            )
    if e.deferred is not None and e.deferred not in a.deferrals:
        got = ", ".join(a.deferrals) or "never deferred"
        problems.append(f"deferred: expected a deferral for {e.deferred}, got {got}")
    if e.status is not None and a.status != e.status:
        problems.append(f"status: expected {e.status}, got {a.status}")
    if e.error is not None and a.error_code != e.error:
        problems.append(f"error: expected {e.error}, got {a.error_code}")
    return problems


def _minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def decisions_near(
    result: ScenarioResult, position: int, *, margin: timedelta = timedelta(hours=1)
) -> list[DecisionRecord]:
    """The decisions between the messages before and after message ``position``."""
    msgs = result.messages
    lo = msgs[position - 2].at if position >= 2 and position - 2 < len(msgs) else result.start
    hi_index = position if position < len(msgs) else None
    hi = msgs[hi_index].at if hi_index is not None else result.end
    return [d for d in result.decisions if lo - margin <= d.at <= hi + margin]
