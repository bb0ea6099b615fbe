"""``--expires-at``: parsed in the account's zone unless it gives an offset; its place in the
policy (the carrier's deadline) and in the pacing forecast (texts that would expire)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pendulum
import pytest

from drip.domain.enums import MessageKind
from drip.domain.frequency import parse_expiry
from drip.domain.pacing import QueuedText, Senders, forecast
from drip.domain.policy import ContactState, ConversationState, Outgoing, Send, decide
from drip.errors import ValidationError

NY = "America/New_York"


def ny(*args: int) -> datetime:
    """A New York wall-clock time as an aware UTC datetime."""
    return pendulum.datetime(*args, tz=NY).in_timezone("UTC")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-06 13:00", datetime(2026, 6, 6, 17, 0, tzinfo=UTC)),  # EDT, the account's zone
        ("2026-06-06T13:00", datetime(2026, 6, 6, 17, 0, tzinfo=UTC)),
        ("2026-12-05 13:00", datetime(2026, 12, 5, 18, 0, tzinfo=UTC)),  # EST in December
        ("2026-06-06 12:00-05:00", datetime(2026, 6, 6, 17, 0, tzinfo=UTC)),
        ("2026-06-06 19:00+0200", datetime(2026, 6, 6, 17, 0, tzinfo=UTC)),
        ("2026-06-06 17:00Z", datetime(2026, 6, 6, 17, 0, tzinfo=UTC)),
        ("2026-06-06 17:00 UTC", datetime(2026, 6, 6, 17, 0, tzinfo=UTC)),
        ("2026-03-08 02:30", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),  # skipped: the gap's end
    ],
)
def test_an_expiry_is_local_to_the_zone_unless_it_names_its_offset(
    text: str, expected: datetime
) -> None:
    """A wall time is read in the given zone (DST-correct); an offset or Z names the instant."""
    assert parse_expiry(text, NY) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-06-06", "is not a time like 2026-06-06 13:00"),
        ("Saturday 1pm", "is not a time like 2026-06-06 13:00"),
        ("2026-02-30 10:00", "day is out of range"),
        ("2026-06-06 24:00", "hour must be in 0..23"),
        ("2026-06-06 13:00+25:00", "the UTC offset is out of range"),
    ],
)
def test_a_bad_expiry_says_what_is_wrong(text: str, message: str) -> None:
    """A date without a time, words, an impossible date or offset: a ValidationError naming it."""
    with pytest.raises(ValidationError, match=message):
        parse_expiry(text, NY)


def test_an_expiry_before_the_window_closes_is_the_carriers_deadline() -> None:
    """At 12:00 with an expiry at 13:00 the text goes, and the carrier may hold it until 13:00
    only (not 21:00, when the window closes)."""
    at = ny(2026, 6, 6, 12, 0)
    out = Outgoing(kind=MessageKind.BULK, due_at=at, expires_at=ny(2026, 6, 6, 13, 0))
    contact = ContactState(timezone=NY, sms_consent_at=ny(2026, 1, 1))
    decision = decide(contact, ConversationState(), out, at)
    assert isinstance(decision, Send)
    assert decision.window_closes_at == ny(2026, 6, 6, 13, 0)
    plain = decide(contact, ConversationState(), Outgoing(kind=MessageKind.BULK, due_at=at), at)
    assert isinstance(plain, Send)
    assert plain.window_closes_at == ny(2026, 6, 6, 21, 0)


def test_the_forecast_counts_texts_that_would_expire_apart_from_those_that_slip() -> None:
    """One segment a second from 12:59:57: three texts leave before 13:00, the expiring ones
    are counted as expiring, and a text that misses its window but not its expiry slips."""
    now = ny(2026, 6, 6, 12, 59, 57)
    expiry, close = ny(2026, 6, 6, 13, 0), ny(2026, 6, 6, 21, 0)
    texts = [QueuedText("+16175550100", 1, now, expiry, expires_at=expiry) for _ in range(5)]
    late = now + timedelta(hours=8)
    slips = QueuedText("+16175550100", 1, late, close - timedelta(hours=1))
    lost = QueuedText(
        "+16175550100", 1, late, close - timedelta(hours=1), expires_at=close, lost_if_slipping=True
    )

    result = forecast([*texts, slips, lost], Senders(default_rate=1.0), now)

    assert (result.texts, result.expiring, result.slipping) == (7, 3, 1)
    assert result.senders[0].last_at == now + timedelta(seconds=2)
