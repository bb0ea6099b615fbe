"""A durable local journal of webhooks the database could not take, drained in order later.

Twilio does not retry an inbound text or a status callback that got an
error, so a "please stop texting me" that arrives while the database is down
must not be answered 503 and lost. The web app appends it here instead
(one JSON line, flushed and ``fsync``-ed before the 200 goes out), and
:meth:`Spool.drain` applies the entries later, oldest first.

Exactly once: each entry has a sequence number; after an entry is applied
its number is written (and ``fsync``-ed) to ``<spool>.done``, so a drain
that stops half way resumes after the last applied entry. The one entry that
can be applied twice (applied, then a crash before its number was saved) is
harmless: an inbound text is deduplicated on its ``MessageSid`` and a status
never moves backwards. When every entry is applied both files are emptied.

One drain at a time (``flock`` on ``<spool>.lock``), across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("drip.web.spool")

#: What an entry's ``apply`` gets: the kind (``sms`` | ``status``), the payload, when received.
Apply = Callable[[str, Mapping[str, Any], datetime], None]


class Spool:
    """The journal at ``path`` (created on first append)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done_path = path.with_name(path.name + ".done")
        self._lock_path = path.with_name(path.name + ".lock")
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def append(self, kind: str, payload: Mapping[str, Any], received_at: datetime) -> int:
        """Add an entry durably; returns its sequence number."""
        with self._locked():
            entries = self._entries()
            seq = (entries[-1][0] + 1) if entries else self._done() + 1
            line = json.dumps(
                {"seq": seq, "kind": kind, "at": received_at.isoformat(), "payload": dict(payload)},
                ensure_ascii=True,
            )
            created = not self.path.exists()
            torn = not created and _ends_mid_line(self.path)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(("\n" if torn else "") + line + "\n")
                out.flush()
                os.fsync(out.fileno())
            if created:
                _fsync_dir(self.path.parent)
        log.warning("webhook_spooled", kind=kind, seq=seq)
        return seq

    def pending(self) -> int:
        """How many entries wait to be applied."""
        if not self.path.exists():
            return 0
        with self._locked():
            done = self._done()
            return sum(1 for seq, _ in self._entries() if seq > done)

    def drain(self, apply: Apply) -> int:
        """Apply waiting entries in order until one fails; returns how many were applied.

        An entry whose ``apply`` raises stays, with every later one, for the next drain.
        """
        if not self.path.exists():
            return 0
        applied = 0
        with self._locked():
            done = self._done()
            for seq, entry in self._entries():
                if seq <= done:
                    continue
                try:
                    apply(
                        str(entry["kind"]),
                        entry["payload"],
                        datetime.fromisoformat(str(entry["at"])),
                    )
                except Exception as exc:  # the database is still down: keep the rest
                    log.warning("spool_drain_paused", seq=seq, error=type(exc).__name__)
                    return applied
                self._set_done(seq)
                applied += 1
            if applied or self._entries():
                self._clear()
        if applied:
            log.info("spool_drained", applied=applied)
        return applied

    # -- files ---------------------------------------------------------------

    def _entries(self) -> list[tuple[int, dict[str, Any]]]:
        if not self.path.exists():
            return []
        out: list[tuple[int, dict[str, Any]]] = []
        with open(self.path, encoding="utf-8") as source:
            for raw in source:
                line = raw.strip()
                if not line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:  # a torn last line (a crash mid-write): it was never answered
                    log.warning("spool_torn_line_skipped")
                    continue
                out.append((int(entry["seq"]), entry))
        return out

    def _done(self) -> int:
        try:
            return int(self._done_path.read_text(encoding="ascii").strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _set_done(self, seq: int) -> None:
        tmp = self._done_path.with_name(self._done_path.name + ".tmp")
        with open(tmp, "w", encoding="ascii") as out:
            out.write(str(seq))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._done_path)

    def _clear(self) -> None:
        """Every entry is applied: empty the journal (the done mark keeps the numbering)."""
        with open(self.path, "w", encoding="utf-8") as out:
            out.flush()
            os.fsync(out.fileno())


def _ends_mid_line(path: Path) -> bool:
    """Whether the file's last line was torn (a crash mid-append): no final newline."""
    with open(path, "rb") as source:
        source.seek(0, os.SEEK_END)
        if source.tell() == 0:
            return False
        source.seek(-1, os.SEEK_END)
        return source.read(1) != b"\n"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
