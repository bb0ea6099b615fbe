"""POST /contacts: registration with a bearer token and the unchecked-by-default consent box."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_web_support import API_TOKEN, CONSENT_TEXT, DANA_PHONE, NY, Web, open_web
from werkzeug.test import TestResponse

from drip.domain.enums import ConsentEventKind, ConsentSource, MessageKind
from drip.store.models import Contact

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
FORM = {
    "first_name": "Dana",
    "last_name": "Ruiz",
    "phone": "(617) 555-0123",
    "email": "dana@example.com",
    "state": "MA",
    "timezone": "America/New_York",
    "agent_phone": "617-555-0100",
}


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database, with agent Sam."""
    with open_web(db_url, tmp_path) as w:
        yield w


def register(web: Web, *, json: dict[str, Any] | None = None, **form: str) -> TestResponse:
    if json is not None:
        return web.client.post("/contacts", json=json, headers=AUTH)
    return web.client.post("/contacts", data={**FORM, **form}, headers=AUTH)


@pytest.mark.parametrize("checked", ["on", "true", "1", "yes", "YES"])
def test_checked_box_records_consent_and_confirms_at_once(web: Web, checked: str) -> None:
    """A ticked box with its consent text records evidence and sends one opt-in confirmation."""
    response = register(web, sms_consent=checked, consent_text=CONSENT_TEXT)

    assert response.status_code == 201
    body = response.get_json()
    assert body["created"] is True
    assert body["sms_consent"] is True
    assert body["opt_in_confirmation"] == "sent"
    contact = web.contact(body["contact_id"])
    assert contact.phone == DANA_PHONE
    assert contact.sms_consent_at == web.now
    assert contact.sms_consent_source is ConsentSource.REGISTRATION
    assert contact.sms_consent_text == CONSENT_TEXT
    event = web.events(contact.id)[0]
    assert (event.kind, event.evidence) == (ConsentEventKind.GIVEN, CONSENT_TEXT)
    assert [m.kind for m in web.messages(contact.id)] == [MessageKind.OPT_IN_CONFIRMATION]
    assert len(web.transport.sms) == 1
    assert web.transport.sms[0].msg.to == DANA_PHONE


def test_json_body_with_true_is_consent(web: Web) -> None:
    """A JSON registration with sms_consent true works like the ticked form."""
    response = register(web, json={**FORM, "sms_consent": True, "consent_text": CONSENT_TEXT})

    assert response.status_code == 201
    assert response.get_json()["sms_consent"] is True
    assert len(web.transport.sms) == 1


@pytest.mark.parametrize("unchecked", [None, "", "off", "false", "0", "no"])
def test_unchecked_or_absent_box_is_no_consent(web: Web, unchecked: str | None) -> None:
    """Without the box ticked the contact is created without consent and gets no text."""
    extra = {} if unchecked is None else {"sms_consent": unchecked}

    response = register(web, consent_text=CONSENT_TEXT, **extra)

    assert response.status_code == 201
    body = response.get_json()
    assert body["sms_consent"] is False
    assert body["opt_in_confirmation"] is None
    contact = web.contact(body["contact_id"])
    assert contact.sms_consent_at is None
    assert web.events(contact.id) == []
    assert web.transport.sms == []


def test_json_false_is_no_consent(web: Web) -> None:
    """JSON sms_consent false (or null) is no consent."""
    response = register(web, json={**FORM, "sms_consent": False, "consent_text": CONSENT_TEXT})

    assert response.status_code == 201
    assert response.get_json()["sms_consent"] is False
    assert web.transport.sms == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"phone": "555-0123"}, "phone"),
        ({"phone": "not a phone"}, "phone"),
        ({"phone": "", "email": ""}, "phone"),
        ({"first_name": ""}, "first_name"),
        ({"email": "dana-at-example"}, "email"),
        ({"state": "ZZ"}, "state"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"agent_phone": "+16175550111"}, "agent_phone"),
        ({"sms_consent": "maybe"}, "sms_consent"),
        ({"source": "telepathy"}, "source"),
        ({"first_name": "x" * 101}, "first_name"),
    ],
)
def test_bad_field_is_422_naming_it_and_creates_nothing(
    web: Web, changes: dict[str, str], field: str
) -> None:
    """A bad phone (or any bad field) is 422 with the field named; no contact, no text."""
    response = register(web, **changes)

    assert response.status_code == 422
    assert response.get_json()["field"] == field
    assert response.get_json()["error"]
    assert web.count(Contact) == 0
    assert web.transport.sms == []


def test_consent_without_consent_text_is_422(web: Web) -> None:
    """A ticked box without the consent wording is refused: consent needs its evidence."""
    response = register(web, sms_consent="on")

    assert response.status_code == 422
    assert response.get_json()["field"] == "consent_text"
    assert web.count(Contact) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": API_TOKEN},
        {"Authorization": "Basic x"},
    ],
)
def test_missing_or_wrong_token_is_401(web: Web, headers: dict[str, str]) -> None:
    """Without the right bearer token nothing is created."""
    response = web.client.post("/contacts", data={**FORM, "sms_consent": "on"}, headers=headers)

    assert response.status_code == 401
    assert response.get_json()["field"] == "Authorization"
    assert web.count(Contact) == 0


def test_server_without_token_refuses_every_registration(db_url: str, tmp_path: Path) -> None:
    """With no DRIP_API_TOKEN configured, every registration is 401 and the body says why."""
    with open_web(db_url, tmp_path, api_token=None) as web:
        response = web.client.post("/contacts", data=FORM, headers=AUTH)

        assert response.status_code == 401
        assert "DRIP_API_TOKEN" in response.get_json()["error"]
        assert web.count(Contact) == 0


def test_not_a_json_object_is_400(web: Web) -> None:
    """A JSON body that is not an object is refused."""
    response = web.client.post("/contacts", json=["Dana"], headers=AUTH)

    assert response.status_code == 400
    assert response.get_json()["field"] == "body"


def test_registering_twice_updates_and_confirms_once(web: Web) -> None:
    """The same phone registering again updates the contact and sends no second confirmation."""
    first = register(web, sms_consent="on", consent_text=CONSENT_TEXT)
    web.later(hours=1)
    second = register(web, sms_consent="on", consent_text=CONSENT_TEXT, last_name="Ruiz-Lee")

    assert first.get_json()["contact_id"] == second.get_json()["contact_id"]
    assert second.get_json()["created"] is False
    assert second.get_json()["sms_consent"] is True
    assert web.count(Contact) == 1
    assert web.contact(second.get_json()["contact_id"]).last_name == "Ruiz-Lee"
    assert len(web.transport.sms) == 1


def test_registering_again_after_stop_restores_consent_and_confirms(web: Web) -> None:
    """A contact who texted STOP and then ticks the box on a new registration gets a confirmation."""
    contact_id = register(web, sms_consent="on", consent_text=CONSENT_TEXT).get_json()["contact_id"]
    assert web.sms("STOP", sid="SM" + "5" * 32).status_code == 200
    web.later(days=2)

    again = register(web, sms_consent="on", consent_text=CONSENT_TEXT)

    assert again.get_json()["sms_consent"] is True
    assert web.contact(contact_id).sms_opted_out_at is None
    kinds = [m.kind for m in web.messages(contact_id) if m.direction == "outbound"]
    assert kinds == [
        MessageKind.OPT_IN_CONFIRMATION,
        MessageKind.OPT_OUT_CONFIRMATION,
        MessageKind.OPT_IN_CONFIRMATION,
    ]


def test_confirmation_is_not_held_by_quiet_hours(db_url: str, tmp_path: Path) -> None:
    """A registration at 23:30 local gets its opt-in confirmation at once (SPEC C3)."""
    night = datetime(2026, 3, 2, 23, 30, tzinfo=NY).astimezone(UTC)
    with open_web(db_url, tmp_path, start=night) as web:
        response = register(web, sms_consent="on", consent_text=CONSENT_TEXT)

        assert response.get_json()["opt_in_confirmation"] == "sent"
        assert [s.at for s in web.transport.sms] == [night]


def test_registration_with_a_campaign_enrolls_the_contact(web: Web) -> None:
    """An optional campaign enrolls the new contact at once; the answer says how many sends."""
    web.sync_campaign()
    response = register(web, sms_consent="on", consent_text=CONSENT_TEXT, campaign="web-test-drip")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["enrollment"]["campaign"] == "web-test-drip"
    assert body["enrollment"]["created"] is True
    assert body["enrollment"]["sends"] >= 1


def test_registration_with_an_unknown_campaign_is_422_and_creates_nothing(web: Web) -> None:
    """A campaign that does not exist is refused before the contact is stored."""
    response = register(web, sms_consent="on", consent_text=CONSENT_TEXT, campaign="nope")
    assert response.status_code == 422
    assert response.get_json()["field"] == "campaign"
    with web.deps.sessions() as session:
        assert session.query(Contact).count() == 0


def test_a_known_email_is_the_same_contact(web: Web) -> None:
    """Registering again with the same email and no phone updates that contact (no duplicate)."""
    first = register(web, json={"first_name": "Dana", "email": "dana@example.com"})
    again = register(web, json={"first_name": "Dana", "email": "DANA@example.com", "state": "NY"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["contact_id"] == first.get_json()["contact_id"]
    assert again.get_json()["created"] is False
    assert any("state" in note for note in again.get_json()["notes"])
