"""Lookup v2 ``reassigned_number``, as Twilio answers it, and what a test can set.

``GET /v2/PhoneNumbers/{PhoneNumber}?Fields=reassigned_number&LastVerifiedDate=YYYYMMDD``
(https://www.twilio.com/docs/lookup/v2-api/reassigned-number, checked
2026-12-07) answers 200 with the phone number resource; its
``reassigned_number`` object is ``{last_verified_date: "YYYY-MM-DD",
is_number_reassigned: "yes" | "no" | "no_data_available", error_code: null}``
(``no_data_available`` for a date before the data starts, 27 January 2021,
see :data:`drip.transports.lookup.DATA_SINCE`). Packages not asked for are ``null``. A path that is not a
phone number is 404 (20404); wrong credentials 401 (20003), as for Messages.
A missing or unreadable ``LastVerifiedDate`` with ``Fields=reassigned_number``
is refused 400 (Twilio documents no code for it; the fake gives none).

A test marks a number disconnected from a date (:meth:`LookupBook.mark`),
after which the check says ``yes`` for any earlier-or-equal date
(:func:`drip.transports.lookup.rnd_answer`); and sets a fault: every check
refused with a status and code (an outage, 20003), answered with a
malformed body, or held longer than the client's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qsl, unquote

from drip.testing.fake_twilio.codes import error_body, error_message, valid_to
from drip.transports.lookup import rnd_answer

__all__ = ["LOOKUP_FAULTS", "LOOKUP_PREFIX", "LookupBook", "LookupFault", "answer"]

LOOKUP_PREFIX = "/v2/PhoneNumbers/"
#: ``refuse`` (status and code), ``malformed`` (200 with a body that is not the resource), ``hang``.
LOOKUP_FAULTS = ("refuse", "malformed", "hang")


@dataclass(frozen=True)
class LookupFault:
    kind: str
    status: int = 503
    code: int = 20503
    hang: float = 30.0


@dataclass
class LookupBook:
    """What the fake knows of numbers (disconnection dates) and how it misbehaves."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    disconnected: dict[str, date] = field(default_factory=dict)
    fault: LookupFault | None = None
    #: Every check asked: (phone, LastVerifiedDate as sent).
    asked: list[tuple[str, str]] = field(default_factory=list)

    def mark(self, phone: str, on: date) -> None:
        """The number was permanently disconnected on ``on`` (and may be reassigned since)."""
        with self.lock:
            self.disconnected[phone] = on

    def set_fault(self, fault: LookupFault | None) -> None:
        with self.lock:
            self.fault = fault

    def clear(self) -> None:
        with self.lock:
            self.disconnected.clear()
            self.fault = None
            self.asked.clear()


def answer(book: LookupBook, path: str, query: str) -> tuple[int, bytes]:
    """The answer (status, JSON) to one authenticated Lookup v2 request."""
    phone = unquote(path[len(LOOKUP_PREFIX) :])
    params = dict(parse_qsl(query, keep_blank_values=True))
    wanted = {f.strip() for f in params.get("Fields", "").split(",") if f.strip()}
    with book.lock:
        book.asked.append((phone, params.get("LastVerifiedDate", "")))
        fault = book.fault
        disconnected = book.disconnected.get(phone)
    if fault is not None:
        if fault.kind == "hang":
            time.sleep(fault.hang)  # the client times out first
            return 503, error_body(503, 20503, error_message(20503))
        if fault.kind == "malformed":
            return 200, b'{"phone_number": "' + phone.encode() + b'", "reassigned_number": '
        return fault.status, error_body(fault.status, fault.code, error_message(fault.code))
    if not phone or "/" in phone or not valid_to(phone):
        return 404, error_body(404, 20404, error_message(20404))
    reassigned: dict[str, object] | None = None
    if "reassigned_number" in wanted:
        raw = params.get("LastVerifiedDate", "")
        try:
            if len(raw) != 8 or not raw.isascii() or not raw.isdigit():
                raise ValueError(raw)
            asked = date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
        except ValueError:
            why = f"LastVerifiedDate must be a date as YYYYMMDD, got {raw!r}"
            return 400, error_body(400, 400, why)
        reassigned = {
            "last_verified_date": asked.isoformat(),
            "is_number_reassigned": rnd_answer(disconnected, asked),
            "error_code": None,
        }
    national = phone[2:] if phone.startswith("+1") else phone
    resource: dict[str, object] = {
        "calling_country_code": "1" if phone.startswith("+1") else None,
        "country_code": "US" if phone.startswith("+1") else None,
        "phone_number": phone,
        "national_format": f"({national[:3]}) {national[3:6]}-{national[6:]}",
        "valid": True,
        "validation_errors": [],
        "caller_name": None,
        "sim_swap": None,
        "call_forwarding": None,
        "line_status": None,
        "line_type_intelligence": None,
        "identity_match": None,
        "reassigned_number": reassigned,
        "sms_pumping_risk": None,
        "phone_number_quality_score": None,
        "pre_fill": None,
        "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{phone}",
    }
    return 200, json.dumps(resource).encode()
