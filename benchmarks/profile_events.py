"""Where ``drip events ingest`` spends its time: the benchmark's events, in process, under cProfile.

    .venv/bin/python benchmarks/profile_events.py [N] [--top K]   # default 20,000 events

A scratch database (``DRIP_BENCH_DATABASE_URL``, as ``run.py``) with N / 5
contacts and the 20 trigger campaigns of ``bench_events``; the N
``lead.updated`` events written to a JSON-lines file and ingested by the
``drip events ingest`` command in this process (``standalone_mode=False``).
Prints the wall time, events/s, this process's CPU time, the CPU its database
connections' server processes spent (when the server runs on this machine) and
the top K functions
(``--cpu``: timed by CPU, so that waits on the database are left out) by cumulative and by
own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_events
from harness import SIZES, scratch_context, seed_contacts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=20_000, help="events (20,000)")
    parser.add_argument("--top", type=int, default=30, help="functions shown (30)")
    parser.add_argument(
        "--statements", action="store_true", help="print the wall time per SQL statement"
    )
    parser.add_argument("--plain", action="store_true", help="no profiler: the times only")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="store each batch in this process, then apply it; print the time of each step",
    )
    parser.add_argument(
        "--cpu", action="store_true", help="time this process's CPU, not the wall clock"
    )
    args = parser.parse_args(argv)
    backends = _Backends()
    with scratch_context(SIZES["quick"], redis=False) as ctx:
        seed_contacts(ctx.url, max(args.n // 5, 1), ctx.now, agent_id=ctx.agent_id)
        bench_events._sync_campaigns(ctx)
        events = bench_events._events("prof", bench_events._phones(ctx.url), args.n, ctx)
        path = ctx.workdir / "events.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        os.environ["DRIP_DATABASE_URL"] = ctx.url
        os.environ["DRIP_HOME"] = str(ctx.workdir / "drip-home")
        os.environ["DRIP_LOG_LEVEL"] = "WARNING"
        from drip.cli.events import ingest_file

        spent: dict[str, list[float]] = {}
        if args.statements:
            _time_statements(spent)
        steps: dict[str, float] = {}
        if args.serial:
            _serial(steps)

        profile = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
        backends.start()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        if not args.plain:
            profile.enable()
        ingest_file.main([str(path)], standalone_mode=False)
        profile.disable()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        server = backends.spent()
    print(
        f"{args.n} events in {elapsed:.2f} s = {args.n / elapsed:,.0f} events/s"
        f"{'' if args.plain else ' (profiled)'}; "
        f"this process's CPU {cpu:.2f} s; its database connections' CPU {server:.2f} s"
    )
    for step, seconds in steps.items():
        print(f"{seconds:8.2f} s  {step}")
    for sql, (calls, seconds) in sorted(spent.items(), key=lambda kv: -kv[1][1])[:15]:
        print(f"{seconds:8.2f} s {int(calls):6d} x  {sql}")
    for order in () if args.plain else ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
        print(out.getvalue())
    return 0


def _serial(steps: dict[str, float]) -> None:
    """Store every batch in this process before applying it (no storing process), adding
    the wall time of each step to ``steps``: which of the two limits a run that overlaps
    them."""
    import drip.services.event_stream as stream
    import drip.services.events as service

    def timed(name: str, step: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - t0

        return run

    stream.can_store_ahead = lambda url: False  # type: ignore[assignment]
    stream.store_lines = timed("storing (decode, check, inbox insert)", stream.store_lines)  # type: ignore[assignment]
    service.apply_stored = timed("applying", service.apply_stored)  # type: ignore[assignment]


class _Backends:
    """The CPU spent by the server processes of this process's database connections from
    :meth:`start` on (connections opened before and after it; read from /proc, so only for
    a server on this machine: 0 elsewhere)."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.since: dict[int, float] = {}  # pid -> its CPU at start (or when it opened)
        self.closed = 0.0  # CPU spent since start by connections closed since
        self.pids: dict[int, int] = {}  # id(DBAPI connection) -> pid
        event.listen(Engine, "connect", self._opened)
        event.listen(Engine, "close", self._closed)  # closing from the pool
        event.listen(Engine, "close_detached", self._closed)

    def _opened(self, dbapi_connection: Any, record: Any) -> None:
        pid = int(dbapi_connection.info.backend_pid)
        self.pids[id(dbapi_connection)] = pid
        self.since[pid] = _cpu_of(pid)

    def _closed(self, dbapi_connection: Any, *_: Any) -> None:
        pid = self.pids.pop(id(dbapi_connection), None)
        if pid is not None and pid in self.since:
            self.closed += _cpu_of(pid) - self.since.pop(pid)

    def start(self) -> None:
        self.since = {pid: _cpu_of(pid) for pid in self.since}
        self.closed = 0.0

    def spent(self) -> float:
        return self.closed + sum(_cpu_of(pid) - cpu for pid, cpu in self.since.items())


def _cpu_of(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` (0 when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _time_statements(spent: dict[str, list[float]]) -> None:
    """Add each statement's wall time (by its first 90 characters) to ``spent``, for every
    engine made from now on in this process."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["t0"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        entry = spent.setdefault(" ".join(statement.split())[:90], [0.0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("t0", time.perf_counter())

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    import psycopg

    commit = psycopg.Connection.commit

    def timed_commit(self: Any) -> None:
        t0 = time.perf_counter()
        try:
            commit(self)
        finally:
            entry = spent.setdefault("COMMIT", [0.0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - t0

    psycopg.Connection.commit = timed_commit  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
