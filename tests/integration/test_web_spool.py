"""Inbound texts and callbacks while PostgreSQL refuses connections: spooled, 200, drained once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url, select
from test_web_support import Web, open_web

from drip.store.models import Message, PendingCallback

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@contextmanager
def database_down(
    pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]], web: Web, url: str
) -> Iterator[None]:
    """The test's own database refuses new connections and the app's pooled ones are closed."""
    _, admin = pg_admin
    name = make_url(url).database
    assert name is not None
    admin.execute(
        sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name))
    )
    web.deps.engine.dispose()
    try:
        yield
    finally:
        admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(name))
        )


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database (PostgreSQL), its spool retried every 0.1 s."""
    with open_web(db_url, tmp_path) as w:
        w.client.application.extensions["drip.spool_drainer"].RETRY_EVERY = 0.1
        yield w


def drained(web: Web, timeout: float = 60.0) -> None:
    """Wait until the spool's background thread has applied every entry."""
    spool = web.client.application.extensions["drip.spool"]
    deadline = time.monotonic() + timeout
    while spool.has_pending():
        assert time.monotonic() < deadline, f"{spool.pending()} webhooks still spooled"
        time.sleep(0.05)


def test_a_stop_while_the_database_is_down_is_spooled_and_applied_once_in_order(
    web: Web, db_url: str, pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]]
) -> None:
    """STOP and a callback during an outage: 200, fsynced; after it, applied in order, once."""
    dana = web.add_dana()
    stop_sid, later_sid = "SM" + "1" * 32, "SM" + "2" * 32
    spool = web.client.application.extensions["drip.spool"]
    with database_down(pg_admin, web, db_url):
        assert web.sms("STOP", sid=stop_sid).status_code == 200
        assert web.status("SM" + "3" * 32, "delivered").status_code == 200
        assert spool.pending() == 2

    assert web.sms("thanks", sid=later_sid).status_code == 200  # queued behind the spool
    drained(web)
    assert web.sms("STOP", sid=stop_sid).status_code == 200  # Twilio's own redelivery: ignored

    assert spool.pending() == 0
    assert web.contact(dana).sms_opted_out_at is not None
    with web.deps.sessions() as session:
        inbound = session.scalars(
            select(Message).where(Message.direction == "inbound").order_by(Message.id)
        ).all()
        kept = session.scalars(select(PendingCallback)).all()
    assert [m.provider_sid for m in inbound] == [stop_sid, later_sid]
    assert [k.message_sid for k in kept] == ["SM" + "3" * 32]


def test_every_webhook_of_an_outage_is_applied_in_order_once_the_database_is_back(
    web: Web, db_url: str, pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]]
) -> None:
    """N inbound texts answered 200 during an outage are all applied, in arrival order, once."""
    dana = web.add_dana()
    sids = [f"SM{n:032d}" for n in range(1, 61)]
    spool = web.client.application.extensions["drip.spool"]
    with database_down(pg_admin, web, db_url):
        for n, sid in enumerate(sids):
            assert web.sms(f"question {n}", sid=sid).status_code == 200
        assert spool.pending() == len(sids)
    drained(web)  # nothing else arrives: the background thread alone drains

    with web.deps.sessions() as session:
        inbound = session.scalars(
            select(Message).where(Message.direction == "inbound").order_by(Message.id)
        ).all()
    assert [m.provider_sid for m in inbound] == sids
    assert [m.body for m in inbound] == [f"question {n}" for n in range(len(sids))]
    assert {m.contact_id for m in inbound} == {dana}
