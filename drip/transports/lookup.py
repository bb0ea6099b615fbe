"""The reassigned-numbers check as a provider call: the protocol, its answer and its errors.

A :class:`NumberLookup` asks whether a number was permanently disconnected
(and so may have been reassigned) after a date. Twilio's implementation is
:class:`drip.transports.twilio_lookup.TwilioLookup` (Lookup v2,
``Fields=reassigned_number``); replay and unit tests use
:class:`RecordingLookup`, in memory, which answers by the same rule as the
fake Twilio server (:func:`rnd_answer`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from drip.clock import Clock, SystemClock
from drip.transports.base import ProviderError, classify_twilio_error

__all__ = [
    "DATA_SINCE",
    "LookupFailedError",
    "NumberLookup",
    "ReassignedAnswer",
    "RecordingLookup",
    "lookup_error",
    "rnd_answer",
]

#: The fake sources have disconnection data from this date on, as the FCC's
#: database does (carriers keep it from January 27, 2021: FCC supplemental
#: guidance, December 2021); an earlier ``LastVerifiedDate`` gets
#: ``no_data_available``, as Twilio documents for dates "prior to January of 2021"
#: (https://www.twilio.com/docs/lookup/v2-api/reassigned-number, checked 2026-12-07).
DATA_SINCE = date(2021, 1, 27)


@dataclass(frozen=True, slots=True)
class ReassignedAnswer:
    """Lookup's ``reassigned_number`` object as it came: ``yes``, ``no``, ``no_data_available``.

    ``raw`` is the object's JSON text, kept as evidence.
    """

    is_number_reassigned: str | None
    last_verified_date: str | None
    error_code: int | None
    raw: str


class LookupFailedError(ProviderError):
    """The check got no usable answer; ``error_class`` says how (``auth`` opens the circuit)."""


def lookup_error(status: int, code: int | None, detail: str) -> LookupFailedError:
    """The error for a refused Lookup request (Twilio's HTTP status and error code)."""
    error_class = classify_twilio_error(status, code)
    shown = f"error {code}" if code is not None else "no error code"
    return LookupFailedError(
        f"Lookup refused ({error_class}): HTTP {status}, {shown}: {detail}",
        error_class=error_class,
        code=code,
        status=status,
    )


class NumberLookup(Protocol):
    def reassigned(self, phone: str, last_verified: date) -> ReassignedAnswer:
        """Whether ``phone`` was disconnected after ``last_verified``; raise
        :class:`LookupFailedError` when there is no usable answer."""
        ...


def rnd_answer(disconnected_on: date | None, last_verified: date) -> str:
    """What the database says of a number disconnected on ``disconnected_on`` (None: never).

    ``yes`` when it was disconnected on or after ``last_verified``,
    ``no_data_available`` for a date before the data starts, ``no`` otherwise.
    """
    if disconnected_on is not None and disconnected_on >= last_verified:
        return "yes"
    if last_verified < DATA_SINCE:
        return "no_data_available"
    return "no"


class RecordingLookup:
    """An in-memory :class:`NumberLookup` (replay, unit tests) that can be told to fail.

    :meth:`mark_reassigned` records a number's disconnection date;
    :meth:`fail` makes every check raise (an outage: ``unknown``; 20003:
    ``auth``) until :meth:`recover`, or until the clock reaches ``until``.
    ``calls`` counts the checks asked.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._lock = threading.Lock()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._disconnected: dict[str, date] = {}
        self._failure: tuple[int, int | None, datetime | None] | None = None
        self.calls = 0

    def mark_reassigned(self, phone: str, on: date) -> None:
        with self._lock:
            self._disconnected[phone] = on

    def fail(
        self, status: int = 503, code: int | None = 20503, *, until: datetime | None = None
    ) -> None:
        with self._lock:
            self._failure = (status, code, until)

    def recover(self) -> None:
        with self._lock:
            self._failure = None

    def reassigned(self, phone: str, last_verified: date) -> ReassignedAnswer:
        with self._lock:
            self.calls += 1
            failure = self._failure
            disconnected = self._disconnected.get(phone)
        if failure is not None and (failure[2] is None or self._clock.now() < failure[2]):
            raise lookup_error(failure[0], failure[1], "Service Unavailable")
        said = rnd_answer(disconnected, last_verified)
        asked = last_verified.isoformat()
        raw = f'{{"last_verified_date": "{asked}", "is_number_reassigned": "{said}", ' + (
            '"error_code": null}'
        )
        return ReassignedAnswer(said, asked, None, raw)
