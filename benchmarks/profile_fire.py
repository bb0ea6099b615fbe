"""CPU profile of the fire path in process (no Celery): claim and fire N due campaign sends.

    .venv/bin/python benchmarks/profile_fire.py [N] [OUT]   # default 600, stdout

A scratch PostgreSQL database (``DRIP_BENCH_DATABASE_URL``, as ``run.py``),
the fake Twilio server in a process of its own and the real twilio SDK: N
consenting contacts with one campaign step due, claimed and fired with
:func:`drip.services.dispatch.fire` in batches of 50 under cProfile with
the process CPU clock as timer, then N more unprofiled. Prints the CPU
milliseconds per send (profiled and not) and the top of the profile. Used
for ``benchmarks/profiles/fire-*.txt``; ``run.py`` samples the real worker
pool with ``DRIP_BENCH_PYSPY``.

By default the fire path runs as the benchmark's ``Deps`` have it: logging
at WARNING (``drip_deps`` configures it so, whatever ``DRIP_LOG_LEVEL``
says), so no ``send_decided`` line is rendered, and pacing in process. With
``--as-worker`` it runs as a worker of ``run.py`` does: every decision
rendered as JSON at INFO into a file (the worker's log) and each send's
slot reserved in Redis (a scratch database, as ``run.py`` takes); the two
together cost about 0.2 ms of CPU per send.

With ``--callgrind``, under ``valgrind --tool=callgrind --instr-atstart=no``,
instructions are counted only while the N profiled sends fire (no cProfile;
a two-line helper built with the system's C compiler and ``valgrind/callgrind.h``
switches the counting on and off), which repeats within a fraction of a
percent on a busy machine where CPU times do not::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.%p \
        .venv/bin/python benchmarks/profile_fire.py --as-worker --callgrind 200

Valgrind makes a send about 50 times slower, so the batch's time-driven work
(contacts re-read every second, a record committed alone after 50 ms) is
switched off there, or it would run far more often than in a worker.
"""

from __future__ import annotations

import argparse
import cProfile
import ctypes
import io
import logging
import os
import pstats
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fire
from harness import SIZES, fake_twilio_deps, scratch_context


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=600, help="sends profiled (600)")
    parser.add_argument("out", nargs="?", type=Path, help="write the profile here, not stdout")
    parser.add_argument(
        "--as-worker", action="store_true", help="decisions logged at INFO, pacing in Redis"
    )
    parser.add_argument(
        "--callgrind", action="store_true", help="count instructions under callgrind instead"
    )
    args = parser.parse_args(argv)
    n, out = args.n, args.out
    from drip.logging import configure_logging
    from drip.services.dispatch import chunks, claim
    from drip.services.dispatch import fire as fire_batch
    from drip.services.fire import gather, record
    from drip.transports.pacing import RedisPacer

    if args.callgrind:
        # What a send does, not how often the clock says "a second has passed".
        gather.REFRESH_AFTER_SECONDS = 1e9
        record.CARRY_MAX_SECONDS = 1e9

    configure_logging("json", os.environ.get("DRIP_LOG_LEVEL", "INFO"))
    with (
        scratch_context(SIZES["quick"], redis=args.as_worker) as ctx,
        fake_twilio_deps(ctx) as sending,
    ):
        wd, now, deps = ctx.workdir, ctx.now, sending
        if ctx.redis is not None:
            # What a worker of run.py has: its log is a file, its pacer Redis.
            log_file = (wd / "fire.log").open("w")
            configure_logging("json", "INFO", stream=log_file)
            # As workers.celery_app's logging set-up: the SDK's request lines are muted.
            logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
            deps = replace(deps, pacer=RedisPacer(deps.account.senders, ctx.redis_url))

        counter = _callgrind_switch(wd) if args.callgrind else None

        def fire(k: int, offset: int, profile: cProfile.Profile | None) -> float:
            bench_fire._due_sends(ctx, k, datetime.now(now.tzinfo), offset)
            at = datetime.now(now.tzinfo)
            ids = claim(deps, at, k)
            cpu0 = time.process_time()
            if profile is not None:
                if counter is None:
                    profile.enable()
                else:
                    counter.cg_start()
            results = [r for batch in chunks(ids, 50) for r in fire_batch(deps, batch, at)]
            if profile is not None:
                if counter is None:
                    profile.disable()
                else:
                    counter.cg_stop()
            cpu = time.process_time() - cpu0
            sent = sum(r.outcome == "sent" for r in results)
            if sent != k:
                raise RuntimeError(f"expected {k} sent, got {sent}")
            return cpu

        fire(100, 0, None)  # warm-up: connections, caches
        profile = cProfile.Profile(time.process_time)
        profiled = fire(n, 1_000, profile)
        plain = fire(n, 1_000 + n, None)
    if args.callgrind:
        print(f"{n} sends counted (callgrind's 'Collected' total / {n} = instructions per send)")
        return 0
    text = io.StringIO()
    print(
        f"fire path in process{' as a worker' if args.as_worker else ''}, {n} sends: "
        f"CPU {profiled / n * 1000:.3f} ms/send profiled, "
        f"{plain / n * 1000:.3f} ms/send unprofiled",
        file=text,
    )
    stats = pstats.Stats(profile, stream=text)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    if out is None:
        print(text.getvalue())
    else:
        out.write_text(text.getvalue())
    return 0


_SWITCH_C = """#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


def _callgrind_switch(wd: Path) -> ctypes.CDLL:
    """Callgrind's start/stop client requests, callable from Python (no-ops outside valgrind)."""
    source, lib = wd / "cg_switch.c", wd / "cg_switch.so"
    source.write_text(_SWITCH_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
    return ctypes.CDLL(str(lib))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
