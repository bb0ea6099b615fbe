"""Applying a scenario's events through the services the workers and the webhook app run.

``register`` adds the contact at the start (with its consent evidence, which
sends the opt-in confirmation); each event kind has a handler that calls the
service an operator, a contact, the carrier or the webhook would reach, and
says in a line what the service answered. Replies go through
``handle_inbound``, the carrier's expiry through ``handle_status`` (the status
callback service), an email unsubscribe through the webhook app's own routes,
an erasure through ``erase_contact``. After an erasure the person is followed
to the new contact that ``consent: true`` or ``lead.created`` makes with the
same phone; the erased contact's ids are kept so that its messages and
decisions stay in the timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from drip.domain.enums import Channel, ConsentSource, MessageKind, SenderRole
from drip.replay.runner.results import Happening, ReplayError
from drip.replay.scenario import (
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
    Erase,
    Event,
    LeadEvent,
    LookupOutage,
    ManualText,
    NumberReassigned,
    Pause,
    PauseContact,
    Reply,
    Resume,
    ResumeContact,
    Scenario,
    SetTextStatus,
    Unenroll,
)

# The services of the rarer events (replies, bulk texts, a campaign's lifecycle) are
# imported by their handlers: a scenario without such events does not load them.
from drip.services.consent import ConsentEvidence, set_text_status, withdraw_consent
from drip.services.contacts import ContactInput, add_agent, add_contact, send_now
from drip.services.deps import Deps
from drip.services.enrollment import enroll
from drip.services.sync import sync_campaigns
from drip.store import events as store_events
from drip.store import repository as repo
from drip.store.models import Contact, ScheduledSend
from drip.transports.lookup import RecordingLookup
from drip.transports.pacing import LocalPacer
from drip.transports.recording import RecordingTransport

#: Twilio's "the recipient unsubscribed" error, for ``carrier_opt_out``.
TWILIO_UNSUBSCRIBED = 21610
#: Twilio's "validity period expired" error (never sent), for ``carrier: expired``.
TWILIO_EXPIRED = 30036
#: Provider statuses after which the carrier holds the text no more.
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})


@dataclass
class Life:
    """One scenario in a run: its contact once registered, and what happened to it."""

    index: int
    scenario: Scenario
    contact_id: int = 0
    happenings: list[Happening] = field(default_factory=list)
    #: The person's contacts erased so far (``erase``), in order.
    erased: list[int] = field(default_factory=list)

    @property
    def contact_ids(self) -> tuple[int, ...]:
        """Every contact the person has been: the erased ones, then the current one."""
        return tuple(dict.fromkeys((*self.erased, self.contact_id)))

    @property
    def awaiting_new_contact(self) -> bool:
        """Erased and not added again yet."""
        return self.contact_id in self.erased


class Events:
    """The services a run's events go through, and the state the events leave behind.

    ``downtimes`` are the dispatcher's down periods (``downtime_until``), which
    the run's clock skips over; ``alone`` is true when the run has one scenario.
    """

    def __init__(
        self,
        deps: Deps,
        transport: RecordingTransport,
        pacer: LocalPacer,
        *,
        alone: bool,
        lookup: RecordingLookup | None = None,
    ) -> None:
        self.deps = deps
        self.transport = transport
        self.pacer = pacer
        self.lookup = lookup or RecordingLookup()
        self.alone = alone
        self.downtimes: list[tuple[datetime, datetime]] = []
        self.replies = 0
        self.lead_events = 0

    def register(self, life: Life, now: datetime) -> str:
        s = life.scenario
        c = s.contact
        agent_phone = None
        if s.agent is not None:
            add_agent(self.deps, s.agent.first_name, s.agent.last_name, s.agent.phone, now)
            agent_phone = s.agent.phone
        for more in s.agents:
            add_agent(self.deps, more.first_name, more.last_name, more.phone, now)
        data = ContactInput(
            c.first_name, c.last_name, c.phone, c.email, c.state, s.timezone, agent_phone, c.source
        )
        evidence = ConsentEvidence(now, c.source, s.consent_text) if c.sms_consent else None
        result = add_contact(self.deps, data, evidence, now)
        life.contact_id = result.contact_id
        created = self._created_event(life, now) if s.synced else ""
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
        return f"{c.full_name} added by {how}: {consent}{notes}{created}"

    def _contact_ref(self, life: Life) -> dict[str, str]:
        c = life.scenario.contact
        return {"phone": c.phone} if c.phone else {"email": c.email or ""}

    def _lead_event(self, life: Life, type_: str, data: dict[str, object], now: datetime) -> str:
        """One lead event for the contact through the ingest service ``POST /events`` calls."""
        from drip.services.events import ACCEPTED, ingest

        self.lead_events += 1
        event = {
            "id": f"replay-{life.index}-{self.lead_events}",
            "type": type_,
            "occurred_at": now.isoformat(),
            "contact": self._contact_ref(life),
            "data": data,
        }
        outcome = ingest(self.deps, [event], now).outcomes[0]
        if outcome.status != ACCEPTED:
            raise ReplayError(
                f"{life.scenario.label}: {type_} was {outcome.status}: {outcome.message}"
            )
        return f"{type_} {event['id']}: {outcome.message}"

    def _created_event(self, life: Life, now: datetime) -> str:
        """The contact's creation as its lead.created event, so that synced triggers see it."""
        c = life.scenario.contact
        data: dict[str, object] = {
            k: v for k, v in (("lead_source", c.lead_source), ("stage", c.stage)) if v
        }
        if c.tags:
            data["tags"] = list(c.tags)
        return "; " + self._lead_event(life, "lead.created", data, now)

    def _event(self, life: Life, action: LeadEvent, now: datetime) -> str:
        said = self._lead_event(life, action.type, action.payload, now)
        if life.awaiting_new_contact:  # lead.created after an erasure: the new contact
            ref = self._contact_ref(life)
            with self.deps.sessions() as session:
                found = store_events.contact_by_ref(
                    session, None, ref.get("phone"), ref.get("email")
                )
                new_id = found.id if found is not None and found.erased_at is None else None
            if new_id is not None:
                said = f"{self._added_again(life, new_id)}; {said}"
        return said

    def _added_again(self, life: Life, contact_id: int) -> str:
        """The person is ``contact_id`` from now on; what it starts with (the suppression list)."""
        life.contact_id = contact_id
        with self.deps.sessions() as session:
            contact = session.get(Contact, contact_id)
            out = contact.sms_opted_out_at if contact is not None else None
        state = f"opted out of texts since {out:%Y-%m-%d}" if out else "not opted out of texts"
        return f"added again as contact {contact_id} ({state})"

    def _erase(self, life: Life, action: Erase, now: datetime) -> str:
        """The contact erased through the service ``drip contacts erase`` calls."""
        from drip.services.erasure import erase_contact

        result = erase_contact(self.deps, life.contact_id, now, by="replay")
        life.erased.append(life.contact_id)
        return result.message

    def apply(self, life: Life, event: Event, now: datetime) -> str:
        handler = _HANDLERS.get(type(event.action))
        if handler is None:  # pragma: no cover - every action has a handler
            raise ReplayError(f"no handler for {event.kind}")
        return handler(self, life, event.action, now)

    def _text(self, life: Life, action: ManualText, now: datetime) -> str:
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

    def _enroll(self, life: Life, action: Enroll, now: datetime) -> str:
        return enroll(self.deps, life.contact_id, action.campaign.name, now).message

    def _reply(self, life: Life, action: Reply, now: datetime) -> str:
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

    def _consent(self, life: Life, action: Consent, now: datetime) -> str:
        s = life.scenario
        if action.given:
            c = s.contact
            # Added again after an erasure: a new contact, with the scenario's agent as at the start.
            again = life.awaiting_new_contact
            agent = s.agent.phone if again and s.agent is not None else None
            data = ContactInput(
                c.first_name, c.last_name, c.phone, c.email, c.state, s.timezone, agent, c.source
            )
            evidence = ConsentEvidence(now, ConsentSource.API, s.consent_text)
            result = add_contact(self.deps, data, evidence, now)
            said = "consent recorded" if result.consent_recorded else "consent NOT recorded"
            if again:
                said = f"{self._added_again(life, result.contact_id)}; {said}"
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

    def _text_status(self, life: Life, action: SetTextStatus, now: datetime) -> str:
        set_text_status(self.deps, life.contact_id, action.status, now, by="replay scenario")
        return f"text status set to {action.status.value}"

    def _bulk(self, life: Life, action: Bulk, now: datetime) -> str:
        """The bulk service's plan, limited to this contact, then its scheduled send.

        Alone in its database (``drip replay``) the plan is the contact's own;
        among many (``drip demo``) the others are left out: a scenario's bulk
        event is about its contact. Use ``broadcasts`` for a bulk to everyone.
        """
        from drip.services.bulk import BulkFilters, BulkPlan, plan_bulk, schedule_bulk

        expires = (
            life.scenario.instant(action.expires_at) if action.expires_at is not None else None
        )
        plan = plan_bulk(self.deps, action.body, BulkFilters(), now, expires_at=expires)
        mine = [c for c in plan.recipients if c == life.contact_id]
        schedule_bulk(self.deps, BulkPlan(plan.body, mine, expires_at=expires), now)
        if mine:
            until = f", expires {action.expires_at}" if action.expires_at is not None else ""
            return f"bulk text scheduled for the contact, due now{until}"
        if self.alone:
            return "bulk text not for this contact: " + "; ".join(
                " ".join(line.split()) for line in plan.lines()[1:]
            )
        return "bulk text not for this contact: the bulk plan excluded it"

    def broadcast(self, body: str, now: datetime) -> list[str]:
        from drip.services.bulk import BulkFilters, plan_bulk, schedule_bulk

        plan = plan_bulk(self.deps, body, BulkFilters(), now)
        schedule_bulk(self.deps, plan, now)
        return [" ".join(line.split()) for line in plan.lines()]

    def _pause(self, life: Life, action: Pause, now: datetime) -> str:
        from drip.services import lifecycle

        return lifecycle.pause(self.deps, action.campaign, now).message

    def _resume(self, life: Life, action: Resume, now: datetime) -> str:
        from drip.services import lifecycle

        return lifecycle.resume(self.deps, action.campaign, now).message

    def _archive(self, life: Life, action: Archive, now: datetime) -> str:
        from drip.services import lifecycle

        return lifecycle.archive(self.deps, action.campaign, now).message

    def _unenroll(self, life: Life, action: Unenroll, now: datetime) -> str:
        from drip.services import lifecycle

        return lifecycle.unenroll(self.deps, life.contact_id, action.campaign, now).message

    def _pause_contact(self, life: Life, action: PauseContact, now: datetime) -> str:
        from drip.services import pausing

        return pausing.pause_contact(
            self.deps, life.contact_id, action.campaign, now, operator="replay"
        ).message

    def _resume_contact(self, life: Life, action: ResumeContact, now: datetime) -> str:
        from drip.services import pausing

        return pausing.resume_contact(
            self.deps, life.contact_id, action.campaign, now, operator="replay"
        ).message

    def _edit(self, life: Life, action: EditCampaign, now: datetime) -> str:
        summary = sync_campaigns(self.deps, [action.campaign], now)
        return f"campaign file {action.ref} synced: " + "; ".join(summary.lines())

    def _downtime(self, life: Life, action: Downtime, now: datetime) -> str:
        back = life.scenario.instant(action.until)
        self.downtimes.append((now, back))
        local = back.astimezone(ZoneInfo(life.scenario.zone))
        return f"dispatcher down until {local:%Y-%m-%d %H:%M} ({action.until})"

    def _email_unsubscribe(self, life: Life, action: EmailUnsubscribe, now: datetime) -> str:
        """The unsubscribe link of an email, followed and its button pressed (the app's routes).

        The GET shows the page and changes nothing; the POST opts out.
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

    def _carrier(self, life: Life, action: CarrierOptOut, now: datetime) -> str:
        phone = life.scenario.contact.phone
        if phone is None:
            raise ReplayError(f"{life.scenario.label}: carrier_opt_out needs the contact's phone")
        self.transport.fail(phone, TWILIO_UNSUBSCRIBED, 400)
        return f"the carrier now refuses texts to the contact (Twilio {TWILIO_UNSUBSCRIBED})"

    def _backlog(self, life: Life, action: Backlog, now: datetime) -> str:
        """Other traffic queued on the sender's number: its next free slot moves on."""
        phone = self._sender_phone(life.scenario, action.sender)
        free = datetime.fromtimestamp(self.pacer.occupy(phone, action.segments), UTC)
        local = free.astimezone(ZoneInfo(life.scenario.zone))
        return (
            f"{action.segments} segment(s) of other traffic queued on the {action.sender.value}'s "
            f"number: it has no free slot before {local:%Y-%m-%d %H:%M:%S %Z}"
        )

    def _carrier_report(self, life: Life, action: CarrierReport, now: datetime) -> str:
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

    def _number_reassigned(self, life: Life, action: NumberReassigned, now: datetime) -> str:
        """The reassigned-numbers source now has the number disconnected on this (UTC) date."""
        phone = life.scenario.contact.phone
        if phone is None:
            raise ReplayError(f"{life.scenario.label}: number_reassigned needs the contact's phone")
        on = now.astimezone(UTC).date()
        self.lookup.mark_reassigned(phone, on)
        checking = self.deps.account.reassigned_numbers
        state = (
            f"checked before campaign and bulk texts on consent older than "
            f"{checking.max_age_days} days"
            if checking.enabled
            else "not checked (reassigned_numbers is off)"
        )
        return f"the reassigned-numbers source: the number was disconnected on {on} ({state})"

    def _lookup_outage(self, life: Life, action: LookupOutage, now: datetime) -> str:
        """The reassigned-numbers check has no answer (503/20503) until ``action.until``."""
        back = life.scenario.instant(action.until)
        self.lookup.fail(503, 20503, until=back)
        local = back.astimezone(ZoneInfo(life.scenario.zone))
        return f"the reassigned-numbers check answers 503 until {local:%Y-%m-%d %H:%M}"


_Handler = Callable[[Events, Life, Any, datetime], str]
_HANDLERS: dict[type, _Handler] = {
    ManualText: Events._text,
    Enroll: Events._enroll,
    Reply: Events._reply,
    Consent: Events._consent,
    SetTextStatus: Events._text_status,
    Bulk: Events._bulk,
    Pause: Events._pause,
    Resume: Events._resume,
    Archive: Events._archive,
    Unenroll: Events._unenroll,
    PauseContact: Events._pause_contact,
    ResumeContact: Events._resume_contact,
    EditCampaign: Events._edit,
    Downtime: Events._downtime,
    CarrierOptOut: Events._carrier,
    EmailUnsubscribe: Events._email_unsubscribe,
    Backlog: Events._backlog,
    CarrierReport: Events._carrier_report,
    LeadEvent: Events._event,
    NumberReassigned: Events._number_reassigned,
    LookupOutage: Events._lookup_outage,
    Erase: Events._erase,
}
