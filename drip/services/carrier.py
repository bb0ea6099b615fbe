"""The carrier's clock in the send pipeline: pacing, validity, expiry, claims.

The rules are in docs/compliance.md#the-carriers-clock.

Called from the fire path, dispatch and the status handler with one line
each; the arithmetic is in :mod:`drip.domain.pacing` and the shared sender
schedule in :mod:`drip.transports.pacing`.

- :func:`clear_to_send`, right before the provider call: reserve the
  sender's slot (wait for it when it is a few seconds away, else defer with
  reason ``pacing``) and compute ``ValidityPeriod`` = seconds left before the
  window closes, at most 36,000. A text that could not leave the carrier's
  queue before its window closes is deferred to the next opening instead
  (reason ``carrier_clock``), the opening the policy gives at the closing
  instant.
- :func:`requeue_expired`, in the status callback transaction: a ``failed``
  with error 30036 (expired in the carrier's queue, never sent) puts the
  send back to pending, once, recorded; a second expiry is final.
- :func:`claim_limit`: dispatch claims no more than the senders of the due
  texts can send within :data:`CLAIM_HORIZON_SECONDS`, less what is already
  in flight, so claimed rows are sent rather than deferred again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import pendulum
import structlog
from sqlalchemy.orm import Session

from drip.domain.decision_codes import DeferCode
from drip.domain.enums import EnrollmentStatus, SendState
from drip.domain.pacing import validity_seconds
from drip.domain.policy import Decision, Defer, Send
from drip.services.deps import Deps
from drip.store import carrier as queries
from drip.store.models import Enrollment, Message, ScheduledSend, SendDecision
from drip.transports.pacing import Busy, Pacer, PacingError

log = structlog.get_logger("drip.carrier")

#: Longest a worker waits for its sender's slot before deferring the send instead.
MAX_WAIT_SECONDS: Final = 10.0
#: Dispatch claims what the senders can send within this many seconds.
CLAIM_HORIZON_SECONDS: Final = 30.0
#: A text is not handed over with less validity than this: it could not leave in time.
MIN_VALIDITY_SECONDS: Final = 5
#: A text held back because the pacing store is unreachable is tried again this much later.
UNAVAILABLE_RETRY_SECONDS: Final = 60.0
#: Twilio's error code for a message that expired in its queue (never sent).
EXPIRED: Final = 30036


@dataclass(frozen=True, slots=True)
class Cleared:
    """Send at ``slot``; ``validity_seconds`` is the ValidityPeriod to hand over (None: the default).

    ``slot`` is the sender's reserved instant on :func:`time.monotonic` (0: now):
    the caller does its own work first (the ``sending`` commit) and waits for
    the rest just before the provider call, so that work never lands after the
    slot and bunches this text with the sender's next one at the carrier.
    """

    validity_seconds: int | None
    slot: float = 0.0
    #: The sender and the text's segments, for the departure gate (None: no gate).
    sender: str | None = None
    segments: int = 1


def depart(pacer: Pacer, cleared: Cleared) -> None:
    """Wait for the slot, then pass the sender's departure gate, right before the provider
    call: a text that left late keeps its successor a gate's spacing behind it
    (:meth:`drip.transports.pacing.Pacer.depart`). The gate waits at most
    :data:`MAX_WAIT_SECONDS` in all, and an unreachable pacing store skips it
    (the slot was reserved already)."""
    if cleared.slot:
        pacer.sleep(max(0.0, cleared.slot - time.monotonic()))
    if cleared.sender is None:
        return
    # The waits asked of the pacer are counted, not read off a clock: they are the
    # pacer's sleeps, on its own time (a test's pacer may sleep on a clock of its own).
    waited = 0.0
    while True:
        try:
            wait = pacer.depart(cleared.sender, cleared.segments)
        except PacingError as exc:
            log.warning("pacing_gate_unavailable", error=str(exc))
            return
        if wait <= 0:
            return
        if waited + wait > MAX_WAIT_SECONDS:
            log.warning("pacing_gate_gave_up", waited=round(waited, 3))
            return
        pacer.sleep(wait)
        waited += wait


def clear_to_send(
    deps: Deps,
    sender: str,
    segments: int,
    decision: Send,
    now: datetime,
    *,
    catching_up: bool,
    reopen: Callable[[datetime], Decision],
    before_wait: Callable[[float], None] | None = None,
) -> Cleared | Defer:
    """Pace the sender and set the text's validity, or defer it (see the module docstring).

    ``reopen(at)`` is the policy's decision at instant ``at``: at the window's
    closing instant it is a ``Defer`` to the next opening. ``before_wait(seconds)``
    is called before the sender's slot is waited for (firing commits what it holds).
    """
    closes = decision.window_closes_at
    pacer = deps.pacer
    # The carrier counts from the hand-over: a batch that waited for slots or a slow
    # provider is later than its ``now`` by then (the clock's own time; virtual in replay).
    now = max(now, deps.clock.now())
    if closes is None:
        # Manual texts and compliance replies are not held back; they still use the slot.
        try:
            pacer.reserve(sender, segments, max_wait=math.inf)
        except PacingError as exc:  # never hold a STOP confirmation for the pacing store
            log.warning("pacing_unavailable", error=str(exc), held=False)
        return Cleared(None)
    senders = pacer.senders
    rate = senders.rate_of(sender) if senders is not None else 1.0
    takes = segments / rate
    left = (closes - now).total_seconds()
    if left < takes + MIN_VALIDITY_SECONDS:
        return _to_opening(reopen, closes, now, catching_up, "too little of the window is left")
    try:
        slot = pacer.reserve(sender, segments, max_wait=min(MAX_WAIT_SECONDS, left - takes))
    except PacingError as exc:
        log.warning("pacing_unavailable", error=str(exc), held=True)
        return Defer(
            until=now + timedelta(seconds=UNAVAILABLE_RETRY_SECONDS),
            code=DeferCode.PACING,
            reason=f"deferred {UNAVAILABLE_RETRY_SECONDS:.0f} s: the pacing store (Redis) is "
            "unreachable, so the sender's throughput cannot be checked",
            catching_up=catching_up,
        )
    if isinstance(slot, Busy):
        until = now + timedelta(seconds=math.ceil(slot.retry_after))
        if (closes - until).total_seconds() < takes + MIN_VALIDITY_SECONDS:
            why = f"its sender cannot send it before the window closes ({_masked(slot.reason)})"
            return _to_opening(reopen, closes, now, catching_up, why)
        return Defer(
            until=until,
            code=DeferCode.PACING,
            reason=f"deferred {math.ceil(slot.retry_after)} s: the sender number is at its "
            f"throughput ({rate:g} segments/s; {_masked(slot.reason)})",
            catching_up=catching_up,
        )
    at = time.monotonic() + slot.wait
    if before_wait is not None and slot.wait > 0:
        before_wait(slot.wait)
    sends_at = now + timedelta(seconds=slot.wait)
    return Cleared(validity_seconds(closes, sends_at), at, sender, segments)


def _masked(reason: str) -> str:
    """A pacer's reason without the phone number (stored reasons are read by many)."""
    return " ".join("the number" if w.startswith("+") else w for w in reason.split())


def _to_opening(
    reopen: Callable[[datetime], Decision],
    closes: datetime,
    now: datetime,
    catching_up: bool,
    why: str,
) -> Defer:
    later = reopen(closes)
    until = later.until if isinstance(later, Defer) else closes
    local = pendulum.instance(until)
    return Defer(
        until=until,
        code=DeferCode.CARRIER_CLOCK,
        reason=f"deferred to the next opening ({local:%Y-%m-%d %H:%M} UTC): {why} "
        f"(it closes at {pendulum.instance(closes):%H:%M} UTC, "
        f"{max(0, int((closes - now).total_seconds()))} s from now), so the carrier could "
        "not deliver it inside the window",
        catching_up=catching_up,
    )


def requeue_expired(
    session: Session, message: Message, status: str, error_code: int | None, now: datetime
) -> str | None:
    """A 30036 expiry: back to pending once (``requeued``), a second time final (``final``).

    A footer the expired text carried was never received: the conversation
    forgets it (``forget_footer``), so the next text carries it again.

    Returns None when the callback is not an expiry of a scheduled send.
    """
    if error_code != EXPIRED or status not in ("failed", "undelivered"):
        return None
    if (  # the contact never got this footer (the footer state follows what was sent)
        message.footer
        and message.sent_at is not None
        and message.sender_phone is not None
        and message.contact_id is not None
        and queries.forget_footer(
            session, message.sender_phone, message.contact_id, message.sent_at
        )
    ):
        log.info("footer_forgotten", message_id=message.id, reason="the text expired unsent")
    if message.send_id is None:
        return None
    send = session.get(ScheduledSend, message.send_id)
    if send is None or send.state is not SendState.SENT:
        return None
    if queries.expiries_of(session, send.id) >= 1:
        reason = (
            "failed: the carrier expired the text again (30036, never sent) after it was put "
            "back once; not retried"
        )
        send.state = SendState.FAILED
        code, outcome, action = queries.CODE_EXPIRED_FINAL, "failed", "final"
    else:
        reason = (
            "put back to pending: the carrier expired the text in its queue (30036, never "
            "sent); it goes at the next opening of its window, once"
        )
        send.state = SendState.PENDING
        send.due_at = now
        send.claimed_at = None
        send.sending_started_at = None
        code, outcome, action = queries.CODE_EXPIRED, "rescheduled", "requeued"
        if send.enrollment_id is not None:
            _reopen_enrollment(session, send.enrollment_id)
    send.decision_code = code
    send.decision_reason = reason
    send.updated_at = now
    session.add(SendDecision(send_id=send.id, at=now, outcome=outcome, code=code, reason=reason))
    log.info("send_expired", send_id=send.id, message_id=message.id, action=action)
    return action


def _reopen_enrollment(session: Session, enrollment_id: int) -> None:
    """An enrollment completed by the expired send is active again until it goes."""
    enrollment = session.get(Enrollment, enrollment_id)
    if (
        enrollment is not None
        and enrollment.status is EnrollmentStatus.COMPLETED
        and enrollment.stop_reason == "all steps done"
    ):
        enrollment.status = EnrollmentStatus.ACTIVE
        enrollment.stopped_at = None
        enrollment.stop_reason = None


def claim_limit(deps: Deps, now: datetime, wanted: int) -> int:
    """At most ``wanted``; with pacing on, no more than the due texts' senders can send soon.

    Per sender: rate x :data:`CLAIM_HORIZON_SECONDS` less its texts already in
    flight (queued or sending), capped by its due texts among the next
    ``wanted`` the claim would take (one query; the backlog past them is not
    counted). Non-SMS and
    unattributed sends are not counted: while every sender of the due texts
    is full, nothing is claimed (0).
    """
    senders = deps.pacer.senders
    if senders is None:
        return wanted
    account = deps.account
    default_phone = account.default_agent.phone if account.default_agent else None
    with deps.sessions() as session:
        due, flying = queries.sms_due_and_flying(
            session,
            now,
            wanted,
            default_phone=default_phone,
            concierge_phone=account.concierge_phone,
        )
    budget = 0
    for sender, count in due.items():
        room = math.floor(senders.rate_of(sender) * CLAIM_HORIZON_SECONDS) - flying[sender]
        budget += max(0, min(count, room))
    return min(wanted, budget) if due else wanted


def tick_spent(deps: Deps, began: float) -> bool:
    """With pacing on, whether an embedded tick that began at ``began`` (monotonic) sent a
    tick's worth (``DRIP_TICK_SECONDS``): a paced backlog would otherwise hold one tick for hours."""
    return deps.pacer.senders is not None and time.monotonic() - began >= deps.settings.tick_seconds
