"""Broker-level delivery faults with a real worker: duplicated tasks and a flushed Redis."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
import redis

from drip.services import dispatch
from drip.transports.base import OutboundSms, SmsReceipt, SmsTransport
from workers import tasks
from workers.celery_app import FIRE_TASK, SEND_QUEUE
from workers.tasks import dispatch_due, dispatch_once, fire_sends

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import CeleryRig

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def test_the_same_fire_task_published_three_times_sends_once(celery_rig: CeleryRig) -> None:
    """One batch published three times (twice under the same task id): one request per send."""
    rig = celery_rig.rig
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(20), "one-step")
    now = rig.at(rig.start + timedelta(minutes=1))
    ids = dispatch.claim(rig.deps, now)
    assert len(ids) == 20

    fire_sends.apply_async((ids,), task_id="dup-1")
    fire_sends.apply_async((ids,), task_id="dup-1")
    fire_sends.apply_async((ids,))
    with celery_rig.worker(concurrency=3):
        celery_rig.wait_for(
            lambda: len(celery_rig.events.results_of(FIRE_TASK)) == 3, what="three deliveries"
        )

    outcomes = celery_rig.events.results_of(FIRE_TASK)
    # Each send is started on its own: the deliveries may share the work, but
    # every send goes out exactly once.
    assert sum(o.get("sent", 0) for o in outcomes) == 20
    assert sum(o.get("ignored", 0) for o in outcomes) == 40
    assert rig.twilio.count == 20
    assert len({r.to for r in rig.twilio.requests}) == 20
    assert rig.states() == {"sent": 20}


def _settled_length(broker: redis.Redis, key: str) -> int:
    """The length of a Redis list once it has not changed for half a second."""
    last = broker.llen(key)
    while True:
        time.sleep(0.5)
        now = broker.llen(key)
        if now == last:
            return int(now)
        last = now


class Gate:
    """An SMS transport that holds its first send until released, so tasks pile up in Redis."""

    def __init__(self, inner: SmsTransport) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.released = threading.Event()

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        self.entered.set()
        if not self.released.wait(timeout=60):
            raise TimeoutError("the gate was never released")
        return self.inner.send_sms(msg)


def test_every_schedule_still_fires_after_redis_is_flushed_mid_run(
    make_celery_rig: Callable[..., CeleryRig],
) -> None:
    """FLUSHDB while fire tasks wait in Redis: lost tasks are re-queued after the timeout."""
    celery_rig = make_celery_rig(send_batch=20, sending_timeout_seconds=300)
    rig = celery_rig.rig
    rig.add_campaign("two-steps", [0, 1])
    rig.enroll(rig.add_contacts(200), "two-steps")
    day0, day1 = rig.due_times()
    gate = Gate(rig.deps.sms)
    tasks.use_deps(replace(rig.deps, sms=gate))
    broker = redis.Redis.from_url(celery_rig.redis_url)
    queue_key = f"{celery_rig.key_prefix}{SEND_QUEUE}"

    with celery_rig.worker(concurrency=1):
        now = rig.at(day0 + timedelta(minutes=1))
        summary = dispatch_once(rig.deps, now, fire_sends.delay)
        assert (summary.claimed, summary.tasks) == (200, 10)
        assert gate.entered.wait(timeout=30)  # the worker is busy with the first batch...
        waiting = _settled_length(broker, queue_key)
        assert waiting >= 7  # ...and the others wait in Redis (one may be prefetched)
        broker.flushdb()
        assert broker.llen(queue_key) == 0
        gate.released.set()

        # The batches the worker held finish; the flushed ones stay claimed, not sent.
        celery_rig.wait_for(
            lambda: (
                rig.states().get("sending", 0) == 0
                and len(celery_rig.events.results_of(FIRE_TASK)) == 10 - waiting
            ),
            what="the batches the worker held",
        )
        states = rig.states()
        assert states == {"sent": 20 * (10 - waiting), "queued": 20 * waiting, "pending": 200}
        assert rig.twilio.count == 20 * (10 - waiting)

        # Before the timeout the lost claims are left alone; after it they go back to
        # pending and the same tick claims and publishes them again, through the flushed Redis.
        rig.at(day0 + timedelta(minutes=5))
        dispatch_due.delay()
        celery_rig.wait_for(
            lambda: len(celery_rig.events.results_of(dispatch_due.name)) == 1, what="a tick"
        )
        assert rig.states()["queued"] == 20 * waiting
        rig.at(day0 + timedelta(minutes=7))
        dispatch_due.delay()
        celery_rig.wait_settled(200)

        rig.at(day1 + timedelta(minutes=1))
        dispatch_due.delay()
        celery_rig.wait_settled(400)

    assert rig.states() == {"sent": 400}
    requests = rig.twilio.requests
    assert len(requests) == 400
    assert len({(r.to, r.body) for r in requests}) == 400
