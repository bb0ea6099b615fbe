"""9. Lead events in: ``drip events ingest`` and ``POST /events`` against a raw COPY.

- ``events_vs_copy``: N ``lead.updated`` events (one JSON object a line, each
  naming its contact by phone and setting a stage) through ``drip events
  ingest FILE.jsonl`` as a subprocess (start-up, parsing, the inbox insert,
  the contact's fields, every event decided against 20 campaigns' triggers
  and exits besides the bundled ones, about 10 % enrolling, the outcomes),
  against a raw COPY of the same rows into ``inbox_events`` in the same run.
  Ratio of rates; goal >= 0.1.
- ``post_events_per_s``: another M such events posted to ``POST /events`` in
  batches of 500 over HTTP: the app under gunicorn with two sync workers (as
  docker-compose runs it), two clients (a ``requests.Session`` each, in
  threads, each naming its own half of the contacts) posting at once. Goal >=
  2,000 events/s.

Contacts: N / 5, seeded by COPY; each gets about five events. Each runs in
its own scratch database.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from bench_operate import _drip_command, _fresh
from harness import (
    PYTHON,
    Context,
    base_env,
    connect,
    copy_rows,
    count,
    free_port,
    rate,
    say,
    seed_contacts,
    wait_for,
)

CAMPAIGNS = 20
#: Stages an event sets: one in ten is a campaign's trigger stage.
STAGES = [f"trigger_{k}" for k in range(CAMPAIGNS)] + [f"stage_{k}" for k in range(180)]
EVENTS = {"smoke": 2_000, "quick": 100_000, "full": 100_000}
POSTED = {"smoke": 1_000, "quick": 20_000, "full": 20_000}
#: gunicorn workers (docker-compose runs two) and as many posting clients.
CLIENTS = 2


def _campaign_yaml(k: int) -> str:
    return f"""name: bench-trigger-{k}
kind: smart_drip
sender: agent
triggers:
  - on: lead.updated
    where: {{stage: trigger_{k}}}
exit:
  - on: lead.updated
    where: {{stage: lost_{k}}}
  - on: deal.stage
    where: {{stage: [under_contract, closed]}}
steps:
  - id: day-1
    day: 1
    body: "Hi {{VisitorFirstName}}, it's {{AgentFirstName}}. Still thinking about a move?"
  - id: day-7
    day: 7
    body: "Hi {{VisitorFirstName}}, {{AgentFirstName}} here. New listings this week. Want them?"
"""


def _sync_campaigns(run: Context) -> None:
    from drip.campaigns.loader import load_campaigns
    from drip.services.sync import sync_campaigns

    folder = run.workdir / "bench-trigger-campaigns"
    folder.mkdir(exist_ok=True)
    for k in range(CAMPAIGNS):
        (folder / f"bench_trigger_{k}.yaml").write_text(_campaign_yaml(k), encoding="utf-8")
    loaded = load_campaigns(folder)
    if not loaded.ok:
        raise RuntimeError("\n".join(loaded.errors))
    sync_campaigns(run.deps, list(loaded.campaigns.values()), run.now)


def _events(prefix: str, phones: list[str], n: int, run: Context) -> list[dict[str, Any]]:
    """``n`` events, each for a random contact setting a random stage (the same each run)."""
    pick = random.Random(f"drip-bench-{prefix}")
    start = run.now - timedelta(hours=1)
    return [
        {
            "id": f"{prefix}-{i}",
            "type": "lead.updated",
            "occurred_at": (start + timedelta(milliseconds=i)).isoformat(),
            "contact": {"phone": pick.choice(phones)},
            "data": {"stage": pick.choice(STAGES)},
        }
        for i in range(n)
    ]


def _copy_baseline(run: Context, events: list[dict[str, Any]]) -> float:
    """Seconds to COPY the same events (as inbox rows, built beforehand) into inbox_events."""
    columns = ("event_id", "type", "occurred_at", "contact_ref", "data", "digest", "received_at")
    rows = [
        (
            e["id"],
            e["type"],
            e["occurred_at"],
            json.dumps(e["contact"]),
            json.dumps(e["data"]),
            hashlib.sha256(json.dumps(e, sort_keys=True).encode()).hexdigest(),
            run.now,
        )
        for e in events
    ]
    with connect(run.url) as conn:
        t0 = time.perf_counter()
        with conn.transaction():
            copy_rows(conn, "inbox_events", columns, iter(rows))
        elapsed = time.perf_counter() - t0
        conn.execute("TRUNCATE inbox_events RESTART IDENTITY")
        conn.commit()
    return elapsed


def _phones(url: str) -> list[str]:
    with connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT phone FROM contacts ORDER BY id").fetchall()]


def _ingest(ctx: Context) -> dict[str, Any]:
    n = EVENTS[ctx.sizes.mode]
    run = _fresh(ctx, "_ev")
    try:
        say(f"events: seeding {n // 5:,} contacts and {CAMPAIGNS} trigger campaigns")
        seed_contacts(run.url, n // 5, run.now, agent_id=run.agent_id)
        _sync_campaigns(run)
        events = _events("ev", _phones(run.url), n, run)
        path = run.workdir / "events.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
        say(f"events: raw COPY of {n:,} inbox rows")
        copy_s = _copy_baseline(run, events)
        env = base_env(run.workdir)
        env["DRIP_DATABASE_URL"] = run.url
        say(f"events: drip events ingest of {n:,} events as a subprocess")
        t0 = time.perf_counter()
        done = subprocess.run(
            [*_drip_command(), "events", "ingest", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        ingest_s = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"drip events ingest failed: {done.stdout}{done.stderr}")
        processed = count(
            run.url, "SELECT count(*) FROM inbox_events WHERE processed_at IS NOT NULL"
        )
        if processed != n:
            raise RuntimeError(f"{processed} of {n} events processed: {done.stdout}")
        enrolled = count(run.url, "SELECT count(*) FROM enrollments WHERE event_id IS NOT NULL")
        posted = _post(run, n)
    finally:
        run.deps.engine.dispose()
    return {
        "events_ingested": n,
        "events_ingest_s": ingest_s,
        "events_copy_s": copy_s,
        "events_ingest_per_s": rate(n, ingest_s),
        "events_enrolled": enrolled,
        "events_vs_copy": rate(n, ingest_s) / rate(n, copy_s),
        **posted,
    }


def _post(run: Context, already: int) -> dict[str, Any]:
    """POST /events in batches of 500 to the app under gunicorn (as docker-compose runs it,
    two sync workers) from ``CLIENTS`` requests sessions in threads; events/s."""
    m = POSTED[run.sizes.mode]
    token = "bench-token"  # noqa: S105 - a scratch app's bearer token, not a secret
    phones = _phones(run.url)
    # Each client names its own contacts, as a CRM's sharded producers would.
    events = [_events(f"post{k}", phones[k::CLIENTS], m // CLIENTS, run) for k in range(CLIENTS)]
    port = free_port()
    env = base_env(run.workdir)
    env.update(DRIP_DATABASE_URL=run.url, DRIP_API_TOKEN=token, DRIP_LOG_LEVEL="WARNING")
    server = run.processes.start(
        "gunicorn-events",
        [
            str(Path(PYTHON).with_name("gunicorn")),
            "--bind", f"127.0.0.1:{port}", "--workers", str(CLIENTS),
            "drip.web.wsgi:make_app()",
        ],
        env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("gunicorn", lambda: _up(base), timeout=60, child=server)
        say(f"events: POST /events of {m:,} events in batches of 500 by {CLIENTS} clients")
        with ThreadPoolExecutor(CLIENTS) as pool:
            t0 = time.perf_counter()
            answers = list(pool.map(lambda batch: _post_all(base, token, batch), events))
            post_s = time.perf_counter() - t0
    finally:
        run.processes.stop(server)
    posted = sum(answers)
    if posted != m:
        raise RuntimeError(f"{posted} of {m} posted events accepted")
    return {"post_events": m, "post_events_s": post_s, "post_events_per_s": rate(m, post_s)}


def _post_all(base: str, token: str, events: list[dict[str, Any]]) -> int:
    """Post ``events`` in batches of 500 on one keep-alive session; how many were accepted."""
    accepted = 0
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        for start in range(0, len(events), 500):
            answer = http.post(f"{base}/events", json=events[start : start + 500], timeout=300)
            if answer.status_code != 202:
                raise RuntimeError(
                    f"POST /events answered {answer.status_code}: {answer.text[:500]}"
                )
            accepted += answer.json()["counts"].get("accepted", 0)
    return accepted


def _up(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code < 500
    except requests.RequestException:
        return False


def run(ctx: Context) -> dict[str, Any]:
    return _ingest(ctx)
