"""The clock, behind a small interface so that ``now`` is read once, at the edge.

Library code never calls ``datetime.now``: entry points (CLI commands, Celery
tasks, web handlers) ask a ``Clock`` once and pass ``now`` down. Replay uses a
``VirtualClock`` that jumps from event to event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from drip.errors import ValidationError


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to, and never backwards."""

    def __init__(self, start: datetime) -> None:
        if start.utcoffset() is None:
            raise ValidationError("a virtual clock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when.utcoffset() is None:
            raise ValidationError("a virtual clock only takes timezone-aware instants")
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValidationError(f"virtual time cannot go back from {self._now} to {when}")
        self._now = when
