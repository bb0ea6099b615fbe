"""Concierge and agent are separate conversations with separate footer state (SPEC §2)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from services_support import (
    ACCOUNT,
    AGENT_PHONE,
    CONCIERGE_PHONE,
    DANA_PHONE,
    START,
    World,
    add_dana,
    add_sam,
    conversation,
    day_of,
    later,
    manual_text,
    open_world,
    outbound,
    plan,
    run_until,
    sync_bundled,
)
from sqlalchemy import select

from drip.domain.enums import EnrollmentStatus, MessageKind, SendState
from drip.services.enrollment import enroll
from drip.services.inbound import handle_inbound
from drip.store.models import Enrollment

CONCIERGE = "concierge-default"
SMART_DRIP = "smart-drip-new-lead"


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Services on the test database with the concierge and Smart-Drip campaigns stored."""
    with open_world(db_url, tmp_path) as w:
        sync_bundled(w, CONCIERGE, SMART_DRIP)
        add_sam(w)
        yield w


def _texts(world: World, contact_id: int) -> list[tuple[int, str, str, bool]]:
    """(day, from, kind, footer) of each text but the opt-in confirmation."""
    return [
        (day_of(m.sent_at or m.created_at), m.from_addr, m.kind.value if m.kind else "?", m.footer)
        for m in outbound(world, contact_id)
        if m.kind is not MessageKind.OPT_IN_CONFIRMATION
    ]


def test_concierge_footer_does_not_count_for_the_agent(world: World) -> None:
    """The concierge greeting's footer leaves the agent's conversation at F1: both carry it."""
    contact_id = add_dana(world)
    enroll(world.deps, contact_id, CONCIERGE, world.now)
    run_until(world, later(START, minutes=1))
    world.at(later(START, minutes=5))

    manual_text(world, contact_id, "Hi Dana, it's Sam, your agent at Acme Realty.")
    run_until(world, START + timedelta(days=3))

    assert _texts(world, contact_id) == [
        (0, CONCIERGE_PHONE, "campaign", True),  # F5: the greeting always carries it
        (0, AGENT_PHONE, "manual", True),  # F1 for the agent's own conversation
        (2, CONCIERGE_PHONE, "campaign", False),  # F4: two days after the concierge footer
    ]
    concierge = conversation(world, CONCIERGE_PHONE, contact_id)
    agent = conversation(world, AGENT_PHONE, contact_id)
    assert concierge is not None and agent is not None
    assert concierge.footer_last_sent_at == START
    assert agent.footer_last_sent_at == later(START, minutes=5)


def test_reply_to_the_concierge_is_two_way_for_the_concierge_only(world: World) -> None:
    """A reply to the concierge stops its plan; the agent's drip keeps its own footer rules."""
    contact_id = add_dana(world)
    enroll(world.deps, contact_id, CONCIERGE, world.now)
    enroll(world.deps, contact_id, SMART_DRIP, world.now)
    run_until(world, START + timedelta(days=5))

    result = handle_inbound(
        world.deps,
        from_phone=DANA_PHONE,
        to_phone=CONCIERGE_PHONE,
        body="Buying, probably in the spring",
        now=world.now,
    )
    run_until(world, START + timedelta(days=46))

    assert result.action == "two_way"
    assert "cancelled by stop_on_reply" in result.detail
    concierge = conversation(world, CONCIERGE_PHONE, contact_id)
    agent = conversation(world, AGENT_PHONE, contact_id)
    assert concierge is not None and concierge.two_way_at == START + timedelta(days=5)
    assert agent is not None and agent.two_way_at is None
    assert _texts(world, contact_id) == [
        (0, CONCIERGE_PHONE, "campaign", True),  # F5
        (2, CONCIERGE_PHONE, "campaign", False),  # F4
        (15, AGENT_PHONE, "campaign", True),  # F1: the agent's first text
        (45, AGENT_PHONE, "campaign", True),  # F3: 30 days later, no reply to the agent
    ]
    concierge_sends = [
        s for s in plan(world, contact_id) if s.sender_role.value == "concierge" and s.step_id
    ]
    assert {s.state for s in concierge_sends if day_of(s.original_due_at) > 5} == {
        SendState.CANCELLED
    }
    with world.deps.sessions() as session:
        rows = session.scalars(select(Enrollment).where(Enrollment.contact_id == contact_id))
        statuses = sorted(e.status.value for e in rows)
    assert statuses == sorted([EnrollmentStatus.STOPPED.value, EnrollmentStatus.ACTIVE.value])


def test_no_concierge_number_skips_concierge_texts_with_the_reason(
    db_url: str, tmp_path: Path
) -> None:
    """Without concierge_phone in the account, concierge steps are skipped and say what is missing."""
    with open_world(db_url, tmp_path, account=replace(ACCOUNT, concierge_phone=None)) as world:
        sync_bundled(world, CONCIERGE)
        contact_id = add_dana(world)
        enroll(world.deps, contact_id, CONCIERGE, world.now)

        run_until(world, later(START, minutes=1))

        greeting = plan(world, contact_id)[0]
        assert (greeting.state, greeting.decision_code) == (SendState.SKIPPED, "no_sender")
        assert "concierge_phone" in (greeting.decision_reason or "")
        assert [m.kind for m in outbound(world, contact_id)] == [MessageKind.OPT_IN_CONFIRMATION]
