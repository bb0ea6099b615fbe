"""POST /twilio/status: statuses never go backwards; carrier opt-out and undeliverable numbers."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from test_web_support import AGENT_PHONE, CAMPAIGN, DANA_PHONE, Web, open_web
from werkzeug.serving import make_server

from drip.domain.enums import Channel, ConsentEventKind, MessageKind, SendState, TextStatus
from drip.services.consent import set_text_status
from drip.services.contacts import send_now
from drip.services.enrollment import enroll
from drip.services.status import can_move
from drip.store.models import Message
from drip.testing.fake_twilio import FakeTwilioServer
from drip.web.app import create_app
from drip.web.twilio_webhooks import LateCallbacks


@pytest.fixture
def web(db_url: str, tmp_path: Path) -> Iterator[Web]:
    """The app on the test database with the test campaign synced."""
    with open_web(db_url, tmp_path) as w:
        w.sync_campaign()
        yield w


@pytest.fixture
def dana(web: Web) -> int:
    """Dana with consent (her opt-in confirmation went out), enrolled in the campaign."""
    contact_id = web.add_dana()
    assert enroll(web.deps, contact_id, CAMPAIGN, web.now).created
    return contact_id


def text(web: Web, contact_id: int, body: str = "Hi Dana") -> Message:
    """Send a manual text now and return its message row."""
    result = send_now(web.deps, contact_id, MessageKind.MANUAL, body, web.now)
    assert result.outcome == "sent", result.reason
    return message(web, result.message_id)


def message(web: Web, message_id: int | None) -> Message:
    with web.deps.sessions() as session:
        found = session.get(Message, message_id)
        assert found is not None
        return found


def statuses(web: Web, message_id: int, sequence: list[str]) -> str:
    """Post each status in turn; return the stored status."""
    row = message(web, message_id)
    assert row.provider_sid is not None
    for status in sequence:
        assert web.status(row.provider_sid, status).status_code == 200
    return message(web, message_id).status


@pytest.mark.parametrize(
    ("sequence", "final"),
    [
        (["delivered", "sent"], "delivered"),
        (["sent", "delivered"], "delivered"),
        (["delivered", "queued", "sending", "sent"], "delivered"),
        (["sent", "queued"], "sent"),
        (["undelivered", "sent"], "undelivered"),
        (["sent", "failed"], "failed"),
        (["undelivered", "delivered"], "undelivered"),
        (["delivered", "read"], "read"),
        (["sent", "something-new"], "sent"),
    ],
)
def test_status_callbacks_never_go_backwards(
    web: Web, dana: int, sequence: list[str], final: str
) -> None:
    """Out-of-order callbacks keep the furthest status: delivered then sent stays delivered."""
    sent = text(web, dana)

    assert statuses(web, sent.id, sequence) == final


def test_unknown_message_sid_is_200_and_changes_nothing(web: Web, dana: int) -> None:
    """A callback for a message drip does not know is answered 200 and changes no row."""
    before = web.snapshot()

    response = web.status("SM" + "f" * 32, "undelivered", 21610)

    assert response.status_code == 200
    assert web.snapshot() == before
    assert web.contact(dana).sms_opted_out_at is None


def test_carrier_opt_out_by_callback(web: Web, dana: int) -> None:
    """ErrorCode 21610 opts the contact out with a revoked_carrier event; the next step is skipped."""
    sent = text(web, dana)

    response = web.status(sent.provider_sid or "", "undelivered", 21610)

    assert response.status_code == 200
    contact = web.contact(dana)
    assert contact.sms_opted_out_how == "carrier"
    assert contact.sms_opted_out_at == web.now
    event = web.events(dana)[-1]
    assert event.kind is ConsentEventKind.REVOKED_CARRIER
    assert event.detail == "21610"
    assert message(web, sent.id).error_code == 21610
    web.later(days=1, minutes=1)
    web.tick()
    step = next(s for s in web.sends(dana) if s.step_id == "day-1-text")
    assert step.state is SendState.SKIPPED
    assert step.decision_code == "opted_out"


def test_carrier_opt_out_applies_even_when_the_callback_is_stale(web: Web, dana: int) -> None:
    """A late 21610 after 'delivered' keeps the status but still opts the contact out."""
    sent = text(web, dana)

    assert statuses(web, sent.id, ["delivered"]) == "delivered"
    assert web.status(sent.provider_sid or "", "undelivered", 21610).status_code == 200

    assert message(web, sent.id).status == "delivered"
    assert web.contact(dana).sms_opted_out_how == "carrier"


def test_unreachable_handset_twice_makes_the_number_undeliverable(web: Web, dana: int) -> None:
    """One 30003 is tolerated; a second failed message to the number marks it undeliverable."""
    first = text(web, dana, "one")
    second = text(web, dana, "two")

    web.status(first.provider_sid or "", "undelivered", 30003)
    assert web.contact(dana).text_status is TextStatus.TEXTABLE
    web.status(second.provider_sid or "", "failed", 30005)

    contact = web.contact(dana)
    assert contact.text_status is TextStatus.UNDELIVERABLE
    assert contact.undeliverable_code == 30005
    web.later(days=1, minutes=1)
    web.tick()
    step = next(s for s in web.sends(dana) if s.step_id == "day-1-text")
    assert step.decision_code == "undeliverable"


def test_the_same_failure_reported_twice_counts_once(web: Web, dana: int) -> None:
    """Twilio repeating one message's 30003 is one failure, not two."""
    sent = text(web, dana)

    web.status(sent.provider_sid or "", "undelivered", 30003)
    web.status(sent.provider_sid or "", "undelivered", 30003)

    assert web.contact(dana).text_status is TextStatus.TEXTABLE


def test_landline_is_undeliverable_at_once(web: Web, dana: int) -> None:
    """30006 (landline or unreachable carrier) marks the number undeliverable on the first failure."""
    sent = text(web, dana)

    web.status(sent.provider_sid or "", "undelivered", 30006)

    contact = web.contact(dana)
    assert contact.text_status is TextStatus.UNDELIVERABLE
    assert contact.undeliverable_code == 30006


def test_operator_revocation_is_not_overwritten(web: Web, dana: int) -> None:
    """A contact marked cannot_be_texted keeps that status when a landline failure arrives."""
    sent = text(web, dana)
    set_text_status(web.deps, dana, TextStatus.CANNOT_BE_TEXTED, web.now, by="test")

    web.status(sent.provider_sid or "", "undelivered", 30006)

    assert web.contact(dana).text_status is TextStatus.CANNOT_BE_TEXTED


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"MessageStatus": "delivered"}, "MessageSid"),
        ({"MessageSid": "SM" + "1" * 32}, "MessageStatus"),
        ({"MessageSid": "SM" + "1" * 32, "MessageStatus": "failed", "ErrorCode": "x"}, "ErrorCode"),
        ({"MessageSid": "SM/../x", "MessageStatus": "failed"}, "MessageSid"),
    ],
)
def test_malformed_callback_is_422_naming_the_field(
    web: Web, params: dict[str, str], field: str
) -> None:
    """A signed callback missing or garbling a field is 422 with that field named."""
    response = web.post_twilio("/twilio/status", params)

    assert response.status_code == 422
    assert response.get_json()["field"] == field


def test_carrier_opt_out_by_send_error_through_the_fake_twilio(db_url: str, tmp_path: Path) -> None:
    """Twilio refusing a send with 21610 opts the contact out (firing), and nothing more goes out."""
    with FakeTwilioServer() as fake, open_web(db_url, tmp_path, sms=fake.transport()) as web:
        web.sync_campaign()
        dana = web.add_dana()
        assert enroll(web.deps, dana, CAMPAIGN, web.now).created
        fake.fail(DANA_PHONE, code=21610)

        result = send_now(web.deps, dana, MessageKind.MANUAL, "Hi Dana", web.now)

        assert result.outcome == "failed"
        contact = web.contact(dana)
        assert contact.sms_opted_out_how == "carrier"
        assert web.events(dana)[-1].kind is ConsentEventKind.REVOKED_CARRIER
        refused = [m for m in web.messages(dana) if m.status == "failed"]
        assert [m.error_code for m in refused] == [21610]
        web.later(days=1, minutes=1)
        web.tick()
        step = next(s for s in web.sends(dana) if s.step_id == "day-1-text")
        assert step.decision_code == "opted_out"
        assert [r.status for r in fake.requests] == [201, 400]


def test_signed_callbacks_from_the_fake_twilio_over_http(db_url: str, tmp_path: Path) -> None:
    """The fake Twilio's own signed sent/delivered callbacks reach the app over HTTP and apply."""
    with FakeTwilioServer(send_status_callbacks=True) as fake:
        probe = make_server("127.0.0.1", 0, lambda e, s: [])  # reserve a port for the app
        port = probe.server_port
        probe.server_close()
        public = f"http://127.0.0.1:{port}"
        with open_web(
            db_url,
            tmp_path,
            sms=fake.transport(),
            public_url=public,
            twilio_account_sid=fake.account_sid,
            twilio_auth_token=fake.auth_token,
        ) as web:
            server = make_server("127.0.0.1", port, create_app(web.deps), threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                fake.set_delivery(DANA_PHONE, "undelivered", 30006)
                dana = web.add_dana()  # the opt-in confirmation goes through the fake
                assert fake.wait_for_callbacks(3, timeout=10)  # sending, sent, undelivered
                # A callback may overtake the commit of the message row: it is applied late.
                assert wait_until(lambda: web.contact(dana).text_status is TextStatus.UNDELIVERABLE)
            finally:
                server.shutdown()
                thread.join(timeout=5)

            assert [c.response_status for c in fake.callbacks] == [200, 200, 200]
            assert all(c.url == f"{public}/twilio/status" for c in fake.callbacks)
            confirmation = next(m for m in web.messages(dana) if m.direction == "outbound")
            assert confirmation.status == "undelivered"
            assert confirmation.error_code == 30006
            assert web.contact(dana).text_status is TextStatus.UNDELIVERABLE


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``check`` until it holds or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_a_callback_that_overtakes_its_message_is_applied_late(web: Web, dana: int) -> None:
    """A 'delivered' posted before the message row exists is answered 200 and applied once it does."""
    late_sid = "SM" + "7" * 32

    response = web.status(late_sid, "undelivered", 30006)

    assert response.status_code == 200
    with web.deps.sessions.begin() as session:
        session.add(
            Message(
                direction="outbound",
                channel=Channel.SMS,
                kind=MessageKind.MANUAL,
                sender_phone=AGENT_PHONE,
                contact_id=dana,
                from_addr=AGENT_PHONE,
                to_addr=DANA_PHONE,
                body="Hi",
                provider_sid=late_sid,
                status="queued",
                created_at=web.now,
            )
        )
    assert wait_until(lambda: web.contact(dana).text_status is TextStatus.UNDELIVERABLE)
    with web.deps.sessions() as session:
        row = session.scalars(select(Message).where(Message.provider_sid == late_sid)).one()
        assert (row.status, row.error_code) == ("undelivered", 30006)


def test_a_callback_for_a_message_that_never_appears_is_dropped(web: Web, dana: int) -> None:
    """Unknown for good (another system's message): retried briefly, then dropped, nothing changed."""
    late: LateCallbacks = web.client.application.extensions["drip.late_callbacks"]
    late.RETRY_DELAYS = (0.01, 0.01, 0.01)  # type: ignore[misc]
    before = web.snapshot()

    assert web.status("SM" + "8" * 32, "delivered").status_code == 200

    assert wait_until(lambda: late.pending() == 0, timeout=5)
    assert web.snapshot() == before
    assert web.contact(dana).text_status is TextStatus.TEXTABLE


LIFECYCLE = ["queued", "sending", "sent", "delivered"]


@given(st.permutations(LIFECYCLE))
def test_any_order_of_a_delivered_lifecycle_ends_delivered(order: list[str]) -> None:
    """Whatever order the callbacks of a delivered message arrive in, it ends 'delivered'."""
    current = "queued"
    for status in order:
        if can_move(current, status):
            current = status
    assert current == "delivered"


@given(st.lists(st.sampled_from([*LIFECYCLE, "undelivered", "failed", "read"]), max_size=8))
def test_a_final_status_is_never_left_except_for_read(sequence: list[str]) -> None:
    """Once a final status is stored, only delivered -> read may follow."""
    current = "queued"
    for status in sequence:
        if can_move(current, status):
            assert current not in ("undelivered", "failed", "read")
            assert current != "delivered" or status == "read"
            current = status


def test_rank_table_is_consistent() -> None:
    """Progress statuses only move up; every final status beats every progress status."""
    progress = ["queued", "sending", "sent"]
    for a, b in itertools.permutations(progress, 2):
        assert can_move(a, b) == (progress.index(b) > progress.index(a))
    for p in progress:
        for final in ("delivered", "undelivered", "failed", "canceled"):
            assert can_move(p, final)
            assert not can_move(final, p)
