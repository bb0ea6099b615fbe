"""Process CPU per send of the embedded fire path, pacing off and on (never binding).

    .venv/bin/python benchmarks/profile_pacing.py [ROUNDS] [PER_ROUND] [--profile OUT]

The same rounds as ``bench_pacing.overhead`` (``dispatch.tick`` on a scratch
PostgreSQL database, the fake Twilio server in this process, ``NullPacer``
against a ``RedisPacer`` at 10,000 segments/s), but timed with the process
CPU clock, which other load on a shared machine does not inflate the way it
does wall time. Prints the median CPU milliseconds per send of each mode (the
process's, and the firing thread's alone), their ratio (off / on: comparable
to ``pacing_overhead``), how many Redis reservations (Lua calls) a paced send
took on average and the wall time spent inside the pacer per paced send.
With ``--profile`` the "on" rounds (``--profile-mode off``: the "off" ones)
run under cProfile (CPU timer); the profile is written to OUT and its raw
stats to OUT with the suffix ``.prof``, for ``pstats``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import SIZES, Context, median, scratch_context, seed_due_bulk, zones_in_window


def _rounds(
    ctx: Context,
    rounds: int,
    per_round: int,
    profile: cProfile.Profile | None,
    profile_mode: str,
) -> Any:
    from drip.domain.pacing import Senders
    from drip.services import dispatch
    from drip.testing.fake_twilio import FakeTwilioServer
    from drip.transports.pacing import NullPacer, Pacer, RedisPacer

    unbound = Senders(default_rate=10_000.0)
    on_pacer = RedisPacer(unbound, ctx.redis_url, prefix="profile-pacing:")
    script = on_pacer._script
    calls = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return script(*args, **kwargs)

    on_pacer._script = counted
    reserve = on_pacer.reserve
    in_reserve = [0.0]

    def timed(sender: str, segments: int, *, max_wait: float) -> Any:
        started = time.perf_counter()
        try:
            return reserve(sender, segments, max_wait=max_wait)
        finally:
            in_reserve[0] += time.perf_counter() - started

    on_pacer.reserve = timed  # type: ignore[method-assign]
    zones = [(zone, area, None) for zone, area in zones_in_window(ctx.now)]
    cpu: dict[str, list[float]] = {"on": [], "off": [], "on_thread": [], "off_thread": []}
    with FakeTwilioServer(record_requests=False) as fake:
        transport = fake.transport()
        try:
            for r in range(-1, rounds):
                mode = "off" if r % 4 in (0, 3) else "on"
                pacer: Pacer = on_pacer if mode == "on" else NullPacer()
                account = replace(ctx.deps.account, senders=unbound if mode == "on" else None)
                deps = replace(ctx.deps, sms=transport, pacer=pacer, account=account)
                now, _ = seed_due_bulk(ctx, deps, per_round, zones, 960_000 + (r + 1) * per_round)
                profiling = profile is not None and mode == profile_mode and r >= 0
                cpu0 = time.process_time()
                thread0 = time.thread_time()
                if profiling:
                    profile.enable()
                summary = dispatch.tick(deps, now)
                if profiling:
                    profile.disable()
                spent = time.process_time() - cpu0
                spent_thread = time.thread_time() - thread0
                sent = summary.counts().get("sent", 0)
                if sent != per_round:
                    raise RuntimeError(f"round {r}: {summary.counts()}")
                if r >= 0:
                    cpu[mode].append(spent / sent * 1000)
                    cpu[f"{mode}_thread"].append(spent_thread / sent * 1000)
        finally:
            transport.close()
    paced_sends = per_round * len(cpu["on"])  # the warm-up round is off
    cpu["redis_calls_per_send"] = [calls[0] / paced_sends]
    cpu["reserve_wall_ms_per_send"] = [in_reserve[0] / paced_sends * 1000]
    return cpu


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rounds", nargs="?", type=int, default=12)
    parser.add_argument("per_round", nargs="?", type=int, default=300)
    parser.add_argument("--profile", type=Path, help="cProfile the 'on' rounds into this file")
    parser.add_argument("--profile-mode", choices=("on", "off"), default="on", help="or these")
    args = parser.parse_args(argv)
    from drip.logging import configure_logging

    configure_logging("json", "WARNING")
    profile = cProfile.Profile(time.process_time) if args.profile else None
    with scratch_context(SIZES["quick"]) as ctx:
        cpu = _rounds(ctx, args.rounds, args.per_round, profile, args.profile_mode)
    on, off = median(cpu["on"]), median(cpu["off"])
    print(f"CPU ms/send, pacing off: {off:.3f} (rounds {[round(x, 3) for x in cpu['off']]})")
    print(f"CPU ms/send, pacing on:  {on:.3f} (rounds {[round(x, 3) for x in cpu['on']]})")
    print(f"off / on (CPU-time analogue of pacing_overhead): {off / on:.3f}")
    on_t, off_t = median(cpu["on_thread"]), median(cpu["off_thread"])
    print(
        f"the firing thread alone (not the fake Twilio server's): off {off_t:.3f} / "
        f"on {on_t:.3f} ms/send = {off_t / on_t:.3f}"
    )
    print(
        f"Redis reservations per paced send: {cpu['redis_calls_per_send'][0]:.3f}; wall time "
        f"inside the pacer per paced send: {cpu['reserve_wall_ms_per_send'][0]:.3f} ms"
    )
    if profile is not None:
        profile.dump_stats(args.profile.with_suffix(".prof"))
        with args.profile.open("w") as out:
            stats = pstats.Stats(profile, stream=out)
            stats.sort_stats("cumulative").print_stats(60)
            stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
