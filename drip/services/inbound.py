"""Inbound texts: keywords, plain-words revocation, two-way communication (SPEC §3).

``handle_inbound`` is what the Twilio webhook and replay call for every text a
contact sends. It stores the message (once per ``MessageSid``: Twilio retries),
classifies it, applies the effect in one transaction with its consent event,
and then sends any compliance reply through the normal fire path, so replies
are recorded like every other message.

Choices where the SPEC is silent:
- a second STOP from a contact already opted out gets no second confirmation
  (it would start a loop with some auto-responders);
- any ordinary reply ends every active ``stop_on_reply`` enrollment of the
  contact, whichever number it went to: the lead is talking, a person takes over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, ConsentEventKind, MessageKind, SenderRole
from drip.domain.keywords import Classification, InboundKind, classify
from drip.domain.zones import normalize_phone
from drip.errors import ValidationError
from drip.services.contacts import opt_out, restore, send_now
from drip.services.deps import Deps
from drip.services.firing import FireResult
from drip.store import repository as repo
from drip.store.models import Contact, Enrollment, Message, OrphanOptOut

log = structlog.get_logger("drip.inbound")


@dataclass(frozen=True)
class InboundResult:
    """What an inbound text did: ``action`` is one stable word, ``detail`` says more."""

    #: duplicate | opted_out | already_opted_out | help | resubscribed | two_way | text
    #: | orphan_opt_out | unknown_sender
    action: str
    classification: Classification
    contact_id: int | None = None
    message_id: int | None = None
    detail: str = ""
    replies: tuple[FireResult, ...] = field(default_factory=tuple)


def sender_role_of(deps: Deps, to_phone: str) -> SenderRole:
    """Which of the account's senders a number is: the concierge line or an agent's."""
    if deps.account.concierge_phone and to_phone == deps.account.concierge_phone:
        return SenderRole.CONCIERGE
    return SenderRole.AGENT


def _phone(raw: str) -> str:
    try:
        return normalize_phone(raw)
    except ValidationError:
        return raw.strip()


def handle_inbound(
    deps: Deps,
    *,
    from_phone: str,
    to_phone: str,
    body: str,
    now: datetime,
    message_sid: str | None = None,
    opt_out_type: str | None = None,
) -> InboundResult:
    """Store, classify and apply one inbound text; idempotent on ``message_sid``."""
    sender_phone, to = _phone(from_phone), _phone(to_phone)
    role = sender_role_of(deps, to)
    classification = classify(body, opt_out_type)
    reply: tuple[MessageKind, str] | None = None
    with deps.sessions.begin() as session:
        if message_sid and repo.message_by_sid(session, message_sid) is not None:
            return InboundResult("duplicate", classification, detail="MessageSid already processed")
        contact = repo.contact_by_phone(session, sender_phone)
        message = Message(
            direction="inbound",
            channel=Channel.SMS,
            sender_phone=to,
            contact_id=contact.id if contact else None,
            from_addr=sender_phone,
            to_addr=to,
            body=body,
            provider_sid=message_sid,
            status="received",
            created_at=now,
        )
        session.add(message)
        session.flush()
        if contact is None:
            result = _unknown_sender(session, sender_phone, classification, now, message.id)
        else:
            result, reply = _apply(
                deps, session, contact, to=to, classification=classification, body=body, now=now
            )
            result = InboundResult(
                result.action, classification, contact.id, message.id, result.detail
            )
    log.info(
        "inbound_handled",
        action=result.action,
        kind=classification.kind.value,
        keyword=classification.keyword,
        contact_id=result.contact_id,
        from_=sender_phone,
    )
    if reply is not None and result.contact_id is not None:
        kind, text = reply
        # The reply comes from the number the contact texted, whoever their agent is.
        sent = send_now(deps, result.contact_id, kind, text, now, sender_role=role, sender_phone=to)
        result = InboundResult(
            result.action,
            classification,
            result.contact_id,
            result.message_id,
            result.detail,
            (sent,),
        )
    return result


def _unknown_sender(
    session: Session, phone: str, classification: Classification, now: datetime, message_id: int
) -> InboundResult:
    if classification.kind in (InboundKind.OPT_OUT, InboundKind.REVOCATION_PHRASE):
        if session.get(OrphanOptOut, phone) is None:
            session.add(OrphanOptOut(phone=phone, at=now, keyword=classification.keyword or ""))
        return InboundResult(
            "orphan_opt_out",
            classification,
            None,
            message_id,
            "not a contact yet: remembered, a contact with this number starts opted out",
        )
    return InboundResult("unknown_sender", classification, None, message_id, "not a contact")


def _apply(
    deps: Deps,
    session: Session,
    contact: Contact,
    *,
    to: str,
    classification: Classification,
    body: str,
    now: datetime,
) -> tuple[InboundResult, tuple[MessageKind, str] | None]:
    account = deps.account
    kind = classification.kind
    if kind in (InboundKind.OPT_OUT, InboundKind.REVOCATION_PHRASE):
        phrase = kind is InboundKind.REVOCATION_PHRASE
        changed = opt_out(
            session,
            contact,
            "phrase" if phrase else "keyword",
            ConsentEventKind.REVOKED_PHRASE if phrase else ConsentEventKind.REVOKED_KEYWORD,
            now,
            evidence=body,
            detail=f"matched {classification.keyword!r}" if phrase else classification.keyword,
        )
        if not changed:
            return InboundResult("already_opted_out", classification), None
        what = f"phrase {classification.keyword!r}" if phrase else f"{classification.keyword}"
        reply = None
        if not account.twilio_sends_opt_out_confirmation:
            reply = (MessageKind.OPT_OUT_CONFIRMATION, account.opt_out_confirmation)
        return InboundResult("opted_out", classification, detail=f"opted out by {what}"), reply
    if kind is InboundKind.HELP:
        return InboundResult("help", classification), (MessageKind.HELP, account.help_reply)
    if kind is InboundKind.OPT_IN and restore(session, contact, now, evidence=body):
        reply = (MessageKind.RESUBSCRIBE_CONFIRMATION, account.resubscribe_confirmation)
        return InboundResult("resubscribed", classification, detail="consent restored"), reply
    # Anything else, START/YES from someone who never opted out included, is a reply.
    conversation = repo.conversation(session, to, contact.id)
    first = conversation.two_way_at is None
    if first:
        conversation.two_way_at = now
    stopped = repo.stop_enrollments(
        session,
        [e.id for e in _stop_on_reply_enrollments(deps, session, contact.id)],
        now,
        "the contact replied (stop_on_reply)",
    )
    detail = "two-way communication established" if first else "reply in a two-way conversation"
    if stopped:
        detail += f"; {len(stopped)} pending step(s) cancelled by stop_on_reply"
    return InboundResult("two_way" if first else "text", classification, detail=detail), None


def _stop_on_reply_enrollments(deps: Deps, session: Session, contact_id: int) -> list[Enrollment]:
    enrollments = repo.active_enrollments_of(session, contact_id)
    rows = repo.campaigns_by_id(session, (e.campaign_id for e in enrollments))
    out: list[Enrollment] = []
    for e in enrollments:
        row = rows.get(e.campaign_id)
        if row is None:
            continue
        campaign = deps.campaigns.get(row.id, row.version, row.definition)
        if campaign.stop_on_reply:
            out.append(e)
    return out
