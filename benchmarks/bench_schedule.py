"""1. Scheduling rate: enrolling N contacts in the 5-step Smart-Drip campaign.

- drip: ``drip.services.enrollment.enroll_many`` on contacts already in the
  database (with consent, in a mix of zones, some zones only known from the
  area code): loads the contacts' zones and phones, resolves each zone,
  computes the due times (once per zone and step) and inserts the
  enrollments (skipping active ones) and their sends, one statement per
  batch on PostgreSQL (``drip.store.enrolling``).
- COPY: the same ``scheduled_sends`` rows, prepared in memory beforehand,
  copied into the same (emptied) table: the machine's limit. drip and COPY
  run ``schedule_reps`` times each, alternating (drip, COPY, COPY, drip...),
  each from emptied tables; the medians are compared.
- APScheduler 3 with ``SQLAlchemyJobStore`` on the same PostgreSQL: one
  ``add_job(..., "date", run_date=due)`` per step.
- Celery: ``apply_async(eta=due)`` per step to Redis; the queue is purged after.

APScheduler and Celery get the first ``baseline_jobs`` of the same jobs
(they are slow, and Celery's messages are held in Redis memory), and are
reported as rates.
"""

from __future__ import annotations

import io
import os
import time
from datetime import datetime
from typing import Any

from harness import (
    CAMPAIGN,
    Context,
    analyze,
    connect,
    count,
    median,
    queue_length,
    rate,
    say,
    seed_contacts,
)

Job = tuple[int, int, str, datetime]  # (enrollment id, contact id, step id, due)


def _apscheduler_job(contact_id: int, step_id: str) -> None:
    """The job APScheduler would run; never runs (the scheduler stays paused)."""


def _planned_jobs(ctx: Context, contact_ids: list[int]) -> tuple[list[Job], Any]:
    """The (contact, step, due) of every send enroll_many will create, computed like drip does."""
    from drip.domain.schedule import step_due_at
    from drip.domain.zones import resolve_timezone
    from drip.services.enrollment import load_campaign

    deps = ctx.deps
    with deps.sessions() as session:
        _, campaign = load_campaign(deps, session, CAMPAIGN)
        zone_of = {
            int(cid): resolve_timezone(tz, phone, deps.account.default_timezone).name
            for cid, tz, phone in session.execute(
                _contacts_query(), {"first": contact_ids[0], "last": contact_ids[-1]}
            )
        }
    due: dict[tuple[str, str], datetime] = {}
    jobs: list[Job] = []
    for i, contact_id in enumerate(contact_ids):
        zone = zone_of[contact_id]
        for step in campaign.steps:
            key = (zone, step.id)
            if key not in due:
                due[key] = step_due_at(ctx.now, step.day, step.at, zone)
            jobs.append((i + 1, contact_id, step.id, due[key]))
    return jobs, campaign


def _contacts_query() -> Any:
    from sqlalchemy import text

    return text("SELECT id, timezone, phone FROM contacts WHERE id BETWEEN :first AND :last")


def _copy_baseline(ctx: Context, contact_ids: list[int], jobs: list[Job], campaign: Any) -> float:
    """Seconds to COPY the same scheduled_sends rows (prepared beforehand) into the table."""
    url = ctx.url
    now = ctx.now.isoformat()
    with connect(url) as conn:
        conn.execute("TRUNCATE scheduled_sends, enrollments RESTART IDENTITY CASCADE")
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY enrollments (contact_id, campaign_id, enrolled_at, status) FROM STDIN"
            ) as copy,
        ):
            for contact_id in contact_ids:
                copy.write(f"{contact_id}\t{ctx.campaign_id}\t{now}\tactive\n")
    # RESTART IDENTITY: enrollment ids are 1..N in contact order, as _planned_jobs numbered them.
    columns = (
        "enrollment_id, contact_id, campaign_id, step_id, kind, channel, sender_role, "
        "due_at, original_due_at, state, attempts, catching_up, created_at, updated_at"
    )
    channel = {s.id: s.channel.value for s in campaign.steps}
    sender = campaign.sender.value
    chunks: list[str] = []
    buf = io.StringIO()
    for n, (enrollment_id, contact_id, step_id, due) in enumerate(jobs, 1):
        d = due.isoformat()
        buf.write(
            f"{enrollment_id}\t{contact_id}\t{ctx.campaign_id}\t{step_id}\tcampaign\t"
            f"{channel[step_id]}\t{sender}\t{d}\t{d}\tpending\t0\tf\t{now}\t{now}\n"
        )
        if n % 20_000 == 0:
            chunks.append(buf.getvalue())
            buf = io.StringIO()
    chunks.append(buf.getvalue())
    with connect(url) as conn:
        conn.autocommit = False
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY scheduled_sends ({columns}) FROM STDIN") as copy:
            for chunk in chunks:
                copy.write(chunk)
        conn.commit()
        elapsed = time.perf_counter() - t0
    copied = count(url, "SELECT count(*) FROM scheduled_sends")
    if copied != len(jobs):
        raise RuntimeError(f"COPY baseline wrote {copied} rows, expected {len(jobs)}")
    return elapsed


def _drip(ctx: Context, contact_ids: list[int], expected: int) -> float:
    from drip.services.enrollment import enroll_many

    with connect(ctx.url) as conn:
        conn.execute("TRUNCATE scheduled_sends, enrollments RESTART IDENTITY CASCADE")
    t0 = time.perf_counter()
    scheduled = enroll_many(ctx.deps, contact_ids, CAMPAIGN, ctx.now)
    elapsed = time.perf_counter() - t0
    if scheduled != expected:
        raise RuntimeError(f"enroll_many scheduled {scheduled} sends, expected {expected}")
    return elapsed


def _apscheduler(ctx: Context, jobs: list[Job]) -> float:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    store = SQLAlchemyJobStore(url=ctx.url, tablename="bench_apscheduler_jobs")
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone="UTC")
    scheduler.start(paused=True)  # jobs go to the store; none ever runs
    try:
        t0 = time.perf_counter()
        for enrollment_id, contact_id, step_id, due in jobs:
            scheduler.add_job(
                "bench_schedule:_apscheduler_job",
                "date",
                run_date=due,
                args=(contact_id, step_id),
                id=f"{enrollment_id}:{step_id}",
                misfire_grace_time=None,
            )
        elapsed = time.perf_counter() - t0
        stored = count(ctx.url, "SELECT count(*) FROM bench_apscheduler_jobs")
        if stored != len(jobs):
            raise RuntimeError(f"APScheduler stored {stored} jobs, expected {len(jobs)}")
    finally:
        scheduler.shutdown(wait=False)
        store.engine.dispose()
        with connect(ctx.url) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_apscheduler_jobs")
    return elapsed


def _celery_eta(ctx: Context, jobs: list[Job]) -> float:
    queue = f"drip-bench-eta-{os.getpid()}"
    os.environ["DRIP_BENCH_NAIVE_BROKER"] = ctx.redis_url
    os.environ["DRIP_BENCH_NAIVE_QUEUE"] = queue
    import naive_app

    naive_app.app.conf.broker_url = ctx.redis_url
    task = naive_app.fire_step
    try:
        with naive_app.app.producer_or_acquire() as producer:
            t0 = time.perf_counter()
            for _, contact_id, step_id, due in jobs:
                task.apply_async(
                    args=(contact_id, step_id), eta=due, queue=queue, producer=producer
                )
            elapsed = time.perf_counter() - t0
        held = queue_length(ctx.redis.client, queue)
        if held != len(jobs):
            raise RuntimeError(f"Redis holds {held} ETA tasks, expected {len(jobs)}")
    finally:
        with naive_app.app.connection_for_write() as conn:
            conn.default_channel.queue_purge(queue)
    return elapsed


def run(ctx: Context) -> dict[str, Any]:
    sizes = ctx.sizes
    n = sizes.contacts
    say(f"scheduling: seeding {n:,} consenting contacts in {10} zone groups")
    contact_ids = seed_contacts(ctx.url, n, ctx.now, agent_id=ctx.agent_id)
    jobs, campaign = _planned_jobs(ctx, contact_ids)
    steps = len(jobs)
    # drip / COPY / COPY / drip ...: alternating, so that load from elsewhere on
    # the machine falls on both alike; each run starts from emptied tables.
    drip_runs: list[float] = []
    copy_runs: list[float] = []
    for rep in range(sizes.schedule_reps):
        for which in ("drip", "copy") if rep % 2 == 0 else ("copy", "drip"):
            if which == "copy":
                say(f"scheduling: raw COPY of {steps:,} sends")
                copy_runs.append(_copy_baseline(ctx, contact_ids, jobs, campaign))
            else:
                say(f"scheduling: drip enroll_many of {n:,} contacts ({steps:,} sends)")
                drip_runs.append(_drip(ctx, contact_ids, steps))
    drip_s, copy_s = median(drip_runs), median(copy_runs)
    analyze(ctx.url)
    sample = jobs[: sizes.baseline_jobs]
    say(f"scheduling: APScheduler SQLAlchemyJobStore, {len(sample):,} jobs")
    aps_s = _apscheduler(ctx, sample)
    say(f"scheduling: Celery apply_async(eta=...), {len(sample):,} tasks")
    celery_s = _celery_eta(ctx, sample)
    drip_rate = rate(steps, drip_s)
    copy_rate = rate(steps, copy_s)
    return {
        "schedule_contacts": n,
        "schedule_steps": steps,
        "schedule_baseline_jobs": len(sample),
        "schedule_drip_s": drip_s,
        "schedule_copy_s": copy_s,
        "schedule_apscheduler_s": aps_s,
        "schedule_celery_eta_s": celery_s,
        "schedule_drip_steps_per_s": drip_rate,
        "schedule_copy_steps_per_s": copy_rate,
        "schedule_apscheduler_jobs_per_s": rate(len(sample), aps_s),
        "schedule_celery_eta_jobs_per_s": rate(len(sample), celery_s),
        "schedule_vs_copy": drip_rate / copy_rate,
        "schedule_drip_runs_s": [round(t, 3) for t in drip_runs],
        "schedule_copy_runs_s": [round(t, 3) for t in copy_runs],
    }
