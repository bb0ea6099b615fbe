"""GET /metrics over real HTTP: counters after real sends, inbound texts and callbacks, and the gauges."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from test_web_support import DANA_PHONE, Web, open_web
from werkzeug.serving import make_server

from drip.domain.enums import SendState
from drip.services.enrollment import enroll
from drip.store.models import ScheduledSend
from drip.testing.fake_twilio import FakeTwilioServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextmanager
def served(web: Web) -> Iterator[str]:
    """The web app on a real HTTP server; yields its /metrics URL."""
    server = make_server("127.0.0.1", 0, web.client.application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def scrape(url: str) -> Samples:
    """Every sample of one scrape, by name and labels."""
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 -- http://127.0.0.1 built here
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        body = answer.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@pytest.fixture
def fake() -> Iterator[FakeTwilioServer]:
    """A fake Twilio server (the real twilio SDK talks to it)."""
    with FakeTwilioServer() as server:
        yield server


@pytest.fixture
def web(db_url: str, tmp_path: Path, fake: FakeTwilioServer) -> Iterator[Web]:
    """The app on the test database, sending through the fake Twilio server."""
    with open_web(db_url, tmp_path, sms=fake.transport()) as w:
        yield w


def test_metrics_count_real_sends_inbound_and_opt_outs(web: Web) -> None:
    """After an opt-in confirmation, a campaign text and a STOP, /metrics counts each one."""
    with served(web) as url:
        before = scrape(url)
        web.sync_campaign()
        contact_id = web.add_dana()  # the opt-in confirmation goes out at once
        enroll(web.deps, contact_id, "web-test-drip", web.now)
        web.clock.set(web.now + timedelta(days=1, hours=1))
        summary = web.tick()
        sent = summary.counts().get("sent", 0)
        assert sent >= 1
        assert web.sms("STOP", sid="SM" + "5" * 32).status_code == 200
        after = scrape(url)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("drip_sends_total", outcome="sent") >= sent + 1  # and the confirmation
    assert grew("drip_fire_latency_seconds_count") >= sent
    assert grew("drip_inbound_messages_total", kind="opt_out") == 1
    assert grew("drip_opt_outs_total", source="revoked_keyword") == 1
    assert total(after, "drip_database_up") == 1
    tick_at = total(after, "drip_last_tick_timestamp_seconds")
    assert tick_at == pytest.approx(web.now.timestamp())
    # Dana's email steps of days 2 and 3 are still open (her texts stopped, her email did not).
    pending = total(after, "drip_scheduled_sends", state="pending")
    assert pending == len([s for s in web.sends(contact_id) if s.state is SendState.PENDING])
    assert total(after, "drip_campaign_open_sends", campaign="web-test-drip") == pending
    assert total(after, "drip_dispatch_lag_seconds") == 0  # nothing due is waiting


def test_metrics_gauges_see_lag_unknown_sends_and_provider_errors(
    web: Web, fake: FakeTwilioServer
) -> None:
    """An overdue send shows as dispatch lag, an old unknown send by its age, a refusal by its code."""
    web.sync_campaign()
    fake.fail(DANA_PHONE, code=21610)  # the carrier says Dana unsubscribed
    with served(web) as url:
        before = scrape(url)
        contact_id = web.add_dana()  # the confirmation is refused with 21610
        enroll(web.deps, contact_id, "web-test-drip", web.now)
        web.clock.set(web.now + timedelta(days=4))  # every step is due, nothing dispatched
        with web.deps.sessions.begin() as session:
            first = min(s.id for s in web.sends(contact_id) if s.state is SendState.PENDING)
            session.execute(
                update(ScheduledSend)
                .where(ScheduledSend.id == first)
                .values(state=SendState.UNKNOWN, updated_at=web.now - timedelta(minutes=20))
            )
        after = scrape(url)
    assert (
        total(after, "drip_provider_errors_total", code="21610", stage="send")
        - total(before, "drip_provider_errors_total", code="21610", stage="send")
        == 1
    )
    assert total(after, "drip_dispatch_lag_seconds") >= timedelta(days=1).total_seconds()
    assert total(after, "drip_scheduled_sends", state="unknown") == 1
    assert total(after, "drip_unknown_oldest_age_seconds") == pytest.approx(20 * 60)
    assert total(after, "drip_web_spool_depth") == 0


def test_delivery_errors_are_counted_by_code(web: Web) -> None:
    """A status callback that says undelivered with 30007 (carrier filtering) counts as that code."""
    web.sync_campaign()
    contact_id = web.add_dana()
    (confirmation,) = web.messages(contact_id)
    assert confirmation.provider_sid is not None
    with served(web) as url:
        before = scrape(url)
        web.status(confirmation.provider_sid, "undelivered", error_code=30007)
        after = scrape(url)
    labels = {"code": "30007", "stage": "delivery"}
    grew = total(after, "drip_provider_errors_total", **labels) - total(
        before, "drip_provider_errors_total", **labels
    )
    assert grew == 1
