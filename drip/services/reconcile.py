"""Settle ``unknown`` sends against the provider's own records (``drip reconcile``).

A send is ``unknown`` when its provider call may or may not have reached the
provider: a worker killed during the call, a 5xx from a gateway, a timeout
after the request left. For each such text, Twilio's Messages list is asked
for messages from the send's sender to its contact since the send started:

- found (with the same body when drip kept it): the send becomes ``sent``
  with the message's sid, its status, and whether it carried the footer (the
  conversation's footer time is updated); callbacks that waited for that sid
  are applied;
- provably absent (nothing listed and the list horizon, a provider fact in
  ``drip/data/provider_facts.json``, has passed since the send started): it
  was never accepted, so the send goes back to ``pending`` with the reason;
- otherwise it stays ``unknown`` (too early, the provider cannot be asked,
  or an email: SMTP keeps no list to ask).

The effect is exactly once wherever the provider can tell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Final

import structlog

from drip.domain.enums import Channel, SendState
from drip.domain.message import sms_size
from drip.errors import TransportError
from drip.services import callbacks
from drip.services.deps import Deps
from drip.services.senders import resolve_sender
from drip.store import conversations, messages, sends
from drip.store import repository as repo
from drip.store.models import Contact, Message, ScheduledSend, SendDecision
from drip.transports.base import MessageLister, ProviderMessage

log = structlog.get_logger("drip.reconcile")

#: Look for a message created up to this long before the send's recorded start
#: (clocks of drip and Twilio differ a little).
CLOCK_SLACK: Final = timedelta(seconds=60)


def list_horizon() -> timedelta:
    """How long after a send started a message missing from Twilio's list is provably absent."""
    raw = resources.files("drip").joinpath("data/provider_facts.json").read_text("utf-8")
    return timedelta(seconds=int(json.loads(raw)["twilio"]["list_horizon_seconds"]))


@dataclass(frozen=True, slots=True)
class Settled:
    """What reconcile did with one unknown send: ``sent``, ``pending`` or ``unknown``."""

    send_id: int
    outcome: str
    reason: str
    sid: str | None = None


def reconcile(
    deps: Deps,
    now: datetime,
    *,
    horizon: timedelta | None = None,
    limit: int | None = None,
    min_age: timedelta = timedelta(0),
) -> list[Settled]:
    """Settle ``unknown`` sends (oldest first, at most ``limit``); one result each."""
    wait = horizon if horizon is not None else list_horizon()
    lister = deps.sms if isinstance(deps.sms, MessageLister) else None
    with deps.sessions() as session:
        unknown = sends.unknown_oldest_first(session, limit)
        contacts = repo.contacts_by_id(session, {s.contact_id for s in unknown})
        agents = repo.agents_by_id(
            session, {c.agent_id for c in contacts.values() if c.agent_id is not None}
        )
        kept = messages.of_sends(session, [s.id for s in unknown])
        session.expunge_all()
    results: list[Settled] = []
    for send in unknown:
        started = send.sending_started_at or send.updated_at
        if now - started < min_age:
            continue
        contact = contacts[send.contact_id]
        if send.channel is not Channel.SMS or lister is None or contact.phone is None:
            why = (
                "the provider keeps no list drip can ask"
                if lister is not None
                else ("this SMS transport cannot list messages")
            )
            if send.channel is not Channel.SMS:
                why = "an email cannot be looked up at the mail server"
            results.append(Settled(send.id, "unknown", f"still unknown: {why}"))
            continue
        message = kept.get(send.id)
        agent = agents.get(contact.agent_id) if contact.agent_id is not None else None
        sender = resolve_sender(send.sender_role, agent, deps.account, send.sender_phone)
        from_phone = (
            message.from_addr if message is not None else (sender.phone if sender else None)
        )
        if from_phone is None:
            results.append(Settled(send.id, "unknown", "still unknown: no sender number"))
            continue
        try:
            listed = lister.find_messages(
                to=contact.phone, from_=from_phone, since=started - CLOCK_SLACK
            )
        except TransportError as exc:
            log.warning("reconcile_list_failed", send_id=send.id, error=str(exc))
            results.append(Settled(send.id, "unknown", f"still unknown: {exc}"))
            continue
        found = _match(deps, listed, message)
        if found is not None:
            results.append(_mark_sent(deps, send, contact, message, found=found, now=now))
        elif now >= started + wait:
            results.append(
                _mark_absent(deps, send, message, from_phone=from_phone, started=started, now=now)
            )
        else:
            results.append(
                Settled(
                    send.id,
                    "unknown",
                    f"still unknown: not listed yet; provably absent only after {wait}",
                )
            )
    return results


def _match(
    deps: Deps, listed: list[ProviderMessage], message: Message | None
) -> ProviderMessage | None:
    """The oldest listed message not already recorded for another send (same body if known)."""
    candidates = [m for m in listed if message is None or m.body == message.body]
    if not candidates:
        return None
    with deps.sessions() as session:
        taken = messages.recorded_sids(session, [m.sid for m in candidates])
    free = [m for m in candidates if m.sid not in taken]
    return min(free, key=lambda m: m.created_at) if free else None


def _footer_text(deps: Deps, send: ScheduledSend) -> str:
    footer = deps.account.footer
    if send.campaign_id is not None:
        with deps.sessions() as session:
            row = repo.campaigns_by_id(session, [send.campaign_id]).get(send.campaign_id)
            if row is not None:
                try:
                    campaign = deps.campaigns.get(row.id, row.version, row.definition)
                except Exception:  # an invalid stored campaign: the account footer then
                    campaign = None
                if campaign is not None and campaign.opt_out.footer:
                    footer = campaign.opt_out.footer
    return footer.strip()


def _left_alone(send_id: int) -> Settled:
    return Settled(send_id, "unknown", "changed meanwhile; left alone")


def _mark_sent(
    deps: Deps,
    send: ScheduledSend,
    contact: Contact,
    message: Message | None,
    *,
    found: ProviderMessage,
    now: datetime,
) -> Settled:
    footer_text = _footer_text(deps, send)
    footer = bool(footer_text) and found.body.rstrip().endswith(footer_text)
    reason = (
        f"sent: found at Twilio as {found.sid} (status {found.status}) by reconcile; "
        f"{'with' if footer else 'without'} the footer"
    )
    with deps.sessions.begin() as session:
        settled = {
            "state": SendState.SENT,
            "decision_code": "reconciled_sent",
            "decision_reason": reason,
            "updated_at": now,
        }
        if not sends.settle_unknown(session, send.id, settled):
            return _left_alone(send.id)
        row = session.get(Message, message.id) if message is not None else None
        if row is None:
            size = sms_size(found.body)
            row = Message(
                direction="outbound",
                channel=Channel.SMS,
                kind=send.kind,
                sender_phone=found.from_,
                contact_id=contact.id,
                from_addr=found.from_,
                to_addr=found.to,
                body=found.body,
                segments=size.segments,
                encoding=size.encoding,
                send_id=send.id,
                created_at=found.created_at,
                status=found.status,
            )
            session.add(row)
        row.provider_sid = found.sid
        row.status = found.status
        row.footer = footer
        row.sent_at = found.created_at
        row.error_code = found.error_code
        row.error_message = None
        row.updated_at = now
        session.flush()
        sends.set_message(session, send.id, row.id)
        session.add(
            SendDecision(
                send_id=send.id,
                at=now,
                outcome="sent",
                code="reconciled_sent",
                reason=reason,
                footer=footer,
            )
        )
        if footer:
            repo.ensure_conversations(session, [(found.from_, contact.id)])
            conversations.footer_sent_at(session, found.from_, contact.id, found.created_at)
        if send.enrollment_id is not None:
            repo.finish_enrollments(session, [send.enrollment_id], now)
    log.info("send_reconciled", send_id=send.id, outcome="sent", sid=found.sid, footer=footer)
    callbacks.apply_pending(deps, now, [found.sid])
    return Settled(send.id, "sent", reason, found.sid)


def _mark_absent(
    deps: Deps,
    send: ScheduledSend,
    message: Message | None,
    *,
    from_phone: str,
    started: datetime,
    now: datetime,
) -> Settled:
    reason = (
        f"rescheduled: Twilio lists no message from {from_phone} to this contact since "
        f"{started.isoformat(timespec='seconds')} and its list horizon has passed, so it was "
        "never accepted; the send goes out again"
    )
    with deps.sessions.begin() as session:
        settled = {
            "state": SendState.PENDING,
            "message_id": None,
            "claimed_at": None,
            "sending_started_at": None,
            "decision_code": "reconciled_absent",
            "decision_reason": reason,
            "updated_at": now,
        }
        if not sends.settle_unknown(session, send.id, settled):
            return _left_alone(send.id)
        if message is not None:
            row = session.get(Message, message.id)
            if row is not None:
                row.status = "failed"
                row.error_message = "never accepted by the provider (reconcile)"
                row.send_id = None
                row.updated_at = now
        session.add(
            SendDecision(
                send_id=send.id,
                at=now,
                outcome="rescheduled",
                code="reconciled_absent",
                reason=reason,
            )
        )
    log.info("send_reconciled", send_id=send.id, outcome="pending")
    return Settled(send.id, "pending", reason)
