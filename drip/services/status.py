"""Delivery status callbacks from Twilio (``POST /twilio/status``).

Twilio posts a message's status as it moves (``queued``, ``sent``,
``delivered``...), but callbacks may arrive out of order and more than once.
The stored status therefore only moves forward:

- progress statuses by rank: ``accepted``/``scheduled``/``queued`` (0) <
  ``sending`` (1) < ``sent`` (2);
- final statuses: ``delivered``, ``partially_delivered``, ``undelivered``,
  ``failed``, ``canceled`` beat every progress status; once a message has a
  final status, no other callback changes it, except ``delivered -> read``
  (WhatsApp/RCS read receipts) and ``partially_delivered -> delivered/read``
  (the rest of the message arrived).

What each status means is :data:`STATUS_MEANINGS` (Twilio's Message
resource, "Message status values", checked 2026-11-30); ``drip history``
shows it next to the status. The first final status to arrive wins: ``delivered`` then a late
  ``sent`` stays ``delivered``; ``undelivered`` then ``delivered`` stays
  ``undelivered`` (Twilio never reports both for one message; if it did,
  the first one is kept and the second is logged);
- the change is one conditional ``UPDATE ... WHERE status IN (...)``, so two
  callbacks of the same message handled at the same moment cannot make it go
  backwards either.

Effects on the contact, in the same transaction as the status:

- ``ErrorCode`` 21610 (the recipient unsubscribed at the carrier) opts the
  contact out of SMS for every sender with a ``revoked_carrier`` consent event.
  This is applied even when the callback is stale for the status rank: a
  carrier opt-out must never be lost.
- 30003 (unreachable handset) and 30005 (unknown handset) on a
  failed/undelivered message: once :data:`UNDELIVERABLE_AFTER` (2) messages to
  the contact's current number failed with one of 30003/30005/30006, the
  contact's ``text_status`` becomes ``undeliverable`` with that code (one
  unreachable phone may be switched off for a day; two is a pattern).
  30006 (landline or unreachable carrier) does so at once. A contact an
  operator marked ``cannot_be_texted`` keeps that status. Only an applied
  (not stale) callback counts.

An unknown ``MessageSid`` changes nothing and is logged (``unknown_sid``).
It is either a message sent by another system on the same Twilio account,
or, often, a callback that overtook the transaction recording our own
message: Twilio may call back before the sender has committed the row. The
web app therefore retries unknown callbacks in the background for a while
(see ``drip.web.app.LateCallbacks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import structlog
from sqlalchemy.orm import Session

from drip import metrics
from drip.domain.enums import Channel, ConsentEventKind, TextStatus
from drip.services.consent import mark_undeliverable, opt_out
from drip.services.deps import Deps
from drip.store import messages
from drip.store import repository as repo
from drip.store.models import Contact, Message

log = structlog.get_logger("drip.status")

#: Rank of the statuses a message passes through before a final one.
PROGRESS_RANK: Final = {"accepted": 0, "scheduled": 0, "queued": 0, "sending": 1, "sent": 2}
#: Statuses after which only ``delivered -> read`` may still happen.
FINAL: Final = frozenset(
    {"delivered", "partially_delivered", "undelivered", "failed", "canceled", "read"}
)
#: What each stored message status means (Twilio's "Message status values").
STATUS_MEANINGS: Final = {
    "accepted": "accepted by a Messaging Service, which is choosing the sender",
    "scheduled": "scheduled by Twilio to be sent later",
    "queued": "queued at Twilio, waiting to be sent",
    "sending": "being handed to the carrier",
    "sent": "handed to the carrier, no delivery receipt yet",
    "delivered": "the carrier confirmed delivery to the handset",
    "partially_delivered": "the carrier confirmed delivery of part of the message only",
    "read": "delivered and read by the recipient (read receipts)",
    "undelivered": "the carrier could not deliver it",
    "failed": "never sent: refused before the carrier",
    "canceled": "canceled before it was sent (a scheduled message)",
    "received": "an inbound message",
    "unknown": "drip does not know whether it went out (not resent)",
}
FAILED: Final = frozenset({"undelivered", "failed"})
KNOWN: Final = frozenset(PROGRESS_RANK) | FINAL

CARRIER_OPT_OUT: Final = 21610
LANDLINE: Final = 30006
UNREACHABLE: Final = frozenset({30003, 30005})
UNDELIVERABLE_CODES: Final = UNREACHABLE | {LANDLINE}
#: Failed messages (30003/30005/30006) to one number before it is marked undeliverable.
UNDELIVERABLE_AFTER: Final = 2


def status_meaning(status: str | None) -> str:
    """What a stored message status means, for people (``drip history``)."""
    return STATUS_MEANINGS.get(status or "", "")


def can_move(current: str, new: str) -> bool:
    """Whether a message in status ``current`` may take status ``new`` (see module docstring)."""
    if new not in KNOWN or current == new:
        return False
    if current in FINAL:
        if current == "partially_delivered":
            return new in ("delivered", "read")
        return current == "delivered" and new == "read"
    if new in FINAL:
        return new != "read"  # a read receipt before delivery: keep waiting for delivered
    current_rank = PROGRESS_RANK.get(current, -1)
    return PROGRESS_RANK[new] > current_rank


def _sources_for(new: str) -> list[str]:
    """Every status a message may move to ``new`` from (for the conditional UPDATE)."""
    return [s for s in sorted(KNOWN) if can_move(s, new)]


@dataclass(frozen=True, slots=True)
class StatusResult:
    """What a callback did: ``action`` is updated | stale | unknown_sid | ignored."""

    action: str
    message_id: int | None = None
    contact_id: int | None = None
    status: str | None = None
    opted_out: bool = False
    undeliverable: bool = False
    detail: str = ""


def handle_status(
    deps: Deps,
    *,
    message_sid: str,
    status: str,
    now: datetime,
    error_code: int | None = None,
    error_message: str | None = None,
) -> StatusResult:
    """Apply one delivery status callback; never moves a status backwards."""
    # Here, not at module level: ``drip history`` reads status_meaning only and
    # should not import the carrier's pacing (CLI start-up time).
    from drip.services import carrier

    new = status.strip().lower()
    with deps.sessions.begin() as session:
        message = repo.message_by_sid(session, message_sid)
        if message is None:
            log.info("status_unknown_sid", message_sid=message_sid, status=new[:32])
            return StatusResult("unknown_sid", detail="no message with this MessageSid (yet)")
        if message.direction != "outbound":
            log.info("status_ignored", message_id=message.id, reason="inbound message")
            return StatusResult("ignored", message.id, message.contact_id, message.status)
        if new not in KNOWN:
            log.info("status_ignored", message_id=message.id, status=new[:32])
            return StatusResult(
                "ignored", message.id, message.contact_id, message.status, detail="unknown status"
            )
        values: dict[str, object] = {"status": new, "updated_at": now}
        if new in FAILED and error_code is not None:
            values["error_code"] = error_code
            if error_message:
                values["error_message"] = error_message
        applied = messages.move_status(session, message.id, _sources_for(new), values)
        if applied and new in FAILED:
            metrics.provider_error("twilio", error_code, stage="delivery")
        if applied:  # 30036: expired in the carrier's queue, back to the next opening once
            carrier.requeue_expired(session, message, new, error_code, now)
        contact = session.get(Contact, message.contact_id) if message.contact_id else None
        opted = False
        undeliverable = False
        if contact is not None and error_code == CARRIER_OPT_OUT:
            opted = opt_out(
                session,
                contact,
                "carrier",
                ConsentEventKind.REVOKED_CARRIER,
                now,
                evidence=f"status callback: message {message_sid} {new}, error {error_code}",
                detail=str(error_code),
            )
        elif (
            contact is not None
            and applied
            and new in FAILED
            and error_code in UNDELIVERABLE_CODES
            and message.channel is Channel.SMS
        ):
            undeliverable = _maybe_undeliverable(session, contact, message, error_code, now)
    result = StatusResult(
        "updated" if applied else "stale",
        message.id,
        message.contact_id,
        new if applied else message.status,
        opted,
        undeliverable,
        "" if applied else f"kept {message.status!r}: {new!r} does not move it forward",
    )
    log.info(
        "status_callback",
        message_id=message.id,
        contact_id=message.contact_id,
        status=new,
        action=result.action,
        error_code=error_code,
        carrier_opt_out=opted,
        undeliverable=undeliverable,
    )
    return result


def _maybe_undeliverable(
    session: Session, contact: Contact, message: Message, code: int, now: datetime
) -> bool:
    if contact.text_status is not TextStatus.TEXTABLE or contact.phone != message.to_addr:
        return False
    if code != LANDLINE:
        failures = messages.failed_to_number(session, contact, FAILED, UNDELIVERABLE_CODES)
        if failures < UNDELIVERABLE_AFTER:
            return False
    mark_undeliverable(contact, code, now)
    log.warning("contact_undeliverable", contact_id=contact.id, error_code=code)
    return True
