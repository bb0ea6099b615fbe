"""7. Operating at scale: ``drip enroll-many`` from a shell, and importing a CSV.

- ``enroll_many_cli_vs_copy``: ``drip enroll-many smart-drip-new-lead --yes``
  as a subprocess (interpreter start-up, imports, selection of every contact,
  batches of 5,000 through ``enroll_many``) on N consenting contacts x 5
  steps, against a raw COPY of the same enrollments and ``scheduled_sends``
  rows (prepared in memory beforehand) in the same run. Ratio of rates; goal
  >= 0.25.
- ``import_rows_per_s`` / ``import_vs_copy``: ``read_csv`` + ``import_rows``
  (what ``drip contacts import`` does before it sends the opt-in
  confirmations, which go through dispatch like any send and are measured by
  the firing benchmark) of an N-row CSV with complete consent evidence,
  against a COPY of the same contacts and consent events. Goal >= 0.1.

Each measurement runs in its own scratch database.
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import bench_schedule
from harness import (
    CAMPAIGN,
    CONSENT_TEXT,
    Context,
    base_env,
    connect,
    count,
    drip_deps,
    prepare_database,
    rate,
    say,
    seed_contacts,
)


def _drip_command() -> list[str]:
    script = Path(sys.executable).with_name("drip")
    return [str(script)] if script.exists() else [sys.executable, "-m", "drip.cli"]


def _fresh(ctx: Context, suffix: str) -> Context:
    url = ctx.dbs.create(suffix)
    deps = drip_deps(url, ctx.workdir)
    campaign_id = prepare_database(url, deps, ctx.now)
    from harness import add_agent

    return dataclasses.replace(
        ctx, url=url, deps=deps, campaign_id=campaign_id, agent_id=add_agent(url, ctx.now)
    )


def _enroll_many(ctx: Context) -> dict[str, Any]:
    n = ctx.sizes.contacts
    run = _fresh(ctx, "_em")
    try:
        say(f"operate: seeding {n:,} contacts for drip enroll-many")
        ids = seed_contacts(run.url, n, run.now, agent_id=run.agent_id)
        jobs, campaign = bench_schedule._planned_jobs(run, ids)
        say(f"operate: raw COPY of {len(jobs):,} enrollments' sends")
        copy_s = bench_schedule._copy_baseline(run, ids, jobs, campaign)
        with connect(run.url) as conn:
            conn.execute("TRUNCATE scheduled_sends, enrollments RESTART IDENTITY CASCADE")
        env = base_env(run.workdir)
        env["DRIP_DATABASE_URL"] = run.url
        say(f"operate: drip enroll-many of {n:,} contacts as a subprocess")
        t0 = time.perf_counter()
        done = subprocess.run(
            [*_drip_command(), "enroll-many", CAMPAIGN, "--yes"],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        cli_s = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"drip enroll-many failed: {done.stdout}{done.stderr}")
        made = count(run.url, "SELECT count(*) FROM scheduled_sends")
        if made != len(jobs):
            raise RuntimeError(f"drip enroll-many scheduled {made} sends, expected {len(jobs)}")
    finally:
        run.deps.engine.dispose()
    return {
        "enroll_many_cli_contacts": n,
        "enroll_many_cli_s": cli_s,
        "enroll_many_copy_s": copy_s,
        "enroll_many_cli_steps_per_s": rate(len(jobs), cli_s),
        "enroll_many_cli_vs_copy": rate(len(jobs), cli_s) / rate(len(jobs), copy_s),
    }


def _csv(path: Path, n: int, consent_at: str) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(
            "first_name,last_name,phone,email,state,timezone,agent_phone,sms_consent,"
            "consent_at,consent_source,consent_text\n"
        )
        for i in range(n):
            out.write(
                f"Lead{i},Import,+1617{3000000 + i:07d},lead{i}@example.com,MA,"
                f'America/New_York,,yes,{consent_at},registration,"{CONSENT_TEXT}"\n'
            )


def _copy_import_baseline(run: Context, n: int) -> float:
    """COPY the same contacts (with consent columns) and one consent event each."""
    at = run.now.isoformat()
    contacts = io.StringIO()
    for i in range(n):
        contacts.write(
            f"Lead{i}\tImport\t+1617{3000000 + i:07d}\tlead{i}@example.com\tMA\t"
            f"America/New_York\timport\t{at}\tregistration\t{CONSENT_TEXT}\ttextable\tf\t{at}\t{at}\n"
        )
    with connect(run.url) as conn:
        conn.autocommit = False
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(
                "COPY contacts (first_name, last_name, phone, email, state, timezone, source, "
                "sms_consent_at, sms_consent_source, sms_consent_text, text_status, "
                "email_opted_out, created_at, updated_at) FROM STDIN"
            ) as copy:
                copy.write(contacts.getvalue())
            cur.execute(
                "INSERT INTO consent_events (contact_id, kind, at, source, evidence) "
                "SELECT id, 'given', sms_consent_at, 'registration', sms_consent_text FROM contacts"
            )
        conn.commit()
        elapsed = time.perf_counter() - t0
        conn.execute("TRUNCATE consent_events, contacts RESTART IDENTITY CASCADE")
        conn.commit()
    return elapsed


def _import(ctx: Context) -> dict[str, Any]:
    from drip.services.importing import import_rows, read_csv

    n = ctx.sizes.contacts
    run = _fresh(ctx, "_imp")
    try:
        path = run.workdir / "import.csv"
        _csv(path, n, (run.now - timedelta(days=1)).strftime("%Y-%m-%d %H:%M"))
        say(f"operate: COPY of {n:,} contacts with consent events")
        copy_s = _copy_import_baseline(run, n)
        say(f"operate: drip import of a {n:,}-row CSV")
        t0 = time.perf_counter()
        rows, _ = read_csv(path)
        report = import_rows(run.deps, rows, run.now)
        import_s = time.perf_counter() - t0
        imported = count(run.url, "SELECT count(*) FROM contacts")
        if imported != n or report.bad_rows:
            raise RuntimeError(f"import stored {imported} of {n} rows: {report.summary()}")
    finally:
        run.deps.engine.dispose()
    return {
        "import_rows": n,
        "import_s": import_s,
        "import_copy_s": copy_s,
        "import_rows_per_s": rate(n, import_s),
        "import_vs_copy": rate(n, import_s) / rate(n, copy_s),
    }


def run(ctx: Context) -> dict[str, Any]:
    return {**_enroll_many(ctx), **_import(ctx)}
