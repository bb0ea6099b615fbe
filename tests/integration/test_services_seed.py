"""The SPEC §2 seed example through the real services on virtual time, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from services_support import (
    AGENT_PHONE,
    DANA_PHONE,
    START,
    World,
    add_dana,
    add_sam,
    conversation,
    footers_by_day,
    later,
    manual_text,
    open_world,
    outbound,
    run_until,
    sync_bundled,
)

from drip.campaigns.preview import preview
from drip.domain.enums import MessageKind
from drip.services.enrollment import enroll
from drip.services.inbound import handle_inbound

SMART_DRIP = "smart-drip-new-lead"
INTRO = "Hi Dana, this is Sam with Acme Realty. Thanks for your interest in homes in Boston!"


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Services on the test database, at the seed example's start (2026-03-02 10:00 New York)."""
    with open_world(db_url, tmp_path) as w:
        sync_bundled(w, SMART_DRIP)
        add_sam(w)
        yield w


def _start_seed(world: World) -> int:
    """Dana registers with consent at 10:00, Sam texts her at 10:05 and enrolls her at 10:06."""
    contact_id = add_dana(world)
    world.at(later(START, minutes=5))
    assert manual_text(world, contact_id, INTRO).outcome == "sent"
    world.at(later(START, minutes=6))
    assert enroll(world.deps, contact_id, SMART_DRIP, world.now).created
    return contact_id


def test_seed_example_footers_on_day_0_45_180_270_360(world: World) -> None:
    """Without a reply, the footer goes on the intro and days 45, 180, 270 and 360, not day 15."""
    contact_id = _start_seed(world)

    run_until(world)

    assert footers_by_day(outbound(world, contact_id)) == [
        (0, "opt_in_confirmation", False),
        (0, "manual", True),
        (15, "campaign", False),
        (45, "campaign", True),
        (180, "campaign", True),
        (270, "campaign", True),
        (360, "campaign", True),
    ]
    texts = world.transport.sms
    assert [t.msg.from_ for t in texts] == [AGENT_PHONE] * 7
    assert all(t.msg.to == DANA_PHONE for t in texts)
    footer = world.deps.account.footer
    assert [t.msg.body.endswith(footer) for t in texts] == [
        False,
        True,
        False,
        True,
        True,
        True,
        True,
    ]


def test_seed_example_day_15_goes_out_at_enrollment_local_time(world: World) -> None:
    """Day 15 fires at 10:06 New York time on 17 March, after the DST change, not at 09:06."""
    contact_id = _start_seed(world)

    run_until(world, later(START, days=16))

    day_15 = outbound(world, contact_id)[-1]
    assert day_15.sent_at is not None
    assert day_15.sent_at.isoformat() == "2026-03-17T14:06:00+00:00"  # 10:06 EDT


def test_seed_example_reply_on_day_20_removes_every_later_footer(world: World) -> None:
    """A reply on day 20 makes the conversation two-way: days 45 to 360 carry no footer."""
    contact_id = _start_seed(world)
    run_until(world, later(START, days=20))

    result = handle_inbound(
        world.deps,
        from_phone=DANA_PHONE,
        to_phone=AGENT_PHONE,
        body="Sounds good, I'm still looking",
        now=world.now,
        message_sid="SMreply20",
    )
    run_until(world)

    assert result.action == "two_way"
    assert footers_by_day(outbound(world, contact_id)) == [
        (0, "opt_in_confirmation", False),
        (0, "manual", True),
        (15, "campaign", False),
        (45, "campaign", False),
        (180, "campaign", False),
        (270, "campaign", False),
        (360, "campaign", False),
    ]
    agent = conversation(world, AGENT_PHONE, contact_id)
    assert agent is not None
    assert agent.two_way_at == later(START, days=20)


@pytest.mark.parametrize(
    ("intro", "state", "start"),
    [
        pytest.param(None, None, START, id="plan-only"),
        pytest.param(INTRO, None, START, id="with-intro"),
        pytest.param(INTRO, "FL", later(START, hours=-3), id="florida-at-7am"),
    ],
)
def test_preview_predicts_exactly_what_the_worker_sends(
    db_url: str, tmp_path: Path, intro: str | None, state: str | None, start: datetime
) -> None:
    """``drip preview``'s computation gives the worker's send times, footers and texts."""
    with open_world(db_url, tmp_path, start=start) as world:
        campaign = sync_bundled(world, SMART_DRIP)[SMART_DRIP]
        add_sam(world)
        contact_id = add_dana(world, state=state)
        if intro is not None:
            manual_text(world, contact_id, intro)
        enroll(world.deps, contact_id, SMART_DRIP, world.now)
        run_until(world)

        predicted = preview(
            campaign,
            world.deps.account,
            now=start,
            start=start,
            timezone="America/New_York",
            state=state,
            intro=intro,
        )

        sent = [
            m for m in outbound(world, contact_id) if m.kind is not MessageKind.OPT_IN_CONFIRMATION
        ]
        assert [(r.send_at, r.footer, r.text) for r in predicted.rows] == [
            (m.sent_at, m.footer, m.body) for m in sent
        ]
        assert [r.segments for r in predicted.rows] == [m.segments for m in sent]
