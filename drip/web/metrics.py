"""``GET /metrics``: drip's counters and its database gauges, in the Prometheus text format.

The counters are :mod:`drip.metrics`'s (every process's, in multiprocess
mode); the gauges are computed now, at scrape time, from
:mod:`drip.store.gauges` (bounded, indexed queries) and the web spool. When
the database does not answer, ``drip_database_up`` is 0, the database gauges
are left out and the answer is still 200: the scrape itself says what is
wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from time import perf_counter
from typing import Any

import structlog
from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from drip import metrics
from drip.errors import StoreError
from drip.services.deps import Deps
from drip.store import gauges
from drip.store.webhook_spool import Spool

__all__ = ["GaugeCollector", "register_metrics", "render"]

log = structlog.get_logger("drip.web")


def _age(now: datetime, then: datetime | None) -> float:
    return max((now - then).total_seconds(), 0.0) if then is not None else 0.0


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class GaugeCollector(Collector):
    """The gauges of one scrape (the database's and the web spool's)."""

    def __init__(self, deps: Deps, spool: Spool | None) -> None:
        self.deps = deps
        self.spool = spool

    def collect(self) -> Iterator[Any]:
        began = perf_counter()
        now = self.deps.clock.now()
        try:
            with self.deps.sessions() as session:
                values = gauges.read(session, now)
        except (SQLAlchemyError, StoreError) as exc:
            log.error("metrics_database_error", error=type(exc).__name__)
            values = None
        yield _gauge(
            "drip_database_up", "1 when the database answered this scrape", int(bool(values))
        )
        if values is not None:
            yield from _database_gauges(values, now)
        if self.spool is not None:
            yield _gauge(
                "drip_web_spool_depth",
                "Signed Twilio webhooks kept in the web spool, waiting for the database",
                self.spool.pending(),
            )
        yield _gauge(
            "drip_gauges_scrape_seconds",
            "Seconds this scrape spent computing the gauges",
            perf_counter() - began,
        )


def _database_gauges(v: gauges.Gauges, now: datetime) -> Iterator[GaugeMetricFamily]:
    yield _gauge(
        "drip_dispatch_lag_seconds",
        "Seconds since the oldest due pending send (not held by a pause) was due; 0 when none",
        _age(now, v.oldest_due_at),
    )
    open_total = sum(v.open_by_campaign.values())
    states = GaugeMetricFamily(
        "drip_scheduled_sends",
        f"Sends by state: pending, queued, sending, unknown and held (a pending send of a paused "
        f"campaign or enrollment); transient states counted up to {gauges.COUNT_CAP}",
        labels=["state"],
    )
    pending = max(open_total - v.queued - v.sending, 0)
    for state, n in (
        ("pending", pending),
        ("queued", v.queued),
        ("sending", v.sending),
        ("unknown", v.unknown),
        ("held", v.held),
    ):
        states.add_metric([state], n)
    yield states
    by_campaign = GaugeMetricFamily(
        "drip_campaign_open_sends",
        "Sends not yet decided (pending, queued or sending) per campaign; (none): outside campaigns",
        labels=["campaign"],
    )
    for name, n in sorted(v.open_by_campaign.items()):
        by_campaign.add_metric([name], n)
    yield by_campaign
    yield _gauge(
        "drip_unknown_oldest_age_seconds",
        "Seconds since the oldest unknown send became unknown; 0 when none",
        _age(now, v.oldest_unknown_at),
    )
    yield _gauge(
        "drip_webhook_outbox_pending",
        f"Webhook events waiting for delivery (counted up to {gauges.COUNT_CAP})",
        v.outbox_pending,
    )
    yield _gauge(
        "drip_webhook_outbox_oldest_age_seconds",
        "Seconds the oldest pending webhook event has waited; 0 when none",
        _age(now, v.outbox_oldest_at),
    )
    yield _gauge(
        "drip_inbox_unapplied_events",
        f"Lead events stored and not applied yet (counted up to {gauges.COUNT_CAP})",
        v.inbox_unapplied,
    )
    yield _gauge(
        "drip_inbox_unapplied_oldest_age_seconds",
        "Seconds since the oldest lead event stored and not applied yet was stored; 0 when none",
        _age(now, v.inbox_oldest_at),
    )
    yield _gauge(
        "drip_last_tick_timestamp_seconds",
        "Unix time the last dispatch tick finished (Celery beat's, drip run's or drip tick's); "
        "0 when none ever did",
        v.dispatch_tick_at.timestamp() if v.dispatch_tick_at is not None else 0.0,
    )


def render(deps: Deps, spool: Spool | None) -> bytes:
    """The text of one scrape: the counters, then the gauges computed now."""
    local = CollectorRegistry(auto_describe=False)
    local.register(GaugeCollector(deps, spool))
    return generate_latest(metrics.registry()) + generate_latest(local)


def register_metrics(app: Flask, deps: Deps) -> None:
    """``GET /metrics`` on ``app``."""

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """The Prometheus text format: counters, then gauges computed at scrape time."""
        spool = app.extensions.get("drip.spool")
        body = render(deps, spool if isinstance(spool, Spool) else None)
        return Response(body, status=200, content_type=CONTENT_TYPE_LATEST)
