"""Step due times in the contact's local time, across DST changes (SPEC §4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.domain.schedule import at_local, local, step_due_at
from drip.errors import ValidationError

NY = "America/New_York"
PHX = "America/Phoenix"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def wall(dt: datetime, tz: str) -> tuple[date, time]:
    """The local date and wall time of ``dt`` in ``tz``."""
    moved = dt.astimezone(ZoneInfo(tz))
    return moved.date(), moved.time()


def test_day_zero_without_at_is_the_enrollment_instant() -> None:
    """A day-0 step without ``at`` is due exactly when the contact was enrolled."""
    enrolled = datetime(2026, 3, 2, 15, 6, 7, 890, tzinfo=UTC)
    assert step_due_at(enrolled, 0, None, NY) == enrolled


def test_same_local_time_after_spring_forward() -> None:
    """Enrolled at 10:00 EST, a step 14 days later fires at 10:00 EDT (an hour earlier in UTC)."""
    enrolled = utc(2026, 3, 2, 15, 0)  # 10:00 EST
    due = step_due_at(enrolled, 14, None, NY)
    assert due == utc(2026, 3, 16, 14, 0)  # 10:00 EDT
    assert wall(due, NY) == (date(2026, 3, 16), time(10, 0))


def test_same_local_time_after_fall_back() -> None:
    """Enrolled at 09:30 EDT, a step after the November change fires at 09:30 EST."""
    enrolled = utc(2026, 10, 20, 13, 30)  # 09:30 EDT
    due = step_due_at(enrolled, 15, None, NY)
    assert due == utc(2026, 11, 4, 14, 30)
    assert wall(due, NY) == (date(2026, 11, 4), time(9, 30))


def test_step_on_the_change_day_keeps_its_wall_time() -> None:
    """A step landing on the spring-forward day itself still fires at the enrollment's wall time."""
    enrolled = utc(2026, 3, 7, 15, 0)  # Saturday 10:00 EST
    assert step_due_at(enrolled, 1, None, NY) == utc(2026, 3, 8, 14, 0)  # Sunday 10:00 EDT


def test_nonexistent_wall_time_moves_to_end_of_gap() -> None:
    """02:30 on the spring-forward day does not exist: the step fires at 03:00 EDT."""
    enrolled = utc(2026, 3, 1, 15, 0)
    due = step_due_at(enrolled, 7, time(2, 30), NY)
    assert due == utc(2026, 3, 8, 7, 0)
    assert wall(due, NY) == (date(2026, 3, 8), time(3, 0))


def test_enrollment_wall_time_in_a_gap_moves_to_end_of_gap() -> None:
    """Enrolled at 02:30 the day before the change, the next day's step fires at 03:00."""
    enrolled = utc(2026, 3, 7, 7, 30)  # Saturday 02:30 EST
    assert step_due_at(enrolled, 1, None, NY) == utc(2026, 3, 8, 7, 0)


def test_ambiguous_wall_time_picks_first_occurrence() -> None:
    """01:30 happens twice on the fall-back day: the step fires at the first, 01:30 EDT."""
    due = step_due_at(utc(2026, 10, 30, 16, 0), 2, time(1, 30), NY)
    assert due == utc(2026, 11, 1, 5, 30)
    assert due.astimezone(ZoneInfo(NY)).utcoffset() == timedelta(hours=-4)


def test_zone_without_dst_keeps_a_fixed_utc_time() -> None:
    """In Phoenix a step fires at the same UTC time all year round."""
    enrolled = utc(2026, 3, 2, 17, 0)  # 10:00 MST
    for day in (0, 7, 14, 100, 250):
        assert step_due_at(enrolled, day, None, PHX).time() == time(17, 0)
    assert step_due_at(enrolled, 7, time(2, 30), PHX) == utc(2026, 3, 9, 9, 30)


def test_day_zero_with_earlier_at_is_due_immediately() -> None:
    """``at`` earlier than the enrollment on day 0 keeps that time: the step is already due."""
    enrolled = utc(2026, 3, 2, 20, 0)  # 15:00 EST
    due = step_due_at(enrolled, 0, time(10, 30), NY)
    assert due == utc(2026, 3, 2, 15, 30)
    assert due < enrolled


def test_at_uses_that_local_time_on_the_day() -> None:
    """With ``at`` the step fires at that local time N days on, whatever the enrollment hour."""
    enrolled = utc(2026, 6, 1, 3, 0)  # 23:00 EDT on May 31
    due = step_due_at(enrolled, 3, time(10, 30), NY)
    assert wall(due, NY) == (date(2026, 6, 3), time(10, 30))


def test_local_date_of_enrollment_counts_not_utc_date() -> None:
    """Day counting starts from the contact's local date, not the UTC date."""
    enrolled = utc(2026, 1, 10, 3, 0)  # Jan 9, 22:00 EST
    assert wall(step_due_at(enrolled, 1, None, NY), NY) == (date(2026, 1, 10), time(22, 0))


@pytest.mark.parametrize(
    ("enrolled_local", "day", "expected_date"),
    [
        (datetime(2028, 2, 28, 9, 0), 1, date(2028, 2, 29)),
        (datetime(2028, 2, 29, 9, 0), 1, date(2028, 3, 1)),
        (datetime(2028, 2, 29, 9, 0), 365, date(2029, 2, 28)),
        (datetime(2027, 2, 28, 9, 0), 1, date(2027, 3, 1)),
    ],
)
def test_leap_days_count_as_calendar_days(
    enrolled_local: datetime, day: int, expected_date: date
) -> None:
    """Calendar-day arithmetic includes 29 February in leap years and skips it otherwise."""
    enrolled = enrolled_local.replace(tzinfo=ZoneInfo(NY))
    assert wall(step_due_at(enrolled, day, None, NY), NY) == (expected_date, time(9, 0))


def test_output_is_utc_for_any_aware_input() -> None:
    """Inputs in any offset (and pendulum datetimes) give a UTC result."""
    enrolled = datetime(2026, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=-4)))
    due = step_due_at(enrolled, 2, None, NY)
    assert due.utcoffset() == timedelta(0)
    assert due == utc(2026, 5, 3, 14, 0)
    assert step_due_at(pendulum.instance(enrolled), 2, None, NY) == due


def test_invalid_inputs_are_validation_errors() -> None:
    """Naive datetimes, negative days, zoned ``at`` and unknown zones are refused."""
    with pytest.raises(ValidationError, match="aware"):
        step_due_at(datetime(2026, 1, 1), 1, None, NY)
    with pytest.raises(ValidationError, match="negative"):
        step_due_at(utc(2026, 1, 1), -1, None, NY)
    with pytest.raises(ValidationError, match="wall time"):
        step_due_at(utc(2026, 1, 1), 1, time(10, 0, tzinfo=UTC), NY)
    with pytest.raises(ValidationError, match="IANA"):
        step_due_at(utc(2026, 1, 1), 1, None, "Mars/Olympus")
    with pytest.raises(ValidationError, match="not a datetime"):
        at_local(utc(2026, 1, 1), time(10, 0), NY)


def test_local_converts_to_the_zone() -> None:
    """``local`` shows an instant as the contact's wall-clock time."""
    shown = local(utc(2026, 7, 4, 16, 0), NY)
    assert isinstance(shown, pendulum.DateTime)
    assert (shown.hour, shown.minute, shown.timezone_name) == (12, 0, NY)


def test_at_local_in_a_half_hour_dst_zone() -> None:
    """Lord Howe springs forward 30 minutes: 02:15 on that day fires at 02:30."""
    due = at_local(date(2026, 10, 4), time(2, 15), "Australia/Lord_Howe")
    assert wall(due, "Australia/Lord_Howe") == (date(2026, 10, 4), time(2, 30))


def test_at_local_in_a_skipped_day() -> None:
    """Samoa skipped 30 December 2011: any time that day fires at the first instant after it."""
    due = at_local(date(2011, 12, 30), time(12, 0), "Pacific/Apia")
    assert wall(due, "Pacific/Apia") == (date(2011, 12, 31), time(0, 0))


ZONES = st.sampled_from(
    [NY, PHX, "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata"]
)


def _exists(day: date, at: time, tz: str) -> bool:
    zone = ZoneInfo(tz)
    naive = datetime.combine(day, at)
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive


@settings(max_examples=300, deadline=None)
@given(
    enrolled=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
    ),
    day=st.integers(min_value=0, max_value=400),
    at=st.one_of(st.none(), st.times()),
    tz=ZONES,
)
def test_due_time_keeps_local_wall_clock_and_date(
    enrolled: datetime, day: int, at: time | None, tz: str
) -> None:
    """The due time is N local days after enrollment at the wanted wall time, where it exists."""
    due = step_due_at(enrolled, day, at, tz)
    assert due.utcoffset() == timedelta(0)
    if day == 0 and at is None:
        assert due == enrolled
        return
    start_date, start_time = wall(enrolled, tz)
    wanted = (at if at is not None else start_time).replace(fold=0)
    target = start_date + timedelta(days=day)
    if _exists(target, wanted, tz):
        assert wall(due, tz) == (target, wanted)
        # The first occurrence: no earlier instant across a 30- or 60-minute fold shows it.
        for fold in (timedelta(minutes=30), timedelta(hours=1)):
            assert wall(due - fold, tz) != (target, wanted)
    else:
        # Skipped: the first instant after the gap, later on the clock than asked, and
        # the second before it still shows a wall time before the one asked for.
        assert wall(due, tz) > (target, wanted)
        assert wall(due - timedelta(seconds=1), tz) < (target, wanted)


def test_at_local_answers_the_same_whatever_the_fold_and_order_of_calls() -> None:
    """A repeated wall time is its first occurrence, asked with fold=1 first or fold=0 first."""
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, before clocks go back
    for wall in (time(1, 30, fold=1), time(1, 30), time(1, 30, fold=1)):
        assert at_local(date(2026, 11, 1), wall, NY) == first
    assert at_local(date(2026, 11, 2), time(1, 30), NY) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
