"""The webhook spool: a SQLite journal, durable appends, in-order drains that resume, once each."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drip.store.webhook_spool import Spool
from drip.web.spool import SpoolDrainer

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_a_drain_applies_in_order_and_stops_at_the_first_failure(tmp_path: Path) -> None:
    """Entries 1-3; 2 fails once: 1 applied, then 2 and 3 on the next drain, nothing twice."""
    spool = Spool(tmp_path / "spool.db")
    for n in (1, 2, 3):
        spool.append("sms", {"n": n}, AT)
    applied: list[int] = []
    down = {"once": True}

    def apply(kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        if payload["n"] == 2 and down.pop("once", False):
            raise RuntimeError("database down")
        applied.append(int(payload["n"]))

    assert spool.drain(apply) == 1
    assert spool.pending() == 2
    assert spool.drain(apply) == 2
    assert applied == [1, 2, 3]
    assert spool.pending() == 0
    assert spool.drain(apply) == 0
    spool.close()


def test_entries_survive_the_process_and_keep_kind_time_and_payload(tmp_path: Path) -> None:
    """An appended entry is committed to the file: a new Spool on it reads the same entry."""
    path = tmp_path / "spool.db"
    first = Spool(path)
    first.append("status", {"message_sid": "SM1", "error_code": None}, AT)
    first.append("sms", {"body": "STOP"}, AT)
    first.close()
    again = Spool(path)
    entries = again.entries()
    assert [(e.kind, e.received_at, dict(e.payload)) for e in entries] == [
        ("status", AT, {"message_sid": "SM1", "error_code": None}),
        ("sms", AT, {"body": "STOP"}),
    ]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_numbering_goes_on_after_a_drain(tmp_path: Path) -> None:
    """After an emptied spool new entries get later ids: order of arrival is the id's."""
    spool = Spool(tmp_path / "spool.db")
    first = spool.append("status", {"n": 1}, AT)
    spool.drain(lambda kind, payload, at: None)
    assert spool.append("status", {"n": 2}, AT) > first
    spool.close()


def test_a_missing_spool_is_empty_and_not_created(tmp_path: Path) -> None:
    """Asking an unused spool whether it has entries creates no file."""
    spool = Spool(tmp_path / "sub" / "spool.db")
    assert not spool.has_pending()
    assert spool.pending() == 0
    assert spool.drain(lambda kind, payload, at: None) == 0
    assert not (tmp_path / "sub").exists()


def test_only_one_drain_at_a_time(tmp_path: Path) -> None:
    """While one drain runs, another (another process, another thread) applies nothing."""
    spool = Spool(tmp_path / "spool.db")
    spool.append("sms", {"n": 1}, AT)
    inside, release = threading.Event(), threading.Event()
    applied: list[int] = []

    def slow(kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        inside.set()
        release.wait(10)
        applied.append(int(payload["n"]))

    worker = threading.Thread(target=spool.drain, args=(slow,))
    worker.start()
    assert inside.wait(10)
    assert Spool(spool.path).drain(lambda kind, payload, at: applied.append(-1)) == 0
    release.set()
    worker.join(10)
    assert applied == [1]
    spool.close()


def test_the_drainer_thread_applies_everything_then_ends(tmp_path: Path) -> None:
    """Woken, the drainer retries until apply works, applies all in order, and its thread ends."""
    spool = Spool(tmp_path / "spool.db")
    for n in range(1, 21):
        spool.append("sms", {"n": n}, AT)
    applied: list[int] = []
    failures = {"left": 3}

    def apply(kind: str, payload: Mapping[str, Any], at: datetime) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database down")
        applied.append(int(payload["n"]))

    drainer = SpoolDrainer(spool, apply)
    drainer.RETRY_EVERY = 0.05
    drainer.wake()
    deadline = time.monotonic() + 10
    while _drainer_running() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _drainer_running()  # ended on its own, the spool being empty
    drainer.stop()
    assert applied == list(range(1, 21))
    assert spool.pending() == 0


def _drainer_running() -> bool:
    return any(t.name == "drip-spool" for t in threading.enumerate())
