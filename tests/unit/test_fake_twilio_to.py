"""The fake Twilio server's shortcuts agree with what they replace: the ``To`` check, the form parser."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

import phonenumbers
import pytest

from drip.testing.fake_twilio import _parse_form, _valid_to


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


def test_the_form_parser_reads_what_parse_qsl_reads() -> None:
    """Random form bodies (escapes, +, blanks, bare names, UTF-8, bad escapes) parse as parse_qsl."""
    rng = random.Random(15)
    alphabet = ["a", "Z", "0", "+", "%", "%2", "%2B", "%3A", "%e2%82%ac", "%ff", "=", "&", "é", " "]
    bodies = [
        urlencode({"To": "+14155550123", "Body": "Hi, Sam: 50% off! é€ & more", "X": ""}).encode(),
        b"", b"&&", b"a", b"a=", b"=b", b"a=b=c", b"%zz=%4", "€=€".encode(), b"\xff\xfe=1",
    ]  # fmt: skip
    bodies += [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(40))).encode()
        for _ in range(3000)
    ]
    for body in bodies:
        expected = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        assert _parse_form(body) == expected, body
