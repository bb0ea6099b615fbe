"""6. Pacing: how exactly a sender's rate holds at the carrier, and what pacing costs.

``pacing_accuracy``: several threads send texts of a few sender numbers as
the fire path does (reserve the number's slot in Redis, wait for it, hand
the text to the real twilio SDK), against the fake Twilio server in a
process of its own, which records each request's arrival. The figure is the highest
count of one number's requests in any one-second span, divided by its
configured segments per second: at most 1.0 means the carrier never sees a
number faster than its rate.

``pacing_overhead``: the embedded fire path (``dispatch.tick``: claim, gather,
decide, render, send over HTTP with the SDK, record) on the scratch
PostgreSQL database, rounds alternating pacing off (``NullPacer``) and on
(``RedisPacer`` with a rate so high that it never binds, so what is measured
is the reservation round trips and the paced claim's queries). The figure is
sends/s with pacing on divided by sends/s with it off; goal >= 0.9.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from harness import Context, say, seed_due_bulk, tick_rounds_on_off, zones_in_window

#: (senders, texts per sender, rate in segments/s, threads, fire rounds, sends per round)
PLAN = {
    "smoke": (2, 20, 10.0, 3, 2, 100),
    "quick": (2, 60, 10.0, 4, 8, 300),
    "full": (3, 200, 10.0, 6, 12, 1000),
}
PHONE_OFFSET = 950_000  # seeded phone numbers clear of the other benchmarks'


def _most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def accuracy(ctx: Context) -> dict[str, Any]:
    from drip.domain.pacing import Senders
    from drip.testing.fake_twilio import FakeTwilioProcess
    from drip.transports.base import OutboundSms
    from drip.transports.pacing import RedisPacer, Slot

    n_senders, per_sender, sender_rate, threads, _, _ = PLAN[ctx.sizes.mode]
    numbers = [f"+1617555{9000 + i:04d}" for i in range(n_senders)]
    senders = Senders(rates=dict.fromkeys(numbers, sender_rate))
    pacer = RedisPacer(senders, ctx.redis_url, prefix="bench-pacing:")
    work = [(n, i) for i in range(per_sender) for n in numbers]
    lock = threading.Lock()
    # In its own process: its arrival stamps must not wait for this process's GIL.
    with FakeTwilioProcess() as fake:
        transport = fake.transport()

        def worker() -> None:
            while True:
                with lock:
                    if not work:
                        return
                    number, i = work.pop(0)
                while True:
                    slot = pacer.reserve(number, 1, max_wait=2.0)
                    if isinstance(slot, Slot):
                        break
                    time.sleep(min(slot.retry_after, 0.5))
                pacer.sleep(slot.wait)
                transport.send_sms(OutboundSms(number, f"+1312555{i:04d}", "Bench text", None, 600))

        started = time.perf_counter()
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
        arrivals = fake.arrivals
        transport.close()
    peaks = {n: _most_in_one_second([a.at for a in arrivals if a.from_ == n]) for n in numbers}
    worst = max(peaks.values())
    say(f"pacing accuracy: {len(arrivals)} texts in {elapsed:.1f}s, peaks per second {peaks}")
    return {
        "pacing_accuracy": worst / sender_rate,
        "pacing_texts": len(arrivals),
        "pacing_rate_per_sender": sender_rate,
        "pacing_peak_per_second": worst,
    }


def overhead(ctx: Context) -> dict[str, Any]:
    from drip.domain.pacing import Senders
    from drip.testing.fake_twilio import FakeTwilioServer
    from drip.transports.pacing import NullPacer, RedisPacer

    _, _, _, _, rounds, per_round = PLAN[ctx.sizes.mode]
    unbound = Senders(default_rate=10_000.0)
    on_pacer = RedisPacer(unbound, ctx.redis_url, prefix="bench-pacing-overhead:")
    off_pacer = NullPacer()
    zones = [(zone, area, None) for zone, area in zones_in_window(ctx.now)]
    with FakeTwilioServer(record_requests=False) as fake:
        transport = fake.transport()

        def prepare(on: bool, r: int) -> tuple[Any, datetime]:
            account = replace(ctx.deps.account, senders=unbound if on else None)
            pacer = on_pacer if on else off_pacer
            deps = replace(ctx.deps, sms=transport, pacer=pacer, account=account)
            offset = PHONE_OFFSET + (r + 1) * per_round
            return deps, seed_due_bulk(ctx, deps, per_round, zones, offset)[0]

        try:
            on, off = tick_rounds_on_off("pacing overhead", rounds, per_round, prepare)
        finally:
            transport.close()
    return {
        "pacing_overhead": on / off,
        "pacing_on_sends_per_s": on,
        "pacing_off_sends_per_s": off,
    }


def run(ctx: Context) -> dict[str, Any]:
    return {**accuracy(ctx), **overhead(ctx)}
