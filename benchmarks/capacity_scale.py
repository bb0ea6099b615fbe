"""``capacity.py --scale SMALL,LARGE``: drip's hot paths and reads at two database sizes.

Each size is a scratch database (``drip_cap_<random>``) built by
:mod:`capacity_build` (four years of a 5-step campaign; at 10,000,000 leads
50,000,000 sends). Then, the sizes taking turns ``--reps`` times, each
operation runs through drip's own code and is timed:

- the claim: :func:`drip.services.dispatch.claim` of 200 due sends (the pacing
  budget query, then ``claims.claim_due``), 200 fresh consenting leads each
  with a send due a minute ago (``bench_fire._due_sends``);
- a fire batch: :func:`drip.services.dispatch.fire` of 50 of them (an in-memory
  transport; the median of the four batches);
- an enrollment batch: :func:`drip.services.enrollment.enroll_many` of 500 new
  leads in the campaign (2,500 sends);
- ``drip stats`` (a subprocess, as a person runs it);
- the console's campaign page and a contact's page (a lead with four years of
  history), and ``GET /metrics`` (the Flask app in this process).

The first ``--warm`` rounds (3 by default) are timed and dropped: right after
a build of tens of gigabytes the server's cache holds the build, and an
enrollment batch at 10,000,000 leads took 150-260 ms in its first rounds
against 94-114 ms once warm, which is what a running deployment sees.

Each database's clock is frozen at its build's instant for the claim, the fire
and the enrollment (drip takes ``now`` as an argument), so the bulk's pending
sends never fall due during the run and the claim takes only the fresh ones.
Prints the table (median seconds per size, ratio large / small), the table and
index sizes, and a JSON line; drops the databases at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import bench_fire
import capacity_build
from capacity import TOKEN, _command, _page
from harness import (
    CAMPAIGN,
    DEFAULT_DATABASE_URL,
    ScratchDatabases,
    add_agent,
    base_env,
    drip_deps,
    prepare_database,
    say,
    seed_contacts,
    utcnow,
    workdir,
)

PREFIX = "drip_cap_"
CLAIMED = 200
FIRE_BATCH = 50
ENROLLED = 500


@dataclasses.dataclass
class Size:
    leads: int
    url: str
    now: datetime
    campaign_id: int
    agent_id: int
    deps: Any
    env: dict[str, str]
    client: Any
    contact_id: int
    build_s: float
    times: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def add(self, what: str, seconds: float) -> None:
        self.times.setdefault(what, []).append(seconds)


def _make(dbs: ScratchDatabases, wd: Any, leads: int, *, fast: bool = True) -> Size:
    from drip.web.app import create_app

    now = utcnow()
    url = dbs.create(f"_{leads}")
    deps = drip_deps(url, wd)
    campaign_id = prepare_database(url, deps, now)
    agent_id = add_agent(url, now)
    t0 = time.perf_counter()
    steps = capacity_build.build(url, leads, now, campaign_id, agent_id, fast=fast)
    build_s = time.perf_counter() - t0
    say(f"capacity: {leads:,} leads built in {build_s:.0f} s: {steps}")
    env = base_env(wd)
    env["DRIP_DATABASE_URL"] = url
    settings = dataclasses.replace(deps.settings, console_token=TOKEN)
    app = create_app(dataclasses.replace(deps, settings=settings))
    # A lead from the middle of the four years: replies, a deferral, every step decided.
    contact_id = (leads // 2) // 20 * 20 + 1
    return Size(leads, url, now, campaign_id, agent_id, deps, env, app.test_client(),
                contact_id, build_s)  # fmt: skip


def _claim_and_fire(size: Size, rep: int) -> None:
    from drip.services.dispatch import chunks, claim, fire

    ns = SimpleNamespace(url=size.url, agent_id=size.agent_id, campaign_id=size.campaign_id)
    bench_fire._due_sends(ns, CLAIMED, size.now, rep * 1000)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    ids = claim(size.deps, size.now, CLAIMED)
    size.add("claim (200 due)", time.perf_counter() - t0)
    if len(ids) != CLAIMED:
        raise RuntimeError(f"claimed {len(ids)} sends, expected {CLAIMED}")
    outcomes: dict[str, int] = {}
    for batch in chunks(ids, FIRE_BATCH):
        t0 = time.perf_counter()
        results = fire(size.deps, batch, size.now)
        size.add("fire batch (50)", time.perf_counter() - t0)
        for r in results:
            outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    if outcomes.get("sent") != CLAIMED:
        say(f"capacity: {size.leads:,} leads: fire outcomes {outcomes}")


def _enroll(size: Size, rep: int) -> None:
    from drip.services.enrollment import enroll_many

    ids = seed_contacts(size.url, ENROLLED, size.now, agent_id=size.agent_id,
                        phone_offset=100_000 + rep * 1000)  # fmt: skip
    t0 = time.perf_counter()
    scheduled = enroll_many(size.deps, ids, CAMPAIGN, size.now)
    size.add("enroll_many (500)", time.perf_counter() - t0)
    if scheduled != ENROLLED * 5:
        raise RuntimeError(f"enroll_many scheduled {scheduled} sends, expected {ENROLLED * 5}")


def _reads(size: Size) -> None:
    took, code, _ = _command(size.env, ["stats"])
    if code != 0:
        raise RuntimeError(f"drip stats exited {code}")
    size.add("drip stats", took)
    for name, path in (
        ("console campaign page", f"/console/campaigns/{CAMPAIGN}"),
        ("console contact page", f"/console/contacts/{size.contact_id}"),
        ("GET /metrics", "/metrics"),
    ):
        took, status = _page(size.client, path)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}")
        size.add(name, took)


def _counts(url: str) -> dict[str, int]:
    from harness import connect

    with connect(url) as conn:
        out = {}
        for name, query in (
            ("contacts", "SELECT count(*) FROM contacts"),
            ("sends", "SELECT count(*) FROM scheduled_sends"),
            ("pending", "SELECT count(*) FROM scheduled_sends WHERE state = 'pending'"),
            ("messages", "SELECT count(*) FROM messages"),
            ("decisions", "SELECT count(*) FROM send_decisions"),
        ):
            row = conn.execute(query).fetchone()
            out[name] = int(row[0]) if row else 0
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def run(small_leads: int, large_leads: int, reps: int, warm: int = 3) -> int:
    results: dict[str, Any] = {"small_leads": small_leads, "large_leads": large_leads,
                               "reps": reps, "warm": warm}  # fmt: skip
    with workdir() as wd:
        admin = os.environ.get("DRIP_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
        dbs = ScratchDatabases(admin, prefix=PREFIX)
        sizes: list[Size] = []
        try:
            for leads in (small_leads, large_leads):
                sizes.append(_make(dbs, wd, leads))
            for s in sizes:
                results[f"rows_{s.leads}"] = _counts(s.url)
                results[f"build_{s.leads}_s"] = round(s.build_s, 1)
                results[f"database_{s.leads}_bytes"] = capacity_build.database_bytes(s.url)
                results[f"sizes_{s.leads}"] = capacity_build.sizes(s.url)
                say(f"capacity: {s.leads:,} leads: {results[f'rows_{s.leads}']}")
            for rep in range(warm + reps):  # the first `warm` rounds warm caches, dropped
                order = sizes if rep % 2 else list(reversed(sizes))
                for s in order:
                    _claim_and_fire(s, rep)
                    _enroll(s, rep)
                    _reads(s)
                if rep == warm - 1:
                    for s in sizes:
                        s.times.clear()
                say(f"capacity: round {rep} done")
        finally:
            for s in sizes:
                s.deps.engine.dispose()
            dbs.drop_all()
    small, large = sizes
    print(f"| operation | {small.leads:,} leads | {large.leads:,} leads | ratio |")
    print("|---|---|---|---|")
    ratios = {}
    for name, values in small.times.items():
        a, b = statistics.median(values), statistics.median(large.times[name])
        ratio = b / a if a > 0 else float("inf")
        ratios[name] = ratio
        unit = (lambda x: f"{x * 1000:.1f} ms") if b < 1 else (lambda x: f"{x:.2f} s")
        print(f"| {name} | {unit(a)} | {unit(b)} | {ratio:.2f} |")
        results[name] = {"small_s": [round(x, 4) for x in values],
                         "large_s": [round(x, 4) for x in large.times[name]],
                         "ratio": round(ratio, 2)}  # fmt: skip
    print()
    print(f"| table | rows at {large.leads:,} | table | indexes |")
    print("|---|---|---|---|")
    for table, rows, heap, index in results[f"sizes_{large.leads}"]:
        print(f"| {table} | {rows:,} | {_mib(heap)} | {_mib(index)} |")
    print(f"| whole database | | {_mib(results[f'database_{large.leads}_bytes'])} | |")
    results["max_ratio"] = round(max(ratios.values()), 2)
    results["metrics_large_ms"] = round(statistics.median(large.times["GET /metrics"]) * 1000, 1)
    print(json.dumps(results, default=str))
    return 0


def verify(leads: int) -> int:
    """Build ``leads`` both ways; exit 1 unless the trigger-kept counts are the same."""
    with workdir() as wd:
        admin = os.environ.get("DRIP_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
        dbs = ScratchDatabases(admin, prefix=PREFIX)
        try:
            got = {}
            for fast in (True, False):
                now = utcnow().replace(microsecond=0)
                url = dbs.create(f"_{'fast' if fast else 'triggers'}{leads}")
                deps = drip_deps(url, wd)
                campaign_id = prepare_database(url, deps, now)
                agent_id = add_agent(url, now)
                deps.engine.dispose()
                capacity_build.build(url, leads, FROZEN, campaign_id, agent_id, fast=fast)
                got[fast] = capacity_build.summaries(url)
        finally:
            dbs.drop_all()
    same = True
    for table in got[True]:
        fast_rows, trigger_rows = got[True][table], got[False][table]
        equal = fast_rows == trigger_rows
        same &= equal
        print(f"{table}: {len(fast_rows)} rows fast, {len(trigger_rows)} through the triggers:"
              f" {'equal' if equal else 'DIFFERENT'}")  # fmt: skip
        if not equal:
            for row in sorted(set(fast_rows) ^ set(trigger_rows), key=str)[:20]:
                print(f"  {'fast' if row in fast_rows else 'triggers'}: {row}")
    return 0 if same else 1


#: The instant both builds of ``verify`` take as now, so that their rows are the same.
FROZEN = datetime(2026, 12, 7, 12, 0, tzinfo=utcnow().tzinfo)
