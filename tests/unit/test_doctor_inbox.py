"""``drip doctor``'s lead events line: a stored event waiting past the retake delay fails, naming the command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drip.services.doctor import FAIL, OK, inbox_check
from drip.store.gauges import Gauges

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_nothing_waiting_is_ok() -> None:
    """No stored, unapplied event: all is well."""
    check = inbox_check(Gauges(oldest_due_at=None), NOW)
    assert (check.status, check.detail) == (OK, "none stored and waiting")


def test_an_event_stored_seconds_ago_is_being_applied() -> None:
    """Stored 30 s ago: another process is applying it; still OK."""
    values = Gauges(
        oldest_due_at=None, inbox_unapplied=3, inbox_oldest_at=NOW - timedelta(seconds=30)
    )
    assert inbox_check(values, NOW).status == OK


def test_an_event_left_past_ten_minutes_fails_and_names_the_command() -> None:
    """Stored 11 minutes ago and never applied: a process stopped; the line says how to apply it."""
    values = Gauges(
        oldest_due_at=None, inbox_unapplied=2, inbox_oldest_at=NOW - timedelta(minutes=11)
    )
    check = inbox_check(values, NOW)
    assert check.status == FAIL
    assert check.detail == (
        "2 stored and not applied, the oldest for 660 s: `drip events apply-stored` applies them"
    )
