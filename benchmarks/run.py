"""drip benchmarks on PostgreSQL and Redis: scheduling, worker memory, claim cost, firing, replay, pacing, start-up.

    .venv/bin/python benchmarks/run.py            # full (1M-send backlogs; tens of minutes)
    .venv/bin/python benchmarks/run.py --quick    # smaller, under five minutes
    .venv/bin/python benchmarks/run.py --smoke    # tiny, for CI; well under a minute

Every goal is a ratio against a baseline measured in the same run on the same
machine, never an absolute time. Output: a table on standard output, then, as
the last line, one JSON object with every figure. Progress goes to standard
error. Exit status 0 when every benchmark ran (goals missed or not), 1 when
one failed.

Services: ``DRIP_BENCH_DATABASE_URL`` (default the local ``test`` database,
used as the admin database in which scratch databases are created and
dropped) and ``DRIP_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``;
keys the run adds are deleted at the end). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_claim
import bench_events
import bench_fire
import bench_lookup
import bench_memory
import bench_operate
import bench_pacing
import bench_replay
import bench_schedule
import bench_startup
import bench_webhooks
from harness import SIZES, Context, say, scratch_context

SECTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "schedule": bench_schedule.run,
    "memory": bench_memory.run,
    "claim": bench_claim.run,
    "fire": bench_fire.run,
    "replay": bench_replay.run,
    "pacing": bench_pacing.run,
    "operate": bench_operate.run,
    "startup": bench_startup.run,
    "events": bench_events.run,
    "webhooks": bench_webhooks.run,
    "lookup_overhead": bench_lookup.run,
}

#: (key, section, goal text, predicate) of the ratio goals.
GOALS: list[tuple[str, str, str, Callable[[float], bool]]] = [
    ("schedule_vs_copy", "schedule", ">= 0.5", lambda v: v >= 0.5),
    ("worker_rss_growth_mib", "memory", "<= 10", lambda v: v <= 10),
    ("claim_backlog_ratio", "claim", "<= 1.5", lambda v: v <= 1.5),
    ("fire_vs_celery_noop", "fire", ">= 0.8", lambda v: v >= 0.8),
    ("fire_cpu_vs_noop", "fire", "<= 1.25", lambda v: v <= 1.25),
    ("fire_scaling_2v1", "fire", ">= 1.4", lambda v: v >= 1.4),
    ("pacing_accuracy", "pacing", "<= 1.0", lambda v: v <= 1.0),
    ("pacing_overhead", "pacing", ">= 0.9", lambda v: v >= 0.9),
    ("enroll_many_cli_vs_copy", "operate", ">= 0.25", lambda v: v >= 0.25),
    ("import_vs_copy", "operate", ">= 0.1", lambda v: v >= 0.1),
    ("cli_start_vs_python", "startup", "<= 2.5", lambda v: v <= 2.5),
    ("replay_suite_s_per_scenario", "startup", "<= 0.25", lambda v: v <= 0.25),
    ("events_vs_copy", "events", ">= 0.1", lambda v: v >= 0.1),
    ("post_events_per_s", "events", ">= 2000", lambda v: v >= 2000),
    ("webhook_delivery_vs_post", "webhooks", ">= 0.5", lambda v: v >= 0.5),
    ("lookup_overhead", "lookup_overhead", ">= 0.9", lambda v: v >= 0.9),
]


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".rstrip()


def table(r: dict[str, Any], sections: list[str]) -> str:
    rows: list[tuple[str, str, str]] = []

    def add(name: str, key: str, unit: str = "", note: str = "") -> None:
        if key in r or note:
            rows.append((name, _fmt(r.get(key), unit), note))

    if "schedule" in sections:
        steps, jobs = r.get("schedule_steps"), r.get("schedule_baseline_jobs")
        rows.append((f"1. Scheduling ({_fmt(steps)} steps = contacts x 5)", "", ""))
        add("   drip enroll_many", "schedule_drip_steps_per_s", "steps/s")
        add("   raw COPY of the same rows", "schedule_copy_steps_per_s", "steps/s")
        add(f"   APScheduler SQLAlchemyJobStore ({_fmt(jobs)} jobs)",
            "schedule_apscheduler_jobs_per_s", "jobs/s")  # fmt: skip
        add(f"   Celery apply_async(eta) ({_fmt(jobs)} tasks)",
            "schedule_celery_eta_jobs_per_s", "tasks/s")  # fmt: skip
        add("   schedule_vs_copy (drip / COPY)", "schedule_vs_copy", "", "goal >= 0.5")
    if "memory" in sections:
        rows.append(("2. Worker memory (VmRSS of worker + pool)", "", ""))
        drip_n, naive_n = r.get("memory_drip_sends"), r.get("memory_naive_tasks")
        add("   drip worker, empty schedule", "memory_drip_empty_mib", "MiB")
        add(f"   drip worker, {_fmt(drip_n)} future sends in DB", "memory_drip_full_mib", "MiB")
        add("   worker_rss_growth_mib", "worker_rss_growth_mib", "MiB", "goal <= 10")
        add("   naive Celery worker, no ETA tasks", "memory_naive_empty_mib", "MiB")
        add(f"   naive Celery worker, {_fmt(naive_n)} ETA tasks", "memory_naive_full_mib", "MiB")
        add("   naive growth", "naive_rss_growth_mib", "MiB")
        add("   naive growth per 1,000 ETA tasks", "naive_rss_growth_mib_per_1k", "MiB")
    if "claim" in sections:
        batch = _fmt(r.get("claim_batch"))
        rows.append((f"3. Claim {batch} due sends (median)", "", ""))
        add(f"   among {_fmt(r.get('claim_small_backlog'))} pending", "claim_small_ms", "ms")
        add(f"   among {_fmt(r.get('claim_large_backlog'))} pending", "claim_large_ms", "ms")
        add("   claim_backlog_ratio (large / small)", "claim_backlog_ratio", "", "goal <= 1.5")
    if "fire" in sections:
        rows.append((f"4. Firing ({_fmt(r.get('fire_sends'))} sends, Celery pool "
                     f"-c {_fmt(r.get('fire_concurrency'))})", "", ""))  # fmt: skip
        add("   drip end to end (dispatch..record)", "fire_sends_per_s", "sends/s")
        add(f"   no-op Celery task ({_fmt(r.get('noop_tasks'))} tasks)",
            "noop_tasks_per_s", "tasks/s")  # fmt: skip
        add("   fire_vs_celery_noop", "fire_vs_celery_noop", "", "goal >= 0.8")
        cpu = r.get("fire_cpu_ms_per_send")
        if isinstance(cpu, dict):
            rows.append(("   drip pool CPU per send", _fmt(cpu.get("pool"), "ms"), ""))
        add("   no-op task pool CPU per task", "noop_cpu_ms_per_task", "ms")
        add("   fire_cpu_vs_noop (CPU per send / per task)", "fire_cpu_vs_noop", "", "goal <= 1.25")
        add("   drip, 1 worker process", "fire_scaling_sends_per_s_1", "sends/s")
        add("   drip, 2 worker processes", "fire_scaling_sends_per_s_2", "sends/s")
        add("   fire_scaling_2v1 (2 / 1)", "fire_scaling_2v1", "", "goal >= 1.4")
        if "fire_unavailable" in r:
            rows.append(("   (not measured)", "n/a", str(r["fire_unavailable"])))
    if "replay" in sections:
        rows.append(("5. Replay (drip replay, subprocess)", "", ""))
        add("   400-day seed scenario", "replay_seed_s", "s")
        add(f"   all of tests/scenarios/ ({_fmt(r.get('replay_scenarios'))} files)",
            "replay_all_s", "s")  # fmt: skip
        if "replay_unavailable" in r:
            rows.append(("   (not measured)", "n/a", str(r["replay_unavailable"])))
    if "pacing" in sections:
        rows.append((f"6. Pacing ({_fmt(r.get('pacing_texts'))} texts at "
                     f"{_fmt(r.get('pacing_rate_per_sender'))} segments/s per number)", "", ""))  # fmt: skip
        add("   most texts of one number in any second", "pacing_peak_per_second")
        add("   pacing_accuracy (peak / rate)", "pacing_accuracy", "", "goal <= 1.0")
        add("   embedded fire path, pacing off", "pacing_off_sends_per_s", "sends/s")
        add("   embedded fire path, pacing on (never binding)", "pacing_on_sends_per_s", "sends/s")
        add("   pacing_overhead (on / off)", "pacing_overhead", "", "goal >= 0.9")
    if "operate" in sections:
        rows.append((f"7. Operating ({_fmt(r.get('enroll_many_cli_contacts'))} contacts)", "", ""))
        add("   drip enroll-many (subprocess) x 5 steps", "enroll_many_cli_steps_per_s", "steps/s")
        add("   enroll_many_cli_vs_copy", "enroll_many_cli_vs_copy", "", "goal >= 0.25")
        add("   import a CSV with consent", "import_rows_per_s", "rows/s")
        add("   import_vs_copy", "import_vs_copy", "", "goal >= 0.1")
    if "startup" in sections:
        rows.append((f"8. Start-up (medians of {_fmt(r.get('cli_start_reps'))} runs)", "", ""))
        add("   drip history 1 (subprocess, small SQLite)", "cli_history_s", "s")
        add('   python -c "import sqlalchemy"', "python_import_sqlalchemy_s", "s")
        add("   cli_start_vs_python", "cli_start_vs_python", "", "goal <= 2.5")
        add(
            f"   drip replay of tests/scenarios/ ({_fmt(r.get('replay_suite_scenarios'))} files,"
            " one process)",
            "replay_suite_s",
            "s",
        )
        add(
            "   replay_suite_s_per_scenario",
            "replay_suite_s_per_scenario",
            "s",
            "goal <= 0.25",
        )
        if "replay_suite_unavailable" in r:
            rows.append(("   (not measured)", "n/a", str(r["replay_suite_unavailable"])))
    if "events" in sections:
        rows.append((f"9. Lead events ({_fmt(r.get('events_ingested'))} lead.updated)", "", ""))
        add("   drip events ingest (subprocess), 20 trigger campaigns", "events_ingest_per_s",
            "events/s")  # fmt: skip
        add("   raw COPY into inbox_events", "events_copy_s", "s")
        add("   enrollments made by triggers", "events_enrolled")
        add("   events_vs_copy", "events_vs_copy", "", "goal >= 0.1")
        add("   POST /events, batches of 500 (gunicorn, 2 workers, 2 clients)",
            "post_events_per_s", "events/s",
            "goal >= 2000")  # fmt: skip
    if "webhooks" in sections:
        rows.append((f"10. Webhooks out ({_fmt(r.get('webhook_events'))} events)", "", ""))
        add("   plain requests.Session POST loop", "webhook_plain_s", "s")
        add("   drip outbox delivery (claim, sign, post, settle)", "webhook_drip_s", "s")
        add("   webhook_delivery_vs_post (plain / drip)", "webhook_delivery_vs_post", "",
            "goal >= 0.5")  # fmt: skip
    if "lookup_overhead" in sections:
        rows.append((f"11. Reassigned numbers ({_fmt(r.get('lookup_sends_per_round'))} bulk texts "
                     "a round, every number verified)", "", ""))  # fmt: skip
        add("   embedded fire path, check off", "lookup_off_sends_per_s", "sends/s")
        add("   embedded fire path, check on (cache hits)", "lookup_on_sends_per_s", "sends/s")
        add("   lookup_overhead (on / off)", "lookup_overhead", "", "goal >= 0.9")
    for key, value in r.items():
        if key.endswith("_error"):
            rows.append((f"ERROR in {key.removesuffix('_error')}", "", str(value)[:200]))
    width = max(len(n) for n, _, _ in rows) + 2
    vwidth = max(len(v) for _, v, _ in rows) + 2
    lines = [
        f"drip benchmarks ({r.get('mode')}, {r.get('cpus')} CPUs)",
        "-" * (width + vwidth + 16),
    ]
    lines += [f"{n:<{width}}{v:>{vwidth}}  {note}".rstrip() for n, v, note in rows]
    goal_lines = []
    for key, section, goal, ok in GOALS:
        value = r.get(key)
        if isinstance(value, (int, float)):
            goal_lines.append(f"{key} = {_fmt(float(value))} (goal {goal}): "
                              f"{'met' if ok(float(value)) else 'MISSED'}")  # fmt: skip
        elif section in sections:
            goal_lines.append(f"{key}: not measured")
    return "\n".join([*lines, "-" * (width + vwidth + 16), *goal_lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a smaller run, under five minutes")
    mode.add_argument("--smoke", action="store_true", help="tiny numbers, for CI")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})",
    )
    args = parser.parse_args(argv)
    sizes = SIZES["smoke" if args.smoke else "quick" if args.quick else "full"]
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")

    from drip.logging import configure_logging

    configure_logging("json", "WARNING")
    signal.signal(signal.SIGTERM, _stop_on_signal)
    results: dict[str, Any] = {"mode": sizes.mode, "cpus": os.cpu_count()}
    failed = False
    started = time.perf_counter()
    with scratch_context(sizes) as ctx:
        for name in sections:
            t0 = time.perf_counter()
            try:
                results.update(SECTIONS[name](ctx))
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                failed = True
                say(f"{name} failed:\n{traceback.format_exc()}")
                results[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
            finally:
                ctx.processes.stop_all()
            results[f"{name}_wall_s"] = round(time.perf_counter() - t0, 2)
            say(f"{name} done in {results[f'{name}_wall_s']:.1f}s")
    results["total_wall_s"] = round(time.perf_counter() - started, 2)
    results["scratch_databases"] = list(ctx.dbs.created)
    for key, *_ in GOALS:
        results.setdefault(key, None)
    print(table(results, sections))
    print(json.dumps(_rounded(results), sort_keys=True), flush=True)
    return 1 if failed else 0


def _rounded(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, float):
            out[key] = None if math.isinf(value) or math.isnan(value) else round(value, 4)
        else:
            out[key] = value
    return out


if __name__ == "__main__":
    sys.exit(main())
