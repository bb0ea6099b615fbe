"""A circuit per provider transport: after an authentication failure, stop sending through it.

Wrong Twilio credentials (20003 / HTTP 401) or a refused SMTP login make
every later send fail the same way. Instead of failing thousands of sends,
the first such error *opens* the circuit of that transport: one error is
logged saying why, and every send through it goes back to pending (reason
``provider_auth_failed``) until :data:`PROBE_AFTER` has passed. Then one send
is let through (half open): if it is accepted the circuit closes, if not it
stays open for another period, without a new error line.

The state is per transport object, in this process: each worker process
finds out on its own (one provider call each), which keeps the circuit free
of any shared infrastructure that could itself fail.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import structlog

from drip import metrics

log = structlog.get_logger("drip.circuit")

#: How long an open circuit waits before it lets one send through again.
PROBE_AFTER: Final = timedelta(seconds=60)


@dataclass
class _State:
    open_until: datetime | None = None
    reason: str = ""
    probing: bool = False


class Circuit:
    """The circuit of one transport (see the module docstring)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._lock = threading.Lock()
        self._state = _State()
        metrics.set_circuit(provider, is_open=False)

    def blocked_until(self, now: datetime) -> datetime | None:
        """When sends may be tried again, or None if this send may go now.

        When the wait is over, the first caller is let through (the probe) and
        the others keep waiting until it settles.
        """
        with self._lock:
            until = self._state.open_until
            if until is None:
                return None
            if now >= until and not self._state.probing:
                self._state.probing = True
                return None
            return max(until, now + timedelta(seconds=1))

    @property
    def reason(self) -> str:
        with self._lock:
            return self._state.reason

    def failed(self, now: datetime, reason: str) -> datetime:
        """An authentication failure: open (or keep open) the circuit; returns the next probe."""
        with self._lock:
            first = self._state.open_until is None
            self._state = _State(now + PROBE_AFTER, reason, probing=False)
            until = now + PROBE_AFTER
        metrics.set_circuit(self.provider, is_open=True)
        if first:
            log.error(
                "provider_circuit_open",
                provider=self.provider,
                reason=reason,
                retry_at=until.isoformat(),
            )
        return until

    def cancel_probe(self) -> None:
        """The send let through as a probe did not reach the provider: let another one try."""
        with self._lock:
            self._state.probing = False

    def succeeded(self) -> None:
        """The provider accepted a send: close the circuit."""
        with self._lock:
            was_open = self._state.open_until is not None
            self._state = _State()
        if was_open:
            metrics.set_circuit(self.provider, is_open=False)
            log.info("provider_circuit_closed", provider=self.provider)


_circuits: weakref.WeakKeyDictionary[object, Circuit] = weakref.WeakKeyDictionary()
_unweakable: dict[int, tuple[object, Circuit]] = {}
_circuits_lock = threading.Lock()


def circuit_for(transport: object, provider: str) -> Circuit:
    """The circuit of ``transport`` (created closed on first use)."""
    with _circuits_lock:
        try:
            found = _circuits.get(transport)
        except TypeError:  # an object without weak references: kept alive with its circuit
            kept = _unweakable.get(id(transport))
            if kept is None or kept[0] is not transport:
                kept = (transport, Circuit(provider))
                _unweakable[id(transport)] = kept
            return kept[1]
        if found is None:
            found = Circuit(provider)
            _circuits[transport] = found
        return found
