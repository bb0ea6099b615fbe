"""Per-contact limits that are not about the clock: the frequency cap and expiry.

``FrequencyCap`` is at most ``texts`` campaign and bulk texts to one contact
in any ``days`` days, across campaigns and senders (docs/compliance.md).
Compliance replies and manual texts neither count nor wait. The policy
(:func:`drip.domain.policy.decide`) takes the cap as an input, with the
contact's recent counted send times; this module reads no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

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
