"""Reassigned numbers: whether a text needs the reassigned-numbers check, and what its answer means.

Phone numbers are disconnected and handed to new people every day. Before a
campaign or bulk text to a number whose consent (or last verification) is
older than ``max_age_days``, drip asks whether the number was permanently
disconnected after that date (Twilio Lookup v2's ``reassigned_number``
field, which queries the FCC's Reassigned Numbers Database; docs/compliance.md).

This module is pure: :func:`check_date` says whether a send needs the check
(and with which date), and :func:`verdict` turns the answer the worker
gathered into a decision. It reads no clock and calls nothing; the lookup
itself is a provider call made by ``drip.services.fire.reassigned``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from drip.domain.decision_codes import DeferCode, SkipCode
from drip.domain.enums import Channel, MessageKind
from drip.domain.policy import Defer, Skip
from drip.domain.reassigned_settings import ReassignedNumbers

#: Backoff of a text whose check got no answer: this, doubled per attempt, capped.
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(hours=2)


class Reassigned(StrEnum):
    """What the reassigned-numbers source said: ``is_number_reassigned`` as drip reads it."""

    YES = "yes"
    NO = "no"
    #: No answer: no data for the date, an error in the answer, a timeout, a 5xx, a malformed body.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    """One answer about one number and date, as gathered by the worker.

    ``evidence`` is the answer as the source gave it (the ``reassigned_number``
    object, or what went wrong), kept with the consent event it may cause.
    """

    status: Reassigned
    last_verified_date: date
    evidence: str
    why: str = ""


@dataclass(frozen=True, slots=True)
class Proceed:
    """The text may go on to be sent (checked ``no``, or sent unchecked under ``on_unknown: send``).

    ``verified``: the check answered ``no``, so the verification date is recorded.
    """

    verified: bool
    reason: str


#: What the answer means for the text: go on, skip it (consent void), or defer it.
Verdict = Proceed | Skip | Defer


def check_date(
    settings: ReassignedNumbers,
    *,
    kind: MessageKind,
    channel: Channel,
    consent_at: datetime | None,
    verified_at: datetime | None,
    now: datetime,
) -> date | None:
    """The ``LastVerifiedDate`` to ask with, or None when this text needs no check.

    Only campaign and bulk texts are checked, only when the setting is on,
    and only when the later of the consent and the last verification is
    older than ``max_age_days``; the date is that instant's UTC date.
    """
    if not settings.enabled or channel is not Channel.SMS or not kind.is_marketing:
        return None
    if consent_at is None:
        return None  # no consent: the policy skips it anyway
    known = max(consent_at, verified_at) if verified_at is not None else consent_at
    if now - known <= settings.max_age:
        return None
    return _utc_date(known)


def _utc_date(at: datetime) -> date:
    offset = at.utcoffset() or timedelta(0)
    return (at - offset).date()


def verdict(
    settings: ReassignedNumbers, answer: LookupAnswer, now: datetime, attempts: int
) -> Verdict:
    """What ``answer`` means for the text at ``now`` (``attempts``: this is its n-th check).

    ``yes`` skips it (``number_reassigned``; the caller voids the consent),
    ``no`` lets it go and records the verification, no answer follows
    ``on_unknown``: ``defer`` with a backoff (``reassigned_check_unavailable``),
    never sent unchecked, or ``send``.
    """
    asked = answer.last_verified_date.isoformat()
    if answer.status is Reassigned.YES:
        return Skip(
            SkipCode.NUMBER_REASSIGNED,
            f"skipped: the number was disconnected and reassigned after {asked} "
            "(reassigned-numbers check); its consent is void",
        )
    if answer.status is Reassigned.NO:
        return Proceed(True, f"the number was not reassigned since {asked}")
    why = f" ({answer.why})" if answer.why else ""
    if settings.on_unknown == "send":
        return Proceed(False, f"sent unchecked: no answer from the reassigned-numbers check{why}")
    wait = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    minutes = int(wait.total_seconds() // 60)
    return Defer(
        now + wait,
        DeferCode.REASSIGNED_CHECK_UNAVAILABLE,
        f"deferred: no answer from the reassigned-numbers check{why}; "
        f"asked again in {minutes} min, never sent unchecked",
    )


def number_digest(key: str, phone: str) -> str:
    """The keyed digest the check's answers are kept under (never the number in clear)."""
    return hmac.new(key.encode(), phone.encode(), hashlib.sha256).hexdigest()
