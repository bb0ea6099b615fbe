"""How long drip keeps message bodies: ``retention: {message_bodies_days: N}`` in account.yaml.

The default is the 4-year limitation period of 28 U.S.C. 1658(a), 1,461
days, read from ``drip/data/retention.json`` (with its source and date).
``drip purge`` removes the bodies of messages older than that; consent
evidence is never purged (docs/compliance.md#erasure-and-retention). Pure:
the caller passes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drip.errors import ValidationError

#: A body kept less than a day is a configuration mistake; more than a century, too.
MIN_DAYS = 1
MAX_DAYS = 36_525


def _default_days() -> int:
    from drip.facts import retention_days  # the bundled data file, read once

    return retention_days()


@dataclass(frozen=True, slots=True)
class Retention:
    """Message bodies older than ``message_bodies_days`` are removed by ``drip purge``."""

    message_bodies_days: int = field(default_factory=_default_days)

    def __post_init__(self) -> None:
        if not MIN_DAYS <= self.message_bodies_days <= MAX_DAYS:
            raise ValidationError(
                f"retention.message_bodies_days must be between {MIN_DAYS} and {MAX_DAYS}"
            )

    def cutoff(self, now: datetime) -> datetime:
        """Bodies of messages created before this instant are past retention."""
        return now - timedelta(days=self.message_bodies_days)
