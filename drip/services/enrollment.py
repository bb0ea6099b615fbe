"""Enroll contacts in campaigns: a campaign's steps become scheduled sends."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy.orm import Session

from drip.domain.campaign import Campaign
from drip.domain.enums import CampaignStatus
from drip.domain.schedule import step_due_at
from drip.domain.zones import e164_area_code, resolve_timezone
from drip.errors import NotFoundError, StoreError, ValidationError
from drip.services.deps import Deps
from drip.store import enrolling as store
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
        if contact.erased_at is not None:
            raise ValidationError(
                f"contact {contact_id} was erased on {contact.erased_at:%Y-%m-%d}: "
                "it takes no enrollments"
            )
        existing = repo.active_enrollment(session, contact_id, row.id)
        if existing is not None:
            return _already_active(contact_id, campaign.name, existing)
        ids, sends = _enroll_rows(
            deps,
            session=session,
            campaign_id=row.id,
            campaign=campaign,
            contacts=[contact],
            now=now,
        )
        if not ids:  # enrolled meanwhile by someone else (the insert skipped it)
            existing = repo.active_enrollment(session, contact_id, row.id)
            if existing is None:
                raise StoreError(f"contact {contact_id} could not be enrolled; try again")
            return _already_active(contact_id, campaign.name, existing)
        paused = row.status is CampaignStatus.PAUSED
    log.info("enrolled", contact_id=contact_id, campaign=campaign.name, sends=sends)
    held = " (held: the campaign is paused)" if paused else ""
    return EnrollResult(
        ids[0],
        True,
        sends,
        f"enrolled contact {contact_id} in {campaign.name}: {sends} sends scheduled{held}",
    )


def _already_active(contact_id: int, campaign: str, existing: Enrollment) -> EnrollResult:
    return EnrollResult(
        existing.id,
        False,
        0,
        f"contact {contact_id} is already active in {campaign} "
        f"(enrollment {existing.id}, since {existing.enrolled_at:%Y-%m-%d}); nothing done",
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
    they are computed once per zone, not once per contact, and the store
    writes each batch set-based (see :mod:`drip.store.enrolling`). One
    transaction per batch; ``on_batch`` is told how many contacts each
    committed batch had.
    """
    total = 0
    planner = _Planner(deps.account.default_timezone, now)
    for start in range(0, len(contact_ids), batch):
        part = contact_ids[start : start + batch]
        with deps.sessions.begin() as session:
            row, campaign = load_campaign(deps, session, campaign_name)
            wanted = set(part)
            # Members in the caller's order (a repeated id counts once).
            zoned = {cid: (tz, phone) for cid, tz, phone in store.contact_zones(session, part)}
            members = [
                store.Member(cid, planner.group(campaign, *zoned[cid]))
                for cid in dict.fromkeys(part)
                if cid in zoned and cid in wanted
            ]
            _, sends = store.enroll_members(
                session,
                campaign_id=row.id,
                sender_role=campaign.sender,
                now=now,
                members=members,
                plans=planner.plans,
            )
            total += sends
        if on_batch is not None:
            on_batch(len(part))
    return total


class Enrollee(Protocol):
    """A contact to enroll in bulk: a ``Contact``, or a lead event batch's plain row of one."""

    @property
    def id(self) -> int: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...


def enroll_in(
    deps: Deps,
    session: Session,
    campaign_name: str,
    contacts: Sequence[Enrollee],
    now: datetime,
    *,
    loaded: tuple[CampaignRow, Campaign] | None = None,
) -> dict[int, int]:
    """Enroll ``contacts`` in ``session`` (the caller's transaction), set-based as
    :func:`enroll_many`; ``{contact id: new enrollment id}`` (active ones are left alone).
    ``loaded``: the campaign's row and value, when the caller has read them already."""
    if not contacts:
        return {}
    known = {campaign_name: loaded} if loaded is not None else {}
    return enroll_in_each(deps, session, {campaign_name: contacts}, now, loaded=known)[
        campaign_name
    ]


def enroll_in_each(
    deps: Deps,
    session: Session,
    wanted: Mapping[str, Sequence[Enrollee]],
    now: datetime,
    *,
    loaded: Mapping[str, tuple[CampaignRow, Campaign]] | None = None,
    events: Mapping[str, Mapping[int, str]] | None = None,
) -> dict[str, dict[int, int]]:
    """:func:`enroll_in` for several campaigns at once (``{campaign name: contacts}``; on
    PostgreSQL one statement for them all): ``{campaign name: {contact id: new enrollment
    id}}``. ``loaded``: campaigns' rows and values by name, those the caller has read;
    ``events``: by campaign name, the lead event that enrolls each contact (recorded on
    its enrollment)."""
    names = [name for name, contacts in wanted.items() if contacts]
    batches: list[store.CampaignMembers] = []
    for name in names:
        row, campaign = (loaded or {}).get(name) or load_campaign(deps, session, name)
        planner = _Planner(deps.account.default_timezone, now)
        why = (events or {}).get(name, {})
        members = [
            store.Member(c.id, planner.group(campaign, c.timezone, c.phone), why.get(c.id))
            for c in {c.id: c for c in wanted[name]}.values()
        ]
        batches.append(store.CampaignMembers(row.id, campaign.sender, members, planner.plans))
    found = store.enroll_members_in(session, now=now, campaigns=batches)
    out: dict[str, dict[int, int]] = {name: {} for name in wanted}
    for name, batch, new in zip(names, batches, found, strict=True):
        log.info("enrolled_many", campaign=name, contacts=len(new), sends=batch.sends(new))
        out[name] = new
    return out


class _Planner:
    """Zone groups and their planned steps, shared by every batch of one call.

    A zone on the record decides alone (``resolve_timezone`` ignores the phone
    then), so contacts sharing it share one lookup; a North American number in
    E.164 form is zoned by its area code alone, so contacts sharing an area
    code share one lookup too; any other number is looked up by itself.
    """

    def __init__(self, default_zone: str, now: datetime) -> None:
        self.default_zone = default_zone
        self.now = now
        self.plans: list[list[store.PlannedStep]] = []
        self._group_of_zone: dict[str, int] = {}
        self._zone_of_key: dict[str, str] = {}
        self._campaign: Campaign | None = None

    def group(self, campaign: Campaign, tz: str | None, phone: str | None) -> int:
        if self._campaign is not campaign:  # each batch reloads the campaign: plan anew
            self._campaign = campaign
            self.plans = []
            self._group_of_zone = {}
        if tz is not None and tz.strip():
            key = f"zone:{tz}"
        elif phone is not None and (code := e164_area_code(phone)) is not None:
            key = f"area:{code}"
        else:
            key = f"phone:{phone}"
        zone = self._zone_of_key.get(key)
        if zone is None:
            zone = resolve_timezone(tz, phone, self.default_zone).name
            self._zone_of_key[key] = zone
        group = self._group_of_zone.get(zone)
        if group is None:
            group = len(self.plans)
            self._group_of_zone[zone] = group
            self.plans.append(
                [
                    store.PlannedStep(
                        step.id, step.channel, step_due_at(self.now, step.day, step.at, zone)
                    )
                    for step in campaign.steps
                ]
            )
        return group


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
    planner = _Planner(deps.account.default_timezone, now)
    members = [store.Member(c.id, planner.group(campaign, c.timezone, c.phone)) for c in contacts]
    new, sends = store.enroll_members(
        session,
        campaign_id=campaign_id,
        sender_role=campaign.sender,
        now=now,
        members=members,
        plans=planner.plans,
    )
    return [new[c.id] for c in contacts if c.id in new], sends
