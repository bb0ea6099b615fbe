"""The embedded-mode transport: print each message and keep an outbox file.

Nothing leaves the machine. Each message is printed readably on ``stream``
and, when ``outbox_path`` is set, appended to it as one JSON object per line
(JSON Lines), so that the outbox can be inspected or replayed later.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from drip.clock import Clock, SystemClock
from drip.errors import TransportError
from drip.transports.base import EmailReceipt, OutboundEmail, OutboundSms, SmsReceipt

__all__ = ["ConsoleTransport"]


class ConsoleTransport:
    """Implements :class:`SmsTransport` and :class:`EmailTransport` on a terminal and a file.

    ``stream`` defaults to the ``sys.stdout`` of the moment of each write.
    ``clock`` stamps each outbox line (``at``, UTC ISO 8601); pass the virtual
    clock when replaying. Ids are ``"CON"`` + 32 hex digits. Writing is
    serialised by a lock, so one instance may be shared between threads.
    """

    def __init__(
        self,
        outbox_path: Path | None = None,
        stream: TextIO | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._outbox_path = outbox_path
        self._stream = stream
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()

    @property
    def outbox_path(self) -> Path | None:
        return self._outbox_path

    def forget(self, matches: Callable[[str], bool], redact: Callable[[str], str]) -> int:
        """Rewrite the outbox file without an erased person: each line that ``matches``
        loses its body and subject, and ``redact`` cleans its other values; how many lines.

        The file is replaced whole (a new file renamed over it), under this
        instance's lock; another process appending at the same moment may lose
        its line, so erase while ``drip run`` is stopped when that matters.
        """
        path = self._outbox_path
        if path is None or not path.exists():
            return 0
        changed = 0
        with self._lock:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            out: list[str] = []
            for line in lines:
                if not matches(line):
                    out.append(line)
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    out.append(redact(line))
                    changed += 1
                    continue
                for key in ("body", "subject"):
                    if key in record:
                        record[key] = ""
                out.append(redact(json.dumps(record, ensure_ascii=False)) + "\n")
                changed += 1
            if changed:
                fresh = path.with_name(path.name + ".erasing")
                fresh.write_text("".join(out), encoding="utf-8")
                os.replace(fresh, path)
        return changed

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        sid = _new_id()
        at = self._clock.now().isoformat()
        text = f"--- SMS {sid} at {at}\nFrom: {msg.from_}\nTo:   {msg.to}\n{msg.body}\n"
        record: dict[str, object] = {
            "channel": "sms",
            "sid": sid,
            "at": at,
            "from": msg.from_,
            "to": msg.to,
            "body": msg.body,
            "status_callback": msg.status_callback,
        }
        self._emit(text, record)
        return SmsReceipt(sid=sid, status="sent")

    def send_email(self, msg: OutboundEmail) -> EmailReceipt:
        sid = _new_id()
        at = self._clock.now().isoformat()
        extra = "".join(f"{name}: {value}\n" for name, value in msg.headers.items())
        text = (
            f"--- EMAIL {sid} at {at}\nFrom: {msg.from_}\nTo:   {msg.to}\n"
            f"Subject: {msg.subject}\n{extra}\n{msg.body}\n"
        )
        record: dict[str, object] = {
            "channel": "email",
            "sid": sid,
            "at": at,
            "from": msg.from_,
            "to": msg.to,
            "subject": msg.subject,
            "body": msg.body,
            "headers": dict(msg.headers),
        }
        self._emit(text, record)
        return EmailReceipt(message_id=sid)

    def _emit(self, text: str, record: dict[str, object]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            # The outbox first: if it cannot be written, nothing was "sent".
            if self._outbox_path is not None:
                try:
                    self._outbox_path.parent.mkdir(parents=True, exist_ok=True)
                    with self._outbox_path.open("a", encoding="utf-8") as outbox:
                        outbox.write(line)
                except OSError as exc:
                    raise TransportError(
                        f"cannot append to the outbox {self._outbox_path}: {exc}"
                    ) from exc
            stream = self._stream if self._stream is not None else sys.stdout
            stream.write(text)
            stream.flush()


def _new_id() -> str:
    return "CON" + uuid.uuid4().hex
