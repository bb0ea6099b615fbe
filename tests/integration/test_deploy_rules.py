"""deploy/: the alert rules and the dashboard name only metrics drip exports, and the rules fire when they should.

The exported names come from a real scrape of /metrics. The rules are
evaluated with tests/integration/promql_mini.py (the subset of PromQL they
use): against series scraped from drip itself for a beat that stopped and a
pile of unknown sends, and against made-up series for the rate rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql_mini import Series, fires, metric_names, series
from sqlalchemy import update
from test_web_support import Web, open_web

from drip.domain.enums import SendState
from drip.services.enrollment import enroll
from drip.store.models import ScheduledSend
from drip.web.metrics import render

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "drip-dashboard.json"
COMPOSE = ROOT / "docker-compose.yml"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def rules() -> dict[str, str]:
    """Each alert's name and expression."""
    doc = yaml.safe_load(ALERTS.read_text())
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database (SQLite: the rules do not depend on the database)."""
    with open_web(db_url, tmp_path) as w:
        yield w


SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


def scrape(web: Web) -> str:
    spool = web.client.application.extensions["drip.spool"]
    return render(web.deps, spool).decode()


def exported(text: str) -> set[str]:
    """The sample names a scrape can carry, from its ``# TYPE`` lines."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
        base = name.removesuffix("_total") if kind == "counter" else name
        names.update(base + suffix for suffix in _SUFFIXES[kind])
    return names


def as_series(text: str, at: float, into: Series) -> Series:
    """The samples of a scrape, added to ``into`` as points at ``at``."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            into.setdefault(key, []).append((at, sample.value))
    return into


@SQLITE_ONLY
def test_every_rule_and_panel_names_only_exported_metrics(web: Web) -> None:
    """Each alert expression and dashboard query selects metrics that /metrics really exports."""
    names = exported(scrape(web))
    assert {"drip_sends_total", "drip_dispatch_lag_seconds", "drip_circuit_open"} <= names
    alerts = rules()
    assert len(alerts) >= 8
    for alert, expr in alerts.items():
        used = metric_names(expr)
        assert used, alert
        assert used <= names, f"{alert} names {sorted(used - names)}"
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used = metric_names(target["expr"])
            assert used and used <= names, f"{panel['title']}: {sorted(used - names)}"


def test_compose_runs_prometheus_on_the_rules_and_keeps_spool_and_outbox() -> None:
    """docker-compose has a prometheus service reading deploy/'s rules, and volumes for the spool and outbox."""
    compose = yaml.safe_load(COMPOSE.read_text())
    prometheus = compose["services"]["prometheus"]
    mounts = " ".join(prometheus["volumes"])
    assert "./deploy/prometheus" in mounts
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == ["/etc/prometheus/drip/alerts.yml"]
    targets = [
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    assert "web:8000" in targets
    web = compose["services"]["web"]
    env = web["environment"]
    assert env["DRIP_WEB_SPOOL"].startswith("/app/spool/")
    assert env["DRIP_OUTBOX"].startswith("/app/data/")
    assert {"webspool", "webdata"} <= set(compose["volumes"])


@SQLITE_ONLY
def test_a_stopped_beat_and_a_pile_of_unknown_sends_fire_their_alerts(web: Web) -> None:
    """Scraped series: healthy right after a tick; 3 min later the beat alert fires; 20 min later the unknown one."""
    web.sync_campaign()
    contact_id = web.add_dana()
    enroll(web.deps, contact_id, "web-test-drip", web.now)
    web.tick()
    start = web.now
    with web.deps.sessions.begin() as session:  # the workers died mid-send: every open send unknown
        session.execute(
            update(ScheduledSend)
            .where(ScheduledSend.state == SendState.PENDING)
            .values(state=SendState.UNKNOWN, updated_at=start)
        )
    alerts = rules()
    data: Series = {}
    for minutes in (0, 1, 2, 3, 5, 10, 15, 20):
        web.clock.set(start + timedelta(minutes=minutes))
        as_series(scrape(web), web.now.timestamp(), data)

    def firing(at_minutes: int) -> set[str]:
        at = (start + timedelta(minutes=at_minutes)).timestamp()
        return {name for name, expr in alerts.items() if fires(expr, data, at)}

    assert firing(0) == set()
    assert firing(3) == {"DripBeatSilent"}
    assert firing(20) == {"DripBeatSilent", "DripUnknownSends"}


def _counter(name: str, per_minute: float, minutes: int, **labels: str) -> Series:
    return series(name, [(m * 60.0, per_minute * m) for m in range(minutes + 1)], **labels)


@pytest.mark.parametrize(
    ("alert", "bad", "good"),
    [
        (
            "DripCarrierFiltering",
            {
                **_counter("drip_sends_total", 10, 60, outcome="sent", reason="sent"),
                **_counter("drip_provider_errors_total", 1, 60, code="30007", stage="delivery"),
            },
            {
                **_counter("drip_sends_total", 10, 60, outcome="sent", reason="sent"),
                **_counter("drip_provider_errors_total", 0.05, 60, code="30007", stage="delivery"),
            },
        ),
        (
            "DripOptOutSpike",
            {
                **_counter("drip_sends_total", 2, 60, outcome="sent", reason="sent"),
                **_counter("drip_opt_outs_total", 0.5, 60, source="revoked_keyword"),
            },
            {
                **_counter("drip_sends_total", 20, 60, outcome="sent", reason="sent"),
                **_counter("drip_opt_outs_total", 0.1, 60, source="revoked_keyword"),
            },
        ),
        (
            "DripWebSpoolBacklog",
            _counter("drip_web_spool_depth", 3, 60),
            series("drip_web_spool_depth", [(m * 60.0, 0.0) for m in range(61)]),
        ),
        (
            "DripWebhookOutboxBacklog",
            {
                **_counter("drip_webhook_outbox_pending", 5, 60),
                **_counter("drip_webhook_outbox_oldest_age_seconds", 60, 60),
            },
            {
                **series("drip_webhook_outbox_pending", [(m * 60.0, 4.0) for m in range(61)]),
                **series(
                    "drip_webhook_outbox_oldest_age_seconds", [(m * 60.0, 20.0) for m in range(61)]
                ),
            },
        ),
        (
            "DripCircuitOpen",
            series("drip_circuit_open", [(m * 60.0, 1.0) for m in range(61)], provider="twilio"),
            series("drip_circuit_open", [(m * 60.0, 0.0) for m in range(61)], provider="twilio"),
        ),
        (
            "DripDispatchLag",
            _counter("drip_dispatch_lag_seconds", 60, 60),
            series("drip_dispatch_lag_seconds", [(m * 60.0, 5.0) for m in range(61)]),
        ),
        (
            "DripLeadEventsUnapplied",
            _counter("drip_inbox_unapplied_oldest_age_seconds", 60, 60),
            series("drip_inbox_unapplied_oldest_age_seconds", [(m * 60.0, 3.0) for m in range(61)]),
        ),
        (
            "DripDatabaseDown",
            series("drip_database_up", [(m * 60.0, 0.0) for m in range(61)]),
            series("drip_database_up", [(m * 60.0, 1.0) for m in range(61)]),
        ),
    ],
)
def test_rate_and_backlog_rules_fire_on_bad_series_only(
    alert: str, bad: Series, good: Series
) -> None:
    """Each rule fires on a series that shows its trouble and stays quiet on a healthy one."""
    expr = rules()[alert]
    assert fires(expr, bad, 3600.0)
    assert not fires(expr, good, 3600.0)
