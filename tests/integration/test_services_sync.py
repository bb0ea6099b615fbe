"""Campaign edits reach enrolled contacts (SPEC §5), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import time, timedelta
from pathlib import Path

import pytest
from services_support import (
    NY,
    START,
    World,
    add_dana,
    bundled_campaigns,
    day_of,
    decisions,
    edited,
    open_world,
    outbound,
    plan,
    run_until,
    send_by_step,
    sync_bundled,
)

from drip.domain.campaign import Campaign, Step
from drip.domain.enums import MessageKind, SendState
from drip.domain.schedule import step_due_at
from drip.services.enrollment import enroll
from drip.services.sync import sync_campaigns

SMART_DRIP = "smart-drip-new-lead"
NEW_45 = "Hi {VisitorFirstName}, {AgentFirstName} here with this month's price report. Want it?"


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Services on the test database with the Smart-Drip campaign stored."""
    with open_world(db_url, tmp_path) as w:
        sync_bundled(w, SMART_DRIP)
        yield w


def _original() -> Campaign:
    return bundled_campaigns()[SMART_DRIP]


def _two_enrolled_on_day_20(world: World) -> list[int]:
    """Two contacts enrolled at the start; time runs to day 20 (day 15 went out)."""
    ids = [add_dana(world), add_dana(world, phone="+16175550124", first_name="Lee")]
    for contact_id in ids:
        enroll(world.deps, contact_id, SMART_DRIP, world.now)
    run_until(world, START + timedelta(days=20))
    return ids


def _edit(campaign: Campaign) -> Campaign:
    """Day 45 reworded, day 180 moved to 200, day 270 removed, new steps on days 5 and 30."""
    steps: list[Step] = []
    for step in campaign.steps:
        if step.id == "day-45-market-update":
            steps.append(replace(step, body=NEW_45))
        elif step.id == "day-180-timing":
            steps.append(replace(step, day=200))
        elif step.id != "day-270-new-listings":
            steps.append(step)
    steps.append(Step(id="day-5-late", position=6, day=5, body="Too late {VisitorFirstName}."))
    steps.append(Step(id="day-30-new", position=7, day=30, body="New {VisitorFirstName}!"))
    return edited(campaign, steps=tuple(steps))


def test_unchanged_campaign_reports_unchanged(world: World) -> None:
    """Syncing the same campaign again changes nothing and says so."""
    summary = sync_campaigns(world.deps, [_original()], world.now)

    assert summary.lines() == [f"{SMART_DRIP}: unchanged"]


def test_edit_summary_counts_every_change_for_every_enrollment(world: World) -> None:
    """Two enrolled contacts: 2 rescheduled, 2 cancelled, 2 added (the past new step is not)."""
    _two_enrolled_on_day_20(world)

    summary = sync_campaigns(world.deps, [_edit(_original())], world.now)

    change = summary.changes[0]
    assert (change.status, change.rescheduled, change.cancelled, change.added) == (
        "updated",
        2,
        2,
        2,
    )
    assert summary.lines() == [
        f"{SMART_DRIP}: updated (2 rescheduled, 2 cancelled, 2 added for enrolled contacts)"
    ]
    again = sync_campaigns(world.deps, [_edit(_original())], world.now)
    assert again.lines() == [f"{SMART_DRIP}: unchanged"]


def test_changed_day_reschedules_the_pending_send(world: World) -> None:
    """Day 180 moved to day 200: the pending send gets the new due time and a decision row."""
    contact_id = _two_enrolled_on_day_20(world)[0]
    before = send_by_step(world, contact_id, "day-180-timing")

    sync_campaigns(world.deps, [_edit(_original())], world.now)

    after = send_by_step(world, contact_id, "day-180-timing")
    assert after.id == before.id
    assert after.state is SendState.PENDING
    assert after.due_at == step_due_at(START, 200, None, "America/New_York")
    assert day_of(after.due_at) == 200
    assert after.due_at.astimezone(NY).time() == time(10, 0)
    trail = decisions(world, after.id)
    assert [(d.outcome, d.code) for d in trail] == [("rescheduled", "step_edited")]
    assert "moved to day 200" in trail[0].reason


def test_removed_step_is_cancelled(world: World) -> None:
    """Day 270 removed from the file: its pending send is cancelled, with the reason."""
    contact_id = _two_enrolled_on_day_20(world)[0]

    sync_campaigns(world.deps, [_edit(_original())], world.now)

    send = send_by_step(world, contact_id, "day-270-new-listings")
    assert send.state is SendState.CANCELLED
    assert [(d.outcome, d.code) for d in decisions(world, send.id)] == [
        ("cancelled", "step_removed")
    ]


def test_new_step_is_scheduled_only_when_still_ahead(world: World) -> None:
    """On day 20 a new day-30 step is scheduled; a new day-5 step (already past) is not."""
    contact_id = _two_enrolled_on_day_20(world)[0]

    sync_campaigns(world.deps, [_edit(_original())], world.now)

    steps = {s.step_id: s for s in plan(world, contact_id)}
    assert "day-5-late" not in steps
    assert steps["day-30-new"].state is SendState.PENDING
    assert day_of(steps["day-30-new"].due_at) == 30


def test_edited_text_reaches_the_pending_step_at_fire_time(world: World) -> None:
    """After the edit, the texts that go out are the new ones, on the new days, and 270 never."""
    contact_id = _two_enrolled_on_day_20(world)[0]
    sync_campaigns(world.deps, [_edit(_original())], world.now)

    run_until(world)

    campaign = [m for m in outbound(world, contact_id) if m.kind is MessageKind.CAMPAIGN]
    assert [day_of(m.sent_at or m.created_at) for m in campaign] == [15, 30, 45, 200, 360]
    day_45 = campaign[2]
    assert day_45.body.startswith("Hi Dana, Sam here with this month's price report. Want it?")
    assert "Prices moved" not in day_45.body
