"""A durable local journal of webhooks the database could not take: one SQLite row each.

Twilio does not retry an inbound text or a status callback that got an
error, so a "please stop texting me" that arrives while the database is down
must not be answered 503 and lost. The web app appends it here instead (one
row, committed before the 200 goes out) and a background thread
(:class:`drip.web.spool.SpoolDrainer`) applies the rows later, oldest first,
deleting each once it is applied.

The journal is its own SQLite file (``DRIP_WEB_SPOOL``), in WAL mode with
``synchronous`` left at FULL, so a committed row survives a crash or a power
cut; every gunicorn worker of one host can append to it. Each append, each
read of the oldest row and each delete is one short statement on the primary
key: the cost per webhook does not grow with the outage.

Exactly once: a row is deleted only after it was applied. The one row that
can be applied twice (applied, then a crash before its delete) is harmless:
an inbound text is deduplicated on its ``MessageSid`` and a status never
moves backwards. One drain at a time across processes (``flock`` on
``<spool>.lock``, not held by appends).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
)

from drip.store.engine import make_engine
from drip.store.types import UtcDateTime

__all__ = ["Apply", "Spool", "SpooledWebhook"]

log = structlog.get_logger("drip.web.spool")

#: What an entry's ``apply`` gets: the kind (``sms`` | ``status``), the payload, when received.
Apply = Callable[[str, Mapping[str, Any], datetime], None]

_METADATA = MetaData()
#: Not part of drip's database (no migration): the spool's own file.
_WEBHOOKS = Table(
    "spooled_webhooks",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("payload", JSON, nullable=False),
    sqlite_autoincrement=True,  # ids never reused: the order of arrival is the id's
)


@dataclass(frozen=True, slots=True)
class SpooledWebhook:
    """One accepted webhook waiting to be applied."""

    id: int
    kind: str
    received_at: datetime
    payload: Mapping[str, Any]


class Spool:
    """The journal at ``path`` (the file and its table are created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._engine: Engine | None = None
        self._init_lock = threading.Lock()

    def _db(self) -> Engine:
        with self._init_lock:
            if self._engine is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                engine = make_engine(f"sqlite:///{self.path}")
                _METADATA.create_all(engine)
                self._engine = engine
            return self._engine

    def close(self) -> None:
        """Close the file's connections (shutdown, tests); the rows stay."""
        with self._init_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def append(self, kind: str, payload: Mapping[str, Any], received_at: datetime) -> int:
        """Add an entry durably (committed when this returns); returns its id."""
        with self._db().begin() as conn:
            row_id = conn.execute(
                insert(_WEBHOOKS).returning(_WEBHOOKS.c.id),
                {"kind": kind, "received_at": received_at, "payload": dict(payload)},
            ).scalar_one()
        log.warning("webhook_spooled", kind=kind, seq=row_id)
        return int(row_id)

    def pending(self) -> int:
        """How many entries wait to be applied."""
        if not self.path.exists():
            return 0
        with self._db().connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_WEBHOOKS)).scalar_one())

    def has_pending(self) -> bool:
        """Whether any entry waits (one indexed read: asked by every webhook)."""
        if not self.path.exists():
            return False
        with self._db().connect() as conn:
            return conn.execute(select(_WEBHOOKS.c.id).limit(1)).first() is not None

    def entries(self) -> list[SpooledWebhook]:
        """Every waiting entry, oldest first."""
        if not self.path.exists():
            return []
        with self._db().connect() as conn:
            rows = conn.execute(select(_WEBHOOKS).order_by(_WEBHOOKS.c.id)).all()
        return [SpooledWebhook(int(r.id), str(r.kind), r.received_at, r.payload) for r in rows]

    def forget(self, matches: Callable[[str], bool]) -> int:
        """Delete the waiting entries whose payload ``matches`` (an erased contact's); how many.

        The file is then rewritten (``VACUUM``) and its write-ahead log emptied, so
        the deleted payloads do not linger in free pages. An entry being applied
        right now by another process's drain is left to it.
        """
        if not self.path.exists():
            return 0
        with self._db().begin() as conn:
            rows = conn.execute(select(_WEBHOOKS.c.id, _WEBHOOKS.c.payload)).all()
            gone = [int(r.id) for r in rows if matches(json.dumps(r.payload, ensure_ascii=False))]
            if gone:
                conn.execute(delete(_WEBHOOKS).where(_WEBHOOKS.c.id.in_(gone)))
        # Outside any transaction (SQLAlchemy's connections begin one): the DBAPI connection.
        raw = self._db().raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("VACUUM")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.close()
        finally:
            raw.close()
        if gone:
            log.warning("spool_entries_erased", entries=len(gone))
        return len(gone)

    def _oldest(self) -> SpooledWebhook | None:
        with self._db().connect() as conn:
            row = conn.execute(select(_WEBHOOKS).order_by(_WEBHOOKS.c.id).limit(1)).first()
        if row is None:
            return None
        return SpooledWebhook(int(row.id), str(row.kind), row.received_at, row.payload)

    def _remove(self, entry_id: int) -> None:
        with self._db().begin() as conn:
            conn.execute(delete(_WEBHOOKS).where(_WEBHOOKS.c.id == entry_id))

    def drain(self, apply: Apply) -> int:
        """Apply waiting entries in order until one fails; returns how many were applied.

        An entry whose ``apply`` raises stays, with every later one, for the next
        drain. While another process drains, this returns 0 at once.
        """
        if not self.path.exists():
            return 0
        applied = 0
        with self._draining() as mine:
            if not mine:
                return 0
            while (entry := self._oldest()) is not None:
                try:
                    apply(entry.kind, entry.payload, entry.received_at)
                except Exception as exc:  # the database is still down: keep the rest
                    log.warning("spool_drain_paused", seq=entry.id, error=type(exc).__name__)
                    break
                self._remove(entry.id)
                applied += 1
        if applied:
            log.info("spool_drained", applied=applied)
        return applied

    @contextlib.contextmanager
    def _draining(self) -> Iterator[bool]:
        """Whether this process may drain now (``flock``, not waited for)."""
        with open(self._lock_path, "a+b") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
