"""Enroll contacts in campaigns: a campaign's steps become scheduled sends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import insert
from sqlalchemy.orm import Session

from drip.domain.campaign import Campaign
from drip.domain.enums import CampaignStatus, EnrollmentStatus, MessageKind
from drip.domain.schedule import step_due_at
from drip.domain.zones import resolve_timezone
from drip.errors import NotFoundError, ValidationError
from drip.services.deps import Deps
from drip.store import claims
from drip.store import repository as repo
from drip.store.models import Campaign as CampaignRow
from drip.store.models import Contact, Enrollment

log = structlog.get_logger("drip.enroll")


@dataclass(frozen=True, slots=True)
class EnrollResult:
    enrollment_id: int | None
    created: bool
    sends: int
    message: str


def load_campaign(deps: Deps, session: Session, name: str) -> tuple[CampaignRow, Campaign]:
    row = repo.campaign_by_name(session, name)
    if row is None:
        known = ", ".join(r.name for r in repo.all_campaigns(session)) or "none; run `drip sync`"
        raise NotFoundError(f"no campaign named {name!r} in the database (known: {known})")
    if row.status is CampaignStatus.ARCHIVED:
        raise ValidationError(f"campaign {name!r} is archived: it takes no new enrollments")
    return row, deps.campaigns.get(row.id, row.version, row.definition)


def enroll(deps: Deps, contact_id: int, campaign_name: str, now: datetime) -> EnrollResult:
    """Enroll one contact; enrolling a contact already active in the campaign does nothing."""
    with deps.sessions.begin() as session:
        row, campaign = load_campaign(deps, session, campaign_name)
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        existing = repo.active_enrollment(session, contact_id, row.id)
        if existing is not None:
            return EnrollResult(
                existing.id,
                False,
                0,
                f"contact {contact_id} is already active in {campaign.name} "
                f"(enrollment {existing.id}, since {existing.enrolled_at:%Y-%m-%d}); nothing done",
            )
        ids, sends = _enroll_rows(
            deps,
            session=session,
            campaign_id=row.id,
            campaign=campaign,
            contacts=[contact],
            now=now,
        )
        paused = row.status is CampaignStatus.PAUSED
    log.info("enrolled", contact_id=contact_id, campaign=campaign.name, sends=sends)
    held = " (held: the campaign is paused)" if paused else ""
    return EnrollResult(
        ids[0],
        True,
        sends,
        f"enrolled contact {contact_id} in {campaign.name}: {sends} sends scheduled{held}",
    )


def enroll_many(
    deps: Deps,
    contact_ids: Sequence[int],
    campaign_name: str,
    now: datetime,
    *,
    batch: int = 5000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Enroll many contacts, in batches; returns how many sends were scheduled.

    Contacts already active in the campaign are left alone. Due times depend
    only on (zone, step) since every contact of a call enrolls at ``now``, so
    they are computed once per zone, not once per contact. One transaction
    per batch; ``on_batch`` is told how many contacts each committed batch had.
    """
    total = 0
    for start in range(0, len(contact_ids), batch):
        part = contact_ids[start : start + batch]
        with deps.sessions.begin() as session:
            row, campaign = load_campaign(deps, session, campaign_name)
            contacts = list(repo.contacts_by_id(session, part).values())
            active = repo.active_enrollment_ids_for(session, row.id, part)
            fresh = [c for c in contacts if c.id not in active]
            _, sends = _enroll_rows(
                deps,
                session=session,
                campaign_id=row.id,
                campaign=campaign,
                contacts=fresh,
                now=now,
            )
            total += sends
        if on_batch is not None:
            on_batch(len(part))
    return total


def _enroll_rows(
    deps: Deps,
    *,
    session: Session,
    campaign_id: int,
    campaign: Campaign,
    contacts: list[Contact],
    now: datetime,
) -> tuple[list[int], int]:
    if not contacts:
        return [], 0
    # A plain executemany, then one query for the ids: INSERT ... RETURNING with
    # sort_by_parameter_order runs one statement per row on SQLite. The partial
    # unique index makes (contact, campaign, active) identify each new row.
    session.execute(
        insert(Enrollment),
        [
            {
                "contact_id": c.id,
                "campaign_id": campaign_id,
                "enrolled_at": now,
                "status": EnrollmentStatus.ACTIVE,
            }
            for c in contacts
        ],
    )
    by_contact = repo.active_enrollment_ids_for(session, campaign_id, [c.id for c in contacts])
    enrollment_ids = [by_contact[c.id] for c in contacts]
    due_cache: dict[tuple[str, str], datetime] = {}
    by_zone: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for contact, enrollment_id in zip(contacts, enrollment_ids, strict=True):
        # A zone on the record decides alone (resolve_timezone ignores the phone
        # then), so contacts sharing it share one lookup; otherwise the number does.
        own = contact.timezone
        key = f"zone:{own}" if own is not None and own.strip() else f"phone:{contact.phone}"
        zone = by_zone.get(key)
        if zone is None:
            zone = resolve_timezone(
                contact.timezone, contact.phone, deps.account.default_timezone
            ).name
            by_zone[key] = zone
        for step in campaign.steps:
            due = due_cache.get((zone, step.id))
            if due is None:
                due = step_due_at(now, step.day, step.at, zone)
                due_cache[(zone, step.id)] = due
            rows.append(
                {
                    "enrollment_id": enrollment_id,
                    "contact_id": contact.id,
                    "campaign_id": campaign_id,
                    "step_id": step.id,
                    "kind": MessageKind.CAMPAIGN,
                    "channel": step.channel,
                    "sender_role": campaign.sender,
                    "due_at": due,
                    "created_at": now,
                }
            )
    claims.bulk_insert_sends(session, rows, now=now)
    return enrollment_ids, len(rows)
