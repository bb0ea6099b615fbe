"""Prometheus metrics: the counters drip increments where it records a decision.

Counters and the fire-latency histogram live here, in the process that did
the work (a Celery pool process, a gunicorn worker, ``drip run``); the
gauges that need the database are computed at scrape time by
:mod:`drip.web.metrics` with the bounded queries of :mod:`drip.store.gauges`.

Multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` names a folder (set it
before the process starts, empty it when the service starts), prometheus-client
keeps every process's values in files there and :func:`registry` adds them up,
so a gunicorn worker answering ``/metrics`` reports what every worker (and, on
the same folder, every Celery pool process) counted. Without it, values are in
this process's memory (``drip run``, ``drip serve``, tests).

Labels are bounded by design: decision codes, provider error codes, consent
event kinds, inbound kinds, sender roles and provider names are fixed sets;
no label carries a phone number, a contact, a send or a campaign step. Only
the database gauges carry a campaign name (one series per campaign).

prometheus-client is imported, and the metrics made, the first time one is
counted or read (:func:`registry`), not when this module is imported: a
command that counts nothing (``drip history``) never loads it. It chooses
multiprocess mode when it is imported, from the variable already set.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "LATENCY_BUCKETS",
    "MULTIPROC_ENV",
    "PACING_CODES",
    "inbound",
    "mark_process_dead",
    "multiprocess_dir",
    "opt_out",
    "provider_error",
    "registry",
    "send_outcome",
    "set_circuit",
]

#: prometheus-client's own variable: the folder of the per-process value files.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

#: Fire latency buckets (seconds from a send's due time to its record).
LATENCY_BUCKETS: Final = (0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 14400)

#: Deferral codes that come from a sender's throughput (pacing and the carrier's clock).
PACING_CODES: Final = frozenset({"pacing", "carrier_clock"})


class _Metrics(NamedTuple):
    """drip's metrics in this process, registered in prometheus-client's default registry."""

    sends: Counter
    provider_errors: Counter
    opt_outs: Counter
    inbound: Counter
    pacing_deferrals: Counter
    fire_latency: Histogram
    circuit_open: Gauge


_MAKING: Final = threading.Lock()


def _metrics() -> _Metrics:
    """The metrics, made once per process (under a lock: a second making would be refused)."""
    with _MAKING:
        return _make()


@functools.cache
def _make() -> _Metrics:
    from prometheus_client import Counter, Gauge, Histogram

    return _Metrics(
        sends=Counter(
            "drip_sends",
            "Sends decided, by outcome (sent, skipped, deferred, failed, unknown) and reason code",
            ["outcome", "reason"],
        ),
        provider_errors=Counter(
            "drip_provider_errors",
            "Errors a provider reported, by provider, error code and stage (send: the API call "
            "refused it; delivery: a status callback said failed or undelivered)",
            ["provider", "code", "stage"],
        ),
        opt_outs=Counter(
            "drip_opt_outs",
            "SMS opt-outs recorded, by source (the consent event's kind)",
            ["source"],
        ),
        inbound=Counter(
            "drip_inbound_messages",
            "Inbound texts handled, by kind (opt_out, revocation_phrase, help, opt_in, text)",
            ["kind"],
        ),
        pacing_deferrals=Counter(
            "drip_pacing_deferrals",
            "Sends deferred by a sender's throughput, by sender class (agent, concierge...) "
            "and reason",
            ["sender_class", "reason"],
        ),
        fire_latency=Histogram(
            "drip_fire_latency_seconds",
            "Seconds from a send's due time to the record of its sent message",
            buckets=LATENCY_BUCKETS,
        ),
        circuit_open=Gauge(
            "drip_circuit_open",
            "1 while a provider's circuit is open (it refused drip's credentials), else 0",
            ["provider"],
            multiprocess_mode="livemax",
        ),
    )


def multiprocess_dir() -> str | None:
    """The multiprocess folder in effect (``PROMETHEUS_MULTIPROC_DIR``), or None."""
    return os.environ.get(MULTIPROC_ENV) or None


def registry() -> CollectorRegistry:
    """What this process reports: every process's values in multiprocess mode, else its own.

    The metrics are made first, so that a scrape before anything was counted
    lists them all (their help, the latency histogram's zero buckets).
    """
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client import multiprocess as _multiprocess

    _metrics()
    if multiprocess_dir() is None:
        return REGISTRY
    merged = CollectorRegistry(auto_describe=True)
    _multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return merged


def mark_process_dead(pid: int) -> None:
    """A worker process ended (gunicorn ``child_exit``, Celery pool shutdown): drop its live gauges."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess as _multiprocess

        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def send_outcome(
    outcome: str, reason: str, *, sender_class: str, latency_seconds: float | None
) -> None:
    """One recorded send decision (the fire path's record step)."""
    made = _metrics()
    made.sends.labels(outcome, reason).inc()
    if outcome == "deferred" and reason in PACING_CODES:
        made.pacing_deferrals.labels(sender_class, reason).inc()
    if outcome == "sent" and latency_seconds is not None:
        made.fire_latency.observe(max(latency_seconds, 0.0))


def provider_error(provider: str, code: int | None, *, stage: str = "send") -> None:
    """A provider refused (``send``) or failed to deliver (``delivery``) a message with ``code``."""
    code_label = str(code) if code is not None else "none"
    _metrics().provider_errors.labels(provider, code_label, stage).inc()


def opt_out(source: str) -> None:
    """A contact was opted out of texts (``source``: the consent event's kind)."""
    _metrics().opt_outs.labels(source).inc()


def inbound(kind: str) -> None:
    """An inbound text of ``kind`` was handled."""
    _metrics().inbound.labels(kind).inc()


def set_circuit(provider: str, *, is_open: bool) -> None:
    """The circuit of ``provider`` opened or closed in this process."""
    _metrics().circuit_open.labels(provider).set(1 if is_open else 0)
