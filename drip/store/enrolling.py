"""Bulk enrollment writes: the enrollments of many contacts and their campaign sends.

An enrollment's sends depend only on its contact's zone (every contact of a
call enrolls at the same instant), so the caller passes each contact with the
index of its zone group and, per group, the planned steps. On PostgreSQL one
statement per batch does everything in the server: the enrollments
(``ON CONFLICT ... DO NOTHING`` on the partial unique index leaves a contact
already active alone, also one enrolled concurrently) and, from their ids,
the ``scheduled_sends`` rows, a join of the new enrollments with their
group's steps. Python sends three integers a contact instead of five rows of
fifteen columns. SQLite gets the same rows through executemany and
:func:`drip.store.claims.bulk_insert_sends`.

Neither commits: the caller's transaction is the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, EnrollmentStatus, MessageKind, SenderRole
from drip.errors import StoreError
from drip.store import claims
from drip.store.models import Contact, Enrollment
from drip.store.types import as_utc

__all__ = [
    "CampaignMembers",
    "Member",
    "PlannedStep",
    "active_contact_ids",
    "contact_zones",
    "enroll_members",
    "enroll_members_in",
]

#: Ids per ``IN (...)`` on SQLite (32,766 bind values at most).
_SQLITE_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One campaign step of one zone group: when it is due and on which channel."""

    step_id: str
    channel: Channel
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A contact to enroll and the index of its zone group in the plans."""

    contact_id: int
    group: int
    #: The lead event that enrolls it (``enrollments.event_id``), when one does.
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignMembers:
    """The members to enroll in one campaign, with its zone groups' plans."""

    campaign_id: int
    sender_role: SenderRole
    members: Sequence[Member]
    plans: Sequence[Sequence[PlannedStep]]

    def sends(self, new: Iterable[int]) -> int:
        """How many sends the new enrollments of these contacts got."""
        group_of = {m.contact_id: m.group for m in self.members}
        return sum(len(self.plans[group_of[c]]) for c in new)


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _among(column: Any, ids: Sequence[int]) -> Any:
    """``column IN (SELECT unnest(:ids))``: one array parameter, planned as a join.

    An ``IN (...)`` of thousands of placeholders costs more to build and parse
    than the rows cost to read; ``= ANY(:ids)`` may get a generic plan (psycopg
    prepares a statement run five times) that scans the table testing every
    row against the array. A semi-join with the unnested array probes the index.
    """
    # Only PostgreSQL takes this path: its dialect (with asyncpg's and asyncio's imports,
    # ~25 ms) is not loaded at start-up for a SQLite database (``drip replay``).
    from sqlalchemy.dialects import postgresql

    array = bindparam("ids", list(ids), type_=postgresql.ARRAY(BigInteger))
    return column.in_(select(func.unnest(array)).scalar_subquery())


def contact_zones(
    session: Session, contact_ids: Sequence[int]
) -> list[tuple[int, str | None, str | None]]:
    """``(id, timezone, phone)`` of the contacts that exist, in id order: what zoning needs."""
    if not contact_ids:
        return []
    columns = select(Contact.id, Contact.timezone, Contact.phone).order_by(Contact.id)
    if _is_postgresql(session):
        stmt = columns.where(_among(Contact.id, contact_ids))
        return [(r[0], r[1], r[2]) for r in session.execute(stmt)]
    out: list[tuple[int, str | None, str | None]] = []
    for start in range(0, len(contact_ids), _SQLITE_CHUNK):
        part = contact_ids[start : start + _SQLITE_CHUNK]
        out.extend((r[0], r[1], r[2]) for r in session.execute(columns.where(Contact.id.in_(part))))
    out.sort()
    return out


def active_contact_ids(session: Session, campaign_id: int, contact_ids: Sequence[int]) -> set[int]:
    """Which of the contacts have an active enrollment in the campaign."""
    if not contact_ids:
        return set()
    base = select(Enrollment.contact_id).where(
        Enrollment.campaign_id == campaign_id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    if _is_postgresql(session):
        stmt = base.where(_among(Enrollment.contact_id, contact_ids))
        return set(session.scalars(stmt))
    found: set[int] = set()
    for start in range(0, len(contact_ids), _SQLITE_CHUNK):
        part = contact_ids[start : start + _SQLITE_CHUNK]
        found.update(session.scalars(base.where(Enrollment.contact_id.in_(part))))
    return found


_PG_ENROLL = text(
    """
    WITH input AS (
        SELECT contact_id, campaign_id, grp, event_id, ord
        FROM unnest(CAST(:contacts AS bigint[]), CAST(:campaigns AS bigint[]),
                    CAST(:groups AS integer[]), CAST(:events AS text[]))
             WITH ORDINALITY AS i(contact_id, campaign_id, grp, event_id, ord)
    ), new AS (
        INSERT INTO enrollments (contact_id, campaign_id, enrolled_at, status, event_id)
        SELECT contact_id, campaign_id, :now, :active, event_id FROM input ORDER BY ord
        ON CONFLICT (contact_id, campaign_id) WHERE status = 'active' DO NOTHING
        RETURNING id, contact_id, campaign_id
    ), plan AS (
        SELECT grp, step_id, channel, due, sender, ord
        FROM unnest(CAST(:plan_groups AS integer[]), CAST(:plan_steps AS text[]),
                    CAST(:plan_channels AS text[]), CAST(:plan_due AS timestamptz[]),
                    CAST(:plan_senders AS text[]))
             WITH ORDINALITY AS p(grp, step_id, channel, due, sender, ord)
    ), sends AS (
        INSERT INTO scheduled_sends (
            enrollment_id, contact_id, campaign_id, step_id, kind, channel, sender_role,
            due_at, original_due_at, state, attempts, catching_up, held_to_window,
            created_at, updated_at)
        SELECT new.id, new.contact_id, new.campaign_id, plan.step_id, :kind, plan.channel,
               plan.sender, plan.due, plan.due, :pending, 0, false, false, :now, :now
        FROM new
        JOIN input ON input.contact_id = new.contact_id AND input.campaign_id = new.campaign_id
        JOIN plan ON plan.grp = input.grp
        ORDER BY new.id, plan.ord
    )
    SELECT new.campaign_id, new.contact_id, new.id FROM new
    """
)


def enroll_members(
    session: Session,
    *,
    campaign_id: int,
    sender_role: SenderRole,
    now: datetime,
    members: Sequence[Member],
    plans: Sequence[Sequence[PlannedStep]],
) -> tuple[dict[int, int], int]:
    """Enroll ``members`` (active, at ``now``) with the sends of their group's plan.

    Contacts already active in the campaign are skipped. Returns ``{contact id:
    new enrollment id}`` and the number of sends inserted. Sends of one
    enrollment get ids in step order, enrollments in ``members`` order.
    """
    one = CampaignMembers(campaign_id, sender_role, members, plans)
    new = enroll_members_in(session, now=now, campaigns=[one])[0]
    return new, one.sends(new)


def enroll_members_in(
    session: Session, *, now: datetime, campaigns: Sequence[CampaignMembers]
) -> list[dict[int, int]]:
    """:func:`enroll_members` for several campaigns (each named once) at once, on
    PostgreSQL in one statement: per campaign, in order, ``{contact id: new enrollment
    id}``. Enrollments get ids in the campaigns' order, then their members' order."""
    wanted = [c for c in campaigns if c.members]
    if not wanted:
        return [{} for _ in campaigns]
    now = as_utc(now)
    count = sum(len(c.members) for c in wanted)
    try:
        if _is_postgresql(session):
            found = _enroll_postgresql(session, now=now, campaigns=wanted)
        else:
            found = {
                c.campaign_id: _enroll_sqlite(
                    session,
                    campaign_id=c.campaign_id,
                    sender_role=c.sender_role,
                    now=now,
                    members=c.members,
                    plans=c.plans,
                )
                for c in wanted
            }
    except SQLAlchemyError as exc:
        raise StoreError(f"could not enroll {count} contacts: {exc}") from exc
    return [found.get(c.campaign_id, {}) if c.members else {} for c in campaigns]


def _enroll_postgresql(
    session: Session, *, now: datetime, campaigns: Sequence[CampaignMembers]
) -> dict[int, dict[int, int]]:
    """``{campaign id: {contact id: new enrollment id}}``; each campaign's groups are
    numbered after the previous campaigns' in the statement."""
    contacts: list[int] = []
    campaign_ids: list[int] = []
    groups: list[int] = []
    events: list[str | None] = []
    flat: list[tuple[int, PlannedStep, str]] = []
    first = 0  # this campaign's first group number in the statement
    for c in campaigns:
        contacts.extend(m.contact_id for m in c.members)
        campaign_ids.extend(c.campaign_id for _ in c.members)
        groups.extend(first + m.group for m in c.members)
        events.extend(m.event_id for m in c.members)
        sender = SenderRole(c.sender_role).value
        flat.extend((first + g, step, sender) for g, plan in enumerate(c.plans) for step in plan)
        first += len(c.plans)
    rows = session.execute(
        _PG_ENROLL,
        {
            "contacts": contacts,
            "campaigns": campaign_ids,
            "groups": groups,
            "events": events,
            "now": now,
            "active": EnrollmentStatus.ACTIVE.value,
            "plan_groups": [g for g, _, _ in flat],
            "plan_steps": [s.step_id for _, s, _ in flat],
            "plan_channels": [Channel(s.channel).value for _, s, _ in flat],
            "plan_due": [as_utc(s.due_at) for _, s, _ in flat],
            "plan_senders": [sender for _, _, sender in flat],
            "kind": MessageKind.CAMPAIGN.value,
            "pending": "pending",
        },
    )
    out: dict[int, dict[int, int]] = {c.campaign_id: {} for c in campaigns}
    for campaign_id, contact_id, enrollment_id in rows:
        out[int(campaign_id)][int(contact_id)] = int(enrollment_id)
    return out


def _enroll_sqlite(
    session: Session,
    *,
    campaign_id: int,
    sender_role: SenderRole,
    now: datetime,
    members: Sequence[Member],
    plans: Sequence[Sequence[PlannedStep]],
) -> dict[int, int]:
    ids = [m.contact_id for m in members]
    active = active_contact_ids(session, campaign_id, ids)
    fresh = [m for m in members if m.contact_id not in active]
    if not fresh:
        return {}
    # A plain executemany, then one query for the ids: INSERT ... RETURNING with
    # sort_by_parameter_order runs one statement per row on SQLite. The partial
    # unique index makes (contact, campaign, active) identify each new row.
    session.execute(
        insert(Enrollment),
        [
            {
                "contact_id": m.contact_id,
                "campaign_id": campaign_id,
                "enrolled_at": now,
                "status": EnrollmentStatus.ACTIVE,
                "event_id": m.event_id,
            }
            for m in fresh
        ],
    )
    by_contact = _active_enrollment_ids(session, campaign_id, [m.contact_id for m in fresh])
    rows: list[dict[str, Any]] = []
    for m in fresh:
        enrollment_id = by_contact[m.contact_id]
        for step in plans[m.group]:
            rows.append(
                {
                    "enrollment_id": enrollment_id,
                    "contact_id": m.contact_id,
                    "campaign_id": campaign_id,
                    "step_id": step.step_id,
                    "kind": MessageKind.CAMPAIGN,
                    "channel": step.channel,
                    "sender_role": sender_role,
                    "due_at": step.due_at,
                    "created_at": now,
                }
            )
    claims.bulk_insert_sends(session, rows, now=now)
    return {m.contact_id: by_contact[m.contact_id] for m in fresh}


def _active_enrollment_ids(
    session: Session, campaign_id: int, contact_ids: Iterable[int]
) -> dict[int, int]:
    ids = list(contact_ids)
    out: dict[int, int] = {}
    for start in range(0, len(ids), _SQLITE_CHUNK):
        rows = session.execute(
            select(Enrollment.contact_id, Enrollment.id).where(
                Enrollment.campaign_id == campaign_id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Enrollment.contact_id.in_(ids[start : start + _SQLITE_CHUNK]),
            )
        )
        out.update((int(r[0]), int(r[1])) for r in rows)
    return out
