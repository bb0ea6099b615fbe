"""``POST /events`` over a socket: the app on werkzeug's threaded server (as ``drip serve``
runs it), posted to by a ``requests.Session`` with keep-alive."""

from __future__ import annotations

import html
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from test_web_events import REPO, event
from test_web_support import API_TOKEN, Web, open_web
from werkzeug.serving import make_server

from drip.campaigns.loader import load_campaigns
from drip.services.sync import sync_campaigns
from drip.store.models import Contact, Enrollment, InboxEvent
from drip.web.app import create_app

CONSOLE_TOKEN = "console-events-token-0123456789"


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The services on the test database, with agent Sam and the bundled campaigns synced."""
    with open_web(db_url, tmp_path, console_token=CONSOLE_TOKEN) as w:
        loaded = load_campaigns(REPO / "campaigns")
        sync_campaigns(w.deps, list(loaded.campaigns.values()), w.clock.now())
        yield w


@pytest.fixture
def http(web: Web) -> Iterator[tuple[str, requests.Session]]:
    """The app served on a free port by a threaded werkzeug server; its URL and a session."""
    server = make_server("127.0.0.1", 0, create_app(web.deps), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {API_TOKEN}"
            yield f"http://127.0.0.1:{server.server_port}", session
    finally:
        server.shutdown()
        thread.join(timeout=10)


def leads(n: int) -> list[dict[str, Any]]:
    return [
        event(
            f"c{k}",
            "lead.created",
            {"first_name": f"L{k}", "lead_source": "referral", "sms_consent": True},
            contact={"external_id": f"crm-{k}", "phone": f"+1617555{k:04d}"},
        )
        for k in range(n)
    ]


def inbox(web: Web) -> list[tuple[str, str | None]]:
    with web.deps.sessions() as session:
        rows = session.query(InboxEvent.event_id, InboxEvent.outcome).order_by(InboxEvent.id)
        return [(r[0], r[1]) for r in rows]


def test_a_bad_or_missing_token_is_401_and_nothing_is_stored(
    web: Web, http: tuple[str, requests.Session]
) -> None:
    """A wrong bearer token and none at all are both 401 naming Authorization; the inbox stays empty."""
    url, _ = http
    wrong = requests.post(
        f"{url}/events", json=leads(1), headers={"Authorization": "Bearer nope"}, timeout=30
    )
    missing = requests.post(f"{url}/events", json=leads(1), timeout=30)

    assert (wrong.status_code, wrong.json()["field"]) == (401, "Authorization")
    assert (missing.status_code, missing.json()["field"]) == (401, "Authorization")
    assert inbox(web) == []


def test_a_malformed_body_or_event_is_4xx_naming_where(
    web: Web, http: tuple[str, requests.Session]
) -> None:
    """A body that is not JSON is 400 naming the body; a batch of bad events is 422 naming each
    event's index and field; nothing is stored."""
    url, session = http
    not_json = session.post(
        f"{url}/events",
        data=b'[{"id": "x1", "type": "lead.created",',
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    bad = [
        event("b1", "lead.exploded", {}),
        event("b2", "lead.updated", {"stage": "hot"}, at="2026-03-02 15:00"),
        event("b3", "lead.created", {}, contact={"external_id": "crm\u0000-3"}),
        event("b4\u0000", "lead.created", {}),
    ]
    refused = session.post(f"{url}/events", json=bad, timeout=30)

    assert not_json.status_code == 400
    assert not_json.json()["field"] == "body"
    assert refused.status_code == 422
    assert [(e["index"], e["id"], e["field"]) for e in refused.json()["events"]] == [
        (0, "b1", "type"),
        (1, "b2", "occurred_at"),
        (2, "b3", "contact.external_id"),
        (3, "b4\u0000", "id"),
    ]
    assert "no offset" in refused.json()["events"][1]["message"]
    assert inbox(web) == []


def test_a_batch_keeps_its_good_events_and_answers_each_bad_one(
    web: Web, http: tuple[str, requests.Session]
) -> None:
    """Three good leads and two bad events in one POST: 202, the three stored and applied, each
    bad one answered by index and field."""
    url, session = http
    batch: list[Any] = leads(3)
    batch.insert(
        1, event("x1", "lead.updated", {"stage": "hot"}, contact={"external_id": "nobody"})
    )
    batch.append({"id": "x2", "type": "lead.updated", "contact": {"phone": "+16175550000"}})

    answer = session.post(f"{url}/events", json=batch, timeout=60)

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["accepted"] == ["c0", "c1", "c2"]
    assert {(e["index"], e["field"]) for e in body["events"] if e["status"] == "invalid"} == {
        (1, "contact"),
        (4, "occurred_at"),
    }
    assert [event_id for event_id, _ in inbox(web)] == ["c0", "c1", "c2"]
    with web.deps.sessions() as session_db:
        made = session_db.query(Contact.external_id).filter(Contact.external_id.isnot(None))
        assert sorted(r[0] for r in made) == ["crm-0", "crm-1", "crm-2"]


def test_a_redelivered_batch_is_answered_as_duplicates_and_changes_nothing(
    web: Web, http: tuple[str, requests.Session]
) -> None:
    """The CRM sends the same batch again (a retry after a timeout): 202, every event a duplicate,
    no second inbox row, contact or enrollment; the same id with another body is 409."""
    url, session = http
    batch = [*leads(2), event("u1", "lead.updated", {"stage": "archive"},
                              contact={"external_id": "crm-1"}, at="2026-03-02T16:00:00Z")]  # fmt: skip
    first = session.post(f"{url}/events", json=batch, timeout=60)
    with web.deps.sessions() as s:
        before = (s.query(Contact).count(), s.query(Enrollment).count())
    again = session.post(f"{url}/events", json=batch, timeout=60)
    changed = dict(batch[2], data={"stage": "nurture"})
    clash = session.post(f"{url}/events", json=[changed], timeout=60)

    assert first.status_code == 202
    assert again.status_code == 202
    assert again.json()["counts"] == {"duplicate": 3}
    assert clash.status_code == 409
    assert clash.json()["events"][0]["field"] == "id"
    assert [event_id for event_id, _ in inbox(web)] == ["c0", "c1", "u1"]
    with web.deps.sessions() as s:
        assert (s.query(Contact).count(), s.query(Enrollment).count()) == before
        revived = s.query(Enrollment).filter_by(event_id="u1").one()
        assert s.get(Contact, revived.contact_id).stage == "archive"  # type: ignore[union-attr]


def test_an_exit_in_the_same_batch_ends_the_enrollment_its_trigger_made(
    web: Web, http: tuple[str, requests.Session]
) -> None:
    """Archived at 16:00 (enrolls in revive-archived), closed at 17:00, in one POST: the
    enrollment is made with the first event's id and stopped by the second."""
    url, session = http
    assert session.post(f"{url}/events", json=leads(2), timeout=60).status_code == 202
    batch = [
        event("a0", "lead.updated", {"stage": "archive"}, contact={"external_id": "crm-0"},
              at="2026-03-02T16:00:00Z"),
        event("a1", "lead.updated", {"stage": "archive"}, contact={"external_id": "crm-1"},
              at="2026-03-02T16:00:00Z"),
        event("d0", "deal.stage", {"stage": "closed"}, contact={"external_id": "crm-0"},
              at="2026-03-02T17:00:00Z"),
    ]  # fmt: skip

    answer = session.post(f"{url}/events", json=batch, timeout=60)

    assert answer.status_code == 202, answer.text
    with web.deps.sessions() as s:
        rows = s.query(Enrollment).filter(Enrollment.event_id.in_(["a0", "a1"])).all()
        state = {r.event_id: (r.status.value, r.stop_event_id) for r in rows}
    assert state == {"a0": ("stopped", "d0"), "a1": ("active", None)}
    said = dict(inbox(web))
    assert said["a0"] is not None and "enrolled in revive-archived" in said["a0"]
    assert said["d0"] is not None and "left revive-archived" in said["d0"]


def test_the_contact_page_says_which_event_and_rule_began_and_ended_each_enrollment(
    web: Web, http: tuple[str, requests.Session]
) -> None:
    """After a CRM archives a lead and later closes its deal, the console's contact page (over
    HTTP) shows the enrollment begun by the archive event's trigger and ended by the exit."""
    url, session = http
    assert session.post(f"{url}/events", json=leads(1), timeout=60).status_code == 202
    archived = event("9f3a2c71-archive", "lead.updated", {"stage": "archive"},
                     contact={"external_id": "crm-0"}, at="2026-03-02T16:00:00Z")  # fmt: skip
    closed = event("7c0d-closed", "deal.stage", {"stage": "closed"},
                   contact={"external_id": "crm-0"}, at="2026-03-03T17:00:00Z")  # fmt: skip
    assert session.post(f"{url}/events", json=[archived], timeout=60).status_code == 202
    assert session.post(f"{url}/events", json=[closed], timeout=60).status_code == 202
    with web.deps.sessions() as s:
        contact_id = s.query(Contact.id).filter_by(external_id="crm-0").scalar()

    page = requests.get(
        f"{url}/console/contacts/{contact_id}",
        headers={"Authorization": f"Bearer {CONSOLE_TOKEN}"},
        timeout=60,
    )

    assert page.status_code == 200
    text = html.unescape(page.text)
    row = next(line for line in text.splitlines() if "revive-archived</a>" in line)
    assert (
        "enrolled because lead.updated 9f3a2c… set stage archive "
        "(trigger: lead.updated where stage archive)" in row
    )
    assert (
        "ended by deal.stage 7c0d-c… stage closed "
        "(exit: deal.stage where stage under_contract|closed)" in row
    )
    assert ">stopped<" in row
