"""Why each of a contact's enrollments began and ended: the lead event and the rule.

An enrollment made by a trigger records its event's id, one ended by an exit
(or replaced by a higher priority of its group) the ending event's id. For
the console's contact page this reads those events back from the inbox and
names, of the campaign's triggers or exits, the first that holds for the
event (its data, over the contact's fields as they are now): "enrolled
because lead.updated 9f3a2c… set stage archive (trigger: lead.updated where
stage archive)". See docs/operations.md#lead-events-from-a-crm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from drip.domain.triggers import APPLIED_TYPES, ContactView, LeadEvent, Rule, matches
from drip.services.deps import Deps
from drip.services.event_apply import contact_view
from drip.services.events import describe_event
from drip.store import events as store
from drip.store import repository as repo
from drip.store.models import Contact


@dataclass(frozen=True, slots=True)
class EnrollmentReason:
    """One enrollment as the contact page lists it."""

    campaign: str
    enrolled_at: datetime
    status: str
    #: How it began: the event and trigger, or "enrolled" (by hand, a form, a bulk).
    began: str
    #: How it ended: the event and exit, a replacement, or the recorded reason; "" while active.
    ended: str


def enrollment_reasons(deps: Deps, session: Session, contact: Contact) -> list[EnrollmentReason]:
    """The contact's enrollments, oldest first, each with why it began and ended."""
    out: list[EnrollmentReason] = []
    campaigns = {row.id: row for row in repo.all_campaigns(session)}
    for enrollment, name in sorted(
        store.enrollments_of(session, contact.id), key=lambda row: row[0].enrolled_at
    ):
        row = campaigns[enrollment.campaign_id]
        automation = deps.campaigns.get(row.id, row.version, row.definition).automation
        began = "enrolled"
        if enrollment.event_id is not None:
            said = _event(session, contact, enrollment.event_id, automation.triggers, "trigger")
            began = f"enrolled because {said}"
        ended = ""
        if enrollment.stop_event_id is not None:
            if enrollment.stop_reason == "replaced":
                said = _event(session, contact, enrollment.stop_event_id, (), "")
                ended = f"replaced by a higher-priority campaign of its group after {said}"
            else:
                said = _event(session, contact, enrollment.stop_event_id, automation.exits, "exit")
                ended = f"ended by {said}"
        elif enrollment.stopped_at is not None:
            ended = enrollment.stop_reason or "no reason recorded"
        out.append(
            EnrollmentReason(name, enrollment.enrolled_at, enrollment.status.value, began, ended)
        )
    return out


def _event(
    session: Session, contact: Contact, event_id: str, rules: Sequence[Rule], kind: str
) -> str:
    """``lead.updated 9f3a2c… set stage archive (trigger: lead.updated where stage archive)``."""
    described = describe_event(session, event_id)
    row = store.event_by_id(session, event_id)
    if described is None or row is None:
        return f"event {event_id} (no longer in the inbox)"
    event = LeadEvent(row.event_id, row.type, row.data)
    rule = next((r for r in rules if matches(r, event, _after(contact, event))), None)
    if rule is None:
        rule = next((r for r in rules if r.on == row.type), None)
    return described + (f" ({kind}: {rule.describe()})" if rule is not None else "")


def _after(contact: Contact, event: LeadEvent) -> ContactView:
    """The contact's fields with those the event set (as its rules saw them)."""
    now = contact_view(contact)
    if event.type not in APPLIED_TYPES:
        return now
    fields = {**now.fields, **{k: v for k, v in event.data.items() if k in now.fields}}
    tags = event.data.get("tags")
    return ContactView(fields, frozenset(tags) if isinstance(tags, list) else now.tags)
