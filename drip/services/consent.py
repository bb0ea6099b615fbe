"""Consent changes: given, revoked, restored, and whether a contact may be texted at all.

Every change is an append-only ``consent_events`` row with its evidence, in
the same transaction as the change it records (see docs/compliance.md). The
fire path, status callbacks, inbound keywords and the operator's commands
all change consent through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from drip import metrics
from drip.domain.enums import ConsentEventKind, ConsentSource, TextStatus
from drip.errors import NotFoundError, ValidationError
from drip.services.deps import Deps
from drip.store import outbox
from drip.store.models import ConsentEvent, Contact


@dataclass(frozen=True, slots=True)
class ConsentEvidence:
    """Proof of SMS consent: when, how, and the words the contact agreed to (docs/compliance.md)."""

    at: datetime
    source: ConsentSource
    text: str

    def __post_init__(self) -> None:
        if self.at.utcoffset() is None:
            raise ValidationError("consent time must be timezone-aware")
        if not self.text.strip():
            raise ValidationError("consent evidence needs the consent text that was shown")


def consent_on_record(contact: Contact, evidence: ConsentEvidence) -> bool:
    """The contact's consent in force is this very evidence (importing it again changes nothing)."""
    return (
        contact.sms_opted_out_at is None
        and contact.sms_consent_at == evidence.at
        and contact.sms_consent_text == evidence.text
    )


def record_consent(
    session: Session, contact: Contact, evidence: ConsentEvidence, now: datetime
) -> bool:
    """Store consent with its evidence; False when the contact had opted out by keyword since."""
    if contact.sms_opted_out_at is not None and contact.sms_opted_out_at > evidence.at:
        return False
    contact.sms_consent_at = evidence.at
    contact.sms_consent_source = evidence.source
    contact.sms_consent_text = evidence.text
    contact.sms_opted_out_at = None
    contact.sms_opted_out_how = None
    contact.updated_at = now
    session.add(
        ConsentEvent(
            contact_id=contact.id,
            kind=ConsentEventKind.GIVEN,
            at=evidence.at,
            source=evidence.source.value,
            evidence=evidence.text,
        )
    )
    return True


def keep_consent_evidence(session: Session, contact: Contact, evidence: ConsentEvidence) -> None:
    """Consent given while an earlier opt-out stands: stored, the opt-out untouched."""
    contact.sms_consent_at = evidence.at
    contact.sms_consent_source = evidence.source
    contact.sms_consent_text = evidence.text
    session.add(
        ConsentEvent(
            contact_id=contact.id,
            kind=ConsentEventKind.GIVEN,
            at=evidence.at,
            source=evidence.source.value,
            evidence=evidence.text,
            detail="kept as evidence: the number had opted out by text before it was a contact",
        )
    )


def opt_out(
    session: Session,
    contact: Contact,
    how: str,
    kind: ConsentEventKind,
    now: datetime,
    *,
    evidence: str,
    detail: str | None = None,
    actor: str | None = None,
) -> bool:
    """Revoke SMS consent for every sender; pending texts will be skipped at fire time.

    ``actor`` names the person who recorded it (an operator), when one did.
    """
    if contact.sms_opted_out_at is not None:
        return False
    contact.sms_opted_out_at = now
    contact.sms_opted_out_how = how
    contact.updated_at = now
    session.add(
        ConsentEvent(
            contact_id=contact.id,
            kind=kind,
            at=now,
            source=how,
            evidence=evidence,
            detail=detail,
            actor=actor,
        )
    )
    outbox.append(
        session,
        "contact.opted_out",
        contact.id,
        {"contact": outbox.contact_doc(contact), "how": how, "evidence": evidence},
        now,
    )
    metrics.opt_out(kind.value)
    return True


def withdraw_consent(
    session: Session, contact: Contact, now: datetime, *, evidence: str, source: str = "operator"
) -> bool:
    """An operator's or the API's withdrawal of consent (``consent: false``).

    Recorded as its own consent event even when the contact already opted
    out by keyword or phrase, and it becomes the latest opt-out (``how`` is
    ``operator``), so a later START does not restore consent. False only
    when the latest opt-out was already an operator's (nothing new to record).
    """
    if contact.sms_opted_out_at is not None and contact.sms_opted_out_how == "operator":
        return False
    contact.sms_opted_out_at = now
    contact.sms_opted_out_how = "operator"
    contact.updated_at = now
    session.add(
        ConsentEvent(
            contact_id=contact.id,
            kind=ConsentEventKind.REVOKED_OPERATOR,
            at=now,
            source=source,
            evidence=evidence,
        )
    )
    doc = {"contact": outbox.contact_doc(contact), "how": "operator", "evidence": evidence}
    outbox.append(session, "contact.opted_out", contact.id, doc, now)
    return True


def restore(session: Session, contact: Contact, now: datetime, *, evidence: str) -> bool:
    """START after a keyword or phrase opt-out restores earlier consent (docs/compliance.md)."""
    if (
        contact.sms_opted_out_at is None
        or contact.sms_consent_at is None
        or contact.sms_opted_out_how not in ("keyword", "phrase")
    ):
        return False
    contact.sms_opted_out_at = None
    contact.sms_opted_out_how = None
    contact.updated_at = now
    session.add(
        ConsentEvent(
            contact_id=contact.id,
            kind=ConsentEventKind.RESTORED,
            at=now,
            source="keyword",
            evidence=evidence,
        )
    )
    outbox.append(
        session,
        "contact.opted_in",
        contact.id,
        {"contact": outbox.contact_doc(contact), "how": "keyword", "evidence": evidence},
        now,
    )
    return True


def void_for_reassigned(
    session: Session, contact: Contact, now: datetime, *, evidence: str, detail: str
) -> bool:
    """The reassigned-numbers check says the number changed hands after the consent: void it.

    The consent given by the number's former owner no longer covers it: the
    contact has no SMS consent until it is given again (a later START does not
    restore it). The check's answer is the event's evidence. False when there
    was no consent left to void.
    """
    if contact.sms_consent_at is None:
        return False
    contact.sms_consent_at = None
    contact.updated_at = now
    session.add(
        ConsentEvent(
            contact_id=contact.id,
            kind=ConsentEventKind.NUMBER_REASSIGNED,
            at=now,
            source="reassigned_numbers",
            evidence=evidence,
            detail=detail,
        )
    )
    return True


def mark_undeliverable(contact: Contact, code: int, now: datetime) -> None:
    """The contact's number cannot receive texts (the carrier's ``code``): no further texts."""
    contact.text_status = TextStatus.UNDELIVERABLE
    contact.undeliverable_code = code
    contact.updated_at = now


def set_text_status(
    deps: Deps, contact_id: int, status: TextStatus, now: datetime, *, by: str
) -> None:
    """An operator marks a contact cannot-be-texted (a revocation) or textable again."""
    with deps.sessions.begin() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        if contact.text_status is status:
            return
        contact.text_status = status
        contact.text_status_by = by
        contact.updated_at = now
        kind = (
            ConsentEventKind.REVOKED_OPERATOR
            if status is TextStatus.CANNOT_BE_TEXTED
            else ConsentEventKind.TEXTABLE_AGAIN
        )
        session.add(
            ConsentEvent(
                contact_id=contact_id,
                kind=kind,
                at=now,
                source="operator",
                evidence=f"text status set to {status.value} by {by}",
                actor=by,
            )
        )
