"""The ``reassigned_numbers:`` settings of ``account.yaml``, validated when built.

Apart from :mod:`drip.domain.reassigned` (the rule), which needs the policy:
reading the account settings must not load the policy and its calendar
libraries, which commands such as ``drip history`` never use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from drip.errors import ValidationError

__all__ = ["MAX_AGE_DAYS_LIMIT", "ON_UNKNOWN", "ReassignedNumbers"]

#: The ``on_unknown`` choices: defer the text until the check answers, or send it unchecked.
ON_UNKNOWN = ("defer", "send")
#: Beyond ten years a maximum age is a configuration mistake.
MAX_AGE_DAYS_LIMIT = 3650


@dataclass(frozen=True, slots=True)
class ReassignedNumbers:
    """``reassigned_numbers:`` of ``account.yaml`` (or of a scenario); off unless ``enabled``."""

    enabled: bool = False
    max_age_days: int = 30
    on_unknown: str = "defer"

    def __post_init__(self) -> None:
        if not 1 <= self.max_age_days <= MAX_AGE_DAYS_LIMIT:
            raise ValidationError(
                f"reassigned_numbers.max_age_days must be 1 to {MAX_AGE_DAYS_LIMIT}, "
                f"not {self.max_age_days}"
            )
        if self.on_unknown not in ON_UNKNOWN:
            raise ValidationError(
                f"reassigned_numbers.on_unknown must be one of {', '.join(ON_UNKNOWN)}, "
                f"not {self.on_unknown!r}"
            )

    @property
    def max_age(self) -> timedelta:
        return timedelta(days=self.max_age_days)
