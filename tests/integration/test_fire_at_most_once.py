"""At most once on the fire path: repeated deliveries and a crash after the provider call."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from drip.domain.enums import SendState
from drip.store import repository as repo
from drip.store.claims import CODE_STALE_SENDING
from drip.transports.base import OutboundSms, SmsReceipt, SmsTransport
from workers.tasks import dispatch_once, fire

if TYPE_CHECKING:
    from conftest import Rig, RigFactory


class ProcessCrash(BaseException):
    """Stands for the worker process dying: not an ``Exception``, so nothing catches it."""


class CrashAfterSend:
    """Hands the text to the real transport, then 'dies' before drip can record the result."""

    def __init__(self, inner: SmsTransport) -> None:
        self.inner = inner

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        self.inner.send_sms(msg)
        raise ProcessCrash(f"worker died after Twilio accepted the text to {msg.to}")


def test_the_same_fire_batch_delivered_twice_sends_once(rig: Rig) -> None:
    """Firing the same claimed ids twice: one request per send, the repeat is ignored."""
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(5), "one-step")
    rig.at(rig.start + timedelta(minutes=1))
    published: list[list[int]] = []
    dispatch_once(rig.deps, rig.now, published.append)
    [ids] = published

    assert fire(rig.deps, ids) == {"sent": 5}
    assert fire(rig.deps, ids) == {"ignored": 5}
    assert rig.twilio.count == 5
    assert rig.states() == {"sent": 5}
    assert len(rig.outbound()) == 5


def test_the_same_fire_batch_delivered_twice_at_once_sends_once(rig: Rig) -> None:
    """Two deliveries of one batch racing in two threads: exactly one request per send."""
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(20), "one-step")
    rig.at(rig.start + timedelta(minutes=1))
    published: list[list[int]] = []
    dispatch_once(rig.deps, rig.now, published.append)
    [ids] = published
    barrier = threading.Barrier(2)
    outcomes: list[dict[str, int]] = []

    def deliver() -> None:
        barrier.wait(timeout=10)
        outcomes.append(fire(rig.deps, ids))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # Each send is started on its own: the two deliveries may share the work,
    # but every send goes out exactly once.
    assert sum(o.get("sent", 0) for o in outcomes) == 20
    assert sum(o.get("ignored", 0) for o in outcomes) == 20
    assert rig.twilio.count == 20
    assert len({r.to for r in rig.twilio.requests}) == 20


def test_a_crash_between_the_provider_call_and_the_commit_is_never_resent(
    make_rig: RigFactory,
) -> None:
    """Twilio took the text, the worker died: after the timeout it is unknown and never resent."""
    rig = make_rig(sending_timeout_seconds=300)
    rig.add_campaign("two-steps", [0, 1])
    [contact] = rig.add_contacts(1)
    rig.enroll([contact], "two-steps")
    first, second = (s.id for s in rig.sends_of(contact))
    crashing = replace(rig.deps, sms=CrashAfterSend(rig.deps.sms))

    started = rig.at(rig.start + timedelta(minutes=1))
    published: list[list[int]] = []
    dispatch_once(rig.deps, rig.now, published.append)
    assert published == [[first]]
    with pytest.raises(ProcessCrash):
        fire(crashing, published[0])
    assert rig.twilio.accepted == 1
    assert rig.sends_of(contact)[0].state is SendState.SENDING

    # Ticks within the timeout leave it alone; nothing is claimed again.
    rig.at(started + timedelta(minutes=4))
    published.clear()
    summary = dispatch_once(rig.deps, rig.now, published.append)
    assert (summary.unknown, published) == ((), [])

    # Past the timeout it is settled as unknown, with the reason, and reported; the same
    # recovery tick then finds it in Twilio's Messages list and records it sent.
    rig.at(started + timedelta(minutes=6))
    summary = dispatch_once(rig.deps, rig.now, published.append)
    assert (summary.unknown, published) == ((first,), [])
    sent, pending = rig.sends_of(contact)
    assert (sent.state, sent.decision_code) == (SendState.SENT, "reconciled_sent")
    with rig.deps.sessions() as session:
        decisions = repo.decisions_of(session, first)
    assert [(d.outcome, d.code) for d in decisions] == [
        ("unknown", CODE_STALE_SENDING),
        ("sent", "reconciled_sent"),
    ]

    # Later ticks fire the next step only; the first one never reaches Twilio again.
    for hours in (1, 12, 24, 48):
        rig.at(started + timedelta(hours=hours))
        for ids in _dispatch(rig):
            fire(rig.deps, ids)
    assert rig.twilio.count == 2
    assert [r.body.split(":")[0] for r in rig.twilio.requests if r.body] == ["Step 1", "Step 2"]
    assert [s.state for s in rig.sends_of(contact)] == [SendState.SENT, SendState.SENT]
    assert pending.id == second


def _dispatch(rig: Rig) -> list[list[int]]:
    published: list[list[int]] = []
    dispatch_once(rig.deps, rig.now, published.append)
    return published
