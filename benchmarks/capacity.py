"""Capacity: do drip's summaries, queue and console stay flat from a small to a large database?

Two scratch PostgreSQL databases are built in the server (``generate_series``,
no row leaves PostgreSQL): N and M leads with SMS consent (a fifth of them in
Massachusetts), each enrolled in the bundled 5-step ``smart-drip-new-lead``
with its five future sends and one opt-in confirmation due now (a big import's
shape), and a history of 2 % sent day-15 texts, half of them answered and a
tenth of those opted out. Every send goes through drip's own triggers, as a
``drip enroll-many`` would. Then each database is read with drip's own
commands (subprocesses, as a person runs them) and console pages (the Flask
app in this process, a bearer token), each timed once, alternating the two
databases:

    drip stats | drip stats smart-drip-new-lead | drip queue | drip campaigns
    drip contacts list --state MA --json          (the first page: 100)
    /console/ | /console/campaigns/smart-drip-new-lead | /console/queue

Output: a table (seconds per size and the ratio large / small) on standard
output and, as the last line, one JSON object. Goals: every ratio <= 2, every
console page under 2 s at the large size, ``drip queue`` answers (exit 0).

    .venv/bin/python benchmarks/capacity.py --quick    # 10,000 vs 100,000 leads
    .venv/bin/python benchmarks/capacity.py            # 10,000 vs 1,000,000 leads

Not part of CI (the large build alone takes minutes). The databases are
created next to ``DRIP_BENCH_DATABASE_URL`` and dropped at the end.

``--scale SMALL,LARGE`` measures drip's hot paths as well (the claim, a fire
batch, an enrollment batch, ``drip stats``, the console's campaign and
contact pages, ``/metrics``) on four years of history built fast, the
triggers off and the counts computed after (:mod:`capacity_scale`,
:mod:`capacity_build`); ``--verify N`` builds N leads that way and through
the triggers and fails unless their counts agree::

    .venv/bin/python benchmarks/capacity.py --scale 100000,10000000
    .venv/bin/python benchmarks/capacity.py --verify 3000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    CAMPAIGN,
    DEFAULT_DATABASE_URL,
    ScratchDatabases,
    add_agent,
    base_env,
    connect,
    drip_deps,
    prepare_database,
    say,
    utcnow,
    workdir,
)

TOKEN = "capacity-benchmark-token-0123456789"  # noqa: S105 -- a scratch console's token
COMMANDS: dict[str, list[str]] = {
    "drip stats": ["stats"],
    f"drip stats {CAMPAIGN}": ["stats", CAMPAIGN],
    "drip queue": ["queue"],
    "drip campaigns": ["campaigns"],
    "drip contacts list --state MA --json": ["contacts", "list", "--state", "MA", "--json"],
}
PAGES = ("/console/", f"/console/campaigns/{CAMPAIGN}", "/console/queue")
STEPS = (
    ("day-15-check-in", 15),
    ("day-45-market-update", 45),
    ("day-180-timing", 180),
    ("day-270-new-listings", 270),
    ("day-360-anniversary", 360),
)


def _drip() -> list[str]:
    script = Path(sys.executable).with_name("drip")
    return [str(script)] if script.exists() else [sys.executable, "-m", "drip.cli"]


def build(url: str, n: int, now: Any, campaign_id: int, agent_id: int) -> None:
    """``n`` leads with their enrollment, sends, confirmations and a little history."""
    p = {"n": n, "now": now, "c": campaign_id, "a": agent_id}
    with connect(url) as conn:
        conn.autocommit = False
        say(f"capacity: {n:,} contacts")
        conn.execute(
            "INSERT INTO contacts (first_name, last_name, phone, email, state, timezone, source,"
            " agent_id, sms_consent_at, sms_consent_source, sms_consent_text, text_status,"
            " email_opted_out, created_at, updated_at) "
            "SELECT 'Lead' || g, 'Capacity',"
            " '+1' || (ARRAY['617','305','212','312','415'])[1 + g %% 5] || lpad(g::text, 7, '0'),"
            " 'lead' || g || '@example.com', (ARRAY['MA','FL','NY','IL','CA'])[1 + g %% 5],"
            " 'America/New_York', 'import', %(a)s, %(now)s - interval '30 days', 'import',"
            " 'Yes, text me.', 'textable', false, %(now)s - interval '30 days',"
            " %(now)s - interval '30 days' FROM generate_series(1, %(n)s) AS g",
            p,
        )
        conn.execute(
            "INSERT INTO enrollments (contact_id, campaign_id, enrolled_at, status)"
            " SELECT id, %(c)s, %(now)s - interval '30 days', 'active' FROM contacts",
            p,
        )
        for step, day in STEPS:
            say(f"capacity: {n:,} sends of {step}")
            conn.execute(
                "INSERT INTO scheduled_sends (contact_id, campaign_id, step_id, kind, channel,"
                " sender_role, due_at, original_due_at, state, attempts, catching_up,"
                " created_at, updated_at) SELECT id, %(c)s, %(step)s, 'campaign', 'sms', 'agent',"
                " %(now)s + %(day)s * interval '1 day' - interval '30 days',"
                " %(now)s + %(day)s * interval '1 day' - interval '30 days', 'pending', 0, false,"
                " %(now)s, %(now)s FROM contacts",
                {**p, "step": step, "day": day},
            )
        say(f"capacity: {n:,} opt-in confirmations due now")
        conn.execute(
            "INSERT INTO scheduled_sends (contact_id, kind, channel, sender_role, body, due_at,"
            " original_due_at, state, attempts, catching_up, created_at, updated_at)"
            " SELECT id, 'opt_in_confirmation', 'sms', 'agent',"
            " 'Acme Realty: you are subscribed to texts. Reply STOP to opt out, HELP for help.',"
            " %(now)s, %(now)s, 'pending', 0, false, %(now)s, %(now)s FROM contacts",
            p,
        )
        say("capacity: history (2% sent, replies, opt-outs)")
        # Day 15 went out 15 days ago for every 50th lead: its message, then the send points at it.
        conn.execute(
            "INSERT INTO messages (contact_id, send_id, direction, channel, from_addr, to_addr,"
            " body, footer, segments, status, sent_at, created_at, updated_at)"
            " SELECT s.contact_id, s.id, 'outbound', 'sms', '+16175550100', c.phone,"
            " 'Checking in!', true, 1, 'delivered', s.due_at, s.due_at, s.due_at"
            " FROM scheduled_sends AS s JOIN contacts AS c ON c.id = s.contact_id"
            " WHERE s.step_id = 'day-15-check-in' AND s.contact_id % 50 = 0"
        )
        conn.execute(
            "UPDATE scheduled_sends AS s SET state = 'sent', message_id = m.id"
            " FROM messages AS m WHERE m.send_id = s.id AND m.direction = 'outbound'"
        )
        conn.execute(
            "INSERT INTO messages (contact_id, direction, channel, from_addr, to_addr, body,"
            " footer, status, created_at, updated_at)"
            " SELECT contact_id, 'inbound', 'sms', to_addr, from_addr, 'Thanks!', false,"
            " 'received', created_at + interval '1 hour', created_at + interval '1 hour'"
            " FROM messages WHERE direction = 'outbound' AND contact_id % 100 = 0"
        )
        conn.execute(
            "UPDATE contacts SET sms_opted_out_at = %(now)s - interval '14 days'"
            " WHERE id %% 1000 = 0",
            p,
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _command(env: dict[str, str], args: list[str]) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [*_drip(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    took = time.perf_counter() - t0
    if done.returncode != 0:
        say(f"capacity: drip {' '.join(args)} exited {done.returncode}: {done.stderr[-500:]}")
    return took, done.returncode, len(done.stdout)


def _page(client: Any, path: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    answer = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    took = time.perf_counter() - t0
    return took, answer.status_code


@dataclasses.dataclass
class Size:
    leads: int
    url: str
    env: dict[str, str]
    client: Any
    deps: Any


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale",
        metavar="SMALL,LARGE",
        help="the drip path at two sizes (capacity_scale.py), e.g. 100000,10000000",
    )
    parser.add_argument("--reps", type=int, default=5, help="--scale: repetitions (5)")
    parser.add_argument(
        "--warm", type=int, default=3, help="--scale: warm-up rounds, timed and dropped (3)"
    )
    parser.add_argument(
        "--verify",
        type=int,
        metavar="N",
        help="build N leads fast and through the triggers; fail unless the counts agree",
    )
    parser.add_argument("--quick", action="store_true", help="10,000 vs 100,000 leads")
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument(
        "--large", type=int, default=None, help="default 1,000,000 (--quick: 100,000)"
    )
    args = parser.parse_args()
    if args.scale or args.verify:
        import capacity_scale

        if args.verify:
            return capacity_scale.verify(args.verify)
        small_leads, large_leads = (int(x) for x in args.scale.split(","))
        return capacity_scale.run(small_leads, large_leads, args.reps, args.warm)
    large = args.large or (100_000 if args.quick else 1_000_000)
    from drip.web.app import create_app

    results: dict[str, Any] = {"small_leads": args.small, "large_leads": large}
    with workdir() as wd:
        dbs = ScratchDatabases(os.environ.get("DRIP_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL)
        sizes: list[Size] = []
        try:
            now = utcnow()
            for leads in (args.small, large):
                url = dbs.create(f"_cap{leads}")
                deps = drip_deps(url, wd)
                campaign_id = prepare_database(url, deps, now)
                agent_id = add_agent(url, now)
                t0 = time.perf_counter()
                build(url, leads, now, campaign_id, agent_id)
                results[f"build_{leads}_s"] = round(time.perf_counter() - t0, 1)
                env = base_env(wd)
                env["DRIP_DATABASE_URL"] = url
                settings = dataclasses.replace(deps.settings, console_token=TOKEN)
                app = create_app(dataclasses.replace(deps, settings=settings))
                sizes.append(Size(leads, url, env, app.test_client(), deps))
            rows: list[tuple[str, float, float]] = []
            for name, argv in COMMANDS.items():
                small, big = (_command(s.env, argv) for s in sizes)
                results[f"{name} exit"] = [small[1], big[1]]
                rows.append((name, small[0], big[0]))
            for path in PAGES:
                small_page, big_page = (_page(s.client, path) for s in sizes)
                results[f"console {path} status"] = [small_page[1], big_page[1]]
                rows.append((f"console {path}", small_page[0], big_page[0]))
        finally:
            for s in sizes:
                s.deps.engine.dispose()
            dbs.drop_all()
    print(f"| command or page | {args.small:,} leads | {large:,} leads | ratio |")
    print("|---|---|---|---|")
    for name, small_s, big_s in rows:
        ratio = big_s / small_s if small_s > 0 else float("inf")
        print(f"| `{name}` | {small_s:.2f} s | {big_s:.2f} s | {ratio:.2f} |")
        results[name] = {"small_s": round(small_s, 3), "large_s": round(big_s, 3),
                         "ratio": round(ratio, 2)}  # fmt: skip
    pages = [big for name, _, big in rows if name.startswith("console")]
    results["max_ratio"] = round(max(big / small for _, small, big in rows), 2)
    results["max_console_large_s"] = round(max(pages), 3)
    results["queue_answers"] = results["drip queue exit"][1] == 0
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
