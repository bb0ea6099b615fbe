"""``drip stats``: a reply or an opt-out counts for the contact's last message before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drip.services.stats import _attributed, sms_price

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def test_event_counts_for_the_last_message_before_it() -> None:
    """A reply between two messages counts for the first; one before any message counts for none."""
    messages = {1: [(T0, 10), (T0 + timedelta(days=15), 11)]}
    events = {1: [T0 - timedelta(hours=1), T0 + timedelta(days=3)]}
    assert _attributed(messages, events) == {10}


def test_each_message_counts_once_and_other_contacts_apart() -> None:
    """Two replies after one message count it once; another contact's reply is its own."""
    messages = {1: [(T0, 10)], 2: [(T0, 20), (T0 + timedelta(days=1), 21)]}
    events = {1: [T0 + timedelta(minutes=5), T0 + timedelta(hours=2)], 2: [T0 + timedelta(days=2)]}
    assert _attributed(messages, events) == {10, 21}


def test_price_comes_from_the_data_file_with_its_source() -> None:
    """The per-segment price is data with a source and a check date, not a constant in code."""
    price = sms_price()
    assert price.per_segment > 0
    assert price.currency == "USD"
    assert price.source.startswith("https://")
    assert price.checked == "2026-11-30"
