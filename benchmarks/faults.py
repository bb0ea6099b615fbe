"""The fault suite: each fault of issue 12 against real parts, every send reconciled with the ledger.

Real parts: a Celery worker with two pool processes and beat (real processes,
killed by pid), PostgreSQL (a scratch database per fault; connections killed
with ``pg_terminate_backend`` on that database only; refused with
``ALLOW_CONNECTIONS false``), Redis (``FLUSHDB`` of the suite's own database
number, one found empty at the start), the webhook app (``drip serve``,
restarted), and the fake Twilio server in its own process with its fault
modes (``POST /_fake/fault``) and its ledger of every message it accepted
(``GET /_fake/ledger``).

After each fault the suite waits for the sends to settle, runs ``reconcile``
(with a short horizon: the fake server records a message before it answers,
so its list is complete at once), lets the workers send what came back to
pending, and compares the database with the ledger:

- ``duplicates``: messages in the ledger beyond one per send;
- ``lost``: neither sent, pending nor reported: a ledger message with no
  message row, a ``sent`` send without a sid, a send left ``queued`` or
  ``sending``, an inbound text or callback that never reached the database;
- ``unknown_after_reconcile``: sends still ``unknown``;
- ``failed_not_refused``: sends ``failed`` although the fake server never
  refused their number for good.

Usage::

    python benchmarks/faults.py --quick          # under 10 minutes
    python benchmarks/faults.py --only gateway_500,kill_9 --sends 100

The last line of standard output is one JSON object: per fault and in total.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from faults_webhooks import FAULT_NAMES as WEBHOOK_FAULTS
from faults_webhooks import WEBHOOK_KEYS
from faults_webhooks import run_fault as run_webhook_fault
from harness import (
    PYTHON,
    ROOT,
    Child,
    Processes,
    ScratchDatabases,
    base_env,
    celery_bin,
    connect,
    descendants,
    free_port,
    say,
    seed_contacts,
    start_celery_worker,
    wait_for,
    workdir,
    zones_in_window,
)
from psycopg import sql
from sqlalchemy.engine import make_url

ACCOUNT_SID = "AC" + "0" * 30 + "01"
AUTH_TOKEN = "fake-twilio-auth-token"  # noqa: S105 - the fake server's public default
SENDING_TIMEOUT = 20  # seconds: a lost send is recovered quickly
RECONCILE_HORIZON = timedelta(seconds=5)
KEYS = ("duplicates", "lost", "unknown_after_reconcile", "failed_not_refused")
#: Decision codes that show a fault was met (counted per fault, as evidence it was exercised).
TRAIL = (
    "provider_unknown",
    "provider_unavailable",
    "provider_auth_failed",
    "stale_sending",
    "claim_expired",
    "batch_deadline",
    "reconciled_sent",
    "reconciled_absent",
)


# --------------------------------------------------------------------------- the rig


@dataclass
class Rig:
    """The processes and database of one fault."""

    work: Path
    processes: Processes
    dbs: ScratchDatabases
    redis_url: str
    fake_url: str
    url: str = ""
    worker: Child | None = None
    beat: Child | None = None
    web: Child | None = None
    web_url: str = ""
    phone_offset: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    # -- environment ----------------------------------------------------------

    def env(self, **overrides: str) -> dict[str, str]:
        env = base_env(self.work)
        env.update(
            DRIP_DATABASE_URL=self.url,
            DRIP_BROKER_URL=self.redis_url,
            DRIP_TICK_SECONDS="1",
            DRIP_SEND_BATCH="25",
            DRIP_SENDING_TIMEOUT_SECONDS=str(SENDING_TIMEOUT),
            TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            DRIP_TWILIO_BASE_URL=self.fake_url,
            DRIP_LOG_LEVEL="WARNING",
            DRIP_SECRET_KEY="drip-faults-secret",  # noqa: S106 - signs nothing that leaves the run
        )
        if self.web_url:
            env["DRIP_PUBLIC_URL"] = self.web_url
        env.update(overrides)
        return env

    # -- processes ------------------------------------------------------------

    def start_worker(self, **env: str) -> Child:
        self.worker = start_celery_worker(
            self.processes,
            "worker",
            "workers.celery_app",
            ["send", "dispatch"],
            self.env(**env),
            concurrency=2,
            include="bench_tasks",
        )
        return self.worker

    def start_beat(self) -> Child:
        schedule = self.work / f"beat-{time.monotonic_ns()}"
        argv = [
            celery_bin(),
            "-A",
            "workers.celery_app",
            "beat",
            "-s",
            str(schedule),
            "-l",
            "WARNING",
        ]
        self.beat = self.processes.start("beat", argv, self.env())
        return self.beat

    def start_web(self) -> Child:
        port = int(urllib.parse.urlsplit(self.web_url).port or 0)
        drip = Path(PYTHON).with_name("drip")
        argv = [str(drip), "serve", "--host", "127.0.0.1", "--port", str(port)]
        self.web = self.processes.start("web", argv, self.env(DRIP_LOG_LEVEL="INFO"))
        wait_for("the web app", lambda: _get(f"{self.web_url}/healthz") is not None, timeout=30)
        return self.web

    def kill_9(self, child: Child) -> None:
        """kill -9 the process and its pool children, by pid."""
        for pid in [*descendants(child.pid), child.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        child.proc.wait(timeout=10)
        self.processes.stop(child)

    def stop_all(self) -> None:
        for child in (self.web, self.beat, self.worker):
            if child is not None:
                self.processes.stop(child)
        self.web = self.beat = self.worker = None

    # -- the database -----------------------------------------------------------

    def fresh_database(self) -> None:
        from drip.store.migrate import upgrade

        self.url = self.dbs.create("_faults")
        upgrade(self.url)

    def seed(self, n: int) -> list[int]:
        """``n`` consenting contacts, each with one manual text due a minute ago; the send ids."""
        now = datetime.now(UTC)
        agent = _agent(self.url, now)
        zones = [(zone, area, None) for zone, area in zones_in_window(now)]
        contacts = seed_contacts(
            self.url,
            n,
            now - timedelta(days=2),
            agent_id=agent,
            zones=zones,
            phone_offset=self.phone_offset,
        )
        self.phone_offset += n
        due = now - timedelta(minutes=1)
        with connect(self.url) as conn:
            rows = conn.execute(
                """
                INSERT INTO scheduled_sends (contact_id, kind, channel, sender_role, body,
                    due_at, original_due_at, state, attempts, catching_up, created_at, updated_at)
                SELECT c, 'manual', 'sms', 'agent', 'Fault suite text ' || c, %(due)s, %(due)s,
                       'pending', 0, false, %(due)s, %(due)s
                FROM unnest(%(contacts)s::bigint[]) AS c
                RETURNING id
                """,
                {"due": due, "contacts": contacts},
            ).fetchall()
        return [int(r[0]) for r in rows]

    def counts(self) -> dict[str, int]:
        with connect(self.url) as conn:
            rows = conn.execute("SELECT state, count(*) FROM scheduled_sends GROUP BY state")
            return {str(s): int(n) for s, n in rows.fetchall()}

    def settle(self, timeout: float) -> None:
        """Wait until nothing is pending, queued or sending (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self.counts()
            if not any(counts.get(s, 0) for s in ("pending", "queued", "sending")):
                return
            time.sleep(0.5)

    def reconcile(self) -> None:
        """``reconcile`` with the fake server's complete list, in this process."""
        from drip.bootstrap import build
        from drip.config import Settings
        from drip.services.reconcile import reconcile
        from drip.transports.twilio_sms import TwilioSmsTransport

        settings = Settings(
            database_url=self.url,
            home=self.work / "drip-home",
            log_level="WARNING",
            log_format="json",
        )
        sms = TwilioSmsTransport(ACCOUNT_SID, AUTH_TOKEN, base_url=self.fake_url)
        deps = build(settings, sms=sms)
        try:
            reconcile(deps, datetime.now(UTC) + RECONCILE_HORIZON, horizon=RECONCILE_HORIZON)
        finally:
            deps.engine.dispose()
            sms.close()

    # -- the fake server ------------------------------------------------------------

    def fault(self, kind: str | None, **params: Any) -> None:
        data = {"kind": kind or "", **{k: str(v) for k, v in params.items()}}
        _post(f"{self.fake_url}/_fake/fault", data)

    def ledger(self) -> list[dict[str, Any]]:
        got = _get(f"{self.fake_url}/_fake/ledger")
        return list(got or [])

    def requests(self) -> list[dict[str, Any]]:
        got = _get(f"{self.fake_url}/_fake/requests")
        return list(got or [])


def _agent(url: str, now: datetime) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT id FROM agents WHERE phone = '+16175550100'").fetchone()
        if row is None:
            row = conn.execute(
                "INSERT INTO agents (first_name, last_name, phone, email, created_at)"
                " VALUES ('Sam', 'Lee', '+16175550100', 'sam@example.com', %s) RETURNING id",
                (now,),
            ).fetchone()
    assert row is not None
    return int(row[0])


def _get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local servers
            return json.loads(response.read() or b"null")
    except (OSError, ValueError):
        return None


def _post(url: str, data: dict[str, str], headers: dict[str, str] | None = None) -> int:
    body = urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local servers
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# --------------------------------------------------------------------------- measuring


def measure(rig: Rig, *, rounds: int = 3, settle: float = 60.0) -> dict[str, int]:
    """Reconcile, let the workers resend what came back, and compare with the ledger."""
    for _ in range(rounds):
        rig.settle(settle)
        rig.reconcile()
        if not any(rig.counts().get(s, 0) for s in ("pending", "queued", "sending", "unknown")):
            break
    rig.settle(settle)
    ledger = rig.ledger()
    with connect(rig.url) as conn:
        sends = conn.execute(
            "SELECT s.id, s.state, c.phone, m.provider_sid FROM scheduled_sends s "
            "JOIN contacts c ON c.id = s.contact_id LEFT JOIN messages m ON m.id = s.message_id"
        ).fetchall()
        sids = {
            str(r[0])
            for r in conn.execute(
                "SELECT provider_sid FROM messages WHERE provider_sid IS NOT NULL"
            ).fetchall()
        }
    phones = {str(r[2]) for r in sends}
    per_phone = Counter(str(m["to"]) for m in ledger if str(m["to"]) in phones)
    refused = {
        str(r["params"].get("To"))
        for r in rig.requests()
        if r["status"] and 400 <= int(r["status"]) < 500 and int(r["status"]) not in (401, 429)
    }
    states = Counter(str(r[1]) for r in sends)
    with connect(rig.url) as conn:
        codes = {
            str(code): int(count)
            for code, count in conn.execute(
                "SELECT code, count(*) FROM send_decisions WHERE code = ANY(%s) GROUP BY code",
                (list(TRAIL),),
            ).fetchall()
        }
    result = {
        "sends": len(sends),
        "sent": states.get("sent", 0),
        "pending": states.get("pending", 0),
        "duplicates": sum(n - 1 for n in per_phone.values() if n > 1),
        "lost": sum(1 for m in ledger if str(m["to"]) in phones and str(m["sid"]) not in sids)
        + sum(1 for r in sends if r[1] == "sent" and r[3] is None)
        + states.get("queued", 0)
        + states.get("sending", 0),
        "unknown_after_reconcile": states.get("unknown", 0),
        "failed_not_refused": sum(
            1 for r in sends if r[1] == "failed" and str(r[2]) not in refused
        ),
    }
    result["trail"] = codes  # what the fault made drip do, from the decisions it recorded
    result.update(rig.extra)
    return result


# --------------------------------------------------------------------------- the faults


def _running(rig: Rig) -> None:
    rig.start_worker()
    rig.start_beat()


def _when_sent(rig: Rig, share: float, total: int, timeout: float = 60.0) -> None:
    wait_for(
        f"{share:.0%} of the sends at the fake server",
        lambda: len(rig.ledger()) >= share * total,
        timeout=timeout,
        interval=0.1,
    )


def fault_gateway_500(rig: Rig, n: int) -> None:
    """Twilio accepts, then a gateway answers 500: unknown, never resent, found by reconcile."""
    _running(rig)
    rig.fault("accept_then_error", status=500, code=20500, times=max(1, n // 4))
    rig.seed(n)
    _when_sent(rig, 1.0, n, timeout=120)


def fault_outage_429(rig: Rig, n: int) -> None:
    """429/20429 for 8 s: deferred with a backoff (provider_unavailable), sent once it is back."""
    _running(rig)
    rig.fault("refuse", status=429, code=20429, seconds=8)
    rig.seed(n)
    time.sleep(8)


def fault_outage_500(rig: Rig, n: int) -> None:
    """500 for a quarter of the requests: maybe sent, so unknown; reconcile proves them absent."""
    _running(rig)
    refused = max(1, n // 4)
    rig.fault("refuse", status=500, code=20500, times=refused)
    rig.seed(n)
    wait_for(
        f"{refused} requests refused with 500",
        lambda: int((_get(f"{rig.fake_url}/_fake/stats") or {}).get("count", 0)) >= refused,
        timeout=60,
    )


def fault_timeout_after_accept(rig: Rig, n: int) -> None:
    """The answer never comes (accepted, then held past the client's 15 s timeout): unknown, found."""
    _running(rig)
    rig.fault("accept_then_hang", hang=17, times=2)
    rig.seed(n)
    _when_sent(rig, 1.0, n, timeout=120)


def fault_wrong_credentials(rig: Rig, n: int) -> None:
    """Wrong auth token: the circuit opens, nothing fails, sends stay pending until it is fixed."""
    rig.seed(n)
    rig.start_worker(TWILIO_AUTH_TOKEN="wrong-token")  # noqa: S106 - a deliberately wrong one
    rig.start_beat()

    def refused() -> int:
        return int((_get(f"{rig.fake_url}/_fake/stats") or {}).get("unauthorized", 0))

    wait_for("a request with the wrong credentials", lambda: refused() > 0, timeout=60)
    time.sleep(5)  # long enough for a storm of failures, if the circuit did not hold
    counts = rig.counts()
    rig.extra["failed_with_wrong_credentials"] = counts.get("failed", 0)
    rig.extra["requests_with_wrong_credentials"] = refused()
    assert rig.worker is not None
    rig.processes.stop(rig.worker)
    rig.start_worker()  # the right credentials: the deferred sends go out at their probe time


def _slow(rig: Rig) -> None:
    rig.fault("accept_then_hang", hang=0.02)  # 20 ms per message: a run long enough to hit


def fault_kill_9(rig: Rig, n: int) -> None:
    """kill -9 of the worker (pool and parent, by pid) three times mid-run, restarted each time."""
    rig.seed(n)
    _slow(rig)
    _running(rig)
    for share in (0.15, 0.35, 0.55):
        _when_sent(rig, share, n)
        assert rig.worker is not None
        rig.kill_9(rig.worker)
        rig.start_worker()
    rig.extra["kills"] = 3


def fault_db_connections_killed(rig: Rig, n: int) -> None:
    """pg_terminate_backend of every connection to the fault's own database, eight times."""
    rig.seed(n)
    _slow(rig)
    _running(rig)
    name = make_url(rig.url).database
    _when_sent(rig, 0.05, n)
    for _ in range(8):
        with connect(rig.dbs.admin_url) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        time.sleep(0.7)
    rig.extra["blips"] = 8


def fault_redis_flush(rig: Rig, n: int) -> None:
    """FLUSHDB of the suite's own Redis database twice mid-run (queued tasks lost)."""
    rig.seed(n)
    _slow(rig)
    _running(rig)
    client = redis.Redis.from_url(rig.redis_url)
    for share in (0.2, 0.5):
        _when_sent(rig, share, n)
        client.flushdb()
    client.close()


def fault_worker_frozen(rig: Rig, n: int) -> None:
    """One pool process stopped (SIGSTOP) past the sending timeout, then resumed."""
    rig.seed(n)
    _slow(rig)
    _running(rig)
    _when_sent(rig, 0.1, n)
    assert rig.worker is not None
    pool = descendants(rig.worker.pid)
    frozen = pool[0] if pool else rig.worker.pid
    os.kill(frozen, signal.SIGSTOP)
    time.sleep(SENDING_TIMEOUT + 10)
    os.kill(frozen, signal.SIGCONT)
    rig.extra["frozen_seconds"] = SENDING_TIMEOUT + 10


#: Status callbacks the fake server posts per accepted text, as Twilio does for a
#: long code: sending, sent, delivered. The web app is restarted only after all of
#: them arrived: Twilio does not retry a callback, so one refused by a stopped web
#: app is lost by design (docs/reliability.md says so).
CALLBACKS_PER_TEXT = 3


def fault_callbacks_before_row_web_restart(rig: Rig, n: int) -> None:
    """Callbacks that beat their message row (Twilio answers slowly), then a web restart."""
    n = min(n, 60)
    rig.seed(n)
    rig.start_web()
    # The answer to the create request is held 0.3 s while the callbacks go at once:
    # every callback reaches the web app before the worker has its sid, let alone its row.
    rig.fault("accept_then_hang", hang=0.3)
    _running(rig)
    wait_for(
        "every status callback to be posted",
        lambda: (
            int((_get(f"{rig.fake_url}/_fake/stats") or {}).get("callbacks", 0))
            >= CALLBACKS_PER_TEXT * n
        ),
        timeout=120,
        interval=0.2,
    )
    assert rig.web is not None
    first_web = rig.web
    rig.kill_9(rig.web)  # whatever the web app held in memory is gone
    rig.extra["callbacks_before_their_row"] = first_web.log_text().count("status_callback_kept")
    rig.start_web()
    rig.settle(60)
    stats = _get(f"{rig.fake_url}/_fake/stats") or {}
    deadline = time.monotonic() + 30
    stale = n
    while time.monotonic() < deadline:
        with connect(rig.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM messages WHERE direction = 'outbound' "
                "AND status NOT IN ('delivered')"
            ).fetchone()
        stale = int(row[0]) if row else 0
        if stale == 0:
            break
        time.sleep(1)
    with connect(rig.url) as conn:
        kept = conn.execute("SELECT count(*) FROM pending_callbacks").fetchone()
    rig.extra["callbacks_posted"] = int(stats.get("callbacks", 0))
    rig.extra["callbacks_refused_by_web"] = int(stats.get("callbacks_failed", 0))
    rig.extra["callbacks_still_kept"] = int(kept[0]) if kept else 0
    rig.extra["callbacks_lost"] = stale


def fault_inbound_database_down(rig: Rig, n: int) -> None:
    """STOP texts while the database refuses connections: spooled, 200, applied once it is back."""
    from twilio.request_validator import RequestValidator

    texts = max(10, n // 10)
    rig.seed(texts)
    rig.start_web()
    name = make_url(rig.url).database
    with connect(rig.url) as conn:
        phones = [str(r[0]) for r in conn.execute("SELECT phone FROM contacts ORDER BY id")]
    with connect(rig.url) as conn:
        conn.execute("UPDATE scheduled_sends SET state = 'skipped'")  # only inbound matters here
    admin = connect(rig.dbs.admin_url)
    admin.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name))
    )
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
    )
    validator = RequestValidator(AUTH_TOKEN)
    answers: Counter[int] = Counter()
    try:
        for i, phone in enumerate(phones):
            params = {
                "MessageSid": f"SM{i:032x}",
                "From": phone,
                "To": "+16175550100",
                "Body": "please stop texting me",
                "AccountSid": ACCOUNT_SID,
            }
            url = f"{rig.web_url}/twilio/sms"
            signature = validator.compute_signature(url, params)
            answers[_post(url, params, {"X-Twilio-Signature": signature})] += 1
    finally:
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(name))
        )
        admin.close()
    deadline = time.monotonic() + 30
    opted = 0
    while time.monotonic() < deadline:
        with connect(rig.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM contacts WHERE sms_opted_out_at IS NOT NULL"
            ).fetchone()
        opted = int(row[0]) if row else 0
        if opted >= len(phones):
            break
        time.sleep(1)
    rig.extra["inbound_answered_200"] = answers.get(200, 0)
    rig.extra["inbound_5xx"] = sum(v for k, v in answers.items() if k >= 500)
    rig.extra["inbound_lost"] = len(phones) - opted


FAULTS: dict[str, Callable[[Rig, int], None]] = {
    "gateway_500": fault_gateway_500,
    "outage_429": fault_outage_429,
    "outage_500": fault_outage_500,
    "timeout_after_accept": fault_timeout_after_accept,
    "wrong_credentials": fault_wrong_credentials,
    "kill_9": fault_kill_9,
    "db_connections_killed": fault_db_connections_killed,
    "redis_flush": fault_redis_flush,
    "worker_frozen": fault_worker_frozen,
    "callbacks_before_row_web_restart": fault_callbacks_before_row_web_restart,
    "inbound_database_down": fault_inbound_database_down,
}
#: Extra counts folded into ``lost`` (an inbound text or callback that never arrived is lost).
LOST_EXTRAS = ("callbacks_lost", "inbound_lost")


# --------------------------------------------------------------------------- running


#: The lock keys the test suite's ``redis_url`` fixture takes in database 0 (tests/conftest.py):
#: a database number is used by whoever holds its key, so the suite never flushes another's.
REDIS_LOCK_PREFIX = "drip-test:db-lock:"


@contextlib.contextmanager
def _own_redis_db(base: str) -> Iterator[str]:
    """A Redis database number of our own, locked as the test fixtures lock theirs."""
    parts = urllib.parse.urlsplit(base)
    locks = redis.Redis.from_url(f"{parts.scheme}://{parts.netloc}/0")
    token = f"faults-{os.getpid()}-{time.monotonic_ns()}"
    chosen: int | None = None
    deadline = time.monotonic() + 60
    while chosen is None:
        for number in range(15, 0, -1):
            if locks.set(f"{REDIS_LOCK_PREFIX}{number}", token, nx=True, ex=3600):
                chosen = number
                break
        else:
            if time.monotonic() > deadline:
                raise RuntimeError("no free Redis database for the fault suite after 60 s")
            time.sleep(0.5)
    url = f"{parts.scheme}://{parts.netloc}/{chosen}"
    try:
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(url).flushdb()
        key = f"{REDIS_LOCK_PREFIX}{chosen}"
        if locks.get(key) == token.encode():
            locks.delete(key)
        locks.close()


def run(names: list[str], n: int) -> dict[str, Any]:
    from drip.testing.fake_twilio import FakeTwilioProcess

    admin = (
        os.environ.get("DRIP_BENCH_DATABASE_URL")
        or os.environ.get("DRIP_TEST_DATABASE_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    # DRIP_FAULTS_REDIS_URL: a Redis database that is the suite's alone (it is flushed);
    # otherwise one is locked the way the test fixtures lock theirs.
    given = os.environ.get("DRIP_FAULTS_REDIS_URL")
    base = os.environ.get("DRIP_BENCH_REDIS_URL") or "redis://127.0.0.1:6379/0"
    results: dict[str, Any] = {}
    owned = contextlib.nullcontext(given) if given else _own_redis_db(base)
    with owned as redis_url, workdir() as work:
        processes = Processes(work)
        dbs = ScratchDatabases(admin)
        web_port = free_port()
        try:
            with FakeTwilioProcess("--record", "--status-callbacks") as fake:
                fake_url = fake.base_url
                for name in [name for name in names if name in FAULTS]:
                    rig = Rig(work, processes, dbs, redis_url, fake_url)
                    rig.web_url = f"http://127.0.0.1:{web_port}"
                    rig.fresh_database()
                    fake.reset()
                    redis.Redis.from_url(redis_url).flushdb()
                    started = time.monotonic()
                    say(f"faults: {name} ({n} sends)")
                    try:
                        FAULTS[name](rig, n)  # returns once the fault has been met
                        rig.fault(None)
                        result = measure(rig)
                    finally:
                        rig.stop_all()
                    for extra in LOST_EXTRAS:
                        result["lost"] += int(result.get(extra, 0))
                    result["seconds"] = round(time.monotonic() - started, 1)
                    results[name] = result
                    print(json.dumps({"fault": name, **result}), flush=True)
        finally:
            processes.stop_all()
            dbs.drop_all()
    hooks = {}
    with workdir() as work:
        for name in [name for name in names if name in WEBHOOK_FAULTS]:
            say(f"faults: {name} ({n} webhook events)")
            hooks[name] = run_webhook_fault(name, admin, work, n)
            print(json.dumps({"fault": name, **hooks[name]}), flush=True)
    results = {name: r for name, r in results.items() if name in FAULTS}
    total = {key: sum(int(r[key]) for r in results.values()) for key in KEYS}
    for key in WEBHOOK_KEYS:
        total[key] = sum(int(r[key]) for r in hooks.values())
    total["goals_met"] = int(all(total[key] == 0 for key in (*KEYS, *WEBHOOK_KEYS)))
    return {"faults": {**results, **hooks}, "total": total}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sends: under 10 minutes")
    parser.add_argument("--sends", type=int, help="sends per fault (default 300, quick 120)")
    parser.add_argument(
        "--only", help="comma-separated fault names: " + ", ".join([*FAULTS, *WEBHOOK_FAULTS])
    )
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else [*FAULTS, *WEBHOOK_FAULTS]
    unknown = [name for name in names if name not in FAULTS and name not in WEBHOOK_FAULTS]
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(unknown)}")
    n = args.sends or (120 if args.quick else 300)
    os.chdir(ROOT)
    summary = run(names, n)
    print(json.dumps(summary), flush=True)
    return 0 if summary["total"]["goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
