"""Queries on agents (``agents``: the people whose numbers text their contacts) and on
who a contact was assigned to (``assignment_changes``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from drip.domain.enums import SendState
from drip.store.models import Agent, AssignmentChange, ScheduledSend


def all_agents(session: Session) -> list[Agent]:
    """Every agent."""
    return list(session.scalars(select(Agent)))


def record_moves(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Append assignment changes (``contact_id, from_agent_id, to_agent_id, at, why, event_id``)."""
    if rows:
        session.execute(insert(AssignmentChange), list(rows))


def moves_of(session: Session, contact_id: int) -> list[AssignmentChange]:
    """The contact's assignment changes, oldest first."""
    return list(
        session.scalars(
            select(AssignmentChange)
            .where(AssignmentChange.contact_id == contact_id)
            .order_by(AssignmentChange.at, AssignmentChange.id)
        )
    )


def agent_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """``{agent id: "First Last"}`` of these agents."""
    if not ids:
        return {}
    rows = session.execute(
        select(Agent.id, Agent.first_name, Agent.last_name).where(Agent.id.in_(sorted(set(ids))))
    )
    return {i: f"{first} {last}".strip() for i, first, last in rows}


def unpin_sender(session: Session, phone: str, now: datetime) -> int:
    """Sends not yet made that were pinned to go out from ``phone`` go from the contact's
    sender instead (resolved at fire time); how many."""
    result = session.execute(
        update(ScheduledSend)
        .where(
            ScheduledSend.sender_phone == phone,
            ScheduledSend.state.in_((SendState.PENDING, SendState.QUEUED)),
        )
        .values(sender_phone=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def inactive_phones(session: Session) -> frozenset[str]:
    """The numbers of deactivated agents (a handful: agents, not contacts)."""
    return frozenset(session.scalars(select(Agent.phone).where(Agent.active.is_(False))))
