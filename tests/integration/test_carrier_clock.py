"""The carrier's clock end to end (SPEC §4a): ValidityPeriod, expiry, pacing in the fire path.

The real twilio SDK talks to the fake Twilio server over HTTP; time is virtual
for the decisions, and the pacer's own clock is faked where waiting would be
slow.
"""

from __future__ import annotations

import bisect
import itertools
import random
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from test_web_support import AGENT_PHONE, DANA_PHONE, Web, open_web
from werkzeug.serving import make_server

from drip.domain.account import AccountSettings
from drip.domain.enums import Channel, SenderRole, SendState
from drip.domain.pacing import MAX_VALIDITY_SECONDS, Senders
from drip.services import carrier, dispatch
from drip.services.bulk import BulkFilters, plan_bulk, schedule_bulk
from drip.services.fire import fire_batch
from drip.store import claims
from drip.store import repository as repo
from drip.store.models import ScheduledSend, SendDecision
from drip.testing.fake_twilio import FakeTwilioServer
from drip.transports.pacing import GATE_MARGIN, MARGIN, LocalPacer, RedisPacer, Slot
from drip.web.app import create_app

if TYPE_CHECKING:
    from conftest import Rig

NEW_YORK_OFFSET = timedelta(hours=5)  # EST in March before the switch


def ny(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A New York wall-clock time in March 2026 (EST), as UTC."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC) + NEW_YORK_OFFSET


class FakeTime:
    """The pacer's wall clock, advanced by its own sleeps: nothing really waits."""

    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def bulk(rig: Rig, body: str = "Open house Sunday, {VisitorFirstName}!") -> int:
    plan = plan_bulk(rig.deps, body, BulkFilters(), rig.now)
    return schedule_bulk(rig.deps, plan, rig.now)


def decisions(rig: Rig) -> list[SendDecision]:
    with rig.deps.sessions() as session:
        return list(session.scalars(select(SendDecision).order_by(SendDecision.id)))


def test_validity_period_is_on_every_campaign_and_bulk_request_and_matches_the_window(
    rig: Rig,
) -> None:
    """Campaign steps at 14:00 and a bulk at 19:30 carry ValidityPeriod = seconds to 21:00 (±2 s)."""
    rig.add_campaign("one-step", [0])
    contacts = rig.add_contacts(5)
    rig.at(ny(2, 14))
    rig.enroll(contacts, "one-step")
    assert {r.outcome for r in rig.fire_due()} == {"sent"}
    rig.at(ny(2, 19, 30))
    assert bulk(rig) == 5
    assert {r.outcome for r in rig.fire_due()} == {"sent"}

    requests = rig.twilio.requests
    assert len(requests) == 10
    expected = [7 * 3600] * 5 + [90 * 60] * 5  # 14:00 -> 21:00, 19:30 -> 21:00
    for request, seconds in zip(requests, expected, strict=True):
        validity = request.param("ValidityPeriod")
        assert validity is not None, request.params
        assert abs(int(validity) - seconds) <= 2
    arrivals = rig.twilio.arrivals
    assert [a.validity for a in arrivals] == [int(r.param("ValidityPeriod") or 0) for r in requests]


def test_validity_never_exceeds_twilios_maximum_and_manual_texts_have_none(rig: Rig) -> None:
    """At 08:00 the window has 13 h left: 36,000 s is sent; a manual text has no ValidityPeriod."""
    from drip.domain.enums import MessageKind
    from drip.services.contacts import send_now

    (contact,) = rig.add_contacts(1)
    rig.at(ny(3, 8))
    bulk(rig)
    rig.fire_due()
    send_now(rig.deps, contact, MessageKind.MANUAL, "Call me back?", rig.now)

    first, manual = rig.twilio.requests
    assert first.param("ValidityPeriod") == str(MAX_VALIDITY_SECONDS)
    assert manual.param("ValidityPeriod") is None


def test_a_text_with_too_little_window_left_is_deferred_to_the_next_opening(rig: Rig) -> None:
    """At 20:59:58 a bulk text could not leave the carrier's queue in time: it waits for 08:00."""
    rig.add_contacts(1)
    rig.at(ny(2, 20, 59, 58))
    bulk(rig)

    (result,) = rig.fire_due()

    assert (result.outcome, result.code) == ("deferred", "carrier_clock")
    assert result.deferred_until == ny(3, 8)
    assert "next opening" in result.reason
    assert rig.twilio.count == 0
    rig.at(ny(3, 8))
    assert [r.outcome for r in rig.fire_due()] == ["sent"]


def paced(rig: Rig, senders: Senders, clock: FakeTime, *, frozen: bool = False) -> None:
    """Give the rig's worker an in-process pacer on a fake wall clock.

    ``frozen``: waiting does not move that clock, as when many workers reserve
    the same sender at the same instant.
    """
    pacer = LocalPacer(senders, clock=clock, sleep=(lambda _s: None) if frozen else clock.sleep)
    account = replace(AccountSettings(), senders=senders)
    rig.deps = replace(rig.deps, pacer=pacer, account=account)


def test_a_sender_over_capacity_defers_with_reason_pacing(rig: Rig) -> None:
    """15 texts of one sender at one instant, 1 segment/s, 10 s wait at most: the rest are deferred."""
    clock = FakeTime()
    paced(rig, Senders(), clock, frozen=True)
    rig.add_contacts(15)
    rig.at(ny(2, 11))
    bulk(rig)

    results = rig.fire_due()

    sent = [r for r in results if r.outcome == "sent"]
    deferred = [r for r in results if r.outcome == "deferred"]
    segments = rig.outbound()[0].segments  # the footer makes it two
    slots = int(carrier.MAX_WAIT_SECONDS // (segments * (1 + MARGIN))) + 1
    assert (len(sent), len(deferred)) == (slots, 15 - slots)
    assert {r.code for r in deferred} == {"pacing"}
    assert all(r.deferred_until and r.deferred_until > rig.now for r in deferred)
    assert all("throughput (1 segments/s" in r.reason for r in deferred)
    assert AGENT_PHONE not in " ".join(r.reason for r in deferred)  # numbers stay out of reasons
    assert rig.twilio.count == slots
    recorded = [d for d in decisions(rig) if d.outcome == "deferred"]
    assert {d.code for d in recorded} == {"pacing"}
    # Later the deferred ones go, as many at a time as the sender has room for.
    for _ in range(5):
        rig.at(rig.now + timedelta(seconds=30))
        clock.now += 30
        rig.fire_due()
    assert rig.states() == {"sent": 15}
    assert rig.twilio.count == 15


def test_the_brands_daily_cap_sends_the_rest_to_the_next_opening(rig: Rig) -> None:
    """Cap reached at 11:00: the cap frees only after the window closes, so 08:00 tomorrow."""
    paced(rig, Senders(daily_segments=2), FakeTime())
    rig.add_contacts(2)
    rig.at(ny(2, 11))
    bulk(rig)

    results = rig.fire_due()

    assert [(r.outcome, r.code) for r in results] == [
        ("sent", "F1"),
        ("deferred", "carrier_clock"),
    ]
    assert results[1].deferred_until == ny(3, 8)
    assert "daily cap of 2 segments" in results[1].reason


def test_an_unreachable_pacing_store_defers_campaign_texts_but_not_manual_ones(rig: Rig) -> None:
    """Redis down: a bulk text is deferred 60 s (pacing); a manual text still goes."""
    from drip.domain.enums import MessageKind
    from drip.services.contacts import send_now

    senders = Senders()
    down = RedisPacer(senders, "redis://127.0.0.1:1/0")  # nothing listens on port 1
    rig.deps = replace(rig.deps, pacer=down, account=replace(AccountSettings(), senders=senders))
    (contact,) = rig.add_contacts(1)
    rig.at(ny(2, 11))
    with rig.deps.sessions.begin() as session:
        claims.bulk_insert_sends(
            session,
            [
                {
                    "contact_id": contact,
                    "kind": MessageKind.BULK,
                    "channel": Channel.SMS,
                    "body": "Open house Sunday!",
                    "sender_role": SenderRole.AGENT,
                    "due_at": rig.now,
                    "created_at": rig.now,
                }
            ],
        )

    with rig.deps.sessions() as session:
        ids = claims.claim_due(session, rig.now, 10)
    (result,) = fire_batch(rig.deps, ids, rig.now)

    assert (result.outcome, result.code) == ("deferred", "pacing")
    assert result.deferred_until == rig.now + timedelta(seconds=60)
    assert "unreachable" in result.reason
    manual = send_now(rig.deps, contact, MessageKind.MANUAL, "Call me back?", rig.now)
    assert manual.outcome == "sent"


def test_dispatch_claims_no_more_than_the_sender_can_send_soon(rig: Rig) -> None:
    """100 due texts of one agent at 1 segment/s: one claim takes 30, the next only what is free."""
    paced(rig, Senders(), FakeTime())
    rig.add_contacts(100)
    rig.at(ny(2, 11))
    bulk(rig)

    first = dispatch.claim(rig.deps, rig.now)
    second = dispatch.claim(rig.deps, rig.now)

    assert len(first) == int(carrier.CLAIM_HORIZON_SECONDS)
    assert second == []  # 30 in flight fill the sender's next 30 seconds
    assert rig.states() == {"queued": 30, "pending": 70}


def test_one_claim_at_a_one_segment_sender_is_sent_without_pacing_deferrals(rig: Rig) -> None:
    """What one claim takes of a 1 seg/s sender (30 s of it) goes out, none deferred for pacing.

    The batch's worker waits for each slot in turn, so the next slot is always one
    text away, never MAX_WAIT_SECONDS: claiming CLAIM_HORIZON_SECONDS (30 s) although
    a worker waits at most 10 s for one slot puts nothing back (no row churn).
    """
    clock = FakeTime()
    paced(rig, Senders(), clock)
    rig.add_contacts(100)
    rig.at(ny(2, 11))
    bulk(rig)

    ids = dispatch.claim(rig.deps, rig.now)
    results = [
        r
        for batch in dispatch.chunks(ids, rig.deps.settings.send_batch)
        for r in fire_batch(rig.deps, batch, rig.now)
    ]

    assert len(ids) == int(carrier.CLAIM_HORIZON_SECONDS)
    assert [r for r in results if r.outcome == "deferred" and r.code == "pacing"] == []
    assert [r.outcome for r in results] == ["sent"] * len(ids)
    assert clock.now - 5_000.0 > carrier.MAX_WAIT_SECONDS  # the worker did wait past 10 s in all


def test_the_work_before_a_slot_comes_out_of_its_wait(rig: Rig) -> None:
    """A 1.2 s slot is an instant, not a sleep: after a 0.2 s commit, 1.0 s is left to wait."""
    from drip.domain.policy import FooterRule, Send

    clock = FakeTime()
    slept: list[float] = []
    pacer = LocalPacer(Senders(), clock=clock, sleep=slept.append)  # 1 segment/s
    rig.deps = replace(rig.deps, pacer=pacer, account=replace(AccountSettings(), senders=Senders()))
    now = ny(2, 11)
    decision = Send(False, FooterRule.F1_INITIAL, "test", window_closes_at=ny(2, 21))

    def clear() -> carrier.Cleared:
        cleared = carrier.clear_to_send(
            rig.deps,
            AGENT_PHONE,
            1,
            decision,
            now,
            catching_up=False,
            reopen=lambda _at: decision,
            before_wait=lambda _seconds: time.sleep(0.2),
        )
        assert isinstance(cleared, carrier.Cleared)
        return cleared

    first = clear()  # the first slot is now: nothing to wait for
    assert first.slot - time.monotonic() <= 0
    second = clear()
    left = second.slot - time.monotonic()
    wait = 1 + MARGIN
    assert slept == []  # the caller waits, right before its provider call
    assert wait - 0.2 - 0.1 < left <= wait - 0.2


class ClockReadings:
    """A pacer's wall clock that keeps its latest reading: a slot's instant is it plus the wait.

    Reservations are judged on those instants, not on the waits: a wait shrinks by
    however long the test (on a loaded machine) took to ask again.
    """

    def __init__(self) -> None:
        self.latest = 0.0

    def __call__(self) -> float:
        self.latest = time.time()
        return self.latest


def slot_instants(clock: ClockReadings, pacers: list[RedisPacer]) -> tuple[float, list[float]]:
    """Reserve one segment of AGENT_PHONE with each pacer in turn: when the test asked, and
    each slot's instant on the pacers' clock."""
    asked = time.time()
    instants = []
    for pacer in pacers:
        slot = pacer.reserve(AGENT_PHONE, 1, max_wait=5)
        assert isinstance(slot, Slot)
        instants.append(clock.latest + slot.wait)
    return asked, instants


def assert_a_slot_apart(asked: float, instants: list[float], step: float) -> None:
    """The first slot was the Redis server's "now" (between the asking and its answer), and
    each later one is ``step`` after the one before."""
    assert asked - 0.02 <= instants[1] - step <= instants[0] + 0.02
    gaps = [b - a for a, b in itertools.pairwise(instants[1:])]
    assert gaps == pytest.approx([step] * len(gaps), abs=0.02)


def test_two_redis_pacers_share_one_senders_slots(redis_url: str) -> None:
    """Two processes' pacers on one Redis: consecutive reservations are a slot apart, not two."""
    senders = Senders(rates={AGENT_PHONE: 5})
    clock = ClockReadings()
    one = RedisPacer(senders, redis_url, prefix="test-pacing:", clock=clock)
    two = RedisPacer(senders, redis_url, prefix="test-pacing:", clock=clock)
    asked, instants = slot_instants(clock, [one, two, one, two])
    assert_a_slot_apart(asked, instants, (1 + MARGIN) / 5)
    assert not isinstance(two.reserve(AGENT_PHONE, 30, max_wait=0.1), Slot)


def _counting_calls(pacer: RedisPacer) -> list[int]:
    """Count the pacer's Redis reservations (one Lua call each); the list's length is the count."""
    calls: list[int] = []
    script = pacer._script

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return script(*args, **kwargs)

    pacer._script = counted
    return calls


def _send_paced(pacers: list[RedisPacer], texts: int, pause: Callable[[], float]) -> list[float]:
    """Each pacer's thread sends ``texts`` texts of AGENT_PHONE as the fire path does (reserve,
    wait for the slot, send), ``pause()`` s of provider call each; the instants they left."""
    sent: list[float] = []
    lock = threading.Lock()

    def worker(pacer: RedisPacer) -> None:
        for _ in range(texts):
            slot = pacer.reserve(AGENT_PHONE, 1, max_wait=5)
            assert isinstance(slot, Slot)
            pacer.sleep(slot.wait)
            with lock:
                sent.append(time.time())
            time.sleep(pause())

    threads = [threading.Thread(target=worker, args=(p,)) for p in pacers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(sent)


def test_a_fast_senders_texts_share_a_few_redis_calls(redis_url: str) -> None:
    """A sender that never binds: two pacers' 200 texts back to back take a few Redis calls.

    Back to back, not with a pause per text: a lease holds 25 ms of slots, so with a
    pause the count of calls would measure how long the machine took to send them.
    """
    senders = Senders(rates={AGENT_PHONE: 10_000})
    pacers = [RedisPacer(senders, redis_url, prefix="test-lease:") for _ in range(2)]
    calls = [_counting_calls(p) for p in pacers]
    sent = _send_paced(pacers, 100, lambda: 0.0)
    assert len(sent) == 200
    assert sum(len(c) for c in calls) <= 50  # one call per text without leases


def test_leased_and_single_slots_together_keep_a_sender_under_its_rate(redis_url: str) -> None:
    """Two pacers sending about as fast as 400 segments/s allow: never more than 400 in a second."""
    rate = 400
    senders = Senders(rates={AGENT_PHONE: rate})
    pacers = [RedisPacer(senders, redis_url, prefix="test-lease-rate:") for _ in range(2)]
    calls = [_counting_calls(p) for p in pacers]
    unit = (1 + MARGIN) / rate
    randoms = random.Random(7)
    sent = _send_paced(pacers, 450, lambda: randoms.uniform(0, 4 * unit))
    most = max(bisect.bisect_left(sent, t + 1.0) - i for i, t in enumerate(sent))
    assert len(sent) == 900
    assert most <= rate
    assert sum(len(c) for c in calls) < 900  # some texts did spend leased slots


def test_a_slow_sender_reserves_one_slot_per_text(redis_url: str) -> None:
    """At 5 segments/s nothing is leased: each text is its own Redis call, a slot apart."""
    clock = ClockReadings()
    senders = Senders(rates={AGENT_PHONE: 5})
    pacer = RedisPacer(senders, redis_url, prefix="test-lease-slow:", clock=clock)
    calls = _counting_calls(pacer)
    asked, instants = slot_instants(clock, [pacer] * 4)
    assert len(calls) == 4
    assert_a_slot_apart(asked, instants, (1 + MARGIN) / 5)


def test_a_late_text_keeps_the_next_one_a_gate_apart_across_processes(redis_url: str) -> None:
    """Two pacers (two workers) on one Redis: the first text leaves 0.3 s after its slot, the
    second on its slot; they reach the provider a gate's spacing apart, not bunched."""
    senders = Senders(rates={AGENT_PHONE: 5})
    pacers = [RedisPacer(senders, redis_url, prefix="test-gate:") for _ in range(2)]
    left: list[float] = []
    lock = threading.Lock()

    def text(pacer: RedisPacer, late: float) -> None:
        slot = pacer.reserve(AGENT_PHONE, 1, max_wait=5)
        assert isinstance(slot, Slot)
        at = time.monotonic() + slot.wait
        cleared = carrier.Cleared(None, at + late, AGENT_PHONE, 1)
        carrier.depart(pacer, cleared)
        with lock:
            left.append(time.monotonic())

    first = threading.Thread(target=text, args=(pacers[0], 0.3))
    first.start()
    time.sleep(0.05)  # the first reserves first
    second = threading.Thread(target=text, args=(pacers[1], 0.0))
    second.start()
    first.join()
    second.join()
    a, b = sorted(left)
    assert b - a >= (1 + GATE_MARGIN) / 5 - 0.02
    assert pacers[0].depart(AGENT_PHONE, 1) > 0  # the gate is shared: the last text just left


# --------------------------------------------------------------------------- expiry (30036)


def test_an_expired_text_comes_back_for_the_next_opening_once(db_url: str, tmp_path: Path) -> None:
    """30036 through the real SDK and a signed callback: pending, sent again at 08:00; twice is final."""
    with FakeTwilioServer() as fake:
        probe = make_server("127.0.0.1", 0, lambda e, s: [])
        port = probe.server_port
        probe.server_close()
        public = f"http://127.0.0.1:{port}"
        with open_web(
            db_url,
            tmp_path,
            sms=fake.transport(),
            public_url=public,
            twilio_account_sid=fake.account_sid,
            twilio_auth_token=fake.auth_token,
            start=ny(2, 20),
        ) as web:
            server = make_server("127.0.0.1", port, create_app(web.deps), threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                dana = web.add_dana()
                plan = plan_bulk(web.deps, "New listing near you!", BulkFilters(), web.now)
                schedule_bulk(web.deps, plan, web.now)
                assert web.tick().counts() == {"sent": 1}
                first = fake.requests[-1]
                assert first.to == DANA_PHONE
                assert first.param("ValidityPeriod") == "3600"  # 20:00 -> 21:00

                web.later(hours=1, minutes=1)  # the carrier dropped it at 21:00
                assert first.sid is not None
                assert fake.expire(first.sid).response_status == 200
                send = bulk_send(web, dana)
                assert (send.state, send.decision_code) == (SendState.PENDING, "carrier_expired")

                night = web.tick()
                assert [(r.outcome, r.code) for r in night.results] == [("deferred", "window")]
                assert night.results[0].deferred_until == ny(3, 8)
                web.clock.set(ny(3, 8))
                assert web.tick().counts() == {"sent": 1}
                second = fake.requests[-1]
                assert second.sid != first.sid
                assert second.param("ValidityPeriod") == str(MAX_VALIDITY_SECONDS)

                assert second.sid is not None
                assert fake.expire(second.sid).response_status == 200
                final = bulk_send(web, dana)
                assert (final.state, final.decision_code) == (
                    SendState.FAILED,
                    "carrier_expired_again",
                )
                assert web.tick().counts() == {}
            finally:
                server.shutdown()
                thread.join(timeout=5)
        with web.deps.sessions() as session:
            trail = [
                (d.outcome, d.code)
                for d in repo.decisions_of(session, send.id)
                if d.code.startswith("carrier")
            ]
        assert trail == [
            ("rescheduled", "carrier_expired"),
            ("failed", "carrier_expired_again"),
        ]


def bulk_send(web: Web, contact_id: int) -> ScheduledSend:
    with web.deps.sessions() as session:
        return session.scalars(
            select(ScheduledSend).where(
                ScheduledSend.contact_id == contact_id, ScheduledSend.kind == "bulk"
            )
        ).one()


def test_the_fake_server_refuses_a_validity_outside_twilios_range(
    fake_twilio: FakeTwilioServer,
) -> None:
    """ValidityPeriod 0 or 36,001 is Twilio's 400 / 21624, as the real API answers."""
    from drip.transports.base import OutboundSms, SmsSendError

    transport = fake_twilio.transport(max_retries=0)
    for bad in (0, 36_001):
        with pytest.raises(SmsSendError) as info:
            transport.send_sms(OutboundSms(AGENT_PHONE, DANA_PHONE, "Hi", None, bad))
        assert info.value.code == 21624
    ok = transport.send_sms(OutboundSms(AGENT_PHONE, DANA_PHONE, "Hi", None, 36_000))
    assert ok.sid.startswith("SM")
    assert [a.validity for a in fake_twilio.arrivals] == [36_000]


def test_the_fake_carrier_queue_expires_what_waits_past_its_validity(
    fake_twilio: FakeTwilioServer,
) -> None:
    """Ten texts at once from a 1 segment/s number with 5 s validity: the last four expire."""
    from drip.transports.base import OutboundSms

    transport = fake_twilio.transport()
    sids = [
        transport.send_sms(OutboundSms(AGENT_PHONE, f"+1617555{i:04d}", "Hi", None, 5)).sid
        for i in range(10)
    ]
    expired = fake_twilio.queue_expiries(segments_per_second=1.0)
    # Request times differ by milliseconds: the 7th text's turn is ~6 s after its arrival.
    assert expired == sids[6:]
