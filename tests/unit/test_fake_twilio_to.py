"""The fake Twilio server's ``To`` check agrees with phonenumbers, which it shortcuts."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from drip.testing.fake_twilio.codes import valid_to as _valid_to


def _libphonenumber(to: str) -> bool:
    try:
        number = phonenumbers.parse(to, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(number))


def test_the_nanp_shortcut_agrees_with_phonenumbers_for_every_leading_digits() -> None:
    """``+1`` and ten digits: every three leading digits, with random tails, as phonenumbers says."""
    rng = random.Random(15)
    numbers = [f"+1{head:03d}{rng.randrange(10**7):07d}" for head in range(1000)]
    numbers += [f"+1{digit * 10}" for digit in "0123456789"]  # all one digit
    _valid_to.cache_clear()
    assert [_valid_to(n) for n in numbers] == [_libphonenumber(n) for n in numbers]
    assert all(_valid_to(n) for n in numbers)


@pytest.mark.parametrize(
    "to",
    ["+1415555012", "+141555501234", "+1415555012x", "1415555012",
     "+14155550123 ", "+442071838750", "+999123", "+1555"],
)  # fmt: skip
def test_other_shapes_go_to_phonenumbers(to: str) -> None:
    """A ``To`` that is not exactly ``+1`` and ten ASCII digits gets phonenumbers' answer."""
    _valid_to.cache_clear()
    assert _valid_to(to) is _libphonenumber(to)
