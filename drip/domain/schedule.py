"""When a campaign step is due, in the contact's local time.

A step with ``day: N`` is due N calendar days after enrollment, at the local
wall-clock time of the enrollment, or at its ``at`` time, in the contact's
zone. Calendar days, not 24-hour periods: across a DST change the wall-clock
time stays put and the UTC instant moves by the hour.

Wall times that a zone skips or repeats are resolved like this (one rule, in
``at_local``, used by the send window as well):

- skipped (spring forward, e.g. 02:30 on the second Sunday of March in
  America/New_York): the first instant that exists after the gap, i.e. the
  moment of the change (03:00 EDT). Never earlier than asked, never later than
  needed.
- repeated (fall back, e.g. 01:30 on the first Sunday of November): the first
  occurrence (01:30 EDT), the earlier of the two instants, so a text is never
  an hour later than its schedule says.

A step whose time on its day is already past at enrollment (``day: 0`` with
``at`` earlier than the enrollment's local time) keeps that time: its due time
lies before ``enrolled_at``, so the dispatcher finds it due at once and it is
sent right away, subject to the send window. It is not moved to the next day.

All inputs and outputs are timezone-aware; results are in UTC. pendulum is
only used to present a time in a zone (``local``); the arithmetic uses
``zoneinfo`` so the gap and fold rules above are explicit.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pendulum

from drip.domain.zones import validate_timezone
from drip.errors import ValidationError


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware, got {value!r}")


def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(validate_timezone(tz))


def local(dt: datetime, tz: str) -> pendulum.DateTime:
    """The aware instant ``dt`` as wall-clock time in zone ``tz``."""
    _require_aware("dt", dt)
    return pendulum.instance(dt).in_timezone(validate_timezone(tz))


def at_local(day: date, wall: time, tz: str) -> datetime:
    """The UTC instant at which zone ``tz`` shows ``wall`` on ``day``.

    A skipped wall time gives the first instant after the gap; a repeated one
    gives its first occurrence (see the module docstring).
    """
    if isinstance(day, datetime):
        raise ValidationError(f"at_local takes a date, not a datetime: {day!r}")
    if wall.tzinfo is not None:
        raise ValidationError(f"at_local takes a local wall time without a zone: {wall!r}")
    return _at_local(day, wall, tz)


@functools.lru_cache(maxsize=4096)
def _at_local(day: date, wall: time, tz: str) -> datetime:
    # Cached: the policy asks for the same few days, window ends and zones for every
    # send of a batch, and the answer depends on nothing else. (``wall``'s fold, which
    # equality ignores, is replaced below anyway.)
    zone = _zone(tz)
    naive = datetime.combine(day, wall.replace(fold=0))
    # fold=0 means "the offset in force before the transition": for a repeated
    # time that is the first occurrence, for a skipped time the instant that
    # lies the length of the gap after it.
    first = naive.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    return _end_of_gap(naive, zone)


def _end_of_gap(naive: datetime, zone: ZoneInfo) -> datetime:
    """The transition instant of the gap that swallows the wall time ``naive``.

    With fold=1 the wall time is read with the offset after the change, which
    lands before the change; with fold=0 it lands after. The offset changes
    exactly once in between, on a whole second: find it by bisection.
    """
    early = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    late = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    after = late.astimezone(zone).utcoffset()
    lo, hi = math.floor(early.timestamp()), math.ceil(late.timestamp())
    # Invariant: the offset at ``lo`` is the old one, at ``hi`` the new one.
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def step_due_at(enrolled_at: datetime, day: int, at: time | None, tz: str) -> datetime:
    """When a step with ``day`` (and optional local ``at``) is due, in UTC.

    The local date is the enrollment's local date in ``tz`` plus ``day``
    calendar days; the wall time is ``at``, else the enrollment's local wall
    time (to the microsecond). ``day: 0`` without ``at`` is the enrollment
    instant itself.
    """
    _require_aware("enrolled_at", enrolled_at)
    if day < 0:
        raise ValidationError(f"step day must not be negative, got {day}")
    if day == 0 and at is None:
        return enrolled_at.astimezone(UTC)
    zone = _zone(tz)
    start = enrolled_at.astimezone(zone)
    wall = at if at is not None else start.time()
    return at_local(start.date() + timedelta(days=day), wall, tz)
