"""Suppression through a CSV import, erased contacts out of selections, and ``drip purge`` counts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from test_web_support import ACCOUNT, DANA_PHONE, Web, open_web

from drip.domain.enums import ConsentEventKind, MessageKind
from drip.domain.retention import Retention
from drip.services.contacts import send_now
from drip.services.erasure import erase_contact
from drip.services.importing import import_rows, parse_csv_text
from drip.services.retention import purge
from drip.services.selection import ContactFilters, select_contacts
from drip.store.models import Bulk, ConsentEvent, Contact, Message, ScheduledSend

HEADER = "first_name,last_name,phone,email,sms_consent,consent_at,consent_source,consent_text"


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database, message bodies kept 30 days."""
    account = replace(ACCOUNT, retention=Retention(message_bodies_days=30))
    with open_web(db_url, tmp_path, account=account) as w:
        yield w


def _import(web: Web, *lines: str) -> list[int]:
    rows, _ = parse_csv_text("\n".join([HEADER, *lines]))
    report = import_rows(web.deps, rows, web.now)
    assert not report.bad_rows, report.bad_rows
    return report.contact_ids


def test_a_reimported_suppressed_number_and_email_start_opted_out(web: Web) -> None:
    """After an erased contact opted out, a CSV row with its number (another format) or
    its email (another case) imports opted out; an unrelated row in the same file does not."""
    dana = web.add_dana()
    web.sms("STOP", sid="SM" + "1" * 32)
    erase_contact(web.deps, dana, web.now, by="Pat")
    web.later(days=1)
    ids = _import(
        web,
        "Dana,R,(617) 555-0123,,yes,2026-03-01T10:00:00Z,import,Yes text me",
        "Dee,R,,DANA@EXAMPLE.COM,,,,",
        "Olive,Ng,+16175550124,,yes,2026-03-01T10:00:00Z,import,Yes text me",
    )
    by_phone, by_email, olive = (web.contact(i) for i in ids)
    assert by_phone.phone == DANA_PHONE and by_phone.sms_opted_out_at is not None
    assert by_phone.sms_opted_out_how == "keyword"
    assert by_email.sms_opted_out_at is not None
    assert olive.sms_opted_out_at is None and olive.sms_consent_at is not None
    assert dana not in ids


def test_purge_dry_run_counts_and_the_real_run_removes_only_old_bodies(web: Web) -> None:
    """--dry-run counts the bodies past 30 days and changes nothing; the real run removes
    exactly those (messages, their sends, a bulk), keeps newer ones and the consent evidence."""
    dana = web.add_dana()  # the opt-in confirmation: a message and its send
    send_now(web.deps, dana, MessageKind.MANUAL, "old news", web.now)
    with web.deps.sessions.begin() as session:
        session.add(Bulk(body="Open house", filters="all", recipients=1, created_at=web.now))
    web.later(days=31)
    send_now(web.deps, dana, MessageKind.MANUAL, "fresh news", web.now)

    dry = purge(web.deps, web.now, dry_run=True)
    assert (dry.counts.messages, dry.counts.sends, dry.counts.bulks) == (2, 2, 1)
    assert "would remove 2 message body(ies)" in dry.message and "dry run" in dry.message
    with web.deps.sessions() as session:
        assert "" not in session.scalars(select(Message.body)).all()

    done = purge(web.deps, web.now)
    assert done.counts == dry.counts
    with web.deps.sessions() as session:
        bodies = sorted(session.scalars(select(Message.body)).all())
        assert bodies[:2] == ["", ""] and bodies[2].startswith("fresh news")
        send_bodies = session.scalars(select(ScheduledSend.body).order_by(ScheduledSend.id)).all()
        assert send_bodies == [None, None, "fresh news"]
        assert session.scalars(select(Bulk.body)).one() == ""
        given = session.scalars(select(ConsentEvent)).one()
        assert given.kind is ConsentEventKind.GIVEN and given.evidence
        assert session.get(Contact, dana).sms_consent_text  # type: ignore[union-attr]
    again = purge(web.deps, web.now + timedelta(seconds=1), dry_run=True)
    assert again.counts.total == 0


def test_an_erased_contact_is_never_selected_for_enroll_many_or_bulk(web: Web) -> None:
    """enroll-many and bulk choose from the contacts not erased: --not-enrolled finds only Olive."""
    dana = web.add_dana()
    olive = web.add_dana(phone="+16175550124", email="olive@example.com", first_name="Olive")
    erase_contact(web.deps, dana, web.now, by="Pat")
    chosen = select_contacts(web.deps, ContactFilters(not_enrolled=True))
    assert [c.id for c in chosen.contacts] == [olive]
