"""An agent leaves: ``drip agents deactivate``, each move recorded, the old number silent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from services_support import (
    AGENT_PHONE,
    CONCIERGE_PHONE,
    DANA_PHONE,
    World,
    add_dana,
    add_sam,
    manual_text,
    open_world,
    outbound,
    run_cli,
)
from sqlalchemy import select

from drip.domain.enums import Channel, MessageKind, SenderRole, SendState
from drip.services.assignment import deactivate, reassign
from drip.services.audit import history
from drip.services.contacts import add_agent
from drip.services.dispatch import tick
from drip.services.inbound import handle_inbound
from drip.store.models import Agent, AssignmentChange, Contact, ScheduledSend

ANA = "+16175550170"
BEN = "+16175550180"


def _cli(world: World, *args: str) -> str:
    result = run_cli(world, *args)
    assert result.exit_code == 0, result.output
    return result.output


def _agents(world: World, contact_ids: list[int]) -> list[int | None]:
    with world.deps.sessions() as session:
        rows = session.execute(
            select(Contact.id, Contact.agent_id).where(Contact.id.in_(contact_ids))
        )
        by_id = dict(rows.all())
    return [by_id[i] for i in contact_ids]


def test_agents_adds_with_three_arguments_and_deactivates_as_a_subcommand(
    db_url: str, tmp_path: Path
) -> None:
    """`drip agents FIRST LAST PHONE` still adds; `drip agents deactivate` moves contacts round-robin."""
    with open_world(db_url, tmp_path) as world:
        assert "agent " in _cli(world, "agents", "Sam", "Lee", AGENT_PHONE)
        assert "Ana Diaz" in _cli(world, "agents", "Ana", "Diaz", "(617) 555-0170")
        assert "Ben Cho" in _cli(world, "agents", "add", "Ben", "Cho", BEN)
        ids = [
            add_dana(world, phone=f"+1617555{n:04d}", email=None, first_name=f"L{n}")
            for n in range(200, 204)
        ]
        with world.deps.sessions.begin() as session:
            sam = session.scalars(select(Agent).where(Agent.phone == AGENT_PHONE)).one()
            for contact in session.scalars(select(Contact).where(Contact.id.in_(ids))):
                contact.agent_id = sam.id
            sam_id = sam.id
        out = _cli(world, "agents", "deactivate", AGENT_PHONE, "--to", "round-robin")
        assert "4 contact(s) moved to round-robin (operator)" in out
        with world.deps.sessions() as session:
            sam_row = session.get(Agent, sam_id)
            assert sam_row is not None and not sam_row.active
            others = dict(session.execute(select(Agent.phone, Agent.id)).all())
            moves = session.scalars(select(AssignmentChange).order_by(AssignmentChange.id)).all()
        assert _agents(world, ids) == [others[ANA], others[BEN], others[ANA], others[BEN]]
        assert [(m.contact_id, m.from_agent_id, m.why) for m in moves] == [
            (i, sam_id, "operator") for i in ids
        ]


def test_the_old_number_sends_nothing_more_and_a_stop_to_it_is_honoured(
    db_url: str, tmp_path: Path
) -> None:
    """A send pinned to the leaving agent's number goes from the new agent; a STOP to the old
    number opts the contact out and its confirmation does not come from the old number."""
    with open_world(db_url, tmp_path) as world:
        sam_id = add_sam(world)
        add_agent(world.deps, "Ana", "Diaz", ANA, world.now)
        dana = add_dana(world)
        reassign(world.deps, dana, AGENT_PHONE, world.now, why="operator")
        with world.deps.sessions.begin() as session:
            pinned = ScheduledSend(
                contact_id=dana,
                kind=MessageKind.MANUAL,
                channel=Channel.SMS,
                body="Following up on your question.",
                sender_role=SenderRole.AGENT,
                sender_phone=AGENT_PHONE,
                due_at=world.now + timedelta(minutes=5),
                created_at=world.now,
            )
            session.add(pinned)
            session.flush()
            pinned_id = pinned.id
        done = deactivate(world.deps, str(sam_id), ANA, world.now, why="operator")
        assert len(done.moves) == 1
        tick(world.deps, world.at(world.now + timedelta(minutes=6)))
        with world.deps.sessions() as session:
            send = session.get(ScheduledSend, pinned_id)
            assert send is not None and send.state is SendState.SENT
        sent = [m for m in outbound(world, dana) if m.body.startswith("Following up")]
        assert [m.from_addr for m in sent] == [ANA]

        result = handle_inbound(
            world.deps, from_phone=DANA_PHONE, to_phone=AGENT_PHONE, body="STOP", now=world.now
        )
        assert result.action == "opted_out", result
        with world.deps.sessions() as session:
            contact = session.get(Contact, dana)
            assert contact is not None and contact.sms_opted_out_at is not None
        after = [m for m in outbound(world, dana) if m.created_at >= world.now]
        assert after and all(m.from_addr != AGENT_PHONE for m in after)
        _, _, entries = history(world.deps, dana)
        moves = [e.text for e in entries if e.what == "assigned"]
        assert moves == [
            "assigned the concierge -> Sam Lee (operator)",
            "assigned Sam Lee -> Ana Diaz (operator)",
        ]


def test_a_deactivated_default_agent_number_is_not_used_the_concierge_line_is(
    db_url: str, tmp_path: Path
) -> None:
    """Sam is the account's default agent; once deactivated to the concierge, a text for his
    former contact goes from the concierge line, never from his number."""
    with open_world(db_url, tmp_path) as world:
        sam_id = add_sam(world)
        dana = add_dana(world)
        reassign(world.deps, dana, AGENT_PHONE, world.now, why="operator")
        deactivate(world.deps, str(sam_id), "concierge", world.now, why="operator")
        result = manual_text(world, dana, "Hi Dana, a quick question about your search.")
        assert result.outcome == "sent", result
        sent = [m for m in outbound(world, dana) if m.body.startswith("Hi Dana, a quick")]
        assert [m.from_addr for m in sent] == [CONCIERGE_PHONE]
