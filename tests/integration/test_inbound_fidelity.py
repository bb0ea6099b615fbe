"""Issue 11 inbound: every sender form, account keywords, Twilio's own opt-out handling."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web_support import ACCOUNT, AGENT_PHONE, CONSENT_TEXT, DANA_PHONE, Web, open_web

from drip.campaigns.account_file import load_account
from drip.domain.enums import ConsentSource, MessageKind
from drip.services.consent import ConsentEvidence
from drip.services.contacts import ContactInput, add_contact
from drip.store.models import Message, OrphanOptOut

REPO = Path(__file__).resolve().parents[2]
BUNDLED = load_account(REPO / "campaigns")
_sids = itertools.count(1)


def sid() -> str:
    return f"SM{next(_sids):032x}"


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app with the bundled account's keywords (Spanish and French words)."""
    account = dataclasses.replace(ACCOUNT, keywords=BUNDLED.keywords)
    with open_web(db_url, tmp_path, account=account) as w:
        yield w


def inbound_rows(web: Web) -> list[Message]:
    with web.deps.sessions() as session:
        return list(session.query(Message).filter(Message.direction == "inbound"))


def outbound_rows(web: Web) -> list[Message]:
    with web.deps.sessions() as session:
        return list(session.query(Message).filter(Message.direction == "outbound"))


@pytest.mark.parametrize(
    "sender",
    ["22395", "+16245550123", "+13575550123", "+447700900123"],
    ids=["short-code", "new-area-code-624", "new-area-code-357", "foreign"],
)
def test_signed_inbound_from_any_sender_form_is_200_and_recorded(web: Web, sender: str) -> None:
    """A short code, an unknown area code or a foreign number: 200 and the text is stored."""
    message_sid = sid()

    response = web.sms("Hello, is the house on Elm still available?", sid=message_sid, from_=sender)

    assert response.status_code == 200
    rows = inbound_rows(web)
    assert [(m.from_addr, m.provider_sid) for m in rows] == [(sender, message_sid)]


@pytest.mark.parametrize("sender", ["22395", "+16245550123", "+447700900123"])
def test_a_stop_from_any_sender_form_is_kept(web: Web, sender: str) -> None:
    """STOP from a number that is no contact is remembered as an orphan opt-out."""
    assert web.sms("STOP", sid=sid(), from_=sender).status_code == 200
    with web.deps.sessions() as session:
        orphan = session.get(OrphanOptOut, sender)
        assert orphan is not None
        assert orphan.keyword == "STOP"


def test_a_stop_before_the_contact_exists_opts_out_the_contact_created_later(web: Web) -> None:
    """The number texted STOP first; the registration that follows starts opted out, no SMS."""
    assert web.sms("STOP", sid=sid(), from_=DANA_PHONE).status_code == 200
    web.later(hours=2)
    evidence = ConsentEvidence(web.now, ConsentSource.REGISTRATION, CONSENT_TEXT)
    data = ContactInput(
        "Dana", "Ruiz", DANA_PHONE, None, None, None, AGENT_PHONE, ConsentSource.REGISTRATION
    )

    result = add_contact(web.deps, data, evidence, web.now)

    contact = web.contact(result.contact_id)
    assert contact.sms_opted_out_at is not None
    assert result.confirmation is None  # no opt-in confirmation to someone who said STOP
    assert outbound_rows(web) == []


def test_garbage_sender_is_still_a_422_naming_from(web: Web) -> None:
    """A From with letters is not a sender form Twilio sends: 422 naming the field."""
    response = web.sms("hi", sid=sid(), from_="not-a-number")
    assert response.status_code == 422
    assert response.get_json()["field"] == "From"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("PARAR", MessageKind.OPT_OUT_CONFIRMATION),
        ("baja", MessageKind.OPT_OUT_CONFIRMATION),
        ("Cancelar.", MessageKind.OPT_OUT_CONFIRMATION),
        ("ARRÊT", MessageKind.OPT_OUT_CONFIRMATION),
        ("arret", MessageKind.OPT_OUT_CONFIRMATION),
        ("REMOVE", MessageKind.OPT_OUT_CONFIRMATION),
        ("ayuda", MessageKind.HELP),
        ("Aide", MessageKind.HELP),
    ],
)
def test_bundled_spanish_and_french_words_act_through_the_webhook(
    web: Web, body: str, kind: MessageKind
) -> None:
    """The bundled account's words are keywords end to end: the right reply goes out."""
    dana = web.add_dana()

    assert web.sms(body, sid=sid()).status_code == 200

    replies = [m.kind for m in web.messages(dana) if m.direction == "outbound"][1:]
    assert replies == [kind]
    assert (web.contact(dana).sms_opted_out_at is not None) is (
        kind is MessageKind.OPT_OUT_CONFIRMATION
    )


@pytest.mark.parametrize(("body", "opt_out_type"), [("HELP", "HELP"), ("START", "START")])
def test_help_and_start_with_opt_out_type_send_nothing(
    web: Web, body: str, opt_out_type: str
) -> None:
    """Twilio's Advanced Opt-Out already answered: no outbound message of drip's own."""
    dana = web.add_dana()
    assert web.sms("STOP", sid=sid(), opt_out_type="STOP").status_code == 200
    before = len(outbound_rows(web))

    assert web.sms(body, sid=sid(), opt_out_type=opt_out_type).status_code == 200

    assert len(outbound_rows(web)) == before == 1  # only the opt-in confirmation, ever
    if body == "START":
        assert web.contact(dana).sms_opted_out_at is None  # the effect is still recorded


def test_the_account_flag_means_the_same_without_opt_out_type(db_url: str, tmp_path: Path) -> None:
    """twilio_sends_opt_out_confirmation: STOP, HELP and START get no reply of drip's own."""
    account = dataclasses.replace(ACCOUNT, twilio_sends_opt_out_confirmation=True)
    with open_web(db_url, tmp_path, account=account) as web:
        dana = web.add_dana()
        for body in ("HELP", "STOP", "START"):
            assert web.sms(body, sid=sid()).status_code == 200
        kinds = [m.kind for m in web.messages(dana) if m.direction == "outbound"]
        assert kinds == [MessageKind.OPT_IN_CONFIRMATION]
        assert web.contact(dana).sms_opted_out_at is None  # STOP then START, both recorded


def test_without_opt_out_type_help_is_answered(web: Web) -> None:
    """Control: without OptOutType and without the flag, HELP gets drip's help reply."""
    dana = web.add_dana()
    assert web.sms("HELP", sid=sid()).status_code == 200
    kinds = [m.kind for m in web.messages(dana) if m.direction == "outbound"]
    assert kinds == [MessageKind.OPT_IN_CONFIRMATION, MessageKind.HELP]


def test_start_from_a_non_contact_lifts_its_kept_opt_out(web: Web) -> None:
    """STOP then START from a number that is still no contact: nothing is kept against it."""
    assert web.sms("STOP", sid=sid(), from_="+16175550188").status_code == 200
    assert web.sms("START", sid=sid(), from_="+16175550188").status_code == 200
    with web.deps.sessions() as session:
        assert session.get(OrphanOptOut, "+16175550188") is None
