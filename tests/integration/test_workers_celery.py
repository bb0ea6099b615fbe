"""Real Celery workers on real Redis and PostgreSQL fire every due send exactly once."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from drip.domain.campaign import DEFAULT_FOOTER
from drip.store.migrate import upgrade
from workers.celery_app import FIRE_TASK
from workers.tasks import DispatchSummary, dispatch_due, dispatch_once, fire_sends

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import CeleryCommand, CeleryRig


@pytest.fixture
def rig_db_url(pg_url: str) -> str:
    """A fresh, migrated PostgreSQL database: dropping it is faster than deleting 60,000 rows."""
    upgrade(pg_url)
    return pg_url


@pytest.mark.slow
def test_a_worker_fires_each_step_of_1000_enrollments_exactly_once(celery_rig: CeleryRig) -> None:
    """1,000 contacts on a 5-step campaign: beat's task fires all 5,000 sends, none twice."""
    rig = celery_rig.rig
    rig.add_campaign("five-steps", [0, 3, 10, 40, 75])
    contacts = rig.add_contacts(1000)
    assert rig.enroll(contacts, "five-steps") == 5000
    due = rig.due_times()
    assert len(due) == 5  # one due time per step: every contact is in New York

    started = time.monotonic()
    timings = []
    with celery_rig.worker(concurrency=2):
        for step, at in enumerate(due, start=1):
            rig.at(at + timedelta(minutes=1))
            dispatch_due.delay()
            timings.append(celery_rig.wait_settled(1000 * step, timeout=90))
            assert rig.twilio.count == 1000 * step  # nothing fires before its step is due
    elapsed = time.monotonic() - started
    print(f"1,000 x 5 steps: {elapsed:.1f}s ({', '.join(f'{t:.1f}' for t in timings)})")

    assert rig.states() == {"sent": 5000}
    requests = rig.twilio.requests
    assert len(requests) == 5000
    pairs = Counter((r.to, r.body) for r in requests)
    assert len(pairs) == 5000, pairs.most_common(3)
    assert {r.to for r in requests} == {rig.phone_of(i) for i in range(1000)}
    messages = rig.outbound()
    assert len({m.provider_sid for m in messages}) == 5000
    assert {m.provider_sid for m in messages} == {r.sid for r in requests}
    # SPEC §2 at fire time: day 0 F1, days 3 and 10 F4, day 40 and day 75 F3.
    with_footer = Counter(
        r.body.split(":")[0] for r in requests if DEFAULT_FOOTER in (r.body or "")
    )
    assert with_footer == {"Step 1": 1000, "Step 4": 1000, "Step 5": 1000}


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_workers_and_two_dispatchers_send_10000_due_sends_exactly_once(
    make_celery_rig: Callable[..., CeleryRig],
    celery_command: Callable[..., CeleryCommand],
) -> None:
    """Two dispatchers claim at once, two worker processes fire: 10,000 distinct requests."""
    real_now = datetime.now(UTC)
    celery_rig = make_celery_rig(start=real_now, key_prefix=False)
    rig = celery_rig.rig
    rig.add_campaign("one-step", [0])
    contacts = rig.add_contacts(10_000, timezone=rig.midday_zone(real_now))
    assert rig.enroll(contacts, "one-step") == 10_000

    # INFO would log every send twice over (drip and Celery): measurable CPU on 2 cores.
    env = celery_rig.env(DRIP_LOG_LEVEL="WARNING")
    names = [f"worker-{x}@drip-test-{secrets.token_hex(3)}" for x in "ab"]
    options = ["-Q", "send", "-c", "2", "--without-mingle", "--without-gossip"]
    workers = [celery_command(n.split("@")[0], ["worker", "-n", n, *options], env) for n in names]
    control = celery_rig.app.control
    celery_rig.wait_for(
        lambda: len(control.ping(destination=names, timeout=0.5)) == 2,
        timeout=60,
        what="both worker processes to answer a ping",
    )

    # Each dispatcher may claim 10 x 500 at most, so both must claim, and at the same time.
    claimed: dict[str, list[int]] = {"one": [], "two": []}
    summaries: list[DispatchSummary] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)
    now = datetime.now(UTC)

    def dispatcher(name: str) -> None:
        def publish(ids: list[int]) -> None:
            claimed[name].extend(ids)
            fire_sends.delay(ids)

        try:
            barrier.wait(timeout=10)
            summaries.append(dispatch_once(rig.deps, now, publish, max_rounds=10))
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=dispatcher, args=(name,)) for name in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    celery_rig.wait_settled(10_000, timeout=420)
    elapsed = time.monotonic() - started
    print(f"10,000 sends, 2 dispatchers + 2 worker processes: {elapsed:.1f}s")

    assert [s.claimed for s in summaries] == [5_000, 5_000]
    assert not set(claimed["one"]) & set(claimed["two"])  # no row claimed twice
    assert sorted(claimed["one"] + claimed["two"]) == rig.send_ids()
    assert rig.states() == {"sent": 10_000}
    assert rig.twilio.count == 10_000
    requests = rig.twilio.requests
    assert len({(r.to, r.body) for r in requests}) == 10_000
    assert len({r.to for r in requests}) == 10_000
    stats = control.inspect(destination=names, timeout=5).stats() or {}
    fired = {name: stats[name]["total"].get(FIRE_TASK, 0) for name in names}
    assert all(n > 0 for n in fired.values()), fired  # both processes fired batches
    assert sum(fired.values()) == 10_000 // 50
    for w in workers:
        assert w.stop() == 0
