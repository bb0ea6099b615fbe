"""Deliver: pace the sender, make the send ``sending``, call the provider (step 4).

:func:`_call_provider` is the one place a send meets its provider: a
provider that just said "not now" to this batch, or whose circuit is open,
is not asked again; otherwise the send becomes ``sending`` alone
(:meth:`Recorder.start`, committed) and then the provider is called. A text
first waits for its sender's slot on the carrier's clock
(:func:`drip.services.carrier.clear_to_send`): it is paced, given a validity,
or deferred when it could not reach the handset inside the window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import structlog

from drip.domain.policy import Defer, Send
from drip.errors import TransportError
from drip.services import carrier
from drip.services.circuit import circuit_for
from drip.services.deps import Deps
from drip.services.fire import record
from drip.services.fire.decide import Go, deferral
from drip.services.fire.gather import Prepared
from drip.services.fire.outcome import (
    FireResult,
    NotOursError,
    Outcome,
    Unavailable,
    deferred,
    provider_error,
    unknown,
)
from drip.services.fire.render import Email, Sms
from drip.store.models import Message
from drip.transports.base import OutboundEmail, OutboundSms

log = structlog.get_logger("drip.fire")

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Lane:
    """What a batch's sends share on their way to the provider."""

    recorder: record.Recorder
    #: Providers that said "not now" during this batch.
    unavailable: Unavailable


def deliver(
    deps: Deps, p: Prepared, go: Go, rendered: Sms | Email, *, lane: Lane, now: datetime
) -> Outcome:
    """Send the rendered text or email; the outcome says whether it went (not yet recorded)."""
    if isinstance(rendered, Email):
        return _deliver_email(deps, p, go.decision, rendered, lane=lane, now=now)
    send, decision = p.send, go.decision
    callback = deps.settings.status_callback_url if deps.settings.twilio_enabled else None

    def before_wait(seconds: float) -> None:
        # A wait for the sender's slot as short as the work between two sends may
        # keep the record for the next start's commit; a longer one commits it first.
        if seconds >= record.CARRY_MAX_SECONDS:
            lane.recorder.flush()

    cleared = carrier.clear_to_send(
        deps,
        rendered.sender,
        rendered.segments,
        decision,
        now,
        catching_up=send.catching_up,
        reopen=go.reopen,
        before_wait=before_wait,
    )
    if isinstance(cleared, Defer):
        return deferral(p, cleared)
    outgoing = OutboundSms(
        rendered.sender, rendered.to, rendered.text, callback, cleared.validity_seconds
    )
    message = rendered.message
    attempt = _Attempt(deps, p, decision, message, lane, now)
    called = _call_provider(
        attempt, deps.sms, "twilio", lambda: deps.sms.send_sms(outgoing), cleared=cleared
    )
    if isinstance(called, Outcome):
        return called
    message.provider_sid = called.sid
    message.status = called.status
    message.sent_at = now
    log.info(
        "send_decided",
        send_id=send.id,
        contact_id=p.contact.id,
        kind=send.kind.value,
        decision="sent",
        footer=decision.footer,
        rule=decision.rule.value,
        reason=decision.reason,
        to=rendered.to,
    )
    result = FireResult(send.id, "sent", decision.rule.value, decision.reason, decision.footer)
    return Outcome(p, decision, result, message, attempted=True)


def _deliver_email(
    deps: Deps, p: Prepared, decision: Send, rendered: Email, *, lane: Lane, now: datetime
) -> Outcome:
    outgoing = OutboundEmail(
        deps.settings.email_from, rendered.to, rendered.subject, rendered.text, rendered.headers
    )
    message = rendered.message
    attempt = _Attempt(deps, p, decision, message, lane, now)
    called = _call_provider(attempt, deps.email, "smtp", lambda: deps.email.send_email(outgoing))
    if isinstance(called, Outcome):
        return called
    message.provider_sid = called.message_id
    message.status = "sent"
    message.sent_at = now
    log.info(
        "send_decided", send_id=p.send.id, contact_id=p.contact.id, decision="sent", channel="email"
    )
    result = FireResult(p.send.id, "sent", "email", decision.reason, False)
    return Outcome(p, decision, result, message, attempted=True)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One send about to meet its provider, with what deciding it produced."""

    deps: Deps
    p: Prepared
    decision: Send
    message: Message
    lane: Lane
    now: datetime


def _call_provider(
    attempt: _Attempt,
    transport: object,
    provider: str,
    call: Callable[[], R],
    *,
    cleared: carrier.Cleared | None = None,
) -> R | Outcome:
    """The one place a send meets its provider: pre-send checks, ``sending``, the call.

    ``cleared`` (a text's) holds the sender's reserved slot, waited for last,
    right before the call, and then its departure gate (:func:`carrier.depart`).

    Returns the provider's receipt, or the outcome when the send did not go
    (deferred, failed, unknown). Raises :class:`NotOursError` when the send is no
    longer this worker's to start.
    """
    p, decision, message, lane, now = (
        attempt.p,
        attempt.decision,
        attempt.message,
        attempt.lane,
        attempt.now,
    )
    down = lane.unavailable.get(p.send.channel)
    if down is not None:  # the provider just said "not now" to this batch: do not ask again
        until, why = down
        return deferred(p, decision, "provider_unavailable", why, until)
    circuit = circuit_for(transport, provider)
    blocked = circuit.blocked_until(now)
    if blocked is not None:
        why = f"deferred: sending through {provider} is stopped ({circuit.reason})"
        return deferred(p, decision, "provider_auth_failed", why, blocked)
    # -- pre-send checks go here (pacing); then the send becomes ``sending``, alone.
    try:
        won = lane.recorder.start(p, now)
    except BaseException:
        circuit.cancel_probe()
        raise
    if not won:
        circuit.cancel_probe()
        log.info("send_not_ours", send_id=p.send.id)
        raise NotOursError
    if cleared is not None:
        carrier.depart(attempt.deps.pacer, cleared)
    try:
        receipt = call()
    except TransportError as exc:
        outcome = provider_error(
            p,
            decision,
            message,
            exc,
            circuit=circuit,
            provider=provider,
            unavailable=lane.unavailable,
            now=now,
        )
        outcome.attempted = True
        return outcome
    except Exception as exc:  # not a refusal: the message may have gone out
        outcome = unknown(p, decision, message, exc, now)
        outcome.attempted = True
        return outcome
    circuit.succeeded()
    return receipt
