"""The queries behind the console pages (read-only): search, a campaign's sends, audit rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from drip.store.models import (
    ConsentEvent,
    Contact,
    Conversation,
    Message,
    ScheduledSend,
    SendDecision,
)

__all__ = [
    "campaign_sends",
    "contacts_opted_out_between",
    "conversations_of",
    "footer_rules_of_contact",
    "search_contacts",
]


def search_contacts(
    session: Session, query: str, limit: int = 100, after: int | None = None
) -> list[Contact]:
    """Contacts whose name, email or phone contains ``query`` (case-insensitive), by name.

    ``after``: a keyset page, the contacts that sort after that contact's
    (last name, first name, id).
    """
    words = query.split()
    stmt = select(Contact).order_by(Contact.last_name, Contact.first_name, Contact.id)
    if after is not None:
        mark = select(Contact.last_name, Contact.first_name).where(Contact.id == after).subquery()
        last = select(mark.c.last_name).scalar_subquery()
        first = select(mark.c.first_name).scalar_subquery()
        stmt = stmt.where(
            or_(
                Contact.last_name > last,
                and_(Contact.last_name == last, Contact.first_name > first),
                and_(Contact.last_name == last, Contact.first_name == first, Contact.id > after),
            )
        )
    digits = "".join(ch for ch in query if ch.isdigit())
    conditions = []
    for word in words:
        pattern = f"%{word.lower()}%"
        conditions.append(
            or_(
                func.lower(Contact.first_name).like(pattern),
                func.lower(Contact.last_name).like(pattern),
                func.lower(func.coalesce(Contact.email, "")).like(pattern),
            )
        )
    name_match = and_(*conditions) if conditions else None
    if len(digits) >= 3:
        phone_match = func.coalesce(Contact.phone, "").like(f"%{digits}%")
        stmt = stmt.where(or_(phone_match, name_match) if name_match is not None else phone_match)
    elif name_match is not None:
        stmt = stmt.where(name_match)
    return list(session.scalars(stmt.limit(limit)))


def campaign_sends(
    session: Session,
    campaign_id: int,
    step_id: str | None,
    limit: int,
    before: int | None = None,
) -> Sequence[Any]:
    """The latest sends of a campaign (or one step): state, footer and its rule, contact name.

    ``before``: a keyset page, the sends that sort after send ``before`` (due
    time, then id, both descending).

    The page's sends are chosen first, in a subquery of their own (``LIMIT``),
    and only then joined to their contacts, messages and decisions: written as
    one join under the limit, a campaign of 25,000,000 sends made PostgreSQL
    plan it in parallel (its estimate was the whole campaign's joins), and
    starting the workers cost 20 ms for 0.6 ms of work (docs/benchmarks.md,
    "Capacity").
    """
    s = ScheduledSend
    chosen = select(
        s.id, s.step_id, s.state, s.due_at, s.decision_code, s.decision_reason, s.contact_id,
        s.message_id,
    ).where(s.campaign_id == campaign_id)  # fmt: skip
    if step_id is not None:
        chosen = chosen.where(s.step_id == step_id)
    if before is not None:
        mark = select(s.due_at).where(s.id == before).scalar_subquery().correlate(None)
        # A row comparison: the index on (campaign_id, due_at, id) starts at the mark.
        chosen = chosen.where(tuple_(s.due_at, s.id) < tuple_(mark, before))
    page = chosen.order_by(s.due_at.desc(), s.id.desc()).limit(limit).subquery("page")
    rule = (
        select(SendDecision.footer_rule)
        .where(
            SendDecision.send_id == page.c.id,
            SendDecision.outcome == "sent",
            SendDecision.footer_rule.is_not(None),
        )
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            page.c.id,
            page.c.step_id,
            page.c.state,
            page.c.due_at,
            page.c.decision_code,
            page.c.decision_reason,
            page.c.contact_id,
            Contact.first_name,
            Contact.last_name,
            Message.footer,
            Message.sent_at,
            Message.status.label("message_status"),
            rule.label("footer_rule"),
        )
        .join_from(page, Contact, Contact.id == page.c.contact_id)
        .outerjoin(Message, Message.id == page.c.message_id)
        .order_by(page.c.due_at.desc(), page.c.id.desc())
    )
    rows: Sequence[Any] = session.execute(stmt).all()
    return rows


def footer_rules_of_contact(session: Session, contact_id: int) -> dict[int, str]:
    """``{send id: footer rule}`` of the decisions that sent the contact's texts (F1-F5, compliance).

    Joined on the contact's sends: no list of ids goes into the statement.
    """
    rows = session.execute(
        select(SendDecision.send_id, SendDecision.footer_rule)
        .join(ScheduledSend, ScheduledSend.id == SendDecision.send_id)
        .where(
            ScheduledSend.contact_id == contact_id,
            SendDecision.outcome == "sent",
            SendDecision.footer_rule.is_not(None),
        )
    )
    return {send_id: rule for send_id, rule in rows if rule is not None}


def conversations_of(session: Session, contact_id: int) -> list[Conversation]:
    """The contact's conversations (one per sender number)."""
    return list(
        session.scalars(
            select(Conversation)
            .where(Conversation.contact_id == contact_id)
            .order_by(Conversation.sender_phone)
        )
    )


def contacts_opted_out_between(session: Session, start: datetime, end: datetime) -> list[int]:
    """Ids of contacts with an SMS opt-out consent event in ``[start, end)``."""
    rows = session.scalars(
        select(ConsentEvent.contact_id)
        .where(
            ConsentEvent.kind.in_(
                ["revoked_keyword", "revoked_phrase", "revoked_operator", "revoked_carrier"]
            ),
            ConsentEvent.at >= start,
            ConsentEvent.at < end,
        )
        .distinct()
        .order_by(ConsentEvent.contact_id)
    )
    return list(rows)
