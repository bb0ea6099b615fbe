"""Applying one lead event to its contact: the fields it sets, and the enrollments it ends.

Shared by the one-at-a-time path (:mod:`drip.services.events`), which applies
an event to a :class:`~drip.store.models.Contact`, and the batch path
(:mod:`drip.services.events_batch`), which applies it to a :class:`ContactRow`
(the columns an event reads and sets, read as a plain row) and writes the
batch's rows back at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from drip.domain.enums import ConsentSource
from drip.domain.triggers import ContactView, Decision
from drip.services import assignment, pausing
from drip.services.deps import Deps
from drip.services.event_input import ParsedEvent
from drip.store import lifecycle as lifecycle_store
from drip.store.models import Contact, Enrollment, ScheduledSend

#: Fields of a contact a lead event sets, in the order they are applied.
PROFILE_FIELDS = ("first_name", "last_name", "email", "state", "timezone")
CRM_FIELDS = ("stage", "tags", "lead_source")
_FIELD_ORDER = {name: i for i, name in enumerate((*PROFILE_FIELDS, *CRM_FIELDS))}


@dataclass(slots=True)
class ContactRow:
    """A contact's columns that an event reads and sets, read as a plain row (the batch
    path writes them back for the whole batch at once)."""

    id: int
    first_name: str
    last_name: str
    phone: str | None
    email: str | None
    state: str | None
    timezone: str | None
    source: ConsentSource
    agent_id: int | None
    updated_at: datetime
    external_id: str | None
    stage: str | None
    tags: list[str] | None
    lead_source: str | None
    field_times: dict[str, str] | None


#: The columns of :class:`ContactRow`, in its order.
CONTACT_ROW_COLUMNS = tuple(ContactRow.__dataclass_fields__)

#: What applying an event reads and sets on its contact (the columns of :class:`ContactRow`).
EventContact = Contact | ContactRow


def apply_fields(contact: EventContact, p: ParsedEvent, now: datetime) -> list[str]:
    """Set the fields the event gives, unless a newer event already set them."""
    notes: list[str] = []
    if p.contact.external_id and contact.external_id is None:
        contact.external_id = p.contact.external_id
    if p.type not in ("lead.created", "lead.updated"):
        return notes
    times = dict(contact.field_times or {})
    stamp = p.stamp
    changed = False
    # The event's fields in the order above (an event carries a few of them).
    for name in sorted(_FIELD_ORDER.keys() & p.data.keys(), key=_FIELD_ORDER.__getitem__):
        if times.get(name, "") > stamp:
            notes.append(f"{name} kept: a newer event set it")
            continue
        value = p.data[name]
        if getattr(contact, name) != value:
            setattr(contact, name, value)
            notes.append(f"set {name} {' '.join(value) if isinstance(value, list) else value}")
            changed = True
        times[name] = stamp
    contact.field_times = times
    if changed:
        contact.updated_at = now
    return notes


def apply_actions(
    deps: Deps, session: Session, contact: EventContact, p: ParsedEvent, now: datetime
) -> list[str]:
    """What an event does beyond its fields: a hand-off to another agent, a logged touch."""
    notes: list[str] = []
    if p.type == "lead.assigned":
        notes.append(
            assignment.reassign_in(
                session, contact, str(p.data["agent"]), now, why=f"{p.type} {p.id}", event_id=p.id
            ).message
        )
    if p.type == "contact.touched":  # a call or email logged: as a reply, for on_reply
        notes.extend(pausing.touched(deps, session, contact.id, now))
    return notes


def contact_view(contact: EventContact) -> ContactView:
    """The contact's fields that triggers' and exits' ``where`` read."""
    return ContactView(
        {
            "stage": contact.stage,
            "lead_source": contact.lead_source,
            "state": contact.state,
            "timezone": contact.timezone,
            "source": contact.source.value,
        },
        frozenset(contact.tags or ()),
    )


def end_enrollments(
    session: Session, decision: Decision, p: ParsedEvent, now: datetime
) -> list[str]:
    notes: list[str] = []
    for end in decision.end:
        reason = f"exit {p.type} {p.id}" if end.why == "exit" else "replaced"
        detail = (
            f"ended by {p.type} {p.id}"
            if end.why == "exit"
            else f"replaced by {end.by} (event {p.id})"
        )
        lifecycle_store.cancel_pending(
            session,
            ScheduledSend.enrollment_id == end.enrollment_id,
            now,
            "exit" if end.why == "exit" else "replaced",
            f"cancelled: the enrollment in {end.campaign} was {detail}",
        )
        lifecycle_store.stop_campaign_enrollments(
            session, Enrollment.id == end.enrollment_id, now, reason
        )
        row = session.get(Enrollment, end.enrollment_id)
        if row is not None:
            row.stop_event_id = p.id
        notes.append(f"left {end.campaign} ({detail})")
    return notes
