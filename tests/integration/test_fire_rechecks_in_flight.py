"""What changes between claim and fire, or during a slow batch, is honoured at send time."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from services_support import AGENT_PHONE, World, add_dana, open_world, sync_bundled

from drip.domain.enums import Channel, SendState
from drip.services.dispatch import claim
from drip.services.enrollment import enroll
from drip.services.fire import fire_batch
from drip.services.inbound import handle_inbound
from drip.services.sync import sync_campaigns
from drip.store.models import Campaign as CampaignRow
from drip.store.models import ScheduledSend
from drip.transports.base import OutboundSms, SmsReceipt
from drip.transports.recording import RecordingTransport


def _states(world: World, ids: list[int]) -> list[SendState]:
    with world.deps.sessions() as session:
        return [session.get(ScheduledSend, i).state for i in ids]  # type: ignore[union-attr]


def _claim_first_steps(world: World, *contacts: int) -> list[int]:
    """Enroll in the concierge buyer plan (stop_on_reply) and claim the day-0 greetings."""
    for cid in contacts:
        enroll(world.deps, cid, "concierge-buyer", world.now)
    return claim(world.deps, world.now)


def test_reply_between_claim_and_fire_ends_the_step(db_url: str, tmp_path: Path) -> None:
    """A reply after the dispatcher claimed a stop_on_reply step skips that step at fire time."""
    with open_world(db_url, tmp_path) as world:
        sync_bundled(world, "concierge-buyer")
        dana = add_dana(world)
        ids = _claim_first_steps(world, dana)
        assert ids
        handle_inbound(
            world.deps,
            from_phone="+16175550123",
            to_phone=AGENT_PHONE,
            body="Call me",
            now=world.now,
        )
        results = fire_batch(world.deps, ids, world.now)
        assert {r.code for r in results} == {"enrollment_stopped"}
        assert set(_states(world, ids)) == {SendState.SKIPPED}


class StopArrivesDuringSend:
    """A slow provider: while the first text is in flight, the second contact texts STOP."""

    def __init__(self, world: World, inner: RecordingTransport, stopper: str) -> None:
        self.world, self.inner, self.stopper, self.calls = world, inner, stopper, 0

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        self.calls += 1
        if self.calls == 1:
            handle_inbound(
                self.world.deps,
                from_phone=self.stopper,
                to_phone=msg.from_,
                body="STOP",
                now=self.world.now,
            )
            time.sleep(1.1)  # longer than the batch's refresh interval
        return self.inner.send_sms(msg)


def test_stop_during_a_slow_batch_is_honoured(db_url: str, tmp_path: Path) -> None:
    """A STOP that lands while the batch waits on the provider stops that contact's text."""
    with open_world(db_url, tmp_path) as world:
        sync_bundled(world, "concierge-buyer")
        dana = add_dana(world, phone="+16175550141")
        lee = add_dana(world, phone="+16175550142", first_name="Lee")
        ids = _claim_first_steps(world, dana, lee)
        slow = StopArrivesDuringSend(world, world.transport, "+16175550142")
        deps = dataclasses.replace(world.deps, sms=slow)
        results = {r.send_id: r for r in fire_batch(deps, ids, world.now)}
        by_contact = {}
        with deps.sessions() as session:
            for send_id in ids:
                row = session.get(ScheduledSend, send_id)
                assert row is not None
                by_contact[row.contact_id] = results[send_id]
        assert by_contact[dana].outcome == "sent"
        assert by_contact[lee].outcome == "skipped"
        assert by_contact[lee].code == "opted_out"


def test_a_corrupt_stored_campaign_fails_only_its_sends(db_url: str, tmp_path: Path) -> None:
    """A stored definition that no longer validates fails its sends; other sends go out."""
    with open_world(db_url, tmp_path) as world:
        sync_bundled(world, "concierge-buyer", "concierge-seller")
        dana = add_dana(world, phone="+16175550151")
        lee = add_dana(world, phone="+16175550152", first_name="Lee")
        enroll(world.deps, dana, "concierge-buyer", world.now)
        enroll(world.deps, lee, "concierge-seller", world.now)
        with world.deps.sessions.begin() as session:
            row = session.query(CampaignRow).filter_by(name="concierge-seller").one()
            row.definition = {**row.definition, "steps": [{"id": "x", "day": -3}]}
            row.version = "corrupt"
        ids = claim(world.deps, world.now)
        results = fire_batch(world.deps, ids, world.now)
        outcomes = sorted((r.outcome, r.code) for r in results)
        assert ("failed", "internal_error") in outcomes
        assert any(o == "sent" for o, _ in outcomes)
        assert SendState.SENDING not in _states(world, ids)


def test_channel_edit_reaches_a_pending_step(db_url: str, tmp_path: Path) -> None:
    """A step edited from SMS to email goes out as an email for contacts already enrolled."""
    with open_world(db_url, tmp_path) as world:
        campaign = sync_bundled(world, "smart-drip-new-lead")["smart-drip-new-lead"]
        dana = add_dana(world)
        enroll(world.deps, dana, campaign.name, world.now)
        first = campaign.steps[0]
        emailed = dataclasses.replace(first, channel=Channel.EMAIL, subject="Homes for you")
        edited = dataclasses.replace(campaign, steps=(emailed, *campaign.steps[1:]))
        summary = sync_campaigns(world.deps, [edited], world.now)
        assert summary.changes[0].status == "updated"
        with world.deps.sessions() as session:
            send = session.query(ScheduledSend).filter_by(contact_id=dana, step_id=first.id).one()
        assert send.channel is Channel.EMAIL
