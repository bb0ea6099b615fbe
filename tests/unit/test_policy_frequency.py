"""The frequency cap and expiry as inputs of the pure send decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from drip.domain.enums import MessageKind
from drip.domain.frequency import FrequencyCap, cap_release, lookback, parse_duration
from drip.domain.policy import (
    ContactState,
    ConversationState,
    Defer,
    DeferCode,
    Outgoing,
    Send,
    Skip,
    SkipCode,
    decide,
)
from drip.errors import ValidationError
from drip.rules import bundled_state_rules

RULES = bundled_state_rules()
NY = "America/New_York"
CONSENTED = datetime(2026, 1, 1, tzinfo=UTC)
CAP = FrequencyCap(texts=2, days=7)


def ny(*args: int) -> datetime:
    """A New York wall-clock time as an aware UTC datetime."""
    return pendulum.datetime(*args, tz=NY).in_timezone("UTC")


def contact(**kw: object) -> ContactState:
    base: dict[str, object] = {"timezone": NY, "sms_consent_at": CONSENTED}
    base.update(kw)
    return ContactState(**base)  # type: ignore[arg-type]


def test_third_text_in_seven_days_waits_until_the_oldest_ages_out() -> None:
    """With 2 texts in 7 days sent, a campaign text waits for the oldest to leave the span."""
    at = ny(2026, 4, 10, 12, 0)
    history = (ny(2026, 4, 4, 11, 0), ny(2026, 4, 8, 11, 0))
    out = Outgoing(kind=MessageKind.CAMPAIGN, due_at=at)
    decision = decide(
        contact(marketing_sent=history), ConversationState(), out, at, frequency_cap=CAP
    )
    assert isinstance(decision, Defer)
    assert decision.code is DeferCode.FREQUENCY_CAP
    assert decision.until == ny(2026, 4, 11, 11, 0)
    assert "at most 2 campaign or bulk texts in 7 days" in decision.reason


def test_cap_release_at_night_goes_to_the_next_window_opening() -> None:
    """A cap that frees up at 22:00 combines with the window: the text goes at 08:00."""
    at = ny(2026, 4, 10, 12, 0)
    history = (ny(2026, 4, 4, 22, 0), ny(2026, 4, 8, 11, 0))
    out = Outgoing(kind=MessageKind.BULK, due_at=at)
    decision = decide(
        contact(marketing_sent=history), ConversationState(), out, at, frequency_cap=CAP
    )
    assert isinstance(decision, Defer)
    assert decision.until == ny(2026, 4, 12, 8, 0)


def test_cap_combines_with_a_state_cap() -> None:
    """In Florida the state's 3 in 24 h and a 4-in-7-days cap both hold; the later one wins."""
    at = ny(2026, 4, 10, 15, 0)
    history = (
        ny(2026, 4, 5, 9, 0),
        ny(2026, 4, 10, 9, 0),
        ny(2026, 4, 10, 10, 0),
        ny(2026, 4, 10, 11, 0),
    )
    fl = contact(state="FL", marketing_sent=history)
    out = Outgoing(kind=MessageKind.CAMPAIGN, due_at=at)
    cap = FrequencyCap(texts=4, days=7)
    decision = decide(fl, ConversationState(), out, at, state_rules=RULES, frequency_cap=cap)
    assert isinstance(decision, Defer)
    # the weekly cap frees at 03-12 09:00, the state cap at 03-11 09:00: the later holds
    assert decision.until == ny(2026, 4, 12, 9, 0)


@pytest.mark.parametrize(
    "kind", [MessageKind.MANUAL, MessageKind.OPT_OUT_CONFIRMATION, MessageKind.HELP]
)
def test_manual_and_compliance_texts_never_wait_for_the_cap(kind: MessageKind) -> None:
    """Manual texts and compliance replies go out however many texts the contact had."""
    at = ny(2026, 4, 10, 12, 0)
    history = tuple(at - timedelta(hours=h) for h in (1, 2, 3, 4))
    out = Outgoing(kind=kind, due_at=at)
    decision = decide(
        contact(marketing_sent=history), ConversationState(), out, at, frequency_cap=CAP
    )
    assert isinstance(decision, Send)


def test_no_cap_sends() -> None:
    """Without a cap, many recent texts hold nothing back (outside capped states)."""
    at = ny(2026, 4, 10, 12, 0)
    history = tuple(at - timedelta(hours=h) for h in (1, 2, 3, 4))
    out = Outgoing(kind=MessageKind.CAMPAIGN, due_at=at)
    assert isinstance(decide(contact(marketing_sent=history), ConversationState(), out, at), Send)


def test_text_that_would_go_after_its_expiry_is_skipped() -> None:
    """A bulk due Saturday evening that expires before the next opening is skipped, not late."""
    at = ny(2026, 4, 14, 21, 30)
    out = Outgoing(kind=MessageKind.BULK, due_at=at, expires_at=ny(2026, 4, 15, 7, 0))
    decision = decide(contact(), ConversationState(), out, at)
    assert isinstance(decision, Skip)
    assert decision.code is SkipCode.EXPIRED
    assert "never sent late" in decision.reason


def test_deferral_that_ends_before_the_expiry_stands() -> None:
    """A text deferred to a time before its expiry is deferred, not skipped."""
    at = ny(2026, 4, 14, 21, 30)
    out = Outgoing(kind=MessageKind.BULK, due_at=at, expires_at=ny(2026, 4, 15, 13, 0))
    decision = decide(contact(), ConversationState(), out, at)
    assert isinstance(decision, Defer)
    assert decision.until == ny(2026, 4, 15, 8, 0)


def test_text_fired_after_its_expiry_is_skipped_even_in_the_window() -> None:
    """An outage that delays a send past its expiry skips it although the window is open."""
    at = ny(2026, 4, 14, 12, 0)
    out = Outgoing(kind=MessageKind.CAMPAIGN, due_at=at, expires_at=at - timedelta(minutes=1))
    decision = decide(contact(), ConversationState(), out, at)
    assert isinstance(decision, Skip) and decision.code is SkipCode.EXPIRED


def test_expiry_held_by_the_frequency_cap() -> None:
    """The cap's wait counts against the expiry like the window's."""
    at = ny(2026, 4, 10, 12, 0)
    history = (ny(2026, 4, 4, 11, 0), ny(2026, 4, 8, 11, 0))
    out = Outgoing(kind=MessageKind.CAMPAIGN, due_at=at, expires_at=at + timedelta(hours=6))
    state = contact(marketing_sent=history)
    decision = decide(state, ConversationState(), out, at, frequency_cap=CAP)
    assert isinstance(decision, Skip) and decision.code is SkipCode.EXPIRED


def test_cap_release_and_lookback() -> None:
    """The sliding window frees a slot when the oldest counted text leaves it."""
    at = datetime(2026, 3, 10, tzinfo=UTC)
    day = timedelta(days=1)
    sent = (at - 3 * day, at - day)
    assert cap_release(sent, at, 3, 7 * day) == at
    assert cap_release(sent, at, 2, 7 * day) == at + 4 * day
    assert lookback(None, day) == day
    assert lookback(CAP, day) == 7 * day


def test_durations_and_invalid_caps() -> None:
    """Durations read as 2d, 6h, 90m; anything else and empty caps are refused."""
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration(" 6h") == timedelta(hours=6)
    assert parse_duration("90m") == timedelta(minutes=90)
    for bad in ("2", "0d", "2w", "-1h"):
        with pytest.raises(ValidationError):
            parse_duration(bad)
    with pytest.raises(ValidationError):
        FrequencyCap(texts=0, days=7)
