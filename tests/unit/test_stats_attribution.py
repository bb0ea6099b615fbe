"""``drip stats``: the per-segment price (attribution is tested against the database)."""

from __future__ import annotations

from drip.services.stats import sms_price


def test_price_comes_from_the_data_file_with_its_source() -> None:
    """The per-segment price is data with a source and a check date, not a constant in code."""
    price = sms_price()
    assert price.per_segment > 0
    assert price.currency == "USD"
    assert price.source.startswith("https://")
    assert price.checked == "2026-11-30"
