"""What the fake server keeps: the requests it received, the messages it accepted, the
callbacks it sent, and the behaviours a test set (failures, faults, delivery outcomes)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drip.testing.fake_twilio.httpd import Connection

__all__ = [
    "FAULT_KINDS",
    "Arrival",
    "Delivery",
    "Failure",
    "Fault",
    "Ledger",
    "ReceivedRequest",
    "StatusCallbackResult",
]

FAULT_KINDS = ("refuse", "accept_then_error", "accept_then_hang")


@dataclass(frozen=True)
class ReceivedRequest:
    """One Messages API request the server received, and what it answered."""

    method: str
    path: str
    account_sid: str
    params: tuple[tuple[str, str], ...]
    status: int
    sid: str | None  # the message sid when accepted
    error_code: int | None  # the Twilio error code when refused

    def param(self, name: str) -> str | None:
        """The first value of form field ``name``, or None."""
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def from_(self) -> str | None:
        return self.param("From")

    @property
    def to(self) -> str | None:
        return self.param("To")

    @property
    def body(self) -> str | None:
        return self.param("Body")

    @property
    def status_callback(self) -> str | None:
        return self.param("StatusCallback")


@dataclass(frozen=True)
class StatusCallbackResult:
    """One status callback the server POSTed: where, what, and how the receiver answered."""

    url: str
    params: tuple[tuple[str, str], ...]
    signature: str
    response_status: int | None  # None when the receiver could not be reached
    error: str | None


@dataclass(frozen=True)
class Arrival:
    """When a Messages API create request arrived (``time.time()``), from whom, its validity."""

    at: float
    from_: str | None
    to: str | None
    validity: int | None
    segments: int
    sid: str | None  # None when refused


@dataclass
class Failure:
    """A refusal injected for one destination: ``remaining`` more times, or always (None)."""

    code: int
    status: int
    remaining: int | None


@dataclass
class Fault:
    """A misbehaviour for every message (one of :data:`FAULT_KINDS`), for a time or a count."""

    kind: str  # refuse | accept_then_error | accept_then_hang
    status: int
    code: int
    until: float | None  # time.monotonic() deadline, or None
    remaining: int | None
    hang: float

    def active(self) -> bool:
        if self.until is not None and time.monotonic() >= self.until:
            return False
        return self.remaining is None or self.remaining > 0


@dataclass(frozen=True)
class Delivery:
    """The final status (and error code) a message's callbacks report."""

    status: str
    error_code: int | None


@dataclass
class Ledger:
    """The server's state, every field guarded by ``lock`` (``changed`` waits on it)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[ReceivedRequest] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    count: int = 0  # Messages API create requests, accepted or refused
    accepted: int = 0
    unauthorized: int = 0  # requests refused 401/20003 (wrong credentials)
    failures: dict[str, Failure] = field(default_factory=dict)
    fault: Fault | None = None
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    callbacks: list[StatusCallbackResult] = field(default_factory=list)
    blocks: set[tuple[str, str]] = field(default_factory=set)  # (sender, recipient): 21610
    arrivals: list[Arrival] = field(default_factory=list)
    connections: set[Connection] = field(default_factory=set)  # open client connections
    connections_opened: int = 0

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def clear(self) -> None:
        """Forget everything but the open connections (call with ``lock`` held)."""
        self.requests.clear()
        self.resources.clear()
        self.count = self.accepted = self.unauthorized = self.connections_opened = 0
        self.failures.clear()
        self.fault = None
        self.deliveries.clear()
        self.callbacks.clear()
        self.blocks.clear()
        self.arrivals.clear()

    def injected_refusal(self, to: str) -> tuple[int, int] | None:
        """The failure injected for ``to``, counted down (call with ``lock`` held)."""
        failure = self.failures.get(to)
        if failure is None:
            return None
        if failure.remaining is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                del self.failures[to]
        return failure.status, failure.code

    def active_fault(self) -> Fault | None:
        """The fault in force, counted down (call with ``lock`` held)."""
        fault = self.fault
        if fault is None or not fault.active():
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
        return fault

    def stats(self) -> dict[str, int]:
        """The counts ``GET /_fake/stats`` reports."""
        with self.lock:
            return {
                "count": self.count,
                "accepted": self.accepted,
                "unauthorized": self.unauthorized,
                "callbacks": len(self.callbacks),
                "callbacks_failed": sum(
                    1
                    for c in self.callbacks
                    if c.response_status is None or c.response_status >= 400
                ),
            }
