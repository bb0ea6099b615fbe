"""Contacts: create or update one (never a duplicate), find one, text one now.

A contact's consent changes (given, revoked, restored) are
:mod:`drip.services.consent`'s; adding a contact with new consent records it
there and sends the opt-in confirmation through the fire path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, ConsentSource, MessageKind, SenderRole, SendState
from drip.domain.zones import normalize_phone, normalize_state, validate_timezone
from drip.errors import NotFoundError, ValidationError
from drip.services.confirmations import schedule_confirmations
from drip.services.consent import (
    ConsentEvidence,
    consent_on_record,
    keep_consent_evidence,
    record_consent,
)
from drip.services.deps import Deps
from drip.store import contacts as store_contacts
from drip.store import repository as repo
from drip.store import suppression
from drip.store.models import Agent, Contact, OrphanOptOut, ScheduledSend

if TYPE_CHECKING:
    # The fire path is imported by send_now, which uses it: finding or listing
    # contacts (``drip history``, ``drip contacts list``) does not load it.
    from drip.services.fire import FireResult

log = structlog.get_logger("drip.contacts")


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A contact as given by a person, a form or a CSV row, before validation."""

    first_name: str
    last_name: str = ""
    phone: str | None = None
    email: str | None = None
    state: str | None = None
    timezone: str | None = None
    agent_phone: str | None = None
    source: ConsentSource = ConsentSource.MANUAL


@dataclass(frozen=True, slots=True)
class AddResult:
    contact_id: int
    created: bool
    consent_recorded: bool
    confirmation: FireResult | None
    notes: tuple[str, ...] = ()
    #: SMS consent is in force after the call (recorded now or already on record).
    consent_in_force: bool = False


def validated(data: ContactInput) -> ContactInput:
    """The same input with phone in E.164, state upper-case, zone checked; or ValidationError."""
    if not data.first_name.strip():
        raise ValidationError("first_name: required")
    if not data.phone and not data.email:
        raise ValidationError("phone or email: at least one is required")
    phone = normalize_phone(data.phone) if data.phone else None
    email = data.email.strip() if data.email else None
    if email is not None and ("@" not in email or email.startswith("@") or email.endswith("@")):
        raise ValidationError(f"email: {email!r} is not an email address")
    state = normalize_state(data.state) if data.state else None
    tz = validate_timezone(data.timezone) if data.timezone else None
    agent = normalize_phone(data.agent_phone) if data.agent_phone else None
    return ContactInput(
        data.first_name.strip(), data.last_name.strip(), phone, email, state, tz, agent, data.source
    )


def upsert_contact(
    session: Session, data: ContactInput, now: datetime
) -> tuple[Contact, bool, list[str]]:
    """Create the contact, or update the known one (never a duplicate).

    One identity rule for ``contacts add``, the import and the API: a known
    phone, else a known email (any case), is the same contact, unless both
    carry different phones (two people sharing an email, said in a note).
    What changes on a known contact is reported in the notes.
    """
    data = validated(data)
    notes: list[str] = []
    agent_id = None
    if data.agent_phone is not None:
        agent = repo.agent_by_phone(session, data.agent_phone)
        if agent is None:
            raise NotFoundError(f"agent: no agent texts from {data.agent_phone}; add one first")
        if not agent.active:
            raise ValidationError(
                f"agent: {agent.first_name} is deactivated; choose an active agent"
            )
        agent_id = agent.id
    existing = repo.contact_by_phone(session, data.phone) if data.phone else None
    if existing is None and data.email is not None:
        existing = store_contacts.by_email(session, data.email)
        if existing is not None and existing.phone is not None and data.phone is not None:
            # Two numbers sharing one email (a couple, a family): two people.
            notes.append(
                f"email {data.email} is also the email of contact {existing.id} "
                f"(phone {existing.phone}): a separate contact for this phone"
            )
            existing = None
    if existing is not None:
        changes = {
            "first_name": data.first_name,
            "last_name": data.last_name or existing.last_name,
            "phone": data.phone or existing.phone,
            "email": data.email or existing.email,
            "state": data.state or existing.state,
            "timezone": data.timezone or existing.timezone,
            "agent_id": agent_id or existing.agent_id,
        }
        changed = [
            f"{name} {getattr(existing, name) or '(none)'} -> {value}"
            for name, value in changes.items()
            if value != getattr(existing, name)
        ]
        for name, value in changes.items():
            setattr(existing, name, value)
        if changed:
            existing.updated_at = now
            notes.append("changed: " + "; ".join(changed))
        return existing, False, notes
    contact = Contact(
        first_name=data.first_name,
        last_name=data.last_name,
        phone=data.phone,
        email=data.email,
        state=data.state,
        timezone=data.timezone,
        source=data.source,
        agent_id=agent_id,
        created_at=now,
        updated_at=now,
    )
    if data.phone is not None:
        orphan = session.get(OrphanOptOut, data.phone)
        if orphan is not None:
            contact.sms_opted_out_at = orphan.at
            contact.sms_opted_out_how = "keyword"
            notes.append(
                f"this number texted {orphan.keyword!r} on {orphan.at:%Y-%m-%d}: opted out"
            )
    notes.extend(_carry_suppression(session, contact))
    session.add(contact)
    session.flush()
    return contact, True, notes


def _carry_suppression(session: Session, contact: Contact) -> list[str]:
    """A new contact whose phone or email belonged to an erased contact keeps its opt-outs."""
    notes: list[str] = []
    for hit in suppression.lookup(session, contact.phone, contact.email):
        if hit.sms_opted_out_at is not None and contact.sms_opted_out_at is None:
            contact.sms_opted_out_at = hit.sms_opted_out_at
            contact.sms_opted_out_how = hit.sms_opted_out_how or "operator"
            notes.append(
                f"this {hit.kind} belonged to a contact erased on {hit.erased_at:%Y-%m-%d} who "
                f"had opted out of texts on {hit.sms_opted_out_at:%Y-%m-%d}: opted out"
            )
        if hit.email_opted_out_at is not None and not contact.email_opted_out:
            contact.email_opted_out = True
            contact.email_opted_out_at = hit.email_opted_out_at
            notes.append(
                f"this {hit.kind} belonged to a contact erased on {hit.erased_at:%Y-%m-%d} who "
                f"had unsubscribed from email on {hit.email_opted_out_at:%Y-%m-%d}: unsubscribed"
            )
    return notes


def add_contact(
    deps: Deps, data: ContactInput, consent: ConsentEvidence | None, now: datetime
) -> AddResult:
    """Create or update a contact; with new consent, send the opt-in confirmation at once."""
    with deps.sessions.begin() as session:
        contact, created, notes = upsert_contact(session, data, now)
        # Consent in force already: no second confirmation. Consent given again
        # after an opt-out is newly recorded and confirmed.
        had_consent = contact.sms_consent_at is not None and contact.sms_opted_out_at is None
        recorded = False
        # A number that texted STOP before it was a contact starts opted out:
        # consent given with its creation is kept as evidence, but
        # the opt-out stands until the number texts START.
        orphaned = created and contact.sms_opted_out_at is not None
        if consent is not None and contact.phone is not None and orphaned:
            keep_consent_evidence(session, contact, consent)
            notes.append("consent kept as evidence only: the number opted out earlier")
        elif consent is not None and contact.phone is not None:
            if consent_on_record(contact, consent):
                notes.append("this consent evidence is already on record: nothing new recorded")
            else:
                recorded = record_consent(session, contact, consent, now)
                if not recorded:
                    notes.append("consent not recorded: the contact opted out after it was given")
        in_force = contact.sms_consent_at is not None and contact.sms_opted_out_at is None
        contact_id = contact.id
    confirmation = None
    imported = consent is not None and consent.source is ConsentSource.IMPORT
    if recorded and not had_consent and imported:
        # Imported consent is confirmed through the send pipeline, not at once.
        schedule_confirmations(deps, [contact_id], now)
    elif recorded and not had_consent:
        confirmation = send_now(
            deps, contact_id, MessageKind.OPT_IN_CONFIRMATION, deps.account.opt_in_confirmation, now
        )
    log.info("contact_saved", contact_id=contact_id, created=created, consent=recorded)
    return AddResult(contact_id, created, recorded, confirmation, tuple(notes), in_force)


def send_now(
    deps: Deps,
    contact_id: int,
    kind: MessageKind,
    body: str,
    now: datetime,
    *,
    sender_role: SenderRole = SenderRole.AGENT,
    sender_phone: str | None = None,
    channel: Channel = Channel.SMS,
) -> FireResult:
    """A manual text or compliance reply: through the same policy, transport and records.

    ``sender_phone`` pins the number it goes out from (replies to inbound texts).
    """
    with deps.sessions.begin() as session:
        send = ScheduledSend(
            contact_id=contact_id,
            kind=kind,
            channel=channel,
            body=body,
            sender_role=sender_role,
            sender_phone=sender_phone,
            due_at=now,
            state=SendState.QUEUED,
            claimed_at=now,
            created_at=now,
        )
        session.add(send)
        session.flush()
        send_id = send.id
    from drip.services.dispatch import fire

    results = fire(deps, [send_id], now)
    return results[0]


def add_agent(
    deps: Deps,
    first_name: str,
    last_name: str,
    phone: str,
    now: datetime,
    *,
    email: str | None = None,
) -> int:
    """Add or rename the agent of ``phone``; ``email`` receives forwarded replies."""
    with deps.sessions.begin() as session:
        e164 = normalize_phone(phone)
        agent = repo.agent_by_phone(session, e164)
        if agent is None:
            agent = Agent(first_name=first_name, last_name=last_name, phone=e164, created_at=now)
            session.add(agent)
        else:
            agent.first_name, agent.last_name = first_name, last_name
        if email is not None:
            agent.email = email.strip() or None
        session.flush()
        return agent.id


def find_contact(deps: Deps, ref: str) -> Contact:
    """A contact by id, by the CRM's lead id (``external_id``) or by phone number (any format)."""
    from drip.store.events import contact_by_ref

    with deps.sessions() as session:
        contact: Contact | None
        if ref.isdigit() and len(ref) < 10:
            contact = session.get(Contact, int(ref))
        else:
            contact = contact_by_ref(session, ref, None, None)
            if contact is None:
                contact = repo.contact_by_phone(session, normalize_phone(ref))
        if contact is None:
            raise NotFoundError(f"no contact {ref!r} (give an id, a CRM id or a phone number)")
        session.expunge(contact)
        return contact
