"""Queries of the carrier's clock: due texts per sender, prior expiries of a send."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import case, func, literal, select, union_all, update
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, SenderRole, SendState
from drip.store.claims import SENDS, not_held
from drip.store.models import Agent, Contact, Conversation, ScheduledSend, SendDecision

#: Decision code of a send the carrier expired (30036) and drip put back once.
CODE_EXPIRED = "carrier_expired"
#: Decision code of a second expiry: final.
CODE_EXPIRED_FINAL = "carrier_expired_again"


def sms_due_and_flying(
    session: Session,
    due_by: datetime,
    limit: int,
    *,
    default_phone: str | None = None,
    concierge_phone: str | None = None,
) -> tuple[Counter[str], Counter[str]]:
    """Per sender number: the SMS sends among the next ``limit`` a claim would take (due by
    ``due_by``, in :func:`~drip.store.claims.claim_due`'s order, held ones left out), and
    the SMS sends in flight (queued or sending), in one grouped query.

    Only the next ``limit`` due sends are looked at, not the whole backlog: a claim
    takes no more, and counting 100,000 due rows cost ~100 ms a claim.

    The sender is the send's pinned number, else its contact's agent (else the
    account's default agent) for the agent role, or the concierge number.
    Sends with no resolvable sender are left out.
    """
    next_due = (
        select(SENDS.c.id)
        .where(SENDS.c.state == SendState.PENDING, SENDS.c.due_at <= due_by, not_held())
        .order_by(SENDS.c.due_at, SENDS.c.original_due_at, SENDS.c.id)
        .limit(limit)
        .subquery("next_due")
    )
    rows = union_all(
        select(next_due.c.id.label("id"), literal(1).label("due")),
        select(SENDS.c.id.label("id"), literal(0).label("due")).where(
            SENDS.c.state.in_((SendState.QUEUED, SendState.SENDING))
        ),
    ).subquery("counted")
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
    query = (
        select(phone, func.sum(rows.c.due), func.count())
        .select_from(rows)
        .join(ScheduledSend, ScheduledSend.id == rows.c.id)
        .join(Contact, Contact.id == ScheduledSend.contact_id)
        .outerjoin(Agent, Agent.id == Contact.agent_id)
        .where(ScheduledSend.channel == Channel.SMS)
        .group_by(phone)
    )
    due_counts: Counter[str] = Counter()
    flying_counts: Counter[str] = Counter()
    for number, n_due, n_all in session.execute(query):
        if number is not None:
            if n_due:
                due_counts[str(number)] += int(n_due)
            if int(n_all) > int(n_due or 0):
                flying_counts[str(number)] += int(n_all) - int(n_due or 0)
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
