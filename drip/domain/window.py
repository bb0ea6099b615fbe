"""The local-time send window and the per-state rules that narrow it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from drip.errors import ValidationError


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

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class StateRule:
    """A state's stricter limits (Florida, Oklahoma, Maryland mini-TCPA laws)."""

    state: str
    window: SendWindow
    max_per_24h: int | None = None

    def __post_init__(self) -> None:
        if len(self.state) != 2 or not self.state.isalpha() or not self.state.isupper():
            raise ValidationError(f"state rule: {self.state!r} is not a two-letter state code")
        if self.max_per_24h is not None and self.max_per_24h < 1:
            raise ValidationError(f"state rule {self.state}: max_per_24h must be at least 1")


DEFAULT_STATE_RULES: tuple[StateRule, ...] = tuple(
    StateRule(state, SendWindow(time(8, 0), time(20, 0)), max_per_24h=3)
    for state in ("FL", "OK", "MD")
)


def rule_for(state: str | None, rules: tuple[StateRule, ...]) -> StateRule | None:
    """The rule for a two-letter state, or None."""
    if state is None:
        return None
    for rule in rules:
        if rule.state == state:
            return rule
    return None
