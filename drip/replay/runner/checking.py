"""Checking a scenario's expectations against the messages sent, in send order.

Expectation N is compared with the N-th message sent; each key it gives must
hold, and a message more or less than expected is a mismatch too. Without
``expect`` nothing is checked; ``expect: []`` means nothing may be sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from drip.replay.runner.results import DecisionRecord, Mismatch, OutMessage, ScenarioResult
from drip.replay.scenario import NO_VALIDITY, Expectation, Scenario

#: ``validity:`` expectations hold to within this many seconds (a slot's wait).
VALIDITY_SLACK = 2


def check(scenario: Scenario, messages: Sequence[OutMessage]) -> list[Mismatch]:
    """Every expectation against the message in its place; extra and missing ones too."""
    expected = scenario.expect
    if expected is None:
        return []
    out: list[Mismatch] = []
    for i in range(max(len(expected), len(messages))):
        e = expected[i] if i < len(expected) else None
        a = messages[i] if i < len(messages) else None
        if e is not None and a is not None:
            problems = differences(scenario, e, a)
            if problems:
                out.append(Mismatch(i + 1, e, a, tuple(problems)))
        elif e is not None:
            out.append(Mismatch(i + 1, e, None, ("expected a message, but nothing more was sent",)))
        else:
            out.append(
                Mismatch(i + 1, None, a, ("sent, but not expected: nothing else may be sent",))
            )
    return out


def differences(scenario: Scenario, e: Expectation, a: OutMessage) -> list[str]:
    """What of ``e`` does not hold for ``a``, one phrase per field."""
    problems: list[str] = []
    if e.day is not None and a.day != e.day:
        problems.append(f"day: expected {e.day}, got {a.day}")
    if e.at is not None:
        want = scenario.instant(e.at)
        if _minute(want) != _minute(a.at):
            local = want.astimezone(ZoneInfo(scenario.zone))
            problems.append(
                f"at: expected {e.at} ({local:%Y-%m-%d %H:%M}), got {a.local:%Y-%m-%d %H:%M}"
            )
    if e.at_utc is not None and _minute(e.at_utc) != _minute(a.at):
        problems.append(f"at_utc: expected {e.at_utc:%Y-%m-%d %H:%M}, got {a.at:%Y-%m-%d %H:%M}")
    if e.channel is not None and a.channel is not e.channel:
        problems.append(f"channel: expected {e.channel.value}, got {a.channel.value}")
    if e.kind is not None and a.kind is not e.kind:
        problems.append(f"kind: expected {e.kind.value}, got {a.kind.value}")
    if e.footer is not None and a.footer != e.footer:
        rule = f" ({a.footer_rule}: {a.reason})" if a.footer_rule else ""
        problems.append(
            f"footer: expected {str(e.footer).lower()}, got {str(a.footer).lower()}{rule}"
        )
    if e.contains is not None and e.contains not in a.body:
        problems.append(f"contains: {e.contains!r} is not in the text")
    if e.sender is not None and a.sender is not e.sender:
        problems.append(f"from: expected {e.sender.value}, got {a.sender.value}")
    if e.sender_phone is not None and a.from_addr != e.sender_phone:
        problems.append(f"from: expected {e.sender_phone}, got {a.from_addr}")
    if e.validity is not None:
        if e.validity == NO_VALIDITY:
            if a.validity is not None:
                problems.append(f"validity: expected none, got {a.validity} s")
        elif a.validity is None or abs(a.validity - e.validity) > VALIDITY_SLACK:
            got = "none" if a.validity is None else f"{a.validity} s"
            problems.append(
                f"validity: expected {e.validity} s (within {VALIDITY_SLACK}), got {got}"
            )
    if e.deferred is not None and e.deferred not in a.deferrals:
        got = ", ".join(a.deferrals) or "never deferred"
        problems.append(f"deferred: expected a deferral for {e.deferred}, got {got}")
    if e.status is not None and a.status != e.status:
        problems.append(f"status: expected {e.status}, got {a.status}")
    if e.error is not None and a.error_code != e.error:
        problems.append(f"error: expected {e.error}, got {a.error_code}")
    return problems


def _minute(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def decisions_near(
    result: ScenarioResult, position: int, *, margin: timedelta = timedelta(hours=1)
) -> list[DecisionRecord]:
    """The decisions between the messages before and after message ``position``."""
    msgs = result.messages
    lo = msgs[position - 2].at if position >= 2 and position - 2 < len(msgs) else result.start
    hi_index = position if position < len(msgs) else None
    hi = msgs[hi_index].at if hi_index is not None else result.end
    return [d for d in result.decisions if lo - margin <= d.at <= hi + margin]
