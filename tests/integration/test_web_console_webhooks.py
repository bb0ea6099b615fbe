"""The console's webhooks panel over HTTP (Flask test client) on SQLite and PostgreSQL.

The outbox rows are written with the store's own functions: one pending,
one dead for one webhook after the other took it, both carrying the
contact's phone in their payload, which the page must never show.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from services_support import World, add_dana, add_sam, open_world

from drip.domain.account import WebhookTarget
from drip.store import outbox
from drip.store.models import Contact, OutboxEvent
from drip.web.app import create_app

TOKEN = "console-test-token-0123456789"
PHONE = "+16175550123"
CRM = WebhookTarget("crm", "https://crm.example/hook", frozenset({"reply.received"}), "CRM_KEY")
CHAT = WebhookTarget(
    "chat", "https://chat.example/hook", frozenset({"reply.received", "send.sent"}), "CHAT_KEY"
)


def app_for(world: World, *targets: WebhookTarget) -> Flask:
    """The web app with the console on and the account's webhooks set to ``targets``."""
    settings = dataclasses.replace(world.deps.settings, console_token=TOKEN)
    account = dataclasses.replace(world.deps.account, webhooks=targets)
    return create_app(dataclasses.replace(world.deps, settings=settings, account=account))


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[tuple[World, str, str]]:
    """Dana, one pending reply.received (2 h old) and one dead after chat refused it."""
    with open_world(db_url, tmp_path) as w:
        add_sam(w)
        dana = add_dana(w, phone=PHONE)
        created = w.now - timedelta(hours=2)
        with w.deps.sessions.begin() as session:
            doc = {"contact": outbox.contact_doc(session.get_one(Contact, dana)), "body": "Hi"}
            dead_id = outbox.append(session, "reply.received", dana, doc, created)
            pending_id = outbox.append(session, "reply.received", dana, doc, created)
            row = session.query(OutboxEvent).filter_by(event_id=dead_id).one()
            outbox.settle(
                session,
                row,
                w.now,
                delivered_to=["crm"],
                done=False,
                error="chat: HTTP 500",
                next_attempt_at=None,
                dead=True,
            )
        yield w, dead_id, pending_id


def front_page(app: Flask) -> str:
    answer = app.test_client().get("/console/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def backlog_rows(page: str) -> dict[str, list[str]]:
    """The backlog table's rows as text cells, by webhook name."""
    table = re.search(r'<table[^>]*id="webhooks-backlog".*?</table>', page, re.S)
    assert table is not None, page
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S):
        cells = [
            " ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        ]
        if cells:
            rows[cells[0]] = cells
    return rows


def test_panel_shows_backlog_and_dead_without_personal_data(
    world: tuple[World, str, str],
) -> None:
    """Pending and dead counts per webhook and overall, the dead event's id and type, no phone."""
    w, dead_id, pending_id = world
    page = front_page(app_for(w, CRM, CHAT))
    rows = backlog_rows(page)
    # webhook, events, pending, retrying, oldest pending, dead
    assert rows["crm"][2:4] == ["1", "0"] and rows["crm"][5] == "0"
    assert rows["chat"][2:4] == ["1", "0"] and rows["chat"][5] == "1"
    assert rows["all"][2:4] == ["1", "0"] and rows["all"][5] == "1"
    assert rows["all"][4].startswith("2 h 0 min")
    dead = re.search(r'<table id="webhooks-dead">.*?</table>', page, re.S)
    assert dead is not None
    assert dead_id in dead.group(0) and "reply.received" in dead.group(0)
    assert "chat: HTTP 500" in dead.group(0)
    assert pending_id not in page
    for shown in (PHONE, "6175550123", "617-555-0123", "(617) 555-0123", "555-0123"):
        assert shown not in page, shown
    assert "dana@example.com" not in page and "No webhooks configured" not in page


def test_panel_says_when_no_webhook_is_configured(world: tuple[World, str, str]) -> None:
    """An account without webhooks is told so; the outbox's overall numbers still show."""
    w, dead_id, _ = world
    page = front_page(app_for(w))
    assert "No webhooks configured" in page
    assert set(backlog_rows(page)) == {"all"}
    assert dead_id in page
