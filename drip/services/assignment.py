"""Who sends to a contact: its assigned agent, reassigned one at a time or all at once.

The sender of ``sender: agent`` steps, manual and bulk texts is decided at
fire time from the contact's agent, so a reassignment is an update: pending
texts then go from the new agent. The footer state is per conversation (a
sender and a contact), so the new agent's first text carries the footer and
a two-way exchange with the old agent does not carry over; opt-outs are the
contact's and stay. Deactivating an agent moves each of its contacts in one
transaction (to one agent, to the active agents in turn, or to the
concierge) and marks the agent inactive; sends pinned to the agent's number
(a reply to an inbound text) go from the contact's new sender. Every move is
recorded (``assignment_changes``) with who or what made it, for ``drip
history``. See docs/operations.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy.orm import Session

from drip.errors import NotFoundError, ValidationError
from drip.logging import mask_text
from drip.services.deps import Deps
from drip.store import agents as agents_store
from drip.store import events as store
from drip.store.models import Agent, Contact

log = structlog.get_logger("drip.assignment")

CONCIERGE = "concierge"
ROUND_ROBIN = "round-robin"
#: What ``to`` may say besides an agent.
SPREADS_AND_CONCIERGE = (CONCIERGE, ROUND_ROBIN)


class Assignee(Protocol):
    """A contact to reassign: a ``Contact``, or a lead event batch's plain row of one."""

    id: int
    agent_id: int | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Move:
    contact_id: int
    from_agent: int | None
    to_agent: int | None


@dataclass(frozen=True, slots=True)
class AssignResult:
    moves: tuple[Move, ...]
    message: str


def find_agent(session: Session, ref: str) -> Agent:
    agent = store.agent_by_ref(session, ref)
    if agent is None:
        raise NotFoundError(f"no agent {mask_text(ref)}")
    return agent


def _row(move: Move, now: datetime, why: str, event_id: str | None) -> dict[str, object]:
    return {
        "contact_id": move.contact_id,
        "from_agent_id": move.from_agent,
        "to_agent_id": move.to_agent,
        "at": now,
        "why": why,
        "event_id": event_id,
    }


def reassign_in(
    session: Session,
    contact: Assignee,
    ref: str,
    now: datetime,
    *,
    why: str,
    event_id: str | None = None,
) -> AssignResult:
    """Give ``contact`` to the agent ``ref`` names (``concierge``: no agent), in ``session``."""
    if ref == CONCIERGE:
        target: Agent | None = None
    else:
        target = find_agent(session, ref)
        if not target.active:
            raise ValidationError(f"agent {target.id} is deactivated: choose an active agent")
    move = Move(contact.id, contact.agent_id, target.id if target else None)
    if move.from_agent == move.to_agent:
        return AssignResult((), f"contact {contact.id} already has that agent; nothing changed")
    contact.agent_id = move.to_agent
    contact.updated_at = now
    agents_store.record_moves(session, [_row(move, now, why, event_id)])
    log.info("reassigned", contact_id=contact.id, to_agent=move.to_agent, why=why)
    to = f"agent {target.first_name} {target.last_name}".rstrip() if target else "the concierge"
    return AssignResult((move,), f"contact {contact.id} assigned to {to} ({why})")


def reassign(deps: Deps, contact_id: int, ref: str, now: datetime, *, why: str) -> AssignResult:
    """Give one contact to another agent; its pending texts go from the new agent."""
    with deps.sessions.begin() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        return reassign_in(session, contact, ref, now, why=why)


def deactivate(
    deps: Deps,
    agent_ref: str,
    to: str,
    now: datetime,
    *,
    why: str,
    event_id: str | None = None,
) -> AssignResult:
    """Deactivate an agent and move each of its contacts, in one transaction.

    ``to`` is an agent (phone or id), ``round-robin`` (the other active agents
    in turn, evenly, in id order) or ``concierge``.
    """
    with deps.sessions.begin() as session:
        agent = find_agent(session, agent_ref)
        if not agent.active:
            raise ValidationError(f"agent {agent.id} is already deactivated")
        targets: list[Agent | None]
        if to == CONCIERGE:
            targets = [None]
        elif to == ROUND_ROBIN:
            targets = [a for a in store.active_agents(session) if a.id != agent.id]
            if not targets:
                raise ValidationError("round-robin needs another active agent")
        else:
            one = find_agent(session, to)
            if one.id == agent.id or not one.active:
                raise ValidationError("the contacts must go to another, active agent")
            targets = [one]
        moves: list[Move] = []
        for i, contact in enumerate(store.contacts_of_agent(session, agent.id)):
            target = targets[i % len(targets)]
            contact.agent_id = target.id if target else None
            contact.updated_at = now
            moves.append(Move(contact.id, agent.id, contact.agent_id))
            log.info("reassigned", contact_id=contact.id, to_agent=contact.agent_id, why=why)
        agents_store.record_moves(session, [_row(m, now, why, event_id) for m in moves])
        unpinned = agents_store.unpin_sender(session, agent.phone, now)
        agent.active = False
        agent.deactivated_at = now
        name = f"{agent.first_name} {agent.last_name}".rstrip()
    log.info("agent_deactivated", agent_id=agent.id, moved=len(moves), to=to, unpinned=unpinned)
    return AssignResult(
        tuple(moves), f"agent {name} deactivated: {len(moves)} contact(s) moved to {to} ({why})"
    )
