"""The SQL of an erasure: every row that names one contact loses the personal data it holds.

:func:`erase_rows` runs in the caller's transaction. What goes: the
contact's name, phone, email, address fields, CRM id, stage, tags and
consent wording; every message body and subject, to or from the contact
(also from the number before it was a contact); the bodies of its sends;
the free text of its consent events (the evidence), of lead events it was
named by (their payloads, but the non-personal fields), of outbox payloads;
its orphan opt-out. Every other text column of those rows (decision reasons,
stop reasons, errors) keeps its words with the person's name, number and
email replaced by :data:`ERASED`. What stays: the rows themselves, their
times, kinds, codes and outcomes, and the consent events' kinds and dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, delete, or_, select
from sqlalchemy.orm import Session

from drip.store import lifecycle, number_checks
from drip.store.models import (
    AssignmentChange,
    Bulk,
    ConsentEvent,
    Contact,
    Enrollment,
    InboxEvent,
    Message,
    OrphanOptOut,
    OutboxEvent,
    PendingCallback,
    ScheduledSend,
    SendDecision,
)

__all__ = ["ERASED", "ErasedRows", "Needles", "erase_rows", "phone_forms", "redact"]

#: What replaces a personal value that cannot simply be removed.
ERASED = "[erased]"

#: Keys of a stored document (outbox payloads) whose values are personal: replaced whole.
PERSONAL_KEYS = frozenset(
    {
        "first_name",
        "last_name",
        "name",
        "phone",
        "email",
        "from",
        "body",
        "text",
        "subject",
        "evidence",
        "detail",
        "consent_text",
        "external_id",
        "notes",
        "note",
    }
)
#: Keys of a lead event's data kept on erasure: words from the CRM's vocabulary, not the person's.
EVENT_KEYS_KEPT = frozenset(
    {"stage", "lead_source", "kind", "channel", "agent", "campaign", "source", "sms_consent"}
)


def phone_forms(phone: str) -> list[str]:
    """The ways a stored or logged text may write ``phone`` (E.164): every one is searched."""
    digits = phone.lstrip("+")
    forms = [phone, "%2B" + digits, digits]
    if phone.startswith("+1") and len(digits) == 11:
        n = digits[1:]
        a, b, c = n[:3], n[3:6], n[6:]
        forms += [
            n,
            f"({a}) {b}-{c}",
            f"({a}){b}-{c}",
            f"{a}-{b}-{c}",
            f"{a}.{b}.{c}",
            f"{a} {b} {c}",
        ]
    return forms


@dataclass(frozen=True)
class Needles:
    """The person's name, numbers and addresses, and a pattern that finds any of them."""

    names: tuple[str, ...]
    phones: tuple[str, ...]
    emails: tuple[str, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        """The phone (E.164) and email exactly as stored in ``messages``' address columns."""
        return tuple(p for p in self.phones if p.startswith("+")) + self.emails

    def pattern(self) -> re.Pattern[str] | None:
        parts = [re.escape(v) for v in (*self.phones, *self.emails) if v]
        parts += [rf"\b{re.escape(n)}\b" for n in self.names if len(n) >= 2]
        if not parts:
            return None
        parts.sort(key=len, reverse=True)
        return re.compile("|".join(parts), re.IGNORECASE)


def needles_of(contact: Contact) -> Needles:
    names = [contact.first_name, contact.last_name]
    full = f"{contact.first_name} {contact.last_name}".strip()
    phones = phone_forms(contact.phone) if contact.phone else []
    emails = [contact.email.strip(), contact.email.strip().lower()] if contact.email else []
    return Needles(
        tuple(dict.fromkeys(n.strip() for n in (full, *names) if n and n.strip())),
        tuple(dict.fromkeys(phones)),
        tuple(dict.fromkeys(emails)),
    )


def scrub(text: str | None, pattern: re.Pattern[str] | None) -> str | None:
    """``text`` with every needle replaced by :data:`ERASED`."""
    if text is None or pattern is None:
        return text
    return pattern.sub(ERASED, text)


def redact(doc: Any, pattern: re.Pattern[str] | None, *, keep: frozenset[str] | None = None) -> Any:
    """A JSON document without personal values.

    With ``keep``, only those keys of the top level keep their values; without,
    the :data:`PERSONAL_KEYS` lose theirs. Other strings are scrubbed, and an
    ``agent`` (not the contact) is left whole.
    """
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for k, v in doc.items():
            if keep is not None and k not in keep:
                out[k] = ERASED if v is not None else None
            elif keep is None and k in PERSONAL_KEYS and v is not None:
                out[k] = ERASED
            elif k == "agent":
                out[k] = v
            else:
                out[k] = redact(v, pattern)
        return out
    if isinstance(doc, list):
        return [redact(v, pattern) for v in doc]
    if isinstance(doc, str):
        return scrub(doc, pattern)
    return doc


@dataclass(frozen=True, slots=True)
class ErasedRows:
    """How many rows of each kind lost personal data (and what the erasure stopped)."""

    messages: int
    sends: int
    decisions: int
    consent_events: int
    lead_events: int
    outbox_events: int
    enrollments_stopped: int
    sends_cancelled: int

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def _like_any(column: Any, values: Sequence[str]) -> Any:
    return or_(*(cast(column, String).like(f"%{v}%") for v in values))


def erase_rows(
    session: Session, contact: Contact, now: datetime, *, by: str, reason: str
) -> ErasedRows:
    """Remove ``contact``'s personal data from every table (see the module docstring)."""
    needles = needles_of(contact)
    pattern = needles.pattern()
    cid = contact.id
    stopped = lifecycle.stop_campaign_enrollments(
        session, Enrollment.contact_id == cid, now, reason
    )
    cancelled = lifecycle.cancel_pending(
        session, ScheduledSend.contact_id == cid, now, "erased", reason
    )
    addresses = needles.addresses
    message_where = Message.contact_id == cid
    if addresses:
        # Texts from the number before it was a contact; not another contact's (a shared email).
        message_where = or_(
            message_where,
            and_(
                Message.contact_id.is_(None),
                or_(Message.from_addr.in_(addresses), Message.to_addr.in_(addresses)),
            ),
        )
    messages = 0
    for m in session.scalars(select(Message).where(message_where)):
        m.body, m.subject = "", None
        m.error_message = scrub(m.error_message, pattern)
        if m.from_addr in addresses:
            m.from_addr = ERASED
        if m.to_addr in addresses:
            m.to_addr = ERASED
        messages += 1
    sends = list(session.scalars(select(ScheduledSend).where(ScheduledSend.contact_id == cid)))
    for s in sends:
        s.body = None
        s.decision_reason = scrub(s.decision_reason, pattern)
    decisions = 0
    for d in _in_chunks(session, SendDecision, SendDecision.send_id, [s.id for s in sends]):
        cleaned = scrub(d.reason, pattern)
        if cleaned != d.reason:
            d.reason = cleaned or ""
        decisions += 1
    consents = 0
    for e in session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == cid)):
        e.evidence = ERASED if e.evidence is not None else None
        e.detail = ERASED if e.detail is not None else None
        consents += 1
    for en in session.scalars(select(Enrollment).where(Enrollment.contact_id == cid)):
        en.stop_reason = scrub(en.stop_reason, pattern)
    for a in session.scalars(select(AssignmentChange).where(AssignmentChange.contact_id == cid)):
        a.why = scrub(a.why, pattern) or ""
    lead_events = _erase_lead_events(session, cid, needles, pattern)
    outbox = 0
    for o in session.scalars(select(OutboxEvent).where(OutboxEvent.contact_id == cid)):
        o.payload = redact(o.payload, pattern)
        o.last_error = scrub(o.last_error, pattern)
        outbox += 1
    _scrub_shared(session, needles, pattern)
    # The reassigned-numbers answers name the contact (their number is only a digest).
    number_checks.forget_contact(session, cid)
    if contact.phone is not None:
        session.execute(delete(OrphanOptOut).where(OrphanOptOut.phone == contact.phone))
    _blank_contact(contact, now, by=by)
    session.flush()
    return ErasedRows(
        messages, len(sends), decisions, consents, lead_events, outbox, stopped, len(cancelled)
    )


def _in_chunks(session: Session, model: Any, column: Any, ids: Sequence[int]) -> Iterable[Any]:
    for start in range(0, len(ids), 500):
        yield from session.scalars(select(model).where(column.in_(ids[start : start + 500])))


def _erase_lead_events(
    session: Session, cid: int, needles: Needles, pattern: re.Pattern[str] | None
) -> int:
    """Lead events applied to the contact, and unapplied ones naming its phone or email."""
    where = InboxEvent.contact_id == cid
    if needles.addresses:
        unapplied = and_(
            InboxEvent.contact_id.is_(None), _like_any(InboxEvent.contact_ref, needles.addresses)
        )
        where = or_(where, unapplied)
    n = 0
    for e in session.scalars(select(InboxEvent).where(where)):
        e.contact_ref = {"contact_id": cid}
        e.data = redact(e.data, pattern, keep=EVENT_KEYS_KEPT)
        e.outcome = scrub(e.outcome, pattern)
        n += 1
    return n


def _scrub_shared(session: Session, needles: Needles, pattern: re.Pattern[str] | None) -> None:
    """Rows not tied to the contact that may still quote its number or email."""
    values = [v for v in (*needles.phones, *needles.emails) if len(v) >= 7]
    if not values:
        return
    for b in session.scalars(select(Bulk).where(or_(_like_any(Bulk.filters, values)))):
        b.filters = scrub(b.filters, pattern) or ""
    for p in session.scalars(
        select(PendingCallback).where(_like_any(PendingCallback.error_message, values))
    ):
        p.error_message = scrub(p.error_message, pattern)


def _blank_contact(contact: Contact, now: datetime, *, by: str) -> None:
    contact.first_name = ERASED
    contact.last_name = ""
    contact.phone = None
    contact.email = None
    contact.state = None
    contact.timezone = None
    contact.sms_consent_text = ERASED if contact.sms_consent_text is not None else None
    contact.external_id = None
    contact.stage = None
    contact.tags = None
    contact.lead_source = None
    contact.field_times = None
    contact.erased_at = now
    contact.erased_by = by
    contact.updated_at = now
