"""Queries of the carrier's clock (SPEC §4a): due texts per sender, prior expiries of a send."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, SenderRole, SendState
from drip.store.models import Agent, Contact, Conversation, ScheduledSend, SendDecision

#: Decision code of a send the carrier expired (30036) and drip put back once.
CODE_EXPIRED = "carrier_expired"
#: Decision code of a second expiry: final.
CODE_EXPIRED_FINAL = "carrier_expired_again"


def sms_due_and_flying(
    session: Session,
    due_by: datetime,
    *,
    default_phone: str | None = None,
    concierge_phone: str | None = None,
) -> tuple[Counter[str], Counter[str]]:
    """Per sender number: SMS sends pending and due by ``due_by``, and SMS sends in flight
    (queued or sending), in one grouped query.

    The sender is the send's pinned number, else its contact's agent (else the
    account's default agent) for the agent role, or the concierge number.
    Sends with no resolvable sender are left out.
    """
    phone = case(
        (
            ScheduledSend.sender_role == SenderRole.AGENT,
            func.coalesce(ScheduledSend.sender_phone, Agent.phone, default_phone),
        ),
        (
            ScheduledSend.sender_role == SenderRole.CONCIERGE,
            func.coalesce(ScheduledSend.sender_phone, concierge_phone),
        ),
    )
    due = and_(ScheduledSend.state == SendState.PENDING, ScheduledSend.due_at <= due_by)
    flying = ScheduledSend.state.in_((SendState.QUEUED, SendState.SENDING))
    query = (
        select(
            phone,
            func.sum(case((due, 1), else_=0)),
            func.sum(case((flying, 1), else_=0)),
        )
        .select_from(ScheduledSend)
        .join(Contact, Contact.id == ScheduledSend.contact_id)
        .outerjoin(Agent, Agent.id == Contact.agent_id)
        .where(ScheduledSend.channel == Channel.SMS, or_(due, flying))
        .group_by(phone)
    )
    due_counts: Counter[str] = Counter()
    flying_counts: Counter[str] = Counter()
    for number, n_due, n_flying in session.execute(query):
        if number is not None:
            if n_due:
                due_counts[str(number)] += int(n_due)
            if n_flying:
                flying_counts[str(number)] += int(n_flying)
    return due_counts, flying_counts


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
