"""Queries of the carrier's clock (SPEC §4a): due texts per sender, prior expiries of a send."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, SenderRole, SendState
from drip.store.models import Agent, Contact, Conversation, ScheduledSend, SendDecision

#: Decision code of a send the carrier expired (30036) and drip put back once.
CODE_EXPIRED = "carrier_expired"
#: Decision code of a second expiry: final.
CODE_EXPIRED_FINAL = "carrier_expired_again"


def sms_by_sender(
    session: Session,
    states: tuple[SendState, ...],
    *,
    due_by: datetime | None = None,
    default_phone: str | None = None,
    concierge_phone: str | None = None,
) -> Counter[str]:
    """How many SMS sends in ``states`` (due by ``due_by``) each sender number has.

    The sender is the send's pinned number, else its contact's agent (else the
    account's default agent) for the agent role, or the concierge number.
    Sends with no resolvable sender are left out.
    """
    agent_phone = func.coalesce(ScheduledSend.sender_phone, Agent.phone, default_phone)
    concierge = func.coalesce(ScheduledSend.sender_phone, concierge_phone)
    out: Counter[str] = Counter()
    for role, phone in ((SenderRole.AGENT, agent_phone), (SenderRole.CONCIERGE, concierge)):
        query = (
            select(phone, func.count())
            .select_from(ScheduledSend)
            .join(Contact, Contact.id == ScheduledSend.contact_id)
            .outerjoin(Agent, Agent.id == Contact.agent_id)
            .where(
                ScheduledSend.state.in_(states),
                ScheduledSend.channel == Channel.SMS,
                ScheduledSend.sender_role == role,
            )
            .group_by(phone)
        )
        if due_by is not None:
            query = query.where(ScheduledSend.due_at <= due_by)
        for number, count in session.execute(query):
            if number is not None:
                out[str(number)] += int(count)
    return out


def expiries_of(session: Session, send_id: int) -> int:
    """How many times the carrier expired this send before (decisions with :data:`CODE_EXPIRED`)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(SendDecision)
            .where(SendDecision.send_id == send_id, SendDecision.code == CODE_EXPIRED)
        )
        or 0
    )


def forget_footer(session: Session, sender_phone: str, contact_id: int, sent_at: datetime) -> bool:
    """The conversation's footer was last sent by a text that expired unsent: forget it.

    Only when that text is still the last footer (``footer_last_sent_at`` is
    its send time). The previous footer's time is not kept, so the state
    becomes "never" (F1): the next text carries the footer, which errs on the
    side of the contact. Returns whether a row changed.
    """
    changed = session.execute(
        update(Conversation)
        .where(
            Conversation.sender_phone == sender_phone,
            Conversation.contact_id == contact_id,
            Conversation.footer_last_sent_at == sent_at,
        )
        .values(footer_last_sent_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]
