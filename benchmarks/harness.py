"""Shared parts of the benchmarks: sizes, scratch database, Redis, processes, memory, seeding.

Everything the benchmark creates it also removes: the scratch PostgreSQL
database (dropped ``WITH (FORCE)``), the Redis keys that did not exist before
the run, the worker processes (their whole process group, by the id of the
process this harness started) and the fake Twilio server's process.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_LOCK_URL = "redis://127.0.0.1:6379/0"  # where the tests keep their locks
CAMPAIGN = "smart-drip-new-lead"  # the bundled 5-step Smart-Drip campaign


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark is in one mode (smoke, quick, full)."""

    mode: str
    contacts: int  # scheduling: contacts enrolled, 5 steps each
    baseline_jobs: int  # APScheduler / Celery ETA jobs added (capped: they are slow and heavy)
    memory_drip_sends: int  # future sends in the DB while the drip worker runs
    memory_naive_tasks: int  # ETA tasks the naive worker holds
    claim_small: int  # pending sends in the small backlog (including the due ones)
    claim_large: int  # pending sends in the large backlog
    claim_batch: int  # due sends claimed per measurement
    claim_reps: int
    fire_sends: int  # sends fired end to end through the worker pool
    noop_tasks: int  # no-op tasks through the same pool
    scaling_sends: int = 600  # sends per scaling round
    scaling_order: tuple[int, ...] = (1, 2, 2, 1)  # pool sizes of the scaling rounds, in order
    worker_concurrency: int = 2
    fire_rounds: int = 8  # firing: rounds, half drip and half no-op, alternating
    rss_reps: int = 1
    schedule_reps: int = 2  # runs each of drip and COPY, alternating
    settle_window: float = 2.0  # seconds the worker's RSS must hold still before it is read
    replay: str = "all"  # "all": the seed scenario and tests/scenarios/; "seed": the seed only


SIZES = {
    "smoke": Sizes(
        mode="smoke",
        contacts=400,
        schedule_reps=1,
        baseline_jobs=500,
        memory_drip_sends=5_000,
        memory_naive_tasks=1_000,
        claim_small=2_000,
        claim_large=20_000,
        claim_batch=200,
        claim_reps=3,
        fire_sends=400,
        noop_tasks=400,
        scaling_sends=100,
        scaling_order=(1, 2),
        fire_rounds=4,
        settle_window=0.8,
        replay="seed",
    ),
    "quick": Sizes(
        mode="quick",
        contacts=20_000,
        baseline_jobs=3_000,
        memory_drip_sends=100_000,
        memory_naive_tasks=20_000,
        claim_small=10_000,
        claim_large=100_000,
        claim_batch=1_000,
        claim_reps=9,
        fire_sends=3_000,
        noop_tasks=3_000,
        # Not the default 600: a 600-send round of 2 workers lasts ~1.2 s, and its fixed
        # edges (the first dispatch's claim before either worker has a batch, one worker
        # idle beside the other's last batch: profiles/fire-accounting.txt, part C) cost
        # it 70-200 ms quiet and more under load, about twice their share of a 1-worker
        # round: the ratio measured the round's edges as much as the scaling.
        scaling_sends=2_000,
    ),
    "full": Sizes(
        mode="full",
        contacts=200_000,
        baseline_jobs=50_000,
        memory_drip_sends=1_000_000,
        memory_naive_tasks=100_000,
        claim_small=10_000,
        claim_large=1_000_000,
        claim_batch=1_000,
        claim_reps=11,
        fire_sends=20_000,
        noop_tasks=20_000,
        scaling_sends=4_000,
        rss_reps=2,
    ),
}


# --------------------------------------------------------------------------- output


def say(message: str) -> None:
    """Progress on standard error, so standard output holds only the table and the JSON line."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


# --------------------------------------------------------------------------- PostgreSQL


def libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


class ScratchDatabases:
    """Creates ``<prefix><random>`` databases next to the admin database; drops them all."""

    def __init__(self, admin_url: str, prefix: str = "drip_bench_") -> None:
        self.admin_url = admin_url
        self.prefix = prefix
        self._names: list[str] = []
        self.created: list[str] = []  # every name ever created, for the record
        self._admin: psycopg.Connection[Any] | None = None

    def _conn(self) -> psycopg.Connection[Any]:
        if self._admin is None:
            self._admin = psycopg.connect(libpq(self.admin_url), autocommit=True, connect_timeout=5)
        return self._admin

    def create(self, suffix: str = "") -> str:
        """A new empty database (not migrated); returns its SQLAlchemy URL."""
        name = f"{self.prefix}{secrets.token_hex(4)}{suffix}"
        self._conn().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._names.append(name)
        self.created.append(name)
        return with_database(self.admin_url, name)

    def drop_all(self) -> None:
        for name in reversed(self._names):
            try:
                self._conn().execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            except psycopg.Error as exc:
                say(f"could not drop scratch database {name}: {exc}")
        self._names.clear()
        if self._admin is not None:
            self._admin.close()
            self._admin = None


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(libpq(url), autocommit=True)


def analyze(url: str, table: str = "scheduled_sends", *, vacuum: bool = True) -> None:
    """``VACUUM ANALYZE`` (or ``ANALYZE``) the table, so the planner knows what it holds."""
    with connect(url) as conn:
        conn.execute(f"{'VACUUM ' if vacuum else ''}ANALYZE {table}")


def count(url: str, query: str, params: Sequence[Any] = ()) -> int:
    with connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- Redis


#: The test fixtures' lock on a Redis database number (tests/conftest.py), taken
#: the same way here: a run must not share its database with a test (which
#: flushes it) or another run (which deletes the keys it added, drip's queues
#: among them, and whose workers would consume this run's tasks).
REDIS_LOCK_PREFIX = "drip-test:db-lock:"
REDIS_LOCK_SECONDS = 4 * 3600  # longer than a full run


def redis_url_from_env() -> str | None:
    """``DRIP_BENCH_REDIS_URL``, or None: then :class:`RedisScratch` locks a free database."""
    return os.environ.get("DRIP_BENCH_REDIS_URL") or None


def _locked_database(base_url: str) -> tuple[str, str, str]:
    """(url, lock key, token) of a Redis database no test or other run holds.

    Not the base database (it holds the locks) nor 15, the default of runs
    made before the lock existed.
    """
    locks = redis.Redis.from_url(base_url, socket_connect_timeout=5)
    try:
        try:
            count = int(locks.config_get("databases").get("databases") or 16)
        except redis.ResponseError:
            count = 16
        base_db = int(locks.connection_pool.connection_kwargs.get("db", 0))
        token = secrets.token_hex(8)
        deadline = time.monotonic() + 120
        while True:
            for n in range(count - 2, -1, -1):
                if n == base_db:
                    continue
                key = f"{REDIS_LOCK_PREFIX}{n}"
                if locks.set(key, token, nx=True, ex=REDIS_LOCK_SECONDS):
                    parts = urlsplit(base_url)
                    url = parts._replace(path=f"/{n}").geturl()
                    return url, key, token
            if time.monotonic() > deadline:
                raise RuntimeError(f"no free Redis database on {base_url} after 120 s")
            time.sleep(0.5)
    finally:
        locks.close()


class RedisScratch:
    """Remembers which keys existed at the start; ``cleanup`` deletes every key added since.

    Without a URL it takes a free database under the tests' lock (see
    :data:`REDIS_LOCK_PREFIX`) and releases it at the end.
    """

    def __init__(self, url: str | None) -> None:
        self._lock: tuple[str, str, str] | None = None
        if url is None:
            url, key, token = _locked_database(DEFAULT_REDIS_LOCK_URL)
            self._lock = (DEFAULT_REDIS_LOCK_URL, key, token)
        self.url = url
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5)
        self.client.ping()
        self._before = set(self.client.scan_iter(count=1000))
        if self._before:
            say(f"Redis {self.safe_url} is not empty ({len(self._before)} keys); those are kept")

    @property
    def safe_url(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"

    def cleanup(self) -> None:
        added = [k for k in self.client.scan_iter(count=1000) if k not in self._before]
        for start in range(0, len(added), 500):
            self.client.delete(*added[start : start + 500])
        self.client.close()
        if self._lock is not None:
            base, key, token = self._lock
            locks = redis.Redis.from_url(base, socket_connect_timeout=5)
            if locks.get(key) == token.encode():
                locks.delete(key)
            locks.close()


def queue_length(client: redis.Redis, queue: str) -> int:
    """Messages waiting in a kombu Redis queue (all priorities)."""
    total = 0
    for key in (queue, *(f"{queue}\x06\x16{p}" for p in range(1, 10))):
        total += int(client.llen(key))
    return total


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Child:
    """A process this harness started, in a process group of its own."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@dataclass
class Processes:
    """Starts children and stops them: SIGTERM to the group, then SIGKILL after a grace time."""

    workdir: Path
    children: list[Child] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        cwd: Path = ROOT,
    ) -> Child:
        log = self.workdir / f"{name}-{len(self.children)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the prefork children go with it
            )
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def stop(self, child: Child, timeout: float = 15.0) -> None:
        if child.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.proc.wait(timeout=5)
        # Prefork children left behind by a parent that died first.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in list(reversed(self.children)):
            self.stop(child)


def wait_for(
    what: str,
    check: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    child: Child | None = None,
) -> None:
    """Poll ``check`` until true; on timeout (or the child exiting) raise with context."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if child is not None and child.proc.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited ({child.proc.returncode}) while waiting for {what}:\n"
                + child.tail()
            )
        if time.monotonic() > deadline:
            tail = f"\n{child.name} log:\n{child.tail()}" if child is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)


#: Appended to the benchmark's copy of ``campaigns/account.yaml``: pacing stays on
#: (1 segment/s per number without it), at a rate that never binds, because the
#: benchmarks measure drip's own throughput against a baseline, not the carrier's.
BENCH_SENDERS = """
# benchmarks: every number at a rate that never binds (drip's throughput is measured)
senders:
  default: 10000
"""


def bench_campaigns(workdir: Path) -> Path:
    """The bundled ``campaigns/`` copied into ``workdir``, its account.yaml with ``BENCH_SENDERS``."""
    target = workdir / "campaigns"
    if not (target / "account.yaml").exists():
        shutil.copytree(ROOT / "campaigns", target, dirs_exist_ok=True)
        with (target / "account.yaml").open("a", encoding="utf-8") as account:
            account.write(BENCH_SENDERS)
    return target


def base_env(workdir: Path) -> dict[str, str]:
    """The environment of child processes: the benchmark's own, with drip's home in ``workdir``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(BENCH_DIR), env.get("PYTHONPATH", "")) if p
    )
    env["DRIP_HOME"] = str(workdir / "drip-home")
    env["DRIP_CAMPAIGNS_DIR"] = str(bench_campaigns(workdir))
    env.setdefault("DRIP_LOG_FORMAT", "json")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("CELERY_CONFIG_MODULE", None)
    return env


def celery_bin() -> str:
    candidate = Path(PYTHON).with_name("celery")
    return str(candidate) if candidate.exists() else "celery"


def start_celery_worker(
    processes: Processes,
    name: str,
    app: str,
    queues: Sequence[str],
    env: dict[str, str],
    *,
    concurrency: int,
    include: str | None = None,
    timeout: float = 60.0,
) -> Child:
    """``celery -A app worker -Q queues -c N``, returned once it consumes (``worker_ready``).

    Gossip, mingle and heartbeats are off: they only matter between several
    workers and add start-up time and background noise to the measurements.
    """
    ready = processes.workdir / f"{name}-{secrets.token_hex(4)}.ready"
    argv = [
        celery_bin(), "-A", app, "worker", "-Q", ",".join(queues), "-c", str(concurrency),
        "-n", f"{name}-{secrets.token_hex(3)}@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "-l", "WARNING",
    ]  # fmt: skip
    if include:
        argv += ["--include", include]
    child = processes.start(name, argv, {**env, "DRIP_BENCH_READY_FILE": str(ready)})
    wait_for(f"{name} to be ready", ready.exists, timeout=timeout, interval=0.1, child=child)
    return child


# --------------------------------------------------------------------------- memory


def rss_kib(pid: int) -> int:
    """``VmRSS`` of one process in KiB, from ``/proc/<pid>/status`` (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, from the parent ids in ``/proc/*/stat``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for kid in parents.get(todo.pop(), []):
            found.append(kid)
            todo.append(kid)
    return found


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (the worker and its pool)."""
    return sum(rss_kib(p) for p in (pid, *descendants(pid))) / 1024


def settled_rss_mib(
    pid: int, *, window: float = 2.0, tolerance: float = 0.3, timeout: float = 30
) -> float:
    """Tree RSS once it has stopped moving (within ``tolerance`` MiB over ``window`` seconds)."""
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        samples.append((now, tree_rss_mib(pid)))
        recent = [v for t, v in samples if t >= now - window]
        if now - samples[0][0] >= window and max(recent) - min(recent) <= tolerance:
            return recent[-1]
        if now > deadline:
            return recent[-1]
        time.sleep(0.2)


# --------------------------------------------------------------------------- seeding

#: Zones of the contacts: explicit zones on some, none on others (resolved from the area code).
ZONE_MIX: tuple[tuple[str | None, str, str | None], ...] = (
    # (contacts.timezone, area code, contacts.state)
    ("America/New_York", "617", "MA"),
    ("America/Chicago", "312", "IL"),
    ("America/Denver", "303", "CO"),
    ("America/Los_Angeles", "415", "CA"),
    ("America/Phoenix", "602", "AZ"),
    (None, "305", None),  # Miami: New York zone, Florida state rules, from the area code
    (None, "907", None),  # Anchorage
    (None, "808", None),  # Honolulu
    (None, "405", None),  # Oklahoma City
    (None, "206", "WA"),  # Seattle
)

CONSENT_TEXT = "Yes, text me about homes. Msg & data rates may apply. Reply STOP to opt out."


def zones_in_window(at: datetime, start_hour: int = 9, end_hour: int = 19) -> list[tuple[str, str]]:
    """(zone, area code) pairs of US zones whose local time at ``at`` is inside the send window.

    The firing benchmark uses them so that every send is due *and* allowed now;
    outside US hours it falls back to zones elsewhere in the world.
    """
    candidates = [
        ("America/New_York", "617"),
        ("America/Chicago", "312"),
        ("America/Denver", "303"),
        ("America/Los_Angeles", "415"),
        ("America/Anchorage", "907"),
        ("Pacific/Honolulu", "808"),
        ("Europe/London", "617"),
        ("Europe/Berlin", "312"),
        ("Asia/Kolkata", "303"),
        ("Asia/Tokyo", "415"),
        ("Australia/Sydney", "907"),
        ("Pacific/Auckland", "808"),
        ("America/Sao_Paulo", "617"),
        ("Asia/Dubai", "312"),
    ]
    good = [
        (zone, area)
        for zone, area in candidates
        if start_hour <= at.astimezone(ZoneInfo(zone)).hour < end_hour
    ]
    if not good:  # cannot happen with the spread above, but never return nothing
        good = [("Etc/GMT-12", "617")]
    return good


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def copy_rows(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]
) -> None:
    """COPY rows in text format, built in chunks (faster than ``write_row`` for many rows)."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with conn.cursor() as cur, cur.copy(statement) as copy:
        buf = io.StringIO()
        for n, row in enumerate(rows, 1):
            buf.write("\t".join(_copy_text(v) for v in row))
            buf.write("\n")
            if n % 20_000 == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        if buf.tell():
            copy.write(buf.getvalue())


def add_agent(url: str, now: datetime) -> int:
    with connect(url) as conn:
        row = conn.execute(
            "INSERT INTO agents (first_name, last_name, phone, email, created_at)"
            " VALUES ('Sam', 'Lee', '+16175550100', 'sam@example.com', %s) RETURNING id",
            (now,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def seed_contacts(
    url: str,
    n: int,
    now: datetime,
    *,
    agent_id: int,
    zones: Sequence[tuple[str | None, str, str | None]] = ZONE_MIX,
    phone_offset: int = 0,
) -> list[int]:
    """Insert ``n`` consenting contacts (registration evidence) spread over ``zones``; their ids."""
    columns = (
        "first_name", "last_name", "phone", "email", "state", "timezone", "source", "agent_id",
        "sms_consent_at", "sms_consent_source", "sms_consent_text", "text_status",
        "email_opted_out", "created_at", "updated_at",
    )  # fmt: skip
    consent_at = now - timedelta(days=1)

    def rows() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            zone, area, state = zones[i % len(zones)]
            number = phone_offset + i
            yield (
                f"Lead{number}", "Bench", f"+1{area}2{number:06d}", f"lead{number}@example.com",
                state, zone, "registration", agent_id, consent_at, "registration",
                CONSENT_TEXT, "textable", False, consent_at, consent_at,
            )  # fmt: skip

    if n > 1_000_000:
        raise ValueError("phone numbers of the seeded contacts hold 6 digits of counter")
    with connect(url) as conn:
        with conn.transaction():
            before = conn.execute("SELECT coalesce(max(id), 0) FROM contacts").fetchone()
            copy_rows(conn, "contacts", columns, rows())
        first = int(before[0]) if before else 0
        ids = [
            int(r[0])
            for r in conn.execute(
                "SELECT id FROM contacts WHERE id > %s ORDER BY id", (first,)
            ).fetchall()
        ]
        conn.execute("ANALYZE contacts")
    return ids


def seed_due_bulk(
    ctx: Context,
    deps: Any,
    n: int,
    zones: Sequence[tuple[str | None, str, str | None]],
    phone_offset: int,
    *,
    consent_age: timedelta = timedelta(days=2),
) -> tuple[datetime, list[int]]:
    """``n`` fresh contacts of the agent, each with one bulk text due a minute ago.

    They consented ``consent_age`` and a day ago. Returns now and the contacts' ids.
    """
    from drip.domain.enums import Channel, MessageKind, SenderRole
    from drip.store import claims

    now = datetime.now(ctx.now.tzinfo)
    contacts = seed_contacts(
        ctx.url, n, now - consent_age, agent_id=ctx.agent_id, zones=zones,
        phone_offset=phone_offset,
    )  # fmt: skip
    due = now - timedelta(minutes=1)
    rows = [
        {
            "contact_id": c,
            "kind": MessageKind.BULK,
            "channel": Channel.SMS,
            "body": "Open house Sunday, {VisitorFirstName}",
            "sender_role": SenderRole.AGENT,
            "due_at": due,
            "created_at": due,
        }
        for c in contacts
    ]
    with deps.sessions.begin() as session:
        claims.bulk_insert_sends(session, rows, now=due)
    return now, contacts


def fill_future_sends(url: str, n: int, now: datetime, *, campaign_id: int | None) -> None:
    """``n`` pending campaign sends due 15 to 360 days from ``now``, generated in the server.

    They belong to existing contacts (cycled) and no enrollment: only their
    state and due time matter to the claim and memory benchmarks.
    """
    if n <= 0:
        return
    with connect(url) as conn:
        conn.execute(
            """
            INSERT INTO scheduled_sends (
                contact_id, campaign_id, step_id, kind, channel, sender_role,
                due_at, original_due_at, state, attempts, catching_up, created_at, updated_at)
            SELECT c.ids[1 + mod(g, array_length(c.ids, 1))], %(campaign)s, 'day-45-market-update',
                   'campaign', 'sms', 'agent',
                   %(now)s + interval '15 days' + mod(g, 345) * interval '1 day'
                           + mod(g, 86400) * interval '1 second',
                   %(now)s + interval '15 days' + mod(g, 345) * interval '1 day'
                           + mod(g, 86400) * interval '1 second',
                   'pending', 0, false, %(now)s, %(now)s
            FROM generate_series(1, %(n)s) AS g,
                 (SELECT array_agg(id) AS ids FROM (SELECT id FROM contacts LIMIT 10000) s) AS c
            """,
            {"campaign": campaign_id, "now": now, "n": n},
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary folder for logs and drip's home; kept when ``DRIP_BENCH_KEEP`` is set."""
    path = Path(tempfile.mkdtemp(prefix="drip-bench-"))
    (path / "drip-home").mkdir()
    try:
        yield path
    finally:
        if os.environ.get("DRIP_BENCH_KEEP"):
            say(f"logs kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- drip in this process


@dataclass
class Context:
    """What every benchmark gets: sizes, the scratch database, Redis, processes, drip."""

    sizes: Sizes
    dbs: ScratchDatabases
    url: str  # the migrated scratch database
    redis_url: str
    redis: RedisScratch
    workdir: Path
    processes: Processes
    deps: Any  # drip.services.deps.Deps on ``url``
    agent_id: int
    campaign_id: int
    now: datetime
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def scratch_context(sizes: Sizes, *, redis: bool = True) -> Iterator[Context]:
    """A Context on fresh scratch parts, torn down after: ``run.py``'s and the profilers'.

    A work folder, a scratch database migrated with the bundled campaign and one
    agent, drip's dependencies on it, and (``redis``) a scratch Redis prefix. On
    the way out: every process started stopped, the engine disposed, the
    databases dropped, the Redis keys removed.
    """
    with workdir() as wd:
        dbs = ScratchDatabases(os.environ.get("DRIP_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL)
        processes = Processes(wd)
        redis_scratch = RedisScratch(redis_url_from_env()) if redis else None
        deps = None
        try:
            now = utcnow()
            url = dbs.create()
            deps = drip_deps(url, wd)
            campaign_id = prepare_database(url, deps, now)
            yield Context(
                sizes=sizes, dbs=dbs, url=url,
                redis_url=redis_scratch.url if redis_scratch else "",
                redis=redis_scratch, workdir=wd, processes=processes,  # type: ignore[arg-type]
                deps=deps, agent_id=add_agent(url, now), campaign_id=campaign_id, now=now,
            )  # fmt: skip
        finally:
            processes.stop_all()
            if deps is not None:
                deps.engine.dispose()
            dbs.drop_all()
            if redis_scratch is not None:
                redis_scratch.cleanup()


@contextlib.contextmanager
def fake_twilio_deps(ctx: Context) -> Iterator[Any]:
    """``ctx.deps`` sending texts with the real twilio SDK to a fake Twilio server process.

    The fake is :class:`~drip.testing.fake_twilio.FakeTwilioProcess`, stopped on the way out.
    """
    from dataclasses import replace

    from drip.testing.fake_twilio import FakeTwilioProcess

    with FakeTwilioProcess() as fake:
        sms = fake.transport()
        try:
            yield replace(ctx.deps, sms=sms)
        finally:
            sms.close()


def tick_rounds_on_off(
    label: str,
    rounds: int,
    per_round: int,
    prepare: Callable[[bool, int], tuple[Any, datetime]],
    check: Callable[[], str] = lambda: "",
) -> tuple[float, float]:
    """Sends/s of the embedded fire path (``dispatch.tick``) with a feature on, and off: medians.

    Rounds alternate off, on, on, off, ... (load from elsewhere falls on both
    alike), after round -1, which warms up pools and caches and is not timed.
    ``prepare(on, r)`` seeds round ``r``'s ``per_round`` due sends and returns
    the deps (the feature on or off) and the time to tick at. A round that does
    not send them all, or after which ``check()`` names a problem, raises.
    """
    from drip.services import dispatch

    rates: dict[bool, list[float]] = {True: [], False: []}
    for r in range(-1, rounds):
        on = r % 4 not in (0, 3)
        deps, now = prepare(on, r)
        started = time.perf_counter()
        summary = dispatch.tick(deps, now)
        elapsed = time.perf_counter() - started
        sent = summary.counts().get("sent", 0)
        problem = check()
        if sent != per_round or problem:
            raise RuntimeError(f"{label} round {r}: {summary.counts()} {problem}".rstrip())
        if r < 0:
            continue
        rates[on].append(rate(sent, elapsed))
        say(f"{label} round {r + 1}/{rounds} ({'on' if on else 'off'}): {rates[on][-1]:.0f}/s")
    return median(rates[True]), median(rates[False])


def drip_settings(url: str, workdir: Path) -> Any:
    from drip.config import Settings

    return Settings(
        database_url=url,
        home=workdir / "drip-home",
        outbox=workdir / "drip-home" / "outbox.jsonl",
        campaigns_dir=bench_campaigns(workdir),
        log_format="json",
        log_level="WARNING",
    )


def drip_deps(url: str, workdir: Path) -> Any:
    """drip's Deps on ``url``, with an in-memory transport (this process never sends)."""
    from drip.bootstrap import build
    from drip.transports.recording import RecordingTransport

    recorder = RecordingTransport()
    return build(drip_settings(url, workdir), sms=recorder, email=recorder)


def prepare_database(url: str, deps: Any, now: datetime) -> int:
    """Migrate ``url`` and load the bundled campaigns; the Smart-Drip campaign's id."""
    from drip.campaigns.loader import load_campaigns
    from drip.services.sync import sync_campaigns
    from drip.store.migrate import upgrade

    upgrade(url)
    loaded = load_campaigns(ROOT / "campaigns")
    if not loaded.ok:
        raise RuntimeError("bundled campaigns do not load:\n" + "\n".join(loaded.errors))
    sync_campaigns(deps, list(loaded.campaigns.values()), now)
    with connect(url) as conn:
        row = conn.execute("SELECT id FROM campaigns WHERE name = %s", (CAMPAIGN,)).fetchone()
    if row is None:
        raise RuntimeError(f"campaign {CAMPAIGN!r} is not among the bundled campaigns")
    return int(row[0])


# --------------------------------------------------------------------------- CPU time

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (from ``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICK


def database_backends(url: str) -> list[int]:
    """Process ids of the PostgreSQL backends connected to ``url``'s database (local server)."""
    name = make_url(url).database
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return [int(r[0]) for r in rows]
