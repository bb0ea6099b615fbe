"""The background thread that applies the webhook spool (:mod:`drip.store.webhook_spool`).

A request only appends to the spool and wakes this thread; it never drains
itself, so no request waits for a backlog or holds a lock while the database
is slow. The thread starts when woken, drains the spool oldest first, waits
:attr:`SpoolDrainer.RETRY_EVERY` seconds after a drain that applied nothing
(the database is still down, or another process is draining), and ends once
the spool is empty: an idle app runs no thread.
"""

from __future__ import annotations

import threading

import structlog

from drip.store.webhook_spool import Apply, Spool

__all__ = ["Spool", "SpoolDrainer"]

log = structlog.get_logger("drip.web.spool")


class SpoolDrainer:
    """Drains ``spool`` with ``apply`` in a daemon thread while it has entries."""

    #: Seconds between two drains that could not apply anything.
    RETRY_EVERY: float = 2.0

    def __init__(self, spool: Spool, apply: Apply) -> None:
        self._spool = spool
        self._apply = apply
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def wake(self) -> None:
        """Drain soon: start the thread unless it is running (it drains until empty)."""
        with self._lock:
            if self._stop.is_set() or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="drip-spool", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background drain (shutdown, tests); the spool keeps what is left."""
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._spool.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                applied = self._spool.drain(self._apply)
            except Exception as exc:  # the thread must outlive any one failure
                log.warning("spool_drain_failed", error=type(exc).__name__)
                applied = 0
            with self._lock:
                # Decided under the lock that wake() takes: an entry appended after
                # this check finds no thread and starts one.
                if self._stop.is_set() or not self._has_pending():
                    self._thread = None
                    return
            if not applied:
                self._stop.wait(self.RETRY_EVERY)

    def _has_pending(self) -> bool:
        try:
            return self._spool.has_pending()
        except Exception as exc:  # the spool's file itself failing: try again later
            log.warning("spool_drain_failed", error=type(exc).__name__)
            return True
