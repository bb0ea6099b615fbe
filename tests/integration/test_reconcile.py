"""Unknown sends settled against the fake Twilio server's Messages list, through the real SDK."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from drip.domain.enums import SendState
from drip.domain.message import with_footer
from drip.services import callbacks, dispatch
from drip.services.reconcile import reconcile
from drip.store import claims
from drip.store.models import Conversation, PendingCallback
from drip.transports.base import OutboundSms

if TYPE_CHECKING:
    from conftest import Rig

HORIZON = timedelta(minutes=10)


def _one_due(rig: Rig, n: int = 1) -> list[int]:
    """``n`` contacts on a one-step campaign, due a minute from the start; their contact ids."""
    rig.add_campaign("one-step", [0])
    contacts = rig.add_contacts(n)
    rig.enroll(contacts, "one-step")
    rig.at(rig.start + timedelta(minutes=1))
    return contacts


def _killed_mid_call(rig: Rig, contact: int, *, reached_twilio: bool) -> int:
    """A worker started the send, (maybe) reached Twilio, then died before recording; its id."""
    [send_id] = dispatch.claim(rig.deps, rig.now)
    [send] = rig.sends_of(contact)
    with rig.deps.sessions() as session:
        assert claims.start_one(session, send_id, send.claimed_at, rig.now)
    if reached_twilio:
        body = with_footer("Hi Lead0, this is Sam.", rig.deps.account.footer)
        rig.deps.sms.send_sms(OutboundSms("+16175550100", rig.phone_of(0), body))
    timeout = timedelta(seconds=rig.deps.settings.sending_timeout_seconds)
    rig.at(rig.now + timeout + timedelta(seconds=1))
    with rig.deps.sessions() as session:
        assert claims.recover_stale(session, rig.now, timeout) == [send_id]
    return send_id


def test_a_gateway_500_after_acceptance_is_found_and_recorded_sent(rig: Rig) -> None:
    """Accepted then 500: unknown, never retried; reconcile finds the sid and marks it sent."""
    [contact] = _one_due(rig)
    rig.twilio.fault("accept_then_error", status=500, code=20500, times=1)
    [result] = rig.fire_due()
    assert result.outcome == "unknown"
    [accepted] = rig.twilio.ledger()

    [settled] = reconcile(rig.deps, rig.now, horizon=HORIZON)

    assert (settled.outcome, settled.sid) == ("sent", accepted["sid"])
    [send] = rig.sends_of(contact)
    assert (send.state, send.decision_code) == (SendState.SENT, "reconciled_sent")
    [message] = rig.outbound()
    assert (message.provider_sid, message.status, message.send_id) == (
        accepted["sid"],
        "queued",
        send.id,
    )
    assert rig.twilio.count == 1  # nothing was sent twice


def test_a_worker_killed_after_the_call_is_found_with_its_footer(rig: Rig) -> None:
    """No message row at all: reconcile creates it from Twilio's copy, footer state included."""
    [contact] = _one_due(rig)
    send_id = _killed_mid_call(rig, contact, reached_twilio=True)

    [settled] = reconcile(rig.deps, rig.now, horizon=HORIZON)

    assert (settled.send_id, settled.outcome) == (send_id, "sent")
    [message] = rig.outbound()
    assert message.footer is True
    assert message.send_id == send_id
    assert message.provider_sid == settled.sid
    with rig.deps.sessions() as session:
        conversation = session.scalars(
            select(Conversation).where(Conversation.contact_id == contact)
        ).one()
    assert conversation.footer_last_sent_at == message.sent_at


def test_a_send_that_never_reached_twilio_goes_back_to_pending_after_the_horizon(
    rig: Rig,
) -> None:
    """Not listed: unknown until the horizon passes, then pending, then sent exactly once."""
    [contact] = _one_due(rig)
    send_id = _killed_mid_call(rig, contact, reached_twilio=False)

    [early] = reconcile(rig.deps, rig.now, horizon=HORIZON)
    assert early.outcome == "unknown"

    rig.at(rig.now + HORIZON)
    [late] = reconcile(rig.deps, rig.now, horizon=HORIZON)
    assert (late.send_id, late.outcome) == (send_id, "pending")
    assert "never accepted" in late.reason

    [fired] = rig.fire_due()
    assert fired.outcome == "sent"
    assert rig.twilio.accepted == 1
    assert rig.sends_of(contact)[0].state is SendState.SENT


def test_a_callback_that_came_first_is_kept_and_applied_when_reconcile_records_it(
    rig: Rig,
) -> None:
    """A 'delivered' for the unknown message waits in the table, then lands on the new row."""
    [contact] = _one_due(rig)
    rig.twilio.fault("accept_then_error", status=502, code=20500, times=1)
    rig.fire_due()
    [accepted] = rig.twilio.ledger()
    callbacks.keep(
        rig.deps,
        message_sid=accepted["sid"],
        status="delivered",
        error_code=None,
        error_message=None,
        now=rig.now,
    )

    reconcile(rig.deps, rig.now, horizon=HORIZON)

    [message] = rig.outbound()
    assert message.status == "delivered"
    with rig.deps.sessions() as session:
        assert session.scalars(select(PendingCallback)).all() == []
    assert rig.sends_of(contact)[0].state is SendState.SENT


def test_the_list_pages_like_twilio(rig: Rig) -> None:
    """60 messages to one number: the SDK follows next_page_uri and finds every one."""
    for i in range(60):
        rig.deps.sms.send_sms(OutboundSms("+16175550100", rig.phone_of(0), f"n{i}"))
    lister = rig.deps.sms
    found = lister.find_messages(  # type: ignore[attr-defined]
        to=rig.phone_of(0), from_="+16175550100", since=rig.now - timedelta(days=400)
    )
    assert len(found) == 60
    assert {m.body for m in found} == {f"n{i}" for i in range(60)}
    other = lister.find_messages(  # type: ignore[attr-defined]
        to=rig.phone_of(1), from_="+16175550100", since=rig.now - timedelta(days=400)
    )
    assert other == []
