"""Reassigned numbers: the check a campaign or bulk text on old consent gets before it is sent.

Between deciding and rendering (step 2b of the fire path): when
``reassigned_numbers.enabled`` and the text's consent (or the number's last
verification) is older than ``max_age_days``
(:func:`drip.domain.reassigned.check_date`), the answer for the number and
that date is gathered: from ``number_checks`` when it was asked before, else
from the provider (``deps.lookup``, Twilio Lookup v2), and passed to the pure
:func:`drip.domain.reassigned.verdict`. ``yes`` voids the consent (a
``number_reassigned`` consent event with the answer as evidence) and skips
the text; ``no`` records the verification; no answer follows ``on_unknown``.

The check is a provider call like sending: an authentication failure (20003)
opens the provider's circuit (:mod:`drip.services.circuit`) shared with the
Messages API, and while it is open texts that need the check wait
(``provider_auth_failed``). A check without an answer is not asked again in
the same batch.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import structlog

from drip.domain.decision_codes import DeferCode
from drip.domain.policy import Defer, Skip
from drip.domain.reassigned import (
    LookupAnswer,
    Proceed,
    Reassigned,
    check_date,
    number_digest,
    verdict,
)
from drip.services import consent
from drip.services.circuit import circuit_for
from drip.services.deps import Deps
from drip.services.fire.decide import Go, deferral
from drip.services.fire.gather import Prepared, States
from drip.services.fire.outcome import Outcome, deferred, result_of
from drip.store import number_checks
from drip.store.models import Contact
from drip.transports.base import ErrorClass
from drip.transports.lookup import LookupFailedError, ReassignedAnswer

log = structlog.get_logger("drip.fire")

UNAVAILABLE = DeferCode.REASSIGNED_CHECK_UNAVAILABLE.value
#: The provider whose circuit the check shares (the same Twilio credentials as Messages).
PROVIDER = "twilio"


def check_number(deps: Deps, p: Prepared, go: Go, states: States, now: datetime) -> Go | Outcome:
    """The text going on (``go``, its reason saying what the check said), or its outcome."""
    settings = deps.account.reassigned_numbers
    phone = p.contact.phone
    if not settings.enabled or phone is None:
        return go
    digest = number_digest(deps.settings.secret_key, phone)
    asked = check_date(
        settings,
        kind=p.send.kind,
        channel=p.send.channel,
        consent_at=p.contact.sms_consent_at,
        verified_at=states.verified.get(digest),
        now=now,
    )
    if asked is None:
        return go
    gathered = _gather(deps, p, go, states, digest=digest, asked=asked, now=now)
    if isinstance(gathered, Outcome):
        return gathered
    answer, source = gathered
    tries = 1
    if answer.status is Reassigned.UNKNOWN:  # the backoff grows with each check without answer
        with deps.sessions() as session:
            tries += number_checks.unanswered_checks(session, p.send.id, UNAVAILABLE)
    decided = verdict(settings, answer, now, tries)
    log.info(
        "reassigned_check",
        send_id=p.send.id,
        contact_id=p.contact.id,
        last_verified_date=asked.isoformat(),
        answer=answer.status.value,
        source=source,
        decision=decided.outcome if not isinstance(decided, Proceed) else "send",
    )
    if isinstance(decided, Proceed):
        if decided.verified:
            states.verified[digest] = now
        # the check's answer goes into the send's recorded reason (drip explain shows it)
        reason = f"{go.decision.reason}; reassigned-numbers check: {decided.reason}"
        return replace(go, decision=replace(go.decision, reason=reason))
    if isinstance(decided, Skip):
        _void(deps, p.contact.id, answer, decided.reason, now)
        return result_of(p, decided, "skipped", decided.code.value, decided.reason)
    assert isinstance(decided, Defer)
    # an overdue step keeps its place in the one-a-day catch-up lane
    return deferral(p, replace(decided, catching_up=p.send.catching_up))


def _gather(
    deps: Deps, p: Prepared, go: Go, states: States, *, digest: str, asked: date, now: datetime
) -> tuple[LookupAnswer, str] | Outcome:
    """The answer for (number, date) and where it came from, or the outcome of an open circuit."""
    with deps.sessions() as session:
        known = number_checks.known_answer(session, digest, asked)
    if known is not None:
        return LookupAnswer(Reassigned(known.answer), asked, known.evidence), "kept"
    if deps.lookup is None:
        why = "no reassigned-numbers source is configured (Twilio is off)"
        return LookupAnswer(Reassigned.UNKNOWN, asked, "", why), "none"
    if states.lookup_down is not None:
        return LookupAnswer(Reassigned.UNKNOWN, asked, "", states.lookup_down), "batch"
    circuit = circuit_for(deps.sms, PROVIDER)
    blocked = circuit.blocked_until(now)
    if blocked is not None:
        why = f"deferred: the reassigned-numbers check waits: {PROVIDER} is stopped ({circuit.reason})"
        return deferred(p, go.decision, "provider_auth_failed", why, blocked)
    assert p.contact.phone is not None
    try:
        raw = deps.lookup.reassigned(p.contact.phone, asked)
    except LookupFailedError as exc:
        if exc.error_class is ErrorClass.AUTH:
            until = circuit.failed(now, f"{PROVIDER} Lookup refused drip's credentials: {exc}")
            why = (
                f"deferred: {PROVIDER} refused drip's credentials for the reassigned-numbers "
                f"check ({exc.code or 'no code'}); nothing is sent through it until it "
                "accepts them again"
            )
            return deferred(p, go.decision, "provider_auth_failed", why, until)
        if exc.status is None or exc.error_class in (ErrorClass.UNKNOWN, ErrorClass.RETRYABLE):
            circuit.cancel_probe()
        else:
            circuit.succeeded()  # it answered (a 404, say): the credentials are fine
        states.lookup_down = _short(str(exc))
        log.warning("reassigned_check_unavailable", send_id=p.send.id, error=states.lookup_down)
        return LookupAnswer(Reassigned.UNKNOWN, asked, "", states.lookup_down), "lookup"
    circuit.succeeded()
    answer = read_answer(raw, asked)
    if answer.status is not Reassigned.UNKNOWN:
        with deps.sessions.begin() as session:
            number_checks.keep_answer(
                session,
                contact_id=p.contact.id,
                digest=digest,
                last_verified_date=asked,
                answer=answer.status.value,
                evidence=answer.evidence,
                at=now,
            )
    return answer, "lookup"


def read_answer(raw: ReassignedAnswer, asked: date) -> LookupAnswer:
    """What the source's ``reassigned_number`` object says, as drip reads it.

    ``yes`` and ``no`` are answers; ``no_data_available``, an error code, an
    unknown value or an answer about another date than the one asked are not.
    """
    said = raw.is_number_reassigned
    answered = (raw.last_verified_date or "").replace("-", "")
    if answered and answered != asked.strftime("%Y%m%d"):
        why = f"the answer is about {raw.last_verified_date}, not {asked.isoformat()}"
        return LookupAnswer(Reassigned.UNKNOWN, asked, raw.raw, why)
    if raw.error_code is not None:
        return LookupAnswer(Reassigned.UNKNOWN, asked, raw.raw, f"error {raw.error_code}")
    if said == "yes":
        return LookupAnswer(Reassigned.YES, asked, raw.raw)
    if said == "no":
        return LookupAnswer(Reassigned.NO, asked, raw.raw)
    if said == "no_data_available":
        why = f"no disconnection data for {asked.isoformat()}"
        return LookupAnswer(Reassigned.UNKNOWN, asked, raw.raw, why)
    return LookupAnswer(Reassigned.UNKNOWN, asked, raw.raw, f"unexpected answer {said!r}")


def _void(deps: Deps, contact_id: int, answer: LookupAnswer, reason: str, now: datetime) -> None:
    """Void the contact's consent, with the answer as the consent event's evidence."""
    with deps.sessions.begin() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            return
        voided = consent.void_for_reassigned(
            session,
            contact,
            now,
            evidence=answer.evidence or answer.status.value,
            detail=f"LastVerifiedDate {answer.last_verified_date.isoformat()}: {reason}",
        )
    if voided:
        log.warning("consent_voided_number_reassigned", contact_id=contact_id)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
