"""An in-memory transport for replay and QA: it keeps what was sent and can be told to fail.

Ids are deterministic (``"REC"`` + a 32-hex-digit counter) so that a replay
prints the same timeline every run. Failure injection per destination raises
the very :class:`SmsSendError` the Twilio transport raises for the same
provider code and HTTP status, so the services see identical behaviour.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from drip.clock import Clock, SystemClock
from drip.errors import TransportError, ValidationError
from drip.transports.base import (
    EmailReceipt,
    OutboundEmail,
    OutboundSms,
    SmsReceipt,
    sms_send_error,
)

__all__ = ["RecordingTransport", "SentEmail", "SentSms"]


@dataclass(frozen=True)
class SentSms:
    """A text the recording transport accepted, with its id and the clock's time."""

    sid: str
    at: datetime
    msg: OutboundSms


@dataclass(frozen=True)
class SentEmail:
    """An email the recording transport accepted, with its id and the clock's time."""

    message_id: str
    at: datetime
    msg: OutboundEmail


@dataclass
class _Failure:
    code: int
    status: int
    remaining: int | None  # None: every time


@dataclass
class _EmailFailure:
    code: int
    retryable: bool
    remaining: int | None


class RecordingTransport:
    """Implements :class:`SmsTransport` and :class:`EmailTransport` in memory.

    ``failures`` maps a destination number to ``(twilio_code, http_status)``:
    every text to it raises. :meth:`fail` does the same one number at a time,
    optionally only for the next ``times`` sends. Thread-safe.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        failures: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._sent: list[SentSms | SentEmail] = []
        self._attempts = 0
        self._sms_failures: dict[str, _Failure] = {
            to: _Failure(code, status, None) for to, (code, status) in (failures or {}).items()
        }
        self._email_failures: dict[str, _EmailFailure] = {}

    # -- configuration -------------------------------------------------------

    def fail(self, to: str, code: int = 21610, status: int = 400, times: int | None = None) -> None:
        """Make texts to ``to`` fail with Twilio ``code``, HTTP ``status`` (``times``: next n)."""
        _check_times(times)
        with self._lock:
            self._sms_failures[to] = _Failure(code, status, times)

    def fail_email(
        self, to: str, *, code: int = 550, retryable: bool = False, times: int | None = None
    ) -> None:
        """Make emails to ``to`` fail with SMTP ``code`` (``times``: next n only)."""
        _check_times(times)
        with self._lock:
            self._email_failures[to] = _EmailFailure(code, retryable, times)

    def clear_failures(self) -> None:
        """Forget every injected failure."""
        with self._lock:
            self._sms_failures.clear()
            self._email_failures.clear()

    def reset(self) -> None:
        """Forget what was sent, the attempt count and the injected failures."""
        with self._lock:
            self._sent.clear()
            self._attempts = 0
            self._sms_failures.clear()
            self._email_failures.clear()

    # -- what was sent -------------------------------------------------------

    @property
    def sent(self) -> list[SentSms | SentEmail]:
        """Every accepted message, texts and emails, in order (a copy)."""
        with self._lock:
            return list(self._sent)

    @property
    def sms(self) -> list[SentSms]:
        """The accepted texts, in order."""
        return [item for item in self.sent if isinstance(item, SentSms)]

    @property
    def emails(self) -> list[SentEmail]:
        """The accepted emails, in order."""
        return [item for item in self.sent if isinstance(item, SentEmail)]

    @property
    def attempts(self) -> int:
        """How many sends were asked for, accepted or not."""
        with self._lock:
            return self._attempts

    # -- the protocols -------------------------------------------------------

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        with self._lock:
            self._attempts += 1
            failure = self._sms_failures.get(msg.to)
            if failure is not None:
                _consume(self._sms_failures, msg.to, failure.remaining)
                raise sms_send_error(
                    failure.status, failure.code, "injected failure (recording transport)", msg.to
                )
            sid = f"REC{next(self._counter):032x}"
            self._sent.append(SentSms(sid=sid, at=self._clock.now(), msg=msg))
        return SmsReceipt(sid=sid, status="queued")

    def send_email(self, msg: OutboundEmail) -> EmailReceipt:
        with self._lock:
            self._attempts += 1
            failure = self._email_failures.get(msg.to)
            if failure is not None:
                _consume(self._email_failures, msg.to, failure.remaining)
                raise TransportError(
                    f"email to {msg.to} refused: SMTP {failure.code}: "
                    "injected failure (recording transport)",
                    code=failure.code,
                    retryable=failure.retryable,
                )
            message_id = f"REC{next(self._counter):032x}"
            self._sent.append(SentEmail(message_id=message_id, at=self._clock.now(), msg=msg))
        return EmailReceipt(message_id=message_id)


def _check_times(times: int | None) -> None:
    if times is not None and times < 1:
        raise ValidationError(f"times must be at least 1 (or None for always), not {times}")


def _consume(
    table: dict[str, _Failure] | dict[str, _EmailFailure], to: str, remaining: int | None
) -> None:
    """Count one use of a limited failure; drop it when used up. Caller holds the lock."""
    if remaining is None:
        return
    if remaining <= 1:
        del table[to]
    else:
        table[to].remaining = remaining - 1
