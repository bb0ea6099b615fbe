"""Outcome: what happened to a send, and what a provider's answer means (step 5).

Every send of a batch ends as an :class:`Outcome` whose :class:`FireResult`
is what callers see. Provider errors (:class:`ErrorClass`, see
docs/reliability.md):

- a refusal of the message is ``failed`` (a carrier opt-out also opts the
  contact out; an undeliverable number marks the contact);
- "not accepted, try later" (429 after the transport's retries, a connection
  refused) defers the send with a backoff (``provider_unavailable``), and the
  rest of the batch on that channel with it;
- a 5xx or a timeout after the request left is ``unknown``: maybe sent, so
  never retried (``drip reconcile`` settles it);
- an authentication failure opens the transport's circuit
  (:mod:`drip.services.circuit`): the sends stay pending until it works again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from drip import metrics
from drip.domain.enums import Channel
from drip.domain.policy import Decision, Send
from drip.errors import TransportError
from drip.services import fire_checks
from drip.services.circuit import Circuit
from drip.services.fire.gather import Prepared
from drip.store.models import Message
from drip.transports.base import ErrorClass, error_class_of

log = structlog.get_logger("drip.fire")

#: Backoff of a send the provider did not accept (429 after retries, a
#: refused connection): this, doubled per attempt, capped at :data:`BACKOFF_CAP`.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(minutes=30)

#: Providers that said "not now" during this batch: channel -> (until, why).
Unavailable = dict[Channel, tuple[datetime, str]]


@dataclass(frozen=True, slots=True)
class FireResult:
    """What happened to one scheduled send in this fire, and what was recorded for it."""

    send_id: int
    outcome: str  # sent | skipped | deferred | failed | unknown
    code: str
    reason: str
    footer: bool | None = None
    deferred_until: datetime | None = None
    #: The message recorded for the send (one that reached its provider).
    message_id: int | None = None
    #: The provider's id of that message, once recorded: a status callback that
    #: arrived before the record waits for it (:func:`drip.services.callbacks.apply_early`).
    provider_id: str | None = None


@dataclass
class Outcome:
    """A send's result with what recording it needs."""

    prepared: Prepared
    decision: Decision | None
    result: FireResult
    message: Message | None = None
    carrier_opt_out: bool = False
    undeliverable_code: int | None = None
    #: The send reached ``sending`` (its provider call was made or started).
    attempted: bool = False


class NotOursError(Exception):
    """The send was not ours to start (another delivery took it, or it was given back)."""


def result_of(
    p: Prepared, decision: Decision | None, outcome: str, code: str, reason: str
) -> Outcome:
    """An outcome that records only the send's new state and why (nothing was sent)."""
    return Outcome(p, decision, FireResult(p.send.id, outcome, code, reason))


def deferred(p: Prepared, decision: Decision, code: str, reason: str, until: datetime) -> Outcome:
    """The send goes back to pending, due at ``until``."""
    result = FireResult(p.send.id, "deferred", code, reason, deferred_until=until)
    return Outcome(p, decision, result)


def provider_error(
    p: Prepared,
    decision: Send,
    message: Message,
    exc: TransportError,
    *,
    circuit: Circuit,
    provider: str,
    unavailable: Unavailable,
    now: datetime,
) -> Outcome:
    """What the provider's error means for this send (and the rest of its batch)."""
    error_class = error_class_of(exc)
    metrics.provider_error(provider, exc.code)
    if error_class is ErrorClass.UNKNOWN:
        circuit.succeeded()  # it answered: the credentials are fine
        return unknown(p, decision, message, exc, now)
    if error_class is ErrorClass.AUTH:
        until = circuit.failed(now, f"{provider} refused drip's credentials: {exc}")
        why = f"deferred: {provider} refused drip's credentials ({exc.code or 'no code'}); " + (
            "nothing is sent through it until it accepts them again"
        )
        return deferred(p, decision, "provider_auth_failed", why, until)
    if error_class is ErrorClass.RETRYABLE:
        attempts = max(p.send.attempts, 0) + 1
        wait = min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_CAP)
        until = now + wait
        why = (
            f"deferred: {provider} did not accept the message ({exc}); "
            f"tried again after {int(wait.total_seconds())} s"
        )
        unavailable[p.send.channel] = (until, why)
        log.warning(
            "provider_unavailable", provider=provider, send_id=p.send.id, retry_at=until.isoformat()
        )
        return deferred(p, decision, "provider_unavailable", why, until)
    return failed(p, decision, message, exc, now)


def unknown(
    p: Prepared, decision: Send, message: Message, exc: Exception, now: datetime
) -> Outcome:
    """An unexpected error from the transport call: maybe sent, so recorded unknown, not retried."""
    message.status = "unknown"
    message.error_message = f"{type(exc).__name__}: {exc}"
    message.updated_at = now
    if isinstance(exc, TransportError):
        message.error_code = exc.code
        code = "provider_unknown"
        reason = (
            f"UNKNOWN: no clear answer from the provider after the request left ({exc}); "
            "it may have been accepted, so it is not retried; drip reconcile settles it"
        )
    else:
        code = "transport_error"
        reason = (
            f"UNKNOWN: the transport raised {type(exc).__name__} ({exc}) during the provider "
            "call; the message may or may not have gone out, so it is not retried"
        )
    log.error("send_unknown", send_id=p.send.id, contact_id=p.contact.id, reason=reason)
    return Outcome(p, decision, FireResult(p.send.id, "unknown", code, reason), message)


def failed(
    p: Prepared, decision: Send, message: Message, exc: TransportError, now: datetime
) -> Outcome:
    """The provider refused the message: failed, or skipped when the carrier answered a STOP."""
    error_class = error_class_of(exc)
    message.status = "failed"
    message.error_code = exc.code
    message.error_message = str(exc)
    message.updated_at = now
    code = f"provider_{error_class.value}"
    reason = f"failed: the provider refused the message ({exc.code or 'no code'}: {exc})"
    outcome = Outcome(p, decision, FireResult(p.send.id, "failed", code, reason), message)
    confirmed = fire_checks.confirmed_by_carrier(p.send.kind, exc.code)
    if confirmed is not None:  # Twilio answered the STOP itself
        outcome.result = FireResult(p.send.id, "skipped", "confirmed_by_carrier", confirmed)
        log.info("opt_out_confirmed_by_carrier", send_id=p.send.id, contact_id=p.contact.id)
        return outcome
    if error_class is ErrorClass.OPTED_OUT:
        outcome.carrier_opt_out = True
        outcome.result = replace(
            outcome.result,
            reason=f"failed: the carrier says the recipient unsubscribed ({exc.code}); "
            "the contact is now opted out of texts",
        )
    elif error_class is ErrorClass.UNDELIVERABLE:
        outcome.undeliverable_code = exc.code
        outcome.result = replace(
            outcome.result,
            reason=f"failed: the number cannot receive texts ({exc.code}); no further texts",
        )
    log.warning(
        "send_failed",
        send_id=p.send.id,
        contact_id=p.contact.id,
        code=exc.code,
        error_class=error_class.value,
        reason=outcome.result.reason,
    )
    return outcome


def count_outcomes(results: list[FireResult]) -> dict[str, int]:
    """Counts of outcomes, for summaries."""
    counts: dict[str, int] = defaultdict(int)
    for r in results:
        counts[r.outcome] += 1
    return dict(counts)
