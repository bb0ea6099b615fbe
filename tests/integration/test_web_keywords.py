"""SPEC §3 end to end through POST /twilio/sms, on SQLite and PostgreSQL.

Each case: Dana registered with consent and enrolled in a campaign whose
day-1 text is pending; she texts her agent; the test checks her consent
state, the consent event, the reply recorded through the transport, and
what happens to the day-1 text when it fires.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web_support import (
    ACCOUNT,
    AGENT_PHONE,
    CAMPAIGN,
    CONCIERGE_PHONE,
    DANA_PHONE,
    Web,
    open_web,
)

from drip.domain.enums import ConsentEventKind, MessageKind, SendState
from drip.services.enrollment import enroll
from drip.store.models import Message, ScheduledSend

_sids = itertools.count(1)


def sid() -> str:
    """A fresh Twilio-shaped MessageSid."""
    return f"SM{next(_sids):032x}"


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database with the test campaign synced."""
    with open_web(db_url, tmp_path) as w:
        w.sync_campaign()
        yield w


@pytest.fixture
def dana(web: Web) -> int:
    """Dana: registered with consent, enrolled; her day-1 text is pending."""
    contact_id = web.add_dana()
    assert enroll(web.deps, contact_id, CAMPAIGN, web.now).created
    return contact_id


def day_one_text(web: Web, contact_id: int) -> ScheduledSend:
    """Fire what is due a day later and return the day-1 text's send."""
    web.later(days=1, minutes=1)
    web.tick()
    found = [s for s in web.sends(contact_id) if s.step_id == "day-1-text"]
    assert len(found) == 1
    return found[0]


def replies(web: Web, contact_id: int) -> list[Message]:
    """Outbound texts after the opt-in confirmation."""
    return [
        m
        for m in web.messages(contact_id)
        if m.direction == "outbound" and m.kind is not MessageKind.OPT_IN_CONFIRMATION
    ]


STOP_FAMILY = [
    "STOP",
    "stop",
    " Stop. ",
    "STOPALL",
    "UNSUBSCRIBE",
    "Cancel",
    "END",
    "quit!",
    "REVOKE",
    "OPTOUT",
    "OPT OUT",
    "opt-out",
]


@pytest.mark.parametrize("body", STOP_FAMILY)
def test_stop_family_opts_out_and_confirms(web: Web, dana: int, body: str) -> None:
    """A STOP-family keyword opts out, records the event, confirms once, skips the next step."""
    response = web.sms(body, sid=sid())

    assert response.status_code == 200
    contact = web.contact(dana)
    assert contact.sms_opted_out_at == web.now
    assert contact.sms_opted_out_how == "keyword"
    events = web.events(dana)
    assert [e.kind for e in events] == [ConsentEventKind.GIVEN, ConsentEventKind.REVOKED_KEYWORD]
    assert events[-1].evidence == body
    sent = replies(web, dana)
    assert [m.kind for m in sent] == [MessageKind.OPT_OUT_CONFIRMATION]
    assert sent[0].footer is False
    assert web.transport.sms[-1].msg.body == web.deps.account.opt_out_confirmation
    assert web.transport.sms[-1].msg.to == DANA_PHONE
    conversation = web.conversation(dana)
    assert conversation is None or conversation.two_way_at is None
    step = day_one_text(web, dana)
    assert step.state is SendState.SKIPPED
    assert step.decision_code == "opted_out"
    assert len(web.transport.sms) == 2  # opt-in and opt-out confirmations, nothing else


PHRASES = [
    ("stop texting me", "stop texting me"),
    ("Please stop", "please stop"),
    ("don't text me", "don't text me"),
    ("Do not text", "do not text"),
    ("remove me from your list", "remove me from your list"),
    ("take me off your list", "take me off"),
    ("unsubscribe me", "unsubscribe me"),
    ("opt me out", "opt me out"),
    ("No more texts please", "no more texts"),
    ("Wrong number!", "wrong number"),
    ("hey, could you please stop texting me, thanks", "stop texting me"),
]


@pytest.mark.parametrize(("body", "phrase"), PHRASES)
def test_plain_words_revocation_opts_out_like_stop(
    web: Web, dana: int, body: str, phrase: str
) -> None:
    """A short 'stop texting me' in plain words opts out exactly like STOP and records the phrase."""
    response = web.sms(body, sid=sid())

    assert response.status_code == 200
    contact = web.contact(dana)
    assert contact.sms_opted_out_at == web.now
    assert contact.sms_opted_out_how == "phrase"
    event = web.events(dana)[-1]
    assert event.kind is ConsentEventKind.REVOKED_PHRASE
    assert event.evidence == body
    assert event.detail is not None and phrase in event.detail
    assert [m.kind for m in replies(web, dana)] == [MessageKind.OPT_OUT_CONFIRMATION]
    step = day_one_text(web, dana)
    assert step.state is SendState.SKIPPED
    assert step.decision_code == "opted_out"


@pytest.mark.parametrize("body", ["HELP", "help?", "INFO", "Info"])
def test_help_family_replies_and_changes_no_consent(web: Web, dana: int, body: str) -> None:
    """HELP/INFO gets one help reply; consent stays, no two-way, the next step still goes out."""
    response = web.sms(body, sid=sid())

    assert response.status_code == 200
    assert web.contact(dana).sms_opted_out_at is None
    assert [e.kind for e in web.events(dana)] == [ConsentEventKind.GIVEN]
    sent = replies(web, dana)
    assert [(m.kind, m.footer) for m in sent] == [(MessageKind.HELP, False)]
    assert "Msg & data rates may apply" in sent[0].body
    conversation = web.conversation(dana)
    assert conversation is None or conversation.two_way_at is None
    assert day_one_text(web, dana).state is SendState.SENT


@pytest.mark.parametrize("body", ["START", "unstop", "Yes"])
def test_opt_in_words_after_opt_out_restore_consent(web: Web, dana: int, body: str) -> None:
    """START/UNSTOP/YES after a STOP restores consent, confirms, and the next step goes out."""
    assert web.sms("STOP", sid=sid()).status_code == 200
    web.later(minutes=5)

    response = web.sms(body, sid=sid())

    assert response.status_code == 200
    assert web.contact(dana).sms_opted_out_at is None
    assert [e.kind for e in web.events(dana)] == [
        ConsentEventKind.GIVEN,
        ConsentEventKind.REVOKED_KEYWORD,
        ConsentEventKind.RESTORED,
    ]
    assert [m.kind for m in replies(web, dana)] == [
        MessageKind.OPT_OUT_CONFIRMATION,
        MessageKind.RESUBSCRIBE_CONFIRMATION,
    ]
    assert day_one_text(web, dana).state is SendState.SENT


def test_yes_from_a_contact_who_never_opted_out_is_ordinary_text(web: Web, dana: int) -> None:
    """YES from someone who never opted out is a reply: two-way, no consent event, no reply."""
    response = web.sms("YES", sid=sid())

    assert response.status_code == 200
    assert [e.kind for e in web.events(dana)] == [ConsentEventKind.GIVEN]
    assert replies(web, dana) == []
    conversation = web.conversation(dana)
    assert conversation is not None and conversation.two_way_at == web.now


@pytest.mark.parametrize(
    "body", ["I'll stop by at 5", "Don't stop sending listings!", "Can we stop at the open house?"]
)
def test_text_containing_stop_is_a_reply_not_an_opt_out(web: Web, dana: int, body: str) -> None:
    """An ordinary text that contains 'stop' keeps consent and establishes two-way."""
    response = web.sms(body, sid=sid())

    assert response.status_code == 200
    contact = web.contact(dana)
    assert contact.sms_opted_out_at is None
    assert replies(web, dana) == []
    conversation = web.conversation(dana)
    assert conversation is not None and conversation.two_way_at == web.now
    inbound = [m for m in web.messages(dana) if m.direction == "inbound"]
    assert [m.body for m in inbound] == [body]
    step = day_one_text(web, dana)
    assert step.state is SendState.SENT


def test_same_message_sid_twice_is_processed_once(web: Web, dana: int) -> None:
    """Twilio retrying the same STOP gives one inbound row, one event and one confirmation."""
    message_sid = sid()

    first = web.sms("STOP", sid=message_sid)
    web.later(seconds=30)
    second = web.sms("STOP", sid=message_sid)

    assert first.status_code == second.status_code == 200
    inbound = [m for m in web.messages(dana) if m.direction == "inbound"]
    assert len(inbound) == 1
    assert inbound[0].provider_sid == message_sid
    assert [e.kind for e in web.events(dana)].count(ConsentEventKind.REVOKED_KEYWORD) == 1
    assert [m.kind for m in replies(web, dana)] == [MessageKind.OPT_OUT_CONFIRMATION]
    assert web.count(Message) == 3


def test_twilio_opt_out_type_decides(web: Web, dana: int) -> None:
    """With OptOutType=STOP (an account keyword Twilio knows) the contact is opted out."""
    response = web.sms("ARRET", sid=sid(), opt_out_type="STOP")

    assert response.status_code == 200
    assert web.contact(dana).sms_opted_out_how == "keyword"
    assert web.events(dana)[-1].kind is ConsentEventKind.REVOKED_KEYWORD


def test_stop_to_the_concierge_covers_every_sender(db_url: str, tmp_path: Path) -> None:
    """STOP sent to the concierge line opts out for the agent's number too; the reply is from the concierge."""
    with open_web(db_url, tmp_path) as web:
        web.sync_campaign()
        dana = web.add_dana()
        assert enroll(web.deps, dana, CAMPAIGN, web.now).created

        response = web.sms("STOP", sid=sid(), to=CONCIERGE_PHONE)

        assert response.status_code == 200
        assert web.transport.sms[-1].msg.from_ == CONCIERGE_PHONE
        step = day_one_text(web, dana)
        assert step.state is SendState.SKIPPED
        assert step.decision_code == "opted_out"
        assert [s.msg.from_ for s in web.transport.sms] == [AGENT_PHONE, CONCIERGE_PHONE]


def test_stop_from_an_unknown_number_is_remembered(web: Web) -> None:
    """A STOP from a number that is not a contact is stored; a contact added later starts opted out."""
    stranger = "+16175550177"

    response = web.sms("STOP", sid=sid(), from_=stranger)

    assert response.status_code == 200
    assert web.transport.sms == []  # no confirmation to a number drip never texted
    web.later(days=1)
    contact_id = web.add_dana(phone=stranger, consent=False)
    assert web.contact(contact_id).sms_opted_out_at is not None


def test_account_where_twilio_confirms_sends_no_second_confirmation(
    db_url: str, tmp_path: Path
) -> None:
    """When the account says Twilio sends the STOP confirmation, drip opts out but does not reply."""
    account = dataclasses.replace(ACCOUNT, twilio_sends_opt_out_confirmation=True)
    with open_web(db_url, tmp_path, account=account) as web:
        dana = web.add_dana()

        response = web.sms("STOP", sid=sid())

        assert response.status_code == 200
        assert web.contact(dana).sms_opted_out_at is not None
        assert replies(web, dana) == []


def test_malformed_from_is_refused_with_the_field(web: Web) -> None:
    """A signed request whose From is not a phone number is 422 naming From, and nothing is stored."""
    before = web.snapshot()

    response = web.sms("STOP", sid=sid(), from_="not-a-number")

    assert response.status_code == 422
    assert response.get_json()["field"] == "From"
    assert web.snapshot() == before
