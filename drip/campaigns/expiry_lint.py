"""``drip lint`` on a step's ``expires_after``: an expiry its send window can never meet.

A text that cannot go by its expiry is skipped (``expired``), never sent
late (docs/compliance.md#expiry). Lint says so before the campaign runs:

- **error**: a step whose ``at`` lies outside the send window (the
  campaign's, else the account's) and whose ``expires_after`` ends before
  the window opens: every text of the step would expire unsent;
- **warning**: a step whose ``at`` the window meets, but some state's rules
  (a narrower window, a closed weekday) hold it past its expiry: the texts
  to contacts in those states expire unsent. Which states the contacts live
  in is known only at fire time, so this is a warning; each state and
  weekday is decided by the policy itself (:func:`drip.domain.policy.decide`
  on a reference week), not by a copy of its rules;
- **warning**: a step without ``at`` (due at the enrollment's time of day)
  whose ``expires_after`` is no longer than the night the window is closed:
  the texts that fall due late in the evening expire before it reopens.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from drip.campaigns.loader import StepDraft
from drip.campaigns.yamlsource import Position
from drip.domain.account import AccountSettings
from drip.domain.decision_codes import SkipCode
from drip.domain.enums import Channel, MessageKind
from drip.domain.policy import ContactState, ConversationState, Outgoing, Skip, decide
from drip.domain.schedule import at_local
from drip.domain.window import WEEKDAY_WORDS, SendWindow

Finding = tuple[Position, str]

#: A week of no federal holiday (Monday 2026-06-08 to Sunday 06-14): each weekday once.
REFERENCE_MONDAY = date(2026, 6, 8)
#: The sample contact's consent, long before the reference week.
CONSENTED = datetime(2026, 1, 1, tzinfo=UTC)


def expiry_errors(step: StepDraft, window: SendWindow) -> list[Finding]:
    """An ``expires_after`` that ends before the step's ``at`` can reach the window: never sent."""
    if step.expires_after is None or step.expires_pos is None or step.at is None:
        return []
    if step.channel is not Channel.SMS or window.start <= step.at < window.end:
        return []
    wait = _until_opening(step.at, window)
    if step.expires_after > wait:
        return []
    return [
        (
            step.expires_pos,
            f"{step.name}: expires_after {span(step.expires_after)} ends before the send "
            f"window opens ({window.start:%H:%M}, {span(wait)} after at {step.at:%H:%M}): "
            "every text of this step would expire unsent",
        )
    ]


def expiry_warnings(step: StepDraft, window: SendWindow, account: AccountSettings) -> list[Finding]:
    """The step's texts that expire for some contacts (see the module docstring)."""
    if step.expires_after is None or step.expires_pos is None or step.channel is not Channel.SMS:
        return []
    if step.at is None:
        return _evening_warning(step, step.expires_after, step.expires_pos, window)
    if expiry_errors(step, window):
        return []  # every text expires: the error says it already
    return _state_warning(step, window, account)


def _evening_warning(
    step: StepDraft, expires_after: timedelta, where: Position, window: SendWindow
) -> list[Finding]:
    """Without ``at``: texts due after the window closes wait the night; do they outlive it?"""
    closed = _until_opening(window.end, window)
    if expires_after > closed:
        return []
    last = (datetime.combine(REFERENCE_MONDAY, window.start) - expires_after).time()
    return [
        (
            where,
            f"{step.name}: expires_after {span(expires_after)} is no longer than the "
            f"{span(closed)} the send window {window} is closed overnight: a text of this step "
            f"that falls due from {window.end:%H:%M} to {last:%H:%M} (the enrollment's time "
            "of day) expires unsent; give an at inside the window or a longer expires_after",
        )
    ]


def _state_warning(step: StepDraft, window: SendWindow, account: AccountSettings) -> list[Finding]:
    """With ``at``: the states whose rules hold the text past its expiry, and on which days."""
    at, expires_after, where = step.at, step.expires_after, step.expires_pos
    if at is None or expires_after is None or where is None:
        return []
    tz = account.default_timezone
    lost: dict[str, list[int]] = {}
    for rule in account.state_rules:
        if not rule.enabled:
            continue
        contact = ContactState(timezone=tz, sms_consent_at=CONSENTED, state=rule.state)
        for weekday in range(7):
            due = at_local(REFERENCE_MONDAY + timedelta(days=weekday), at, tz)
            outgoing = Outgoing(
                kind=MessageKind.CAMPAIGN, due_at=due, window=window, expires_at=due + expires_after
            )
            decision = decide(
                contact, ConversationState(), outgoing, due, state_rules=account.state_rules
            )
            if isinstance(decision, Skip) and decision.code is SkipCode.EXPIRED:
                lost.setdefault(rule.state, []).append(weekday)
    if not lost:
        return []
    by_days: dict[tuple[int, ...], list[str]] = {}
    for state, days in sorted(lost.items()):
        by_days.setdefault(tuple(days), []).append(state)
    parts = [f"{', '.join(states)} {_days(days)}" for days, states in by_days.items()]
    return [
        (
            where,
            f"{step.name}: expires_after {span(expires_after)} is too short for contacts in "
            f"{'; '.join(parts)}: their state's send window is closed at {at:%H:%M} and "
            "opens again only after the expiry, so their texts of this step expire unsent",
        )
    ]


def _days(weekdays: tuple[int, ...]) -> str:
    if len(weekdays) == 7:
        return "(every day)"
    return "(" + ", ".join(f"{WEEKDAY_WORDS[d]}s" for d in weekdays) + ")"


def _until_opening(at: time, window: SendWindow) -> timedelta:
    """From ``at`` (outside the window) to the window's next opening, in wall-clock time."""
    due = datetime.combine(REFERENCE_MONDAY, at)
    opens = datetime.combine(REFERENCE_MONDAY, window.start)
    if opens <= due:
        opens += timedelta(days=1)
    return opens - due


def span(delta: timedelta) -> str:
    """A duration as lint writes it: ``11h``, ``1h30m``."""
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if rest else f"{hours}h"
