"""Webhook faults: a misbehaving receiver with its own ledger, a killed worker, a killed database.

Each fault seeds N outbox events (50 contacts, in id order per contact) in a
scratch PostgreSQL database and runs the delivery worker as a real ``drip run
--no-web`` process (embedded mode: the outbox thread) against a receiver on
127.0.0.1 that records every request it read and what it answered. Faults:

- ``webhook_receiver_500``: the first requests answer 500;
- ``webhook_receiver_timeout``: the first requests get no answer before drip's timeout;
- ``webhook_receiver_reset``: the first requests are read and the connection reset;
- ``webhook_receiver_down``: the receiver is down (connection refused) for a while;
- ``webhook_worker_kill_9``: the worker is killed with SIGKILL mid-delivery and restarted;
- ``webhook_db_connections_killed``: drip's database connections are terminated mid-delivery.

Counted from the ledger once every event is delivered (or the wait runs out):
``webhooks_lost`` (an event never answered 2xx), ``webhooks_duplicated_beyond_retry``
(an event answered 2xx more than once, beyond the deliveries a killed worker or
database could not record: at most one round per kill), ``webhooks_out_of_order``
(a contact's events first answered 2xx out of id order).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
from harness import PYTHON, Processes, ScratchDatabases, base_env, free_port, say
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.engine import make_url

WEBHOOK_KEYS = ("webhooks_lost", "webhooks_duplicated_beyond_retry", "webhooks_out_of_order")
CONTACTS = 50
TIMEOUT_SECONDS = 1.0
ROUND = 200


@dataclass
class Ledger:
    """What the receiver read and answered: (event id, contact id, status or a fault word)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rows: list[tuple[str, int | None, str]] = field(default_factory=list)
    mode: str = "ok"
    faults_left: int = 0
    slow: float = 0.0

    def take_fault(self) -> str:
        with self.lock:
            if self.mode != "ok" and self.faults_left > 0:
                self.faults_left -= 1
                return self.mode
            return "ok"


def _handler(ledger: Ledger) -> type[BaseHTTPRequestHandler]:
    import json

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            doc = json.loads(body)
            event = (doc["id"], doc["data"].get("contact_id"))
            fault = ledger.take_fault()
            if ledger.slow:
                time.sleep(ledger.slow)
            if fault == "reset":
                with ledger.lock:
                    ledger.rows.append((*event, "reset"))
                self.request.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.request.close()
                return
            if fault == "timeout":
                time.sleep(TIMEOUT_SECONDS + 0.5)
                status = 504
                word = "timeout"
            elif fault == "500":
                status, word = 500, "500"
            else:
                status, word = 200, "200"
            with ledger.lock:
                ledger.rows.append((*event, word))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    return Handler


@contextlib.contextmanager
def _receiver(ledger: Ledger, port: int) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(ledger))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _seed(url: str, n: int) -> None:
    from drip.store.models import OutboxEvent

    now = datetime.now(UTC)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            insert(OutboxEvent),
            [
                {
                    "event_id": f"evt_fault_{i:06d}",
                    "type": "reply.received",
                    "contact_id": i % CONTACTS,
                    "payload": {"contact_id": i % CONTACTS, "text": f"reply {i}"},
                    "created_at": now,
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for i in range(n)
            ],
        )
    engine.dispose()


def _pending(url: str) -> int:
    from drip.store.models import OutboxEvent

    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.state != "delivered")
        )
    engine.dispose()
    return int(n or 0)


def _terminate(url: str) -> None:
    """Terminate every connection to the scratch database but this one (a database restart)."""
    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True
    ) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _count(ledger: Ledger, n: int, kills: int) -> dict[str, int]:
    ok: Counter[str] = Counter()
    first: dict[int, list[str]] = {}
    for event_id, contact, word in ledger.rows:
        if word != "200":
            continue
        if ok[event_id] == 0 and contact is not None:
            first.setdefault(contact, []).append(event_id)
        ok[event_id] += 1
    ids = [f"evt_fault_{i:06d}" for i in range(n)]
    lost = sum(1 for i in ids if ok[i] == 0)
    extra = sum(c - 1 for c in ok.values() if c > 1)
    allowed = kills * ROUND
    out_of_order = sum(1 for seq in first.values() if seq != sorted(seq))
    return {
        "webhooks_events": n,
        "webhooks_lost": lost,
        "webhooks_redelivered_after_kill": min(extra, allowed),
        "webhooks_duplicated_beyond_retry": max(0, extra - allowed),
        "webhooks_out_of_order": out_of_order,
        "webhooks_faulty_answers": sum(1 for _, _, w in ledger.rows if w != "200"),
    }


def run_fault(name: str, admin: str, work: Path, n: int) -> dict[str, Any]:
    """Run one webhook fault on a scratch database; its counts."""
    from drip.store.migrate import upgrade

    dbs = ScratchDatabases(admin)
    processes = Processes(work)
    ledger = Ledger()
    port = free_port()
    campaigns = work / f"campaigns-{name}"
    campaigns.mkdir(exist_ok=True)
    (campaigns / "account.yaml").write_text(
        "webhooks:\n  - name: faulty\n"
        f"    url: http://127.0.0.1:{port}/hook\n"
        "    events: [reply.received]\n    secret_env: DRIP_FAULTS_HOOK_SECRET\n",
        encoding="utf-8",
    )
    kills = 0
    try:
        url = dbs.create("_hooks")
        upgrade(url)
        _seed(url, n)
        env = base_env(work)
        env.update(
            DRIP_DATABASE_URL=url,
            DRIP_CAMPAIGNS_DIR=str(campaigns),
            DRIP_FAULTS_HOOK_SECRET="faults-secret",  # noqa: S106 - signs only this run's posts
            DRIP_WEBHOOK_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
            DRIP_WEBHOOK_BACKOFF_SECONDS="0.5",
            DRIP_TICK_SECONDS="1",
            DRIP_LOG_LEVEL="WARNING",
        )
        argv = [str(Path(PYTHON).with_name("drip")), "run", "--no-web"]
        if name in ("webhook_receiver_500", "webhook_receiver_timeout", "webhook_receiver_reset"):
            ledger.mode = name.rsplit("_", 1)[1]
            ledger.faults_left = 3 if ledger.mode == "timeout" else 12
        if name in ("webhook_worker_kill_9", "webhook_db_connections_killed"):
            ledger.slow = 0.01
        down = name == "webhook_receiver_down"
        worker = processes.start("webhooks-worker", argv, env)
        started = time.monotonic()
        with contextlib.ExitStack() as stack:
            if down:
                time.sleep(5)  # refused meanwhile: nothing listens on the port
            stack.enter_context(_receiver(ledger, port))
            if name == "webhook_worker_kill_9":
                while len(ledger.rows) < n // 3 and time.monotonic() - started < 60:
                    time.sleep(0.05)
                os.kill(worker.pid, signal.SIGKILL)
                worker.proc.wait(timeout=10)
                processes.stop(worker)
                kills += 1
                worker = processes.start("webhooks-worker", argv, env)
            if name == "webhook_db_connections_killed":
                while len(ledger.rows) < n // 3 and time.monotonic() - started < 60:
                    time.sleep(0.05)
                _terminate(url)
                kills += 1
            deadline = time.monotonic() + 120
            while _pending(url) and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(0.5)
        processes.stop(worker)
        result = _count(ledger, n, kills)
        result["seconds"] = round(time.monotonic() - started, 1)
        return result
    finally:
        processes.stop_all()
        dbs.drop_all()


FAULT_NAMES = (
    "webhook_receiver_500",
    "webhook_receiver_timeout",
    "webhook_receiver_reset",
    "webhook_receiver_down",
    "webhook_worker_kill_9",
    "webhook_db_connections_killed",
)


def main() -> None:
    import json
    import sys

    from harness import workdir

    admin = (
        os.environ.get("DRIP_TEST_DATABASE_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    names = sys.argv[1:] or list(FAULT_NAMES)
    with workdir() as work:
        for name in names:
            say(f"faults: {name}")
            print(json.dumps({"fault": name, **run_fault(name, admin, work, 600)}), flush=True)


if __name__ == "__main__":
    main()
