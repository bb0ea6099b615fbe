"""The actions a person takes on contacts, campaigns and bulks, each recorded with who.

The console's action forms and the CLI's commands call these: each calls the
service that makes the change (passing the person's name into the decisions
and consent events it records), then appends the action to
``operator_actions`` (:func:`drip.services.operators.record_action`) with
``via`` ``console`` or ``cli``. The rights of each role are in
:mod:`drip.services.operators`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drip.domain.enums import SendState, TextStatus
from drip.errors import NotFoundError, ValidationError
from drip.services import assignment, bulk, contact_ops, lifecycle, pausing
from drip.services.deps import Deps
from drip.services.operators import record_action
from drip.store import sends
from drip.store.models import Bulk


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts (an operator's name, the OS user or ``--as``) and from where."""

    name: str
    via: str  # console | cli


def set_text_status(deps: Deps, actor: Actor, contact_id: int, status: str, now: datetime) -> str:
    """``cannot_be_texted`` or ``textable``, as BoomTown's text status icon."""
    if status not in (TextStatus.CANNOT_BE_TEXTED.value, TextStatus.TEXTABLE.value):
        raise ValidationError(f"status {status!r}: expected cannot_be_texted or textable")
    message = contact_ops.change_text_status(
        deps, contact_id, TextStatus(status), by=actor.name, now=now
    )
    record_action(deps, now, actor=actor.name, via=actor.via, action="text_status",
                  contact_id=contact_id, detail=message)  # fmt: skip
    return message


def opt_out(deps: Deps, actor: Actor, contact_id: int, how: str, now: datetime) -> str:
    """An opt-out the contact asked for by phone or in person, with how."""
    message = contact_ops.record_opt_out(deps, contact_id, how=how[:200], by=actor.name, now=now)
    record_action(deps, now, actor=actor.name, via=actor.via, action="opt_out",
                  contact_id=contact_id, detail=message)  # fmt: skip
    return message


def assign(deps: Deps, actor: Actor, contact_id: int, agent_ref: str, now: datetime) -> str:
    """Give the contact to an agent (phone, id or ``concierge``); pending texts follow."""
    ref = agent_ref.strip()
    if not ref:
        raise ValidationError("agent: give an agent's phone or id, or concierge")
    if ref != assignment.CONCIERGE and not ref.isdigit():
        from drip.domain.zones import normalize_phone

        ref = normalize_phone(ref)
    message = assignment.reassign(deps, contact_id, ref, now, why=f"operator {actor.name}").message
    record_action(deps, now, actor=actor.name, via=actor.via, action="assign",
                  contact_id=contact_id, detail=message)  # fmt: skip
    return message


def pause_contact(
    deps: Deps, actor: Actor, contact_id: int, campaign: str | None, now: datetime
) -> str:
    """Hold the contact's enrollments (or the one in ``campaign``)."""
    message = pausing.pause_contact(deps, contact_id, campaign, now, operator=actor.name).message
    record_action(deps, now, actor=actor.name, via=actor.via, action="pause_contact",
                  contact_id=contact_id, campaign=campaign, detail=message)  # fmt: skip
    return message


def resume_contact(
    deps: Deps, actor: Actor, contact_id: int, campaign: str | None, now: datetime
) -> str:
    """Release the contact's paused enrollments."""
    message = pausing.resume_contact(deps, contact_id, campaign, now, operator=actor.name).message
    record_action(deps, now, actor=actor.name, via=actor.via, action="resume_contact",
                  contact_id=contact_id, campaign=campaign, detail=message)  # fmt: skip
    return message


def campaign_pause(deps: Deps, actor: Actor, name: str, now: datetime) -> str:
    """Hold every send of the campaign."""
    message = lifecycle.pause(deps, name, now, by=actor.name).message
    record_action(deps, now, actor=actor.name, via=actor.via, action="campaign_pause",
                  campaign=name, detail=message)  # fmt: skip
    return message


def campaign_resume(deps: Deps, actor: Actor, name: str, now: datetime) -> str:
    """Release the campaign's held sends."""
    message = lifecycle.resume(deps, name, now, by=actor.name).message
    record_action(deps, now, actor=actor.name, via=actor.via, action="campaign_resume",
                  campaign=name, detail=message)  # fmt: skip
    return message


def bulk_cancel(deps: Deps, actor: Actor, bulk_id: int, now: datetime) -> str:
    """Cancel what the bulk has not sent yet."""
    message = bulk.cancel_bulk(deps, bulk_id, now, by=actor.name).message
    record_action(deps, now, actor=actor.name, via=actor.via, action="bulk_cancel",
                  bulk_id=bulk_id, detail=message)  # fmt: skip
    return message


@dataclass(frozen=True, slots=True)
class Reach:
    """How many contacts and pending sends an action on many would touch (the confirmation)."""

    contacts: int
    sends: int


def campaign_reach(deps: Deps, name: str) -> Reach:
    """The campaign's active enrollments and pending sends (NotFoundError if unknown)."""
    for c in lifecycle.list_campaigns(deps):
        if c.name == name:
            return Reach(c.active_enrollments, c.pending_sends)
    raise NotFoundError(f"no campaign named {name!r} in the database")


def bulk_reach(deps: Deps, bulk_id: int) -> Reach:
    """The bulk's sends not sent yet (each one contact)."""
    with deps.sessions() as session:
        if session.get(Bulk, bulk_id) is None:
            raise NotFoundError(f"no bulk with id {bulk_id}")
        pending = sends.count_by_state_of_bulk(session, bulk_id).get(SendState.PENDING, 0)
    return Reach(pending, pending)
