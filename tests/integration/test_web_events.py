"""``POST /events`` on SQLite and PostgreSQL: stored once per id, applied, refused by field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from services_support import store_without_applying
from test_web_support import API_TOKEN, Web, open_web

from drip.campaigns.loader import load_campaigns
from drip.services.sync import sync_campaigns
from drip.store.models import Contact, Enrollment, InboxEvent, ScheduledSend

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database, with agent Sam and the bundled campaigns synced."""
    with open_web(db_url, tmp_path) as w:
        loaded = load_campaigns(REPO / "campaigns")
        sync_campaigns(w.deps, list(loaded.campaigns.values()), w.clock.now())
        yield w


def event(event_id: str, kind: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": kind,
        "occurred_at": extra.pop("at", "2026-03-02T15:00:00Z"),
        "contact": extra.pop("contact", {"external_id": "crm-1", "phone": "+16175550123"}),
        "data": data,
    }


def created() -> dict[str, Any]:
    return event(
        "e1",
        "lead.created",
        {"first_name": "Dana", "lead_source": "website", "sms_consent": True},
    )


def test_a_created_lead_is_stored_applied_and_enrolled_by_its_trigger(web: Web) -> None:
    """lead.created with lead_source website is 202, makes the contact and enrolls it, recording the id."""
    answer = web.client.post("/events", json=created(), headers=AUTH)
    assert answer.status_code == 202, answer.json
    assert answer.json["accepted"] == ["e1"]
    with web.deps.sessions() as session:
        contact = session.query(Contact).filter_by(external_id="crm-1").one()
        assert contact.lead_source == "website"
        enrollment = session.query(Enrollment).filter_by(contact_id=contact.id).one()
        assert enrollment.event_id == "e1"
        assert session.query(InboxEvent).filter_by(event_id="e1").one().processed_at is not None


def test_a_repeated_id_changes_nothing_and_another_body_is_409(web: Web) -> None:
    """The same event again is a duplicate (202); the same id with another body is 409."""
    assert web.client.post("/events", json=created(), headers=AUTH).status_code == 202
    again = web.client.post("/events", json=created(), headers=AUTH)
    assert again.status_code == 202
    assert again.json["events"][0]["status"] == "duplicate"
    other = created()
    other["data"]["lead_source"] = "zillow"
    clash = web.client.post("/events", json=other, headers=AUTH)
    assert clash.status_code == 409
    with web.deps.sessions() as session:
        assert session.query(Contact).filter_by(external_id="crm-1").one().lead_source == "website"


def test_an_event_stored_and_never_applied_is_applied_by_its_repeat_after_ten_minutes(
    web: Web,
) -> None:
    """A process that stops between storing and applying: the producer's repeat, 10 minutes on, applies it once."""
    store_without_applying(web.deps, [created()], web.now)
    soon = web.client.post("/events", json=created(), headers=AUTH)
    # Within ten minutes another process may be applying it still: a duplicate.
    assert soon.json["events"][0]["status"] == "duplicate"
    with web.deps.sessions() as session:
        assert session.query(Contact).filter_by(external_id="crm-1").count() == 0
    web.later(minutes=11)
    late = web.client.post("/events", json=created(), headers=AUTH)
    assert late.status_code == 202 and late.json["events"][0]["status"] == "accepted"
    again = web.client.post("/events", json=created(), headers=AUTH)
    assert again.json["events"][0]["status"] == "duplicate"
    with web.deps.sessions() as session:
        assert session.query(Contact).filter_by(external_id="crm-1").one().lead_source == "website"
        row = session.query(InboxEvent).filter_by(event_id="e1").one()
        assert row.processed_at == web.now and row.outcome and "contact created" in row.outcome


def test_bad_events_are_422_by_field_and_index_the_good_ones_applied(web: Web) -> None:
    """A batch with an unknown type, a nobody and a bad time: each refused by field, the good one applied."""
    batch = [
        created(),
        event("e2", "lead.exploded", {}),
        event("e3", "lead.updated", {"stage": "hot"}, contact={"external_id": "nobody"}),
        event("e4", "lead.updated", {"stage": "hot"}, at="yesterday"),
    ]
    answer = web.client.post("/events", json=batch, headers=AUTH)
    assert answer.status_code == 202
    fields = {e["index"]: (e["status"], e.get("field")) for e in answer.json["events"]}
    assert fields == {
        0: ("accepted", None),
        1: ("invalid", "type"),
        2: ("invalid", "contact"),
        3: ("invalid", "occurred_at"),
    }
    alone = web.client.post("/events", json=batch[1], headers=AUTH)
    assert alone.status_code == 422
    too_many = web.client.post("/events", json=[created()] * 501, headers=AUTH)
    assert too_many.status_code == 422
    assert web.client.post("/events", json=created()).status_code == 401


def test_an_older_event_does_not_move_a_field_back_and_an_exit_ends_the_plan(web: Web) -> None:
    """A stage set at 16:00 stays when a 15:30 event arrives later; deal.stage closed ends the plan."""
    web.client.post("/events", json=created(), headers=AUTH)
    newer = event("e5", "lead.updated", {"stage": "hot"}, at="2026-03-02T16:00:00Z")
    older = event("e6", "lead.updated", {"stage": "cold"}, at="2026-03-02T15:30:00Z")
    assert web.client.post("/events", json=[newer], headers=AUTH).status_code == 202
    assert web.client.post("/events", json=[older], headers=AUTH).status_code == 202
    closed = event("e7", "deal.stage", {"stage": "closed"}, at="2026-03-02T17:00:00Z")
    assert web.client.post("/events", json=closed, headers=AUTH).status_code == 202
    with web.deps.sessions() as session:
        contact = session.query(Contact).filter_by(external_id="crm-1").one()
        assert contact.stage == "hot"
        enrollment = session.query(Enrollment).filter_by(contact_id=contact.id).one()
        assert enrollment.status.value == "stopped"
        assert enrollment.stop_event_id == "e7"
        assert enrollment.stop_reason == "exit deal.stage e7"


def test_explain_and_history_name_the_events_that_enrolled_and_ended(web: Web) -> None:
    """drip explain of a triggered send says which event enrolled it; history says which ended it."""
    from drip.services.audit import explain, history

    created_event = created()
    created_event["id"] = "9f3a2c71-created"
    assert web.client.post("/events", json=created_event, headers=AUTH).status_code == 202
    closed = event("7c0d-closed", "deal.stage", {"stage": "closed"}, at="2026-03-03T17:00:00Z")
    assert web.client.post("/events", json=closed, headers=AUTH).status_code == 202
    with web.deps.sessions() as session:
        contact = session.query(Contact).filter_by(external_id="crm-1").one()
        send_id = (
            session.query(ScheduledSend)
            .filter(ScheduledSend.enrollment_id.isnot(None))
            .order_by(ScheduledSend.id)
            .first()
            .id
        )
    text = "\n".join(explain(web.deps, send_id))
    assert (
        "in new-lead-online: enrolled because lead.created 9f3a2c… "
        "set first_name Dana, set lead_source website" in text
    )
    assert "stopped: ended by deal.stage 7c0d-c… stage closed" in text
    from drip.services.contacts import find_contact

    assert find_contact(web.deps, "crm-1").id == contact.id  # drip history crm-1
    _, _, entries = history(web.deps, contact.id)
    said = [f"{e.what}: {e.text}" for e in entries]
    assert "ended: new-lead-online: stopped: ended by deal.stage 7c0d-c… stage closed" in said


def test_a_batch_of_updates_enrolls_set_based_each_enrollment_with_its_event(web: Web) -> None:
    """500 events in one POST: every other lead archived enrolls once, with its event's id;
    a second archive event of a lead in the same batch does not enroll it again."""
    leads = [
        event(
            f"c{n}",
            "lead.created",
            {"first_name": f"L{n}", "lead_source": "referral"},
            contact={"external_id": f"crm-{n}", "phone": f"+1617555{n:04d}"},
        )
        for n in range(300)
    ]
    assert web.client.post("/events", json=leads, headers=AUTH).status_code == 202
    updates = [
        event(
            f"u{n}",
            "lead.updated",
            {"stage": "archive" if n % 2 == 0 else "nurture"},
            contact={"external_id": f"crm-{n}"},
            at="2026-03-02T16:00:00Z",
        )
        for n in range(300)
    ] + [
        event(
            f"v{n}",
            "lead.updated",
            {"stage": "archive", "tags": ["again"]},
            contact={"external_id": f"crm-{n}"},
            at="2026-03-02T17:00:00Z",
        )
        for n in range(0, 400, 2)
        if n < 300
    ]
    answer = web.client.post("/events", json=updates[:500], headers=AUTH)
    assert answer.status_code == 202, answer.json
    assert {e["status"] for e in answer.json["events"]} == {"accepted"}
    with web.deps.sessions() as session:
        rows = (
            session.query(Enrollment.event_id, Contact.external_id)
            .join(Contact, Contact.id == Enrollment.contact_id)
            .filter(Enrollment.event_id.like("u%"))
            .all()
        )
        assert sorted(rows) == sorted((f"u{n}", f"crm-{n}") for n in range(0, 300, 2))
        assert session.query(Enrollment).filter(Enrollment.event_id.like("v%")).count() == 0
        assert session.query(InboxEvent).filter(InboxEvent.processed_at.is_(None)).count() == 0
        tagged = session.query(Contact).filter_by(external_id="crm-0").one()
        assert (tagged.stage, tagged.tags) == ("archive", ["again"])


def test_contacts_are_selected_by_the_stage_and_tags_events_set(web: Web) -> None:
    """select_contacts with stage or tag keeps only the contacts the CRM's events put there."""
    from drip.services.selection import ContactFilters, select_contacts

    batch = [
        event(
            f"s{n}",
            "lead.created",
            {"first_name": f"L{n}", "stage": "hot" if n < 2 else "cold", "tags": [f"t{n}", "all"]},
            contact={"external_id": f"crm-{n}", "phone": f"+1617555{n:04d}"},
        )
        for n in range(4)
    ]
    assert web.client.post("/events", json=batch, headers=AUTH).status_code == 202
    hot = select_contacts(web.deps, ContactFilters(stage="hot"))
    assert sorted(c.first_name for c in hot.contacts) == ["L0", "L1"]
    assert dict(hot.excluded) == {"stage": 2}
    tagged = select_contacts(web.deps, ContactFilters(tag="t3"), summaries=False)
    assert len(tagged.ids) == 1
    both = select_contacts(web.deps, ContactFilters(stage="cold", tag="all"))
    assert sorted(c.first_name for c in both.contacts) == ["L2", "L3"]


def test_an_update_whose_lead_was_never_made_fails_and_makes_no_contact(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lead.created before it failed: the lead.updated naming its lead fails too, and creates nobody."""
    from drip.errors import DripError
    from drip.services import contacts
    from drip.services import events as service

    real = contacts.add_contact
    calls: list[str] = []

    def refuse_the_first(*args: Any, **kwargs: Any) -> Any:
        calls.append("add_contact")
        if len(calls) == 1:
            raise DripError("refused by the test")
        return real(*args, **kwargs)

    monkeypatch.setattr(contacts, "add_contact", refuse_the_first)
    update = event("e2", "lead.updated", {"stage": "new"}, at="2026-03-02T15:01:00Z")
    result = service.ingest(web.deps, [created(), update], web.now)
    assert [(o.status, o.message) for o in result.outcomes] == [
        ("failed", "refused by the test"),
        ("failed", "event e2 names no contact"),
    ]
    with web.deps.sessions() as session:
        assert session.query(Contact).filter_by(external_id="crm-1").count() == 0


def test_the_sweep_applies_an_event_left_stored_once_it_is_ten_minutes_old(web: Web) -> None:
    """Left stored by a stopped process: counted by the gauges, left alone while young, applied once after."""
    from drip.services import events as service
    from drip.store import gauges

    store_without_applying(web.deps, [created()], web.now)
    stored_at = web.now
    with web.deps.sessions() as session:
        left = gauges.read(session, web.now)
    assert (left.inbox_unapplied, left.inbox_oldest_at) == (1, stored_at)
    # Another process may still be applying it: the sweep leaves it for ten minutes.
    assert service.apply_unapplied(web.deps, web.later(minutes=9)).outcomes == []
    result = service.apply_unapplied(web.deps, web.later(minutes=2))
    assert [(o.id, o.status) for o in result.outcomes] == [("e1", "accepted")]
    assert service.apply_unapplied(web.deps, web.later(minutes=11)).outcomes == []
    with web.deps.sessions() as session:
        assert session.query(Contact).filter_by(external_id="crm-1").one().lead_source == "website"
        row = session.query(InboxEvent).filter_by(event_id="e1").one()
        assert row.outcome and "contact created" in row.outcome
        after = gauges.read(session, web.now)
    assert (after.inbox_unapplied, after.inbox_oldest_at) == (0, None)


def test_the_embedded_loop_sweeps_events_left_stored_every_five_minutes(web: Web) -> None:
    """drip run's sweep applies an event left stored once it is ten minutes old, at most every five minutes."""
    from drip.embedded import sweep_events

    def processed() -> object:
        with web.deps.sessions() as session:
            return session.query(InboxEvent).filter_by(event_id="e1").one().processed_at

    store_without_applying(web.deps, [created()], web.now)
    swept = sweep_events(
        web.deps,
        None,
    )
    assert swept == web.now and processed() is None  # too young: another process may have it
    web.later(minutes=8)
    swept = sweep_events(web.deps, swept)
    assert swept == web.now and processed() is None  # eight minutes old: still too young
    web.later(minutes=3)
    assert sweep_events(web.deps, swept) == swept and processed() is None  # swept 3 minutes ago
    web.later(minutes=2)
    assert sweep_events(web.deps, swept) == web.now and processed() == web.now
    with web.deps.sessions() as session:
        assert session.query(Contact).filter_by(external_id="crm-1").count() == 1
