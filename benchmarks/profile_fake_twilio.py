"""CPU cost of the fake Twilio server per Messages API create request, and its profile.

    .venv/bin/python benchmarks/profile_fake_twilio.py [N] [--clients K] [--profile]

The server runs in this process as the firing benchmark runs it
(``record_requests=False``, no status callbacks); ``K`` client processes
(default 2, like the benchmark's pool) each send ``N / K`` texts with drip's
real :class:`~drip.transports.twilio_sms.TwilioSmsTransport`, one at a time
over a keep-alive connection. Prints this process's CPU milliseconds per
request (the clients are other processes, so none of theirs is counted);
with ``--profile``, every handler thread runs under cProfile with the
thread's CPU clock as timer and the merged profile is printed.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import pstats
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drip.testing import fake_twilio
from drip.testing.fake_twilio import httpd

BODY = (
    "Hi Sam, it's Alex from Bayside Realty. Just checking in: are you still looking "
    "at homes around Oakland this month? Reply STOP to opt out."
)


def _client(base_url: str, n: int, offset: int) -> None:
    from drip.transports.base import OutboundSms
    from drip.transports.twilio_sms import TwilioSmsTransport

    transport = TwilioSmsTransport(
        fake_twilio.DEFAULT_ACCOUNT_SID, fake_twilio.DEFAULT_AUTH_TOKEN, base_url=base_url
    )
    for i in range(n):
        msg = OutboundSms(
            "+15005550006",
            f"+1415555{(offset + i) % 10_000:04d}",
            BODY,
            status_callback="https://drip.example/twilio/status",
        )
        transport.send_sms(msg)


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _run(server: fake_twilio.FakeTwilioServer, n: int, clients: int) -> tuple[float, float, float]:
    """(server user and system CPU seconds, wall seconds) of ``n`` creates from ``clients``."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_client, args=(server.base_url, n // clients, k * 100_000))
        for k in range(clients)
    ]
    cpu0, t0 = _cpu(), time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    cpu1 = _cpu()
    return cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], time.perf_counter() - t0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    profiles: list[cProfile.Profile] = []
    if args.profile:
        handle = httpd._Handler.handle

        def profiled(self: Any) -> None:
            prof = cProfile.Profile(time.thread_time)
            profiles.append(prof)
            prof.runcall(handle, self)

        httpd._Handler.handle = profiled  # type: ignore[method-assign]
    with fake_twilio.FakeTwilioServer(record_requests=False) as server:
        _run(server, 200, args.clients)  # warm-up: imports, phonenumbers metadata
        profiles.clear()
        # The spawned clients' start-up (imports) costs this process nothing.
        user, system, wall = _run(server, args.n, args.clients)
        while threading.active_count() > 2:  # handler threads finishing their last close
            time.sleep(0.01)
        print(
            f"fake Twilio server: {args.n} creates from {args.clients} client processes, "
            f"{(user + system) / args.n * 1000:.3f} ms CPU per request (user "
            f"{user / args.n * 1000:.3f}, system {system / args.n * 1000:.3f})"
            f"{' profiled' if args.profile else ''}, {wall:.2f} s wall"
        )
    if profiles:
        stats = pstats.Stats(profiles[0])
        for prof in profiles[1:]:
            stats.add(prof)
        stats.sort_stats("cumulative").print_stats(35)
        stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
