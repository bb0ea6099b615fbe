"""Issue 11 against the fake Twilio through the real SDK: limits, the STOP block, services."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from test_web_support import ACCOUNT, AGENT_PHONE, DANA_PHONE, Web, open_web
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from werkzeug.serving import make_server

from drip.domain.enums import MessageKind, SendState
from drip.services.audit import history
from drip.services.contacts import send_now
from drip.store.models import ScheduledSend
from drip.testing.fake_twilio import FakeTwilioServer
from drip.transports.base import OutboundSms, SmsSendError
from drip.transports.twilio_urllib3 import Urllib3HttpClient
from drip.web.app import create_app


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@contextmanager
def live(
    db_url: str, tmp_path: Path, fake: FakeTwilioServer, **account_changes: object
) -> Iterator[tuple[Web, str]]:
    """drip's app served over HTTP, texting through ``fake``; yields (web, public URL)."""
    probe = make_server("127.0.0.1", 0, lambda e, s: [])
    port = probe.server_port
    probe.server_close()
    public = f"http://127.0.0.1:{port}"
    account = dataclasses.replace(ACCOUNT, **account_changes)  # type: ignore[arg-type]
    with open_web(
        db_url,
        tmp_path,
        sms=fake.transport(),
        public_url=public,
        twilio_account_sid=fake.account_sid,
        twilio_auth_token=fake.auth_token,
        account=account,
    ) as web:
        server = make_server("127.0.0.1", port, create_app(web.deps), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield web, public
        finally:
            server.shutdown()
            thread.join(timeout=5)


def sdk(fake: FakeTwilioServer) -> Client:
    return Client(fake.account_sid, fake.auth_token, http_client=Urllib3HttpClient(fake.base_url))


# -- the fake itself, through the SDK --------------------------------------------------


def test_the_fake_answers_21617_over_1600_characters_through_the_sdk() -> None:
    """1,600 characters are accepted, 1,601 refused with Twilio's 21617."""
    with FakeTwilioServer() as fake:
        transport = fake.transport()
        assert transport.send_sms(OutboundSms(AGENT_PHONE, DANA_PHONE, "x" * 1600)).sid
        with pytest.raises(SmsSendError) as info:
            transport.send_sms(OutboundSms(AGENT_PHONE, DANA_PHONE, "x" * 1601))
    assert info.value.code == 21617


@pytest.mark.parametrize("to", ["+1555", "12", "+999123"])
def test_the_fake_answers_21211_for_a_to_that_is_not_a_number(to: str) -> None:
    """A To that cannot be a phone number is refused with 21211."""
    with FakeTwilioServer() as fake, pytest.raises(SmsSendError) as info:
        fake.transport().send_sms(OutboundSms(AGENT_PHONE, to, "Hi"))
    assert info.value.code == 21211


def test_the_messaging_service_path_starts_accepted_with_no_from() -> None:
    """MessagingServiceSid: first status accepted, from null, num_segments 0 (as Twilio does)."""
    with FakeTwilioServer() as fake:
        message = sdk(fake).messages.create(
            messaging_service_sid="MG" + "a" * 32, to=DANA_PHONE, body="Hi"
        )
    assert message.status == "accepted"
    assert message.from_ is None
    assert message.messaging_service_sid == "MG" + "a" * 32
    assert message.num_segments == "0"


def test_the_stop_block_refuses_21610_until_start() -> None:
    """After an inbound STOP the sender cannot text that number (21610) until START."""
    with FakeTwilioServer() as fake:
        client = sdk(fake)
        url = "http://127.0.0.1:9/unused"  # nobody listens: the block stands regardless
        with contextlib.suppress(requests.ConnectionError):
            fake.deliver_inbound(url, DANA_PHONE, AGENT_PHONE, "STOP")
        assert fake.blocked(AGENT_PHONE, DANA_PHONE)
        with pytest.raises(TwilioRestException) as info:
            client.messages.create(from_=AGENT_PHONE, to=DANA_PHONE, body="Hi")
        assert info.value.code == 21610
        # another sender of the account is not blocked by Twilio (drip blocks them itself)
        assert client.messages.create(from_="+16175550199", to=DANA_PHONE, body="Hi").sid
        with contextlib.suppress(requests.ConnectionError):
            fake.deliver_inbound(url, DANA_PHONE, AGENT_PHONE, "START")
        assert client.messages.create(from_=AGENT_PHONE, to=DANA_PHONE, body="Hi").sid


def test_reorder_mode_repeats_and_shuffles_callbacks_but_drip_ends_delivered(
    db_url: str, tmp_path: Path
) -> None:
    """Callbacks repeated and out of order: the message still ends delivered, never backwards."""
    with (
        FakeTwilioServer(send_status_callbacks=True, reorder_seed=7) as fake,
        live(db_url, tmp_path, fake) as (web, _),
    ):
        dana = web.add_dana()
        assert fake.wait_for_callbacks(5, timeout=10)  # 3 statuses + 2 repeats
        statuses = [dict(c.params)["MessageStatus"] for c in fake.callbacks]
        assert sorted(set(statuses)) == ["delivered", "sending", "sent"]
        assert len(statuses) == 5
        assert wait_until(
            lambda: (
                [m.status for m in web.messages(dana) if m.direction == "outbound"] == ["delivered"]
            )
        )


# -- drip against the fake ---------------------------------------------------------------


def test_a_1601_character_text_is_refused_before_any_provider_call(
    db_url: str, tmp_path: Path
) -> None:
    """drip records the reason and never calls Twilio with a text it would refuse."""
    with FakeTwilioServer() as fake, live(db_url, tmp_path, fake) as (web, _):
        dana = web.add_dana()
        before = fake.count
        result = send_now(web.deps, dana, MessageKind.MANUAL, "y" * 1601, web.now)
        assert result.outcome == "skipped"
        assert result.code == "too_long"
        assert "1,600" in result.reason or "1600" in result.reason
        assert fake.count == before  # no request reached the provider


def test_a_stop_through_twilio_then_21610_on_our_confirmation_is_confirmed_by_carrier(
    db_url: str, tmp_path: Path
) -> None:
    """Twilio blocks the sender after STOP; drip's own confirmation gets 21610: not a failure."""
    with FakeTwilioServer() as fake, live(db_url, tmp_path, fake) as (web, public):
        dana = web.add_dana()

        status = fake.deliver_inbound(f"{public}/twilio/sms", DANA_PHONE, AGENT_PHONE, "STOP")

        assert status == 200
        assert web.contact(dana).sms_opted_out_at is not None
        refused = [r for r in fake.requests if r.error_code == 21610]
        assert len(refused) == 1  # our confirmation, refused by the block
        with web.deps.sessions() as session:
            send = (
                session.query(ScheduledSend)
                .filter(ScheduledSend.kind == MessageKind.OPT_OUT_CONFIRMATION)
                .one()
            )
            assert send.state is SendState.SKIPPED
            assert send.decision_code == "confirmed_by_carrier"
            assert "confirmed by the carrier" in (send.decision_reason or "")
        _, _, entries = history(web.deps, dana)
        assert any("confirmed by the carrier" in e.text for e in entries)


def test_an_empty_variable_skips_the_text_naming_it(db_url: str, tmp_path: Path) -> None:
    """An agent with no first name: the text is skipped with {AgentFirstName} in the reason."""
    with FakeTwilioServer() as fake, live(db_url, tmp_path, fake) as (web, _):
        from drip.services.contacts import add_agent

        add_agent(web.deps, "", "Lee", AGENT_PHONE, web.now)  # the agent lost their first name
        dana = web.add_dana()
        before = fake.count
        result = send_now(
            web.deps, dana, MessageKind.MANUAL, "Hi, I'm {AgentFirstName}, your agent.", web.now
        )
        assert (result.outcome, result.code) == ("skipped", "empty_variable")
        assert "{AgentFirstName}" in result.reason
        assert fake.count == before


def test_opt_in_confirmation_without_an_agent_comes_from_the_default_sender(
    db_url: str, tmp_path: Path
) -> None:
    """A registration with no agent and no default_agent: confirmation from default_sender."""
    with FakeTwilioServer() as fake:
        with live(db_url, tmp_path, fake, default_sender="+16175550199") as (web, _):
            from drip.domain.enums import ConsentSource
            from drip.services.consent import ConsentEvidence
            from drip.services.contacts import ContactInput, add_contact

            data = ContactInput("Dana", "Ruiz", DANA_PHONE, None, None, None, None)
            evidence = ConsentEvidence(web.now, ConsentSource.API, "Yes, text me. Reply STOP.")
            result = add_contact(web.deps, data, evidence, web.now)
            assert result.confirmation is not None
            assert result.confirmation.outcome == "sent"
        sent = [r for r in fake.requests if r.status == 201]
        assert [(r.from_, r.to) for r in sent] == [("+16175550199", DANA_PHONE)]


def test_partially_delivered_is_stored_with_its_meaning_and_never_goes_back(
    db_url: str, tmp_path: Path
) -> None:
    """partially_delivered beats sent, a late sent does not undo it; history explains it."""
    with open_web(db_url, tmp_path) as web:
        dana = web.add_dana()
        message = next(m for m in web.messages(dana) if m.direction == "outbound")
        assert message.provider_sid is not None
        assert web.status(message.provider_sid, "partially_delivered").status_code == 200
        assert web.status(message.provider_sid, "sent").status_code == 200
        stored = next(m for m in web.messages(dana) if m.direction == "outbound")
        assert stored.status == "partially_delivered"
        _, _, entries = history(web.deps, dana)
        assert any("delivery of part of the message" in e.text for e in entries)
        assert web.status(message.provider_sid, "delivered").status_code == 200
        stored = next(m for m in web.messages(dana) if m.direction == "outbound")
        assert stored.status == "delivered"
