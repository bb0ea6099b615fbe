"""The local-time send window, the per-state rules that narrow it, and blackouts.

These are frozen values; the law itself is data (``drip/rules/us.yaml``,
loaded by ``drip.rules``), never a constant here. ``StateRule`` can say more
than one daily window: per-weekday windows (``days``; ``None`` for a day
with no texts), no texts on the state's legal holidays (``holidays``, from
the ``holidays`` library by subdivision), and a rolling ``max_per_24h``.
Every row carries its ``source`` (the law it cites) and the date it was
``checked``, so a deferral can name both.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, time

from drip.errors import ValidationError

#: Weekday names as rule files spell them, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_WORDS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Local wall-clock hours in which campaign and bulk texts may go out: [start, end)."""

    start: time = time(8, 0)
    end: time = time(21, 0)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValidationError(
                f"send window end {self.end:%H:%M} must be after its start {self.start:%H:%M}"
            )

    def narrowed(self, law: SendWindow) -> SendWindow:
        """This window cut down to a state's legal hours ``law``.

        When the two do not overlap at all, the legal hours win: a campaign's
        preferred hours never justify texting outside what the state allows,
        and never silence a contact forever either.
        """
        start, end = max(self.start, law.start), min(self.end, law.end)
        return SendWindow(start, end) if start < end else law

    def within(self, outer: SendWindow) -> bool:
        """Whether this window lies entirely inside ``outer``."""
        return outer.start <= self.start and self.end <= outer.end

    def contains(self, at: time) -> bool:
        return self.start <= at < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class StateRule:
    """One state's limits on campaign and bulk texts, as data with its citation.

    ``days`` overrides ``window`` for some weekdays: ``(weekday, window)``
    pairs, weekday 0 = Monday; a ``None`` window means no texts that day.
    ``enabled: false`` (from ``account.yaml``) keeps the row visible but off.
    """

    state: str
    window: SendWindow
    max_per_24h: int | None = None
    days: tuple[tuple[int, SendWindow | None], ...] = ()
    holidays: bool = False
    source: str = ""
    checked: date | None = None
    enabled: bool = True
    notes: str = ""

    def __post_init__(self) -> None:
        if len(self.state) != 2 or not self.state.isalpha() or not self.state.isupper():
            raise ValidationError(f"state rule: {self.state!r} is not a two-letter state code")
        if self.max_per_24h is not None and self.max_per_24h < 1:
            raise ValidationError(f"state rule {self.state}: max_per_24h must be at least 1")
        seen: set[int] = set()
        for weekday, _ in self.days:
            if not 0 <= weekday <= 6 or weekday in seen:
                raise ValidationError(f"state rule {self.state}: bad or repeated weekday {weekday}")
            seen.add(weekday)

    def window_on(self, weekday: int) -> SendWindow | None:
        """The legal hours on ``weekday`` (0 = Monday), or None when the day is closed."""
        for day, window in self.days:
            if day == weekday:
                return window
        return self.window

    @property
    def cited(self) -> str:
        """``source`` for reasons, or a note that the row has none."""
        return self.source or "no source given"

    def describe(self) -> str:
        """The row in one line: ``TX 09:00-21:00; Sunday 12:00-21:00``."""
        parts = [f"{self.state} {self.window}"]
        for day, window in sorted(self.days):
            parts.append(f"{WEEKDAY_WORDS[day]} {window if window else 'no texts'}")
        if self.holidays:
            parts.append("no texts on state holidays")
        if self.max_per_24h is not None:
            parts.append(f"at most {self.max_per_24h} in 24 h")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Blackout:
    """No campaign or bulk texts to these states from ``start`` through ``until`` (local dates).

    Set by operations in ``account.yaml`` (e.g. a declared state of emergency
    in Louisiana, when the LPSC suspends telephonic solicitation).
    """

    states: frozenset[str]
    start: date
    until: date
    reason: str

    def __post_init__(self) -> None:
        if not self.states:
            raise ValidationError("blackout: names no state")
        if self.until < self.start:
            raise ValidationError(
                f"blackout: until {self.until} is before from {self.start} ({self.reason})"
            )

    def covers(self, state: str, day: date) -> bool:
        return state in self.states and self.start <= day <= self.until


def rule_for(state: str | None, rules: tuple[StateRule, ...]) -> StateRule | None:
    """The enabled rule for a two-letter state, or None."""
    if state is None:
        return None
    for rule in rules:
        if rule.state == state and rule.enabled:
            return rule
    return None


def rules_for(states: tuple[str, ...], rules: tuple[StateRule, ...]) -> tuple[StateRule, ...]:
    """The enabled rules of every state in ``states``, in that order."""
    found = (rule_for(state, rules) for state in states)
    return tuple(rule for rule in found if rule is not None)


@functools.cache
def _calendar(state: str, year: int) -> dict[date, str]:
    import holidays as holiday_calendars  # on first use: a large import most runs never need

    try:
        calendar = holiday_calendars.country_holidays("US", subdiv=state, years=year)
    except NotImplementedError as exc:  # holidays: an unknown subdivision
        raise ValidationError(f"no holiday calendar for US state {state!r}") from exc
    return dict(calendar.items())


def state_holiday(state: str, day: date) -> str | None:
    """The name of ``state``'s legal holiday on ``day`` (federal ones included), or None.

    From the maintained ``holidays`` library by subdivision, not a hand list;
    pure computation (no I/O), cached per state and year.
    """
    return _calendar(state, day.year).get(day)
