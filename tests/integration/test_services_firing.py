"""Fire time on SQLite and PostgreSQL: re-checks, window deferral, at most once, lost sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from services_support import (
    AGENT_PHONE,
    DANA_PHONE,
    NY,
    START,
    World,
    add_dana,
    decisions,
    local_at,
    manual_text,
    open_world,
    outbound,
    plan,
    run_until,
    send_by_step,
    sync_bundled,
)

from drip.domain.enums import MessageKind, SendState, TextStatus
from drip.services import callbacks, dispatch
from drip.services.audit import explain
from drip.services.consent import set_text_status
from drip.services.deps import Deps
from drip.services.enrollment import enroll
from drip.services.fire import fire_batch
from drip.services.inbound import handle_inbound
from drip.store import claims
from drip.transports.base import OutboundSms, SmsReceipt
from drip.transports.recording import RecordingTransport

SMART_DRIP = "smart-drip-new-lead"
DAY_15 = "day-15-check-in"


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    """Services on the test database with the Smart-Drip campaign stored."""
    with open_world(db_url, tmp_path) as w:
        sync_bundled(w, SMART_DRIP)
        yield w


def _enrolled(world: World, **contact: Any) -> int:
    contact_id = add_dana(world, **contact)
    enroll(world.deps, contact_id, SMART_DRIP, world.now)
    return contact_id


def _stop(world: World, contact_id: int) -> None:
    handle_inbound(
        world.deps, from_phone=DANA_PHONE, to_phone=AGENT_PHONE, body="STOP", now=world.now
    )


def _phrase(world: World, contact_id: int) -> None:
    handle_inbound(
        world.deps,
        from_phone=DANA_PHONE,
        to_phone=AGENT_PHONE,
        body="Please stop texting me",
        now=world.now,
    )


def _operator(world: World, contact_id: int) -> None:
    set_text_status(world.deps, contact_id, TextStatus.CANNOT_BE_TEXTED, world.now, by="test")


def _carrier_opt_out(world: World, contact_id: int) -> None:
    world.transport.fail(DANA_PHONE, code=21610, status=400, times=1)
    assert manual_text(world, contact_id, "Are you still looking?").outcome == "failed"


def _undeliverable(world: World, contact_id: int) -> None:
    world.transport.fail(DANA_PHONE, code=21614, status=400, times=1)
    assert manual_text(world, contact_id, "Are you still looking?").outcome == "failed"


REVOCATIONS: list[tuple[str, Callable[[World, int], None], str, str]] = [
    ("stop_keyword", _stop, "opted_out", "opted out of texts"),
    ("revocation_phrase", _phrase, "opted_out", "opted out of texts"),
    ("carrier_21610", _carrier_opt_out, "opted_out", "opted out of texts"),
    ("operator", _operator, "cannot_be_texted", "marked cannot be texted"),
    ("undeliverable", _undeliverable, "undeliverable", "reported undeliverable"),
]


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [pytest.param(fn, code, words, id=name) for name, fn, code, words in REVOCATIONS],
)
def test_change_between_scheduling_and_firing_skips_the_text(
    world: World, change: Callable[[World, int], None], code: str, words: str
) -> None:
    """A revocation after enrollment is seen at fire time: skipped, with code and a decision row."""
    contact_id = _enrolled(world)
    world.at(START + timedelta(days=3))
    change(world, contact_id)
    texts_before = len(world.transport.sms)

    run_until(world, START + timedelta(days=16))

    send = send_by_step(world, contact_id, DAY_15)
    assert send.state is SendState.SKIPPED
    assert send.decision_code == code
    trail = decisions(world, send.id)
    assert [(d.outcome, d.code) for d in trail] == [("skipped", code)]
    assert words in trail[0].reason
    assert len(world.transport.sms) == texts_before


def test_contact_without_consent_is_never_texted_by_a_campaign(world: World) -> None:
    """A contact created without consent evidence is enrolled, but every text is skipped."""
    contact_id = _enrolled(world, consent=False)

    run_until(world)

    assert {(s.state, s.decision_code) for s in plan(world, contact_id)} == {
        (SendState.SKIPPED, "no_consent")
    }
    assert world.transport.sms == []


def test_text_due_outside_the_window_is_deferred_to_eight_local(world: World) -> None:
    """Enrolled at 22:30, day 15 is due at 22:30: deferred to 08:00 the next morning, then sent."""
    world.at(datetime(2026, 3, 2, 22, 30, tzinfo=NY).astimezone(UTC))
    contact_id = _enrolled(world)
    due = send_by_step(world, contact_id, DAY_15).due_at
    assert due == local_at(datetime(2026, 3, 17).date(), time(22, 30))

    world.at(due)
    summary = dispatch.tick(world.deps, world.now)

    assert summary.counts() == {"deferred": 1}
    send = send_by_step(world, contact_id, DAY_15)
    morning = local_at(datetime(2026, 3, 18).date(), time(8, 0))
    assert (send.state, send.due_at, send.original_due_at) == (SendState.PENDING, morning, due)
    trail = decisions(world, send.id)
    assert [(d.outcome, d.code, d.deferred_until) for d in trail] == [
        ("deferred", "window", morning)
    ]
    assert "outside the send window 08:00-21:00" in trail[0].reason

    run_until(world, morning + timedelta(minutes=1))

    send = send_by_step(world, contact_id, DAY_15)
    assert send.state is SendState.SENT
    campaign_texts = [m for m in outbound(world, contact_id) if m.kind is MessageKind.CAMPAIGN]
    assert [m.sent_at for m in campaign_texts] == [morning]
    assert world.transport.sms[-1].at.astimezone(NY).time() == time(8, 0)


def test_fire_batch_twice_with_the_same_ids_calls_the_transport_once(world: World) -> None:
    """A redelivered batch finds its sends taken and does nothing: one provider call per send."""
    contact_id = _enrolled(world)
    world.at(START + timedelta(days=15))
    ids = dispatch.claim(world.deps, world.now)
    assert len(ids) == 1
    attempts_before = world.transport.attempts

    first = fire_batch(world.deps, ids, world.now)
    second = fire_batch(world.deps, ids, world.now)

    assert [r.outcome for r in first] == ["sent"]
    assert second == []
    assert world.transport.attempts == attempts_before + 1
    assert send_by_step(world, contact_id, DAY_15).state is SendState.SENT


class WorkerKilled(BaseException):
    """The process dies: nothing in the worker gets to handle it."""


class CrashAfterSend(RecordingTransport):
    """The provider accepts the text, then the worker dies before recording it."""

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        super().send_sms(msg)
        raise WorkerKilled("worker killed after the provider call")


def test_send_lost_in_sending_becomes_unknown_and_is_never_resent(
    db_url: str, tmp_path: Path
) -> None:
    """A crash after the provider call leaves 'sending'; recovery marks it unknown, never resent."""
    with open_world(db_url, tmp_path) as world:
        sync_bundled(world, SMART_DRIP)
        contact_id = _enrolled(world)
        crashing = CrashAfterSend(clock=world.clock)
        deps = replace(world.deps, sms=crashing)
        world.at(START + timedelta(days=15))
        ids = dispatch.claim(deps, world.now)

        with pytest.raises(WorkerKilled, match="worker killed"):
            fire_batch(deps, ids, world.now)

        send = send_by_step(world, contact_id, DAY_15)
        assert send.state is SendState.SENDING
        timeout = timedelta(seconds=world.deps.settings.sending_timeout_seconds)
        assert dispatch.recover(world.deps, world.now + timeout / 2) == []
        assert send_by_step(world, contact_id, DAY_15).state is SendState.SENDING
        unknown = dispatch.recover(world.deps, world.at(world.now + timeout + timedelta(seconds=1)))
        assert unknown == [send.id]
        assert send_by_step(world, contact_id, DAY_15).state is SendState.UNKNOWN
        assert dispatch.tick(world.deps, world.now).counts() == {}

        run_until(world, START + timedelta(days=50))

        assert send_by_step(world, contact_id, DAY_15).state is SendState.UNKNOWN
        assert len(crashing.sms) == 1
        sent_steps = [m.send_id for m in outbound(world, contact_id)]
        assert send.id not in sent_steps
        assert [d.outcome for d in decisions(world, send.id)] == ["unknown"]
        lines = "\n".join(explain(world.deps, send.id))
        assert "UNKNOWN" in lines
        assert "never resends" in lines
        assert send_by_step(world, contact_id, DAY_15).decision_code == claims.CODE_STALE_SENDING


class CallbackOvertakesRecord(RecordingTransport):
    """Twilio accepts the text and its status callback is kept before the worker records it."""

    deps: Deps | None = None
    inner: RecordingTransport | None = None  # the world's: its ids go on from the opt-in's

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        assert self.inner is not None
        receipt = self.inner.send_sms(msg)
        assert self.deps is not None
        callbacks.keep(
            self.deps,
            message_sid=receipt.sid,
            status="delivered",
            error_code=None,
            error_message=None,
            now=self.deps.clock.now(),
        )
        return receipt


def test_a_callback_kept_before_the_send_is_recorded_is_applied_after_the_batch(
    db_url: str, tmp_path: Path
) -> None:
    """Firing a batch applies a callback that overtook its record; another system's stays kept."""
    with open_world(db_url, tmp_path) as world:
        sync_bundled(world, SMART_DRIP)
        contact_id = _enrolled(world)
        early = CallbackOvertakesRecord(clock=world.clock)
        deps = replace(world.deps, sms=early)
        early.deps, early.inner = deps, world.transport
        foreign = "SM" + "9" * 32  # a message drip never recorded
        callbacks.keep(deps, message_sid=foreign, status="delivered", error_code=None,
                       error_message=None, now=world.now)  # fmt: skip
        world.at(START + timedelta(days=15))
        ids = dispatch.claim(deps, world.now)

        results = dispatch.fire(deps, ids, world.now)

        assert [r.outcome for r in results] == ["sent"]
        assert results[0].provider_id is not None  # what the batch recorded, for its caller
        sent = [m for m in outbound(world, contact_id) if m.id == results[0].message_id]
        assert [m.status for m in sent] == ["delivered"]
        assert callbacks.pending_count(deps) == 1  # the foreign one waits for its message
