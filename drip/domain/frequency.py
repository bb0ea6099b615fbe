"""Per-contact limits that are not about the clock: the frequency cap and expiry.

An expiry is a step's ``expires_after`` (:func:`parse_duration`) or a bulk's
``--expires-at`` (:func:`parse_expiry`: a local time in the account's zone,
or an instant with an explicit UTC offset).

``FrequencyCap`` is at most ``texts`` campaign and bulk texts to one contact
in any ``days`` days, across campaigns and senders (docs/compliance.md).
Compliance replies and manual texts neither count nor wait. The policy
(:func:`drip.domain.policy.decide`) takes the cap as an input, with the
contact's recent counted send times; this module reads no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from drip.errors import ValidationError


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most ``texts`` campaign and bulk texts per contact in any ``days`` days."""

    texts: int
    days: int

    def __post_init__(self) -> None:
        if self.texts < 1:
            raise ValidationError("frequency_cap.texts must be at least 1")
        if self.days < 1:
            raise ValidationError("frequency_cap.days must be at least 1")

    @property
    def span(self) -> timedelta:
        """The sliding window the texts are counted in."""
        return timedelta(days=self.days)

    def words(self) -> str:
        """The cap as people say it: "3 texts in 7 days"."""
        texts = "text" if self.texts == 1 else "texts"
        days = "day" if self.days == 1 else "days"
        return f"{self.texts} campaign or bulk {texts} in {self.days} {days}"


def cap_release(sent: tuple[datetime, ...], at: datetime, cap: int, span: timedelta) -> datetime:
    """The earliest time >= ``at`` when fewer than ``cap`` sends lie in the ``span`` before it."""
    recent = sorted(s for s in sent if at - span < s <= at)
    if len(recent) < cap:
        return at
    # The window slides forward; once the oldest ones age out, one more fits.
    return recent[len(recent) - cap] + span


_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """``2d``, ``6h`` or ``90m`` as a positive ``timedelta``; ValidationError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValidationError(f"{text!r} is not a duration like 2d, 6h or 90m")
    amount = int(match.group(1))
    if amount <= 0:
        raise ValidationError(f"{text!r}: a duration must be positive")
    return timedelta(**{_UNITS[match.group(2)]: amount})


def lookback(cap: FrequencyCap | None, least: timedelta) -> timedelta:
    """How far back a contact's counted texts must be read: ``least`` or the cap's span."""
    return least if cap is None else max(least, cap.span)


_EXPIRY = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})"
    r"\s*(?:(Z|UTC)|([+-])(\d{2}):?(\d{2}))?\s*$",
    re.IGNORECASE,
)


def parse_expiry(text: str, tz: str) -> datetime:
    """``"YYYY-MM-DD HH:MM"`` as a UTC instant: local time in zone ``tz`` unless an offset is given.

    ``2026-06-06 13:00`` is 13:00 in ``tz`` (a wall time the clocks skip moves
    to the end of the gap, a repeated one is its first occurrence);
    ``2026-06-06 13:00-04:00``, ``2026-06-06T17:00Z`` or ``... UTC`` name the
    instant themselves. Anything else is a ValidationError saying the form.
    """
    match = _EXPIRY.match(text)
    if match is None:
        raise ValidationError(
            f"{text!r} is not a time like 2026-06-06 13:00 (local to the account's zone) "
            "or 2026-06-06 13:00-04:00 (with its UTC offset)"
        )
    year, month, day, hour, minute = (int(g) for g in match.group(1, 2, 3, 4, 5))
    try:
        on, wall = date(year, month, day), time(hour, minute)
    except ValueError as exc:
        raise ValidationError(f"{text!r}: {exc}") from exc
    if match.group(6):
        return datetime.combine(on, wall, tzinfo=UTC)
    if match.group(7):
        sign = 1 if match.group(7) == "+" else -1
        hours, minutes = int(match.group(8)), int(match.group(9))
        if hours > 23 or minutes > 59:
            raise ValidationError(f"{text!r}: the UTC offset is out of range")
        offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
        return datetime.combine(on, wall, tzinfo=offset).astimezone(UTC)
    # Imported here: drip.domain.schedule loads pendulum, which every command that
    # reads account.yaml (and so this module) would otherwise pay for at start.
    from drip.domain.schedule import at_local

    return at_local(on, wall, tz)
