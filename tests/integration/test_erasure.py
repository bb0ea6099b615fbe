"""Erasure on SQLite and PostgreSQL: after ``erase_contact`` no table and no file holds the person.

A contact made by a lead event, texted by a campaign and by hand, who replied
(forwarded to the agent by email, announced to a webhook and delivered), whose
reply also went through the webhook spool, and who then texted STOP, is
erased; then every table of the live schema and every file the run wrote
(the log file, the console outbox file, the spool) is searched for the
person's name, phone in every format, email, CRM id and message texts.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from test_web_support import ACCOUNT, AGENT_PHONE, API_TOKEN, CAMPAIGN, Web, open_web
from webhook_support import Receiver, receiver

from drip.domain.account import WEBHOOK_EVENTS, WebhookTarget
from drip.domain.enums import Channel, ConsentSource, MessageKind
from drip.errors import NotFoundError, ValidationError
from drip.logging import configure_logging
from drip.services.consent import ConsentEvidence
from drip.services.contacts import ContactInput, add_agent, add_contact, send_now
from drip.services.enrollment import enroll
from drip.services.erasure import ErasureFileError, erase_contact
from drip.services.webhooks import deliver_due
from drip.store.erasure import phone_forms
from drip.store.models import Contact, OutboxEvent, Suppression
from drip.transports.console import ConsoleTransport

PHONE = "+16175550177"
EMAIL = "Zelda.Quack@example.org"
SECRET_ENV = "DRIP_TEST_ERASURE_HOOK_SECRET"
OUTBOUND_TEXT = "Glimmerwood open house Saturday"
REPLY_TEXT = "Periwinkle kitchen please"
SPOOLED_TEXT = "Tangerine porch question"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}

#: What must be found nowhere after the erasure (case-insensitive).
NEEDLES = (
    "Zelda",
    "Quackenbush",
    *phone_forms(PHONE),
    EMAIL.lower(),
    "Zelda.Quack",
    "crm-zq-77",
    OUTBOUND_TEXT,
    REPLY_TEXT,
    SPOOLED_TEXT,
    "Glimmerwood",
    "Periwinkle",
    "Tangerine",
)


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A webhook receiver, its secret in the environment."""
    monkeypatch.setenv(SECRET_ENV, "s3cret")
    with receiver() as r:
        yield r


@pytest.fixture
def web(db_url: str, tmp_path: Path, hook: Receiver) -> Iterator[Web]:
    """The app with a console transport writing ``home/outbox.jsonl``, every event to ``hook``."""
    home = tmp_path / "home"
    home.mkdir()
    console = ConsoleTransport(home / "outbox.jsonl", io.StringIO())
    target = WebhookTarget("crm", hook.url, frozenset(WEBHOOK_EVENTS), SECRET_ENV)
    account = replace(ACCOUNT, webhooks=(target,), reply_forwarding="email")
    with open_web(db_url, home, sms=console, email=console, account=account) as w:
        w.client.application.extensions["drip.spool_drainer"].RETRY_EVERY = 0.1
        add_agent(w.deps, "Sam", "Lee", AGENT_PHONE, w.now, email="sam@acme.example")
        w.sync_campaign()
        yield w


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Every log line of the test, as JSON, in ``logs/drip.log`` (then logging as before)."""
    path = tmp_path / "logs" / "drip.log"
    path.parent.mkdir()
    with path.open("w", encoding="utf-8") as stream:
        configure_logging("json", "DEBUG", stream)
        try:
            yield path
        finally:
            configure_logging("auto", "WARNING", sys.stderr)


def _spooled_reply(web: Web) -> None:
    """A text that went through the webhook spool (as during an outage), then applied."""
    app = web.client.application
    spool = app.extensions["drip.spool"]
    params = {
        "message_sid": "SM" + "7" * 32,
        "from_phone": PHONE,
        "to_phone": AGENT_PHONE,
        "body": SPOOLED_TEXT,
        "opt_out_type": None,
    }
    spool.append("sms", params, web.now)
    app.extensions["drip.spool_drainer"].wake()
    deadline = time.monotonic() + 60
    while spool.has_pending():
        assert time.monotonic() < deadline, "the spool was not drained"
        time.sleep(0.05)


def _live_person(web: Web) -> int:
    """The person's whole life in drip: lead events, texts both ways, webhooks, spool, STOP."""
    created = {
        "id": "ev-zq-1",
        "type": "lead.created",
        "occurred_at": web.now.isoformat(),
        "contact": {"external_id": "crm-zq-77", "phone": PHONE, "email": EMAIL},
        "data": {
            "first_name": "Zelda",
            "last_name": "Quackenbush",
            "lead_source": "website",
            "sms_consent": True,
            "consent_text": "Zelda Quackenbush agrees to texts from Acme Realty",
        },
    }
    answer = web.client.post("/events", json=created, headers=AUTH)
    assert answer.status_code == 202, answer.json
    updated = {
        "id": "ev-zq-2",
        "type": "lead.updated",
        "occurred_at": (web.now + timedelta(minutes=1)).isoformat(),
        "contact": {"external_id": "crm-zq-77"},
        "data": {"stage": "nurture", "tags": ["Quackenbush family"]},
    }
    assert web.client.post("/events", json=updated, headers=AUTH).status_code == 202
    assigned = {
        "id": "ev-zq-3",
        "type": "lead.assigned",
        "occurred_at": (web.now + timedelta(minutes=2)).isoformat(),
        "contact": {"phone": PHONE},
        "data": {"agent": AGENT_PHONE},
    }
    assert web.client.post("/events", json=assigned, headers=AUTH).status_code == 202
    with web.deps.sessions() as session:
        contact_id = session.scalars(select(Contact.id).where(Contact.phone == PHONE)).one()
    enroll(web.deps, contact_id, CAMPAIGN, web.now)
    send_now(web.deps, contact_id, MessageKind.MANUAL, f"Hi Zelda, {OUTBOUND_TEXT}", web.now)
    web.later(days=1, hours=1)
    web.tick()  # the campaign's day-1 text, "Hi Zelda, it's Sam..."
    web.later(days=1)
    web.tick()  # the day-2 email to the address, subject "Homes for you, Zelda"
    assert web.sms(REPLY_TEXT, sid="SM" + "5" * 32, from_=PHONE).status_code == 200
    _spooled_reply(web)
    deliver_due(web.deps, web.now, embedded=True)
    assert web.sms("STOP", sid="SM" + "6" * 32, from_=PHONE).status_code == 200
    return contact_id


def _found_in_tables(web: Web) -> list[str]:
    """Every (table, needle) of the live schema where a needle occurs."""
    live = MetaData()
    live.reflect(web.deps.engine)
    found: list[str] = []
    with web.deps.engine.connect() as conn:
        for table in sorted(live.tables.values(), key=lambda t: t.name):
            for row in conn.execute(select(table)):
                text = json.dumps([str(v) for v in row], ensure_ascii=False).lower()
                found += [f"{table.name}: {n}" for n in NEEDLES if n.lower() in text]
    return found


def _found_in_files(*folders: Path) -> list[str]:
    """Every (file, needle) under ``folders`` where a needle occurs in the raw bytes."""
    found: list[str] = []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            raw = path.read_bytes().lower()
            found += [f"{path.name}: {n}" for n in NEEDLES if n.lower().encode() in raw]
    return found


def test_after_erasure_no_table_and_no_file_holds_the_person(
    web: Web, hook: Receiver, log_file: Path
) -> None:
    """Name, phone (every format), email, CRM id and texts are in the run's tables and
    files before the erasure and in none of them after; the opt-out is kept as a hash."""
    contact_id = _live_person(web)
    home = web.home
    before = _found_in_tables(web)
    assert {"contacts: Zelda", "messages: " + REPLY_TEXT, "inbox_events: crm-zq-77"} <= set(before)
    assert any(f.startswith("outbox_events: ") for f in before)
    in_files = set(_found_in_files(home))
    assert {
        "outbox.jsonl: Zelda",
        "outbox.jsonl: " + REPLY_TEXT,
        "outbox.jsonl: " + PHONE,
    } <= in_files
    # The spooled text was applied and deleted, but its bytes are still in the spool's files.
    assert any(f.startswith("web-spool.db") and f.endswith(SPOOLED_TEXT) for f in in_files)
    assert hook.got, "the webhook got the reply before the erasure"

    result = erase_contact(web.deps, contact_id, web.now, by="Pat Compliance")

    assert not result.already and result.sms_opted_out and result.suppressed == 2
    assert _found_in_tables(web) == []
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert _found_in_files(home, log_file.parent) == []
    logged = log_file.read_text(encoding="utf-8")
    assert '"event": "inbound_handled"' in logged and '"event": "contact_erased"' in logged
    with web.deps.sessions() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        assert (contact.erased_by, contact.erased_at) == ("Pat Compliance", web.now)
        assert contact.sms_opted_out_at is not None  # the decision stays, without the person
        kinds = [e.kind.value for e in web.events(contact_id)]
        assert kinds[0] == "given" and "revoked_keyword" in kinds
        assert session.scalar(select(Suppression.sms_opted_out_how)) == "keyword"


def test_the_outbox_event_names_only_the_contact_id(web: Web, hook: Receiver) -> None:
    """contact.erased goes to the webhook outbox with the contact's id and nothing personal."""
    contact_id = _live_person(web)
    erase_contact(web.deps, contact_id, web.now, by="Pat")
    with web.deps.sessions() as session:
        row = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "contact.erased")).one()
        assert (row.contact_id, row.payload) == (
            contact_id,
            {"contact": {"id": contact_id}, "erased_at": web.now.isoformat()},
        )
    hook.got.clear()
    deliver_due(web.deps, web.now, embedded=True)
    erased = [g.doc for g in hook.got if g.doc["type"] == "contact.erased"]
    assert [d["data"]["contact"] for d in erased] == [{"id": contact_id}]


def test_a_suppressed_number_added_again_starts_opted_out(web: Web) -> None:
    """The number and the email of an erased contact who opted out come back opted out;
    a contact with consent evidence keeps the evidence, but not texts."""
    contact_id = _live_person(web)
    erase_contact(web.deps, contact_id, web.now, by="Pat")
    again = add_contact(
        web.deps,
        ContactInput("Zee", "Q", "(617) 555-0177", None, None, None, None, ConsentSource.MANUAL),
        ConsentEvidence(web.now, ConsentSource.MANUAL, "yes, text me"),
        web.now,
    )
    assert again.created and not again.consent_in_force
    assert any("erased" in note for note in again.notes)
    assert web.contact(again.contact_id).sms_opted_out_at is not None
    by_email = add_contact(
        web.deps,
        ContactInput("Z", "", None, EMAIL.upper(), None, None, None, ConsentSource.MANUAL),
        None,
        web.now,
    )
    assert web.contact(by_email.contact_id).sms_opted_out_at is not None


def test_a_number_erased_without_an_opt_out_starts_as_any_new_contact(web: Web) -> None:
    """An erased contact who never opted out leaves a hash but no opt-out to carry."""
    first = web.add_dana()
    erase_contact(web.deps, first, web.now, by="Pat")
    again = web.add_dana()
    assert again != first
    assert web.contact(again).sms_opted_out_at is None
    assert web.contact(again).sms_consent_at is not None


def test_erasing_twice_changes_nothing_and_an_unknown_id_is_refused(web: Web) -> None:
    """The second erasure says when and by whom the first was; an unknown id is NotFoundError;
    an erased contact cannot be enrolled again."""
    dana = web.add_dana()
    first = erase_contact(web.deps, dana, web.now, by="Pat")
    web.later(hours=1)
    second = erase_contact(web.deps, dana, web.now, by="Lee")
    assert second.already and second.by == "Pat" and second.erased_at == first.erased_at
    assert "already erased" in second.message and "nothing changed" in second.message
    with web.deps.sessions() as session:
        assert session.query(OutboxEvent).filter_by(type="contact.erased").count() == 1
    with pytest.raises(NotFoundError, match="no contact with id 9999"):
        erase_contact(web.deps, 9999, web.now, by="Pat")
    with pytest.raises(ValidationError, match=r"was erased on .*: it takes no enrollments"):
        enroll(web.deps, dana, CAMPAIGN, web.now)


def test_a_file_that_cannot_be_cleaned_rolls_the_erasure_back(web: Web) -> None:
    """When the outbox file cannot be rewritten nothing is erased and the error says so;
    erasing again once it can be finishes the work."""
    dana = web.add_dana()
    outbox = web.home / "outbox.jsonl"
    kept = outbox.read_text("utf-8")
    outbox.unlink()
    outbox.mkdir()  # a folder where the file was: reading it fails
    with pytest.raises(ErasureFileError, match="nothing erased: the outbox file"):
        erase_contact(web.deps, dana, web.now, by="Pat")
    assert web.contact(dana).first_name == "Dana" and web.contact(dana).erased_at is None
    outbox.rmdir()
    outbox.write_text(kept, encoding="utf-8")
    assert not erase_contact(web.deps, dana, web.now, by="Pat").already
    assert "Dana" not in outbox.read_text("utf-8")


def test_another_contact_sharing_the_email_keeps_its_data(web: Web) -> None:
    """Two people sharing an email are two contacts: erasing one leaves the other's email,
    and the email sent to the other, as they were."""
    dana = web.add_dana()
    rae = web.add_dana(phone="+16175550124", first_name="Rae")
    sent = send_now(web.deps, rae, MessageKind.MANUAL, "Hello Rae", web.now, channel=Channel.EMAIL)
    assert sent.outcome == "sent", sent
    erase_contact(web.deps, dana, web.now, by="Pat")
    assert web.contact(rae).email == "dana@example.com"
    emails = [m for m in web.messages(rae) if m.channel is Channel.EMAIL]
    assert [(m.to_addr, m.body.startswith("Hello Rae")) for m in emails] == [
        ("dana@example.com", True)
    ]
