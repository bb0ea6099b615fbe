"""Render: the text a decided send carries, and the message to record (step 3).

The template's variables are filled from the contact, its sender and the
account; a variable left empty, or a text Twilio would refuse, skips the send
(:mod:`drip.services.fire_checks`). A text carries the opt-out footer when
the decision says so; an email carries the unsubscribe link and the postal
address. The message row is built here, to be recorded once the provider
has answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drip.domain.enums import Channel
from drip.domain.message import ACCOUNT_TEMPLATE_VARIABLES, render, sms_size, with_footer
from drip.domain.policy import Send
from drip.services import fire_checks, unsubscribe
from drip.services.deps import Deps
from drip.services.fire.gather import Prepared, Template
from drip.services.fire.outcome import Outcome, result_of
from drip.services.senders import template_values
from drip.store import fire_record
from drip.store.models import Message


@dataclass(frozen=True, slots=True)
class Sms:
    """A text ready for its provider: what goes out, and the message that records it."""

    sender: str
    to: str
    text: str
    segments: int
    message: Message


@dataclass(frozen=True, slots=True)
class Email:
    """An email ready for its provider: what goes out, and the message that records it."""

    to: str
    subject: str
    text: str
    headers: dict[str, str]
    message: Message


def render_send(
    deps: Deps, p: Prepared, decision: Send, template: Template, now: datetime
) -> Sms | Email | Outcome:
    """The send rendered for its channel, or the outcome of a send that cannot be."""
    send, contact, sender = p.send, p.contact, p.sender
    values = template_values(contact, sender, deps.account)
    missing = fire_checks.missing_values(
        (template.body, template.subject), values, ACCOUNT_TEMPLATE_VARIABLES
    )
    if missing:
        return result_of(
            p, decision, "skipped", "empty_variable", fire_checks.missing_reason(missing)
        )
    body = render(template.body, values, allowed=ACCOUNT_TEMPLATE_VARIABLES)
    if send.channel is Channel.EMAIL:
        subject = render(template.subject or deps.account.company, values)
        return _email(deps, p, decision, subject=subject, body=body, now=now)
    assert sender is not None and contact.phone is not None  # the gate and decide ensure it
    footer_text = template.footer or deps.account.footer
    text = with_footer(body, footer_text) if decision.footer else body
    refusal = fire_checks.sms_refusal(text)
    if refusal is not None:
        return result_of(p, decision, "skipped", "too_long", refusal)
    size = sms_size(text)
    message = fire_record.new_message(
        direction="outbound",
        channel=Channel.SMS,
        kind=send.kind,
        sender_phone=sender.phone,
        contact_id=contact.id,
        from_addr=sender.phone,
        to_addr=contact.phone,
        body=text,
        footer=decision.footer,
        segments=size.segments,
        encoding=size.encoding,
        status="queued",
        send_id=send.id,
        created_at=now,
    )
    return Sms(sender.phone, contact.phone, text, size.segments, message)


def _email(
    deps: Deps, p: Prepared, decision: Send, *, subject: str, body: str, now: datetime
) -> Email | Outcome:
    send, contact = p.send, p.contact
    assert contact.email is not None  # the email gate ensures it
    link = unsubscribe.url_for(deps.settings, contact.id)
    text = fire_checks.email_text(body, link, deps.account)
    if text is None:
        return result_of(p, decision, "skipped", "no_postal_address", fire_checks.NO_POSTAL_ADDRESS)
    message = Message(
        direction="outbound",
        channel=Channel.EMAIL,
        kind=send.kind,
        contact_id=contact.id,
        from_addr=deps.settings.email_from,
        to_addr=contact.email,
        subject=subject,
        body=text,
        status="queued",
        send_id=send.id,
        created_at=now,
    )
    return Email(contact.email, subject, text, fire_checks.unsubscribe_headers(link), message)
