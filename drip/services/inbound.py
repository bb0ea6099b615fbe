"""Inbound texts: keywords, plain-words revocation, two-way communication.

The rules are in docs/compliance.md#inbound-texts.

``handle_inbound`` is what the Twilio webhook and replay call for every text a
contact sends. It stores the message (once per ``MessageSid``: Twilio retries),
classifies it, applies the effect in one transaction with its consent event,
and then sends any compliance reply through the normal fire path, so replies
are recorded like every other message.

Choices the rules leave open:
- a second STOP from a contact already opted out gets no second confirmation
  (it would start a loop with some auto-responders);
- any ordinary reply acts on every active enrollment of the contact,
  whichever number it went to, as its campaign's ``on_reply`` says (stop,
  pause or continue: :mod:`drip.services.pausing`).

Every sender form is accepted: a short code (``22395``), a number
the phone metadata does not know yet (a new area code such as 624 or 357),
a foreign number. :func:`sender_address` keeps what phonenumbers cannot
validate as written (digits, with its ``+``), so the text is recorded and its
keywords act; an opt-out from a number that is no contact yet is kept in
``orphan_opt_outs`` and a contact created later with that number starts
opted out.

Twilio's own opt-out handling: when the webhook carries ``OptOutType``
(Advanced Opt-Out), Twilio has already answered the contact, so drip records
the effect and sends no STOP, HELP or START reply of its own; the account's
``twilio_sends_opt_out_confirmation: true`` means the same for every inbound.
The account's ``keywords`` (``account.yaml``) extend the families.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from drip import metrics
from drip.domain.enums import Channel, ConsentEventKind, MessageKind, SenderRole
from drip.domain.keywords import Classification, InboundKind, classify, keyword_table
from drip.domain.zones import normalize_phone
from drip.errors import ValidationError
from drip.services.consent import opt_out, restore
from drip.services.contacts import send_now
from drip.services.deps import Deps
from drip.services.fire import FireResult
from drip.services.pausing import on_reply
from drip.store import agents as agents_store
from drip.store import outbox
from drip.store import repository as repo
from drip.store.models import Contact, Message, OrphanOptOut

log = structlog.get_logger("drip.inbound")


@dataclass(frozen=True)
class InboundResult:
    """What an inbound text did: ``action`` is one stable word, ``detail`` says more."""

    #: duplicate | opted_out | already_opted_out | help | resubscribed | two_way | text
    #: | orphan_opt_out | orphan_opt_in | unknown_sender
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


_DIGITS = re.compile(r"\+?[0-9]{3,15}")


def sender_address(raw: str) -> str:
    """The address of a signed inbound's ``From`` or ``To``: E.164 when phonenumbers knows it.

    A short code, a number in an area code the metadata does not know yet or
    any other run of 3 to 15 digits (with its ``+``) is kept as written:
    Twilio vouched for it with its signature. Anything else (empty, letters)
    is a ValidationError naming the value.
    """
    value = raw.strip()
    if not value:
        raise ValidationError("is empty")
    try:
        return normalize_phone(value)
    except ValidationError:
        compact = re.sub(r"[\s().\-]", "", value)
        if _DIGITS.fullmatch(compact):
            return compact
        raise ValidationError(f"{value[:40]!r} is not a phone number or short code") from None


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
    classification = classify(
        body,
        opt_out_type,
        keyword_table(deps.account.keywords) if deps.account.keywords else None,
    )
    # Twilio (Advanced Opt-Out) already answered keyword texts: no reply of our own.
    twilio_answers = bool(opt_out_type and opt_out_type.strip()) or (
        deps.account.twilio_sends_opt_out_confirmation
    )
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
            if twilio_answers and reply is not None and reply[0] in _TWILIO_ANSWERED:
                log.info("reply_left_to_twilio", kind=reply[0].value, contact_id=contact.id)
                reply = None
            result = InboundResult(
                result.action, classification, contact.id, message.id, result.detail
            )
    metrics.inbound(classification.kind.value)
    log.info(
        "inbound_handled",
        action=result.action,
        kind=classification.kind.value,
        keyword=classification.keyword,
        contact_id=result.contact_id,
        from_=sender_phone,
    )
    forwarding = deps.account.reply_forwarding == "email"
    if forwarding and result.action in ("two_way", "text") and result.contact_id is not None:
        from drip.services.forwarding import forward_reply  # only when the account asks

        forward_reply(deps, result.contact_id, body, to, now)
    if reply is not None and result.contact_id is not None:
        kind, text = reply
        # The reply comes from the number the contact texted, whoever their agent is, unless
        # that number is a deactivated agent's (it sends nothing more): then from the
        # contact's own sender, resolved at fire time.
        with deps.sessions() as session:
            pinned = None if to in agents_store.inactive_phones(session) else to
        sent = send_now(
            deps, result.contact_id, kind, text, now, sender_role=role, sender_phone=pinned
        )
        result = InboundResult(
            result.action,
            classification,
            result.contact_id,
            result.message_id,
            result.detail,
            (sent,),
        )
    return result


#: The replies Twilio's Advanced Opt-Out sends itself (STOP, HELP and START).
_TWILIO_ANSWERED = frozenset(
    {MessageKind.OPT_OUT_CONFIRMATION, MessageKind.HELP, MessageKind.RESUBSCRIBE_CONFIRMATION}
)


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
    orphan = session.get(OrphanOptOut, phone) if classification.kind is InboundKind.OPT_IN else None
    if orphan is not None:  # START after STOP, still no contact: the opt-out is lifted
        session.delete(orphan)
        return InboundResult(
            "orphan_opt_in",
            classification,
            None,
            message_id,
            "earlier opt-out of this number lifted",
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
    outbox.append(
        session,
        "reply.received",
        contact.id,
        {
            "text": body,
            "contact": outbox.contact_doc(contact),
            "from": contact.phone,
            "to": to,
            "agent": outbox.agent_doc(session, contact.agent_id),
            "received_at": now.isoformat(),
        },
        now,
    )
    effect = on_reply(deps, session, contact.id, now, what="reply")
    detail = "two-way communication established" if first else "reply in a two-way conversation"
    if effect.cancelled:
        detail += f"; {len(effect.cancelled)} pending step(s) cancelled by stop_on_reply"
    if effect.paused:
        detail += f"; {effect.paused} enrollment(s) paused by on_reply: pause"
    return InboundResult("two_way" if first else "text", classification, detail=detail), None
