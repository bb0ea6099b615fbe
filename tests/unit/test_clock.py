"""The clock interface: system time is aware UTC, virtual time only moves forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from drip.clock import SystemClock, VirtualClock
from drip.errors import ValidationError


def test_system_clock_is_aware_utc() -> None:
    """The system clock returns a timezone-aware UTC instant."""
    assert SystemClock().now().utcoffset() == timedelta(0)


def test_virtual_clock_moves_forward_only() -> None:
    """A virtual clock jumps forward on request and refuses to go back."""
    start = datetime(2026, 3, 2, 15, tzinfo=UTC)
    clock = VirtualClock(start)
    clock.set(start + timedelta(days=45))
    assert clock.now() == start + timedelta(days=45)
    with pytest.raises(ValidationError):
        clock.set(start)


def test_virtual_clock_refuses_naive_time() -> None:
    """A naive start is refused."""
    with pytest.raises(ValidationError):
        VirtualClock(datetime(2026, 1, 1))
