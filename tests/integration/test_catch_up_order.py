"""Catch-up keeps the planned order even when the YAML lists steps out of day order."""

from __future__ import annotations

from pathlib import Path

from services_support import START, add_dana, later, open_world, outbound

from drip.domain.campaign import Campaign, Step
from drip.domain.enums import CampaignKind, MessageKind
from drip.services.dispatch import tick
from drip.services.enrollment import enroll
from drip.services.sync import sync_campaigns


def test_overdue_steps_go_out_one_a_day_in_day_order(db_url: str, tmp_path: Path) -> None:
    """Steps listed day 3, 2, 1 and all overdue after downtime go out on days 5, 6, 7 as 1, 2, 3."""
    steps = tuple(
        Step(id=step_id, position=i, day=day, body=f"step {day} for {{VisitorFirstName}}")
        for i, (step_id, day) in enumerate([("c", 3), ("b", 2), ("a", 1)])
    )
    with open_world(db_url, tmp_path) as world:
        sync_campaigns(world.deps, [Campaign("plan", CampaignKind.NURTURE, steps)], world.now)
        contact_id = add_dana(world)
        enroll(world.deps, contact_id, "plan", world.now)
        for day in (5, 6, 7):  # nothing ran until day 5: all three are overdue
            tick(world.deps, world.at(later(START, days=day, hours=1)))
        sent = [
            m.body.split()[1] for m in outbound(world, contact_id) if m.kind is MessageKind.CAMPAIGN
        ]
        assert sent == ["1", "2", "3"]
