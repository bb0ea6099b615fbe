"""The batch's own PostgreSQL connection (one statement per send) and what happens when it drops."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy.engine import make_url

from drip.services import dispatch
from drip.services.fire import fire_batch
from drip.store.migrate import upgrade
from drip.transports.base import OutboundSms, SmsReceipt, SmsTransport

if TYPE_CHECKING:
    from conftest import Rig


@pytest.fixture
def rig_db_url(pg_url: str) -> str:
    """A fresh, migrated PostgreSQL database: these tests kill its backends."""
    upgrade(pg_url)
    return pg_url


class DropsConnections:
    """The real transport; after the ``n``-th call the server kills every connection of drip's."""

    def __init__(self, inner: SmsTransport, url: str, n: int) -> None:
        self.inner, self.n, self.calls = inner, n, 0
        self.libpq = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        self.calls += 1
        receipt = self.inner.send_sms(msg)
        if self.calls == self.n:
            with psycopg.connect(self.libpq, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
        return receipt


def _batch(rig: Rig, n: int) -> list[int]:
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(n), "one-step")
    rig.at(rig.start + timedelta(minutes=1))
    return dispatch.claim(rig.deps, rig.now)


@pytest.mark.parametrize("n", [1, 4, 8])
def test_a_dropped_batch_connection_loses_no_send_and_sends_none_twice(
    rig: Rig, n: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections killed after the n-th provider call: every send recorded once, none sent twice."""
    from dataclasses import replace

    ids = _batch(rig, 8)
    before = rig.twilio.count
    dropping = DropsConnections(rig.deps.sms, str(rig.deps.engine.url), n)
    results = fire_batch(replace(rig.deps, sms=dropping), ids, rig.now)
    # the statement after the drop never reached the server: it is retried through
    # the pool (which reconnects), and the batch goes on with a new connection
    assert "send_start_retry" in caplog.text or "send_record_retry" in caplog.text
    assert rig.twilio.count - before == 8
    assert rig.states() == {"sent": 8}
    outbound = rig.outbound()
    assert len(outbound) == 8
    assert len({m.provider_sid for m in outbound}) == 8
    assert sorted(r.message_id or 0 for r in results) == sorted(m.id for m in outbound)
