"""The carrier's clock: arrival times, ValidityPeriod, and the sender queue's expiry (30036).

Twilio releases each sender's queue at its rate (a US long code one segment
per second) and drops a message that waited longer than its ValidityPeriod
with error 30036, reported by a ``failed`` status callback.
"""

from __future__ import annotations

from collections.abc import Iterable

from drip.testing.fake_twilio.ledger import Arrival

__all__ = ["arrival", "queue_expiries"]


def arrival(at: float, form: dict[str, str], sid: str | None, segments: int | None) -> Arrival:
    """One create request's arrival; ``segments`` None: counted from the body."""
    from drip.testing.fake_twilio.codes import num_segments

    raw = form.get("ValidityPeriod")
    return Arrival(
        at,
        form.get("From"),
        form.get("To"),
        int(raw) if raw else None,
        num_segments(form.get("Body", "")) if segments is None else segments,
        sid,
    )


def queue_expiries(arrivals: Iterable[Arrival], segments_per_second: float = 1.0) -> list[str]:
    """The sids the carrier would expire: each sender's queue drained at its rate, in
    arrival order; a message whose turn comes after its ValidityPeriod is dropped."""
    free: dict[str, float] = {}
    expired: list[str] = []
    for item in arrivals:
        if item.sid is None or item.from_ is None:
            continue
        start = max(free.get(item.from_, 0.0), item.at)
        if item.validity is not None and start - item.at > item.validity:
            expired.append(item.sid)
            continue
        free[item.from_] = start + item.segments / segments_per_second
    return expired
