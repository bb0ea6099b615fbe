"""Enrollment on SQLite and PostgreSQL: due times in the contact's zone, once, in batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from services_support import START, World, add_dana, open_world, plan, sync_bundled
from sqlalchemy import event, func, insert, select

from drip.domain.enums import Channel, ConsentSource, EnrollmentStatus, SenderRole, SendState
from drip.domain.schedule import step_due_at
from drip.domain.zones import resolve_timezone
from drip.services.enrollment import enroll, enroll_many, load_campaign
from drip.store.enrolling import (
    CampaignMembers,
    Member,
    PlannedStep,
    enroll_members,
    enroll_members_in,
)
from drip.store.models import Contact, Enrollment, ScheduledSend

SMART_DRIP = "smart-drip-new-lead"
SELLER = "concierge-seller"
DAYS = [15, 45, 180, 270, 360]
CHICAGO = ZoneInfo("America/Chicago")
PHOENIX = ZoneInfo("America/Phoenix")


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Services on the test database with the bundled campaigns stored."""
    with open_world(db_url, tmp_path) as w:
        sync_bundled(w)
        yield w


def test_due_times_follow_the_contacts_own_zone(world: World) -> None:
    """A Chicago contact enrolled at 10:00 CST gets every step at 10:00 Chicago time, across DST."""
    contact_id = add_dana(world, timezone="America/Chicago")
    now = world.at(datetime(2026, 3, 2, 10, 0, tzinfo=CHICAGO).astimezone(UTC))

    result = enroll(world.deps, contact_id, SMART_DRIP, now)

    assert result.created
    assert result.sends == 5
    due = [s.due_at for s in plan(world, contact_id)]
    assert [d.astimezone(CHICAGO).time() for d in due] == [time(10, 0)] * 5
    assert [(d.astimezone(CHICAGO).date() - now.astimezone(CHICAGO).date()).days for d in due] == (
        DAYS
    )
    # 10:00 CDT is 15:00 UTC: the UTC instant moved by the hour, the wall clock did not.
    assert due[0] == datetime(2026, 3, 17, 15, 0, tzinfo=UTC)


def test_area_code_gives_the_zone_when_the_contact_has_none(world: World) -> None:
    """A 602 (Phoenix, no DST) number without a zone is scheduled in America/Phoenix, not New York."""
    contact_id = add_dana(world, phone="+16025550123")
    now = world.at(datetime(2026, 3, 2, 9, 0, tzinfo=PHOENIX).astimezone(UTC))

    enroll(world.deps, contact_id, SMART_DRIP, now)

    due = [s.due_at for s in plan(world, contact_id)]
    # Phoenix keeps 09:00 MST = 16:00 UTC all year; New York's DST would have made it 15:00.
    assert due[0] == datetime(2026, 3, 17, 16, 0, tzinfo=UTC)
    assert {d.astimezone(PHOENIX).time() for d in due} == {time(9, 0)}


def test_step_at_time_is_local_to_the_contact(world: World) -> None:
    """A step with ``at: 11:00`` fires at 11:00 in the contact's zone on its day."""
    contact_id = add_dana(world, timezone="America/Chicago")

    enroll(world.deps, contact_id, SELLER, world.now)

    valuation = next(s for s in plan(world, contact_id) if s.step_id == "day-5-valuation-ready")
    local = valuation.due_at.astimezone(CHICAGO)
    assert (local.date(), local.time()) == (datetime(2026, 3, 7).date(), time(11, 0))


def test_enroll_is_one_transaction(world: World) -> None:
    """The enrollment and all its sends are written in a single transaction."""
    contact_id = add_dana(world)
    commits: list[object] = []

    def count(conn: Any) -> None:
        commits.append(conn)

    event.listen(world.deps.engine, "commit", count)
    try:
        enroll(world.deps, contact_id, SMART_DRIP, world.now)
    finally:
        event.remove(world.deps.engine, "commit", count)

    assert len(commits) == 1
    assert len(plan(world, contact_id)) == 5


def test_enrolling_twice_does_nothing_and_says_so(world: World) -> None:
    """A second enroll of an active contact schedules nothing and explains why."""
    contact_id = add_dana(world)
    first = enroll(world.deps, contact_id, SMART_DRIP, world.now)
    world.at(START + timedelta(hours=1))

    second = enroll(world.deps, contact_id, SMART_DRIP, world.now)

    assert (second.created, second.sends, second.enrollment_id) == (
        False,
        0,
        first.enrollment_id,
    )
    assert "already active" in second.message
    assert "nothing done" in second.message
    assert len(plan(world, contact_id)) == 5
    assert all(s.state is SendState.PENDING for s in plan(world, contact_id))


def test_enroll_many_inserts_ten_thousand_sends_in_batches(world: World) -> None:
    """2,000 contacts get 10,000 sends with a handful of statements, not one per row."""
    rows = [
        {
            "first_name": f"Lead{i}",
            "last_name": "Test",
            "phone": f"+1617555{i:04d}",
            "source": ConsentSource.REGISTRATION,
            "sms_consent_at": START,
            "created_at": START,
        }
        for i in range(2000)
    ]
    with world.deps.sessions.begin() as session:
        session.execute(insert(Contact), rows)
        ids = list(session.scalars(select(Contact.id).order_by(Contact.id)))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(world.deps.engine, "before_cursor_execute", count)
    try:
        scheduled = enroll_many(world.deps, ids, SMART_DRIP, world.now)
    finally:
        event.remove(world.deps.engine, "before_cursor_execute", count)

    assert scheduled == 10_000
    with world.deps.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ScheduledSend)) == 10_000
        assert session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
        ) == (2000)
    assert 0 < len(statements) < 50, statements[:20]


def test_enroll_many_skips_contacts_already_active(world: World) -> None:
    """Contacts already active in the campaign are left alone by a bulk enrollment."""
    first = add_dana(world)
    second = add_dana(world, phone="+16175550124", first_name="Lee")
    enroll(world.deps, first, SMART_DRIP, world.now)

    scheduled = enroll_many(world.deps, [first, second], SMART_DRIP, world.now)

    assert scheduled == 5
    assert len(plan(world, first)) == 5
    assert len(plan(world, second)) == 5


def test_enroll_many_zones_each_contact_like_enrolling_it_alone(world: World) -> None:
    """Bulk due times are each contact's own: zone on record, area code, non-US number, repeats."""
    people = [
        add_dana(world, phone="+16175550101", timezone="America/Chicago", first_name="A"),
        add_dana(world, phone="+16025550102", email="b@example.com", first_name="B"),
        add_dana(world, phone="+16025550103", email="c@example.com", first_name="C"),
        add_dana(world, phone="+13105550104", email="d@example.com", first_name="D"),
        add_dana(world, phone="+442079460105", email="e@example.com", first_name="E"),
    ]
    now = world.at(datetime(2026, 3, 2, 15, 7, tzinfo=UTC))
    with world.deps.sessions() as session:
        _, campaign = load_campaign(world.deps, session, SMART_DRIP)
        contacts = {c.id: c for c in session.scalars(select(Contact))}
    default = world.deps.account.default_timezone

    # Out of id order, one id twice, one id that is no contact.
    scheduled = enroll_many(world.deps, [*reversed(people), people[1], 999_999], SMART_DRIP, now)

    assert scheduled == 25
    zones = set()
    for contact_id in people:
        c = contacts[contact_id]
        zone = resolve_timezone(c.timezone, c.phone, default).name
        zones.add(zone)
        expected = [step_due_at(now, s.day, s.at, zone) for s in campaign.steps]
        sends = sorted(plan(world, contact_id), key=lambda s: s.id)
        assert [s.step_id for s in sends] == [s.id for s in campaign.steps]
        assert [s.due_at for s in sends] == expected, (contact_id, zone)
        assert all(s.original_due_at == s.due_at and s.created_at == now for s in sends)
    # The zones really differ: Chicago, Phoenix (602), Los Angeles (310), the default (+44).
    assert len(zones) == 4


def test_the_store_skips_a_contact_enrolled_meanwhile(world: World) -> None:
    """A contact that became active after the caller looked is skipped by the insert, not doubled."""
    first = add_dana(world)
    second = add_dana(world, phone="+16175550124", first_name="Lee")
    enroll(world.deps, first, SMART_DRIP, world.now)  # "meanwhile", by someone else
    plans = [[PlannedStep("day-15", Channel.SMS, world.now + timedelta(days=15))]]

    with world.deps.sessions.begin() as session:
        campaign_id = session.scalar(select(Enrollment.campaign_id))
        new, sends = enroll_members(
            session,
            campaign_id=campaign_id,
            sender_role=SenderRole.AGENT,
            now=world.now,
            members=[Member(first, 0), Member(second, 0)],
            plans=plans,
        )

    assert list(new) == [second]
    assert sends == 1
    assert len(plan(world, first)) == 5
    assert [s.step_id for s in plan(world, second)] == ["day-15"]


def test_several_campaigns_enroll_in_one_call_each_with_its_own_plan_and_sender(
    world: World,
) -> None:
    """enroll_members_in: each campaign's contacts get its steps, its sender and their group's due times."""
    first = add_dana(world)
    second = add_dana(world, phone="+16175550124", first_name="Lee")
    early, late = world.now + timedelta(days=1), world.now + timedelta(days=2)
    with world.deps.sessions.begin() as session:
        drip_row, _ = load_campaign(world.deps, session, SMART_DRIP)
        seller_row, _ = load_campaign(world.deps, session, SELLER)
        found = enroll_members_in(
            session,
            now=world.now,
            campaigns=[
                CampaignMembers(
                    drip_row.id,
                    SenderRole.AGENT,
                    [Member(first, 1), Member(second, 0)],
                    [
                        [PlannedStep("a", Channel.SMS, early)],
                        [PlannedStep("a", Channel.SMS, late), PlannedStep("b", Channel.SMS, late)],
                    ],
                ),
                CampaignMembers(seller_row.id, SenderRole.CONCIERGE, [], []),
                CampaignMembers(
                    seller_row.id + drip_row.id + 1000, SenderRole.AGENT, [], []
                ),  # no members: nothing asked of the database
            ],
        )
        again = enroll_members_in(
            session,
            now=world.now,
            campaigns=[
                CampaignMembers(
                    seller_row.id,
                    SenderRole.CONCIERGE,
                    [Member(second, 0)],
                    [[PlannedStep("x", Channel.SMS, early)]],
                ),
                CampaignMembers(
                    drip_row.id,
                    SenderRole.AGENT,
                    [Member(first, 0)],
                    [[PlannedStep("y", Channel.SMS, early)]],
                ),
            ],
        )

    assert [sorted(f) for f in found] == [[first, second], [], []]
    assert found[0][first] < found[0][second]  # in the members' order
    assert list(again[0]) == [second]
    assert again[1] == {}  # already active in smart-drip: left alone
    firsts = sorted(plan(world, first), key=lambda s: s.id)
    assert [(s.step_id, s.due_at, s.sender_role) for s in firsts] == [
        ("a", late, SenderRole.AGENT),
        ("b", late, SenderRole.AGENT),
    ]
    seconds = sorted(plan(world, second), key=lambda s: s.id)
    assert [(s.step_id, s.due_at, s.sender_role, s.campaign_id) for s in seconds] == [
        ("a", early, SenderRole.AGENT, drip_row.id),
        ("x", early, SenderRole.CONCIERGE, seller_row.id),
    ]
