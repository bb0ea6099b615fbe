"""Phone numbers, time zones and states of contacts (SPEC §4)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import geocoder

from drip.domain.zones import (
    AREA_CODE_STATES,
    STATE_NAMES,
    ResolvedZone,
    _parse,
    area_code_of,
    e164_area_code,
    is_new_nanp_number,
    normalize_phone,
    normalize_state,
    resolve_state,
    resolve_states,
    resolve_timezone,
    validate_timezone,
)
from drip.errors import ValidationError

DEFAULT = "America/Denver"


def test_contact_zone_wins() -> None:
    """A zone on the contact record is used even when the area code says otherwise."""
    zone = resolve_timezone("America/Los_Angeles", "+13055550123", DEFAULT)
    assert (zone.name, zone.source, zone.zones) == (
        "America/Los_Angeles",
        "contact",
        ("America/Los_Angeles",),
    )
    assert "record" in zone.describe()


def test_contact_zone_is_canonicalised() -> None:
    """A contact zone typed in the wrong case is stored in its IANA spelling."""
    assert resolve_timezone(" america/new_york ", None, DEFAULT).name == "America/New_York"


def test_area_code_zone_when_contact_has_none() -> None:
    """Without a contact zone, an area code in exactly one zone gives it."""
    okc = resolve_timezone(None, "+14055550123", DEFAULT)
    assert (okc.name, okc.source, okc.zones) == (
        "America/Chicago",
        "area_code",
        ("America/Chicago",),
    )
    phoenix = resolve_timezone("  ", "+16025550123", DEFAULT)
    assert (phoenix.name, phoenix.source) == ("America/Phoenix", "area_code")
    assert "area code 602" in phoenix.describe()


@pytest.mark.parametrize(
    ("area_code", "zones"),
    [
        ("689", ("America/New_York",)),  # correction: Orlando is Eastern, not Central
        ("448", ("America/New_York", "America/Chicago")),  # overlay of 850
        ("850", ("America/New_York", "America/Chicago")),
        ("364", ("America/New_York", "America/Chicago")),  # overlay of 270
        ("930", ("America/New_York", "America/Chicago")),  # overlay of 812
        ("458", ("America/Denver", "America/Los_Angeles")),  # overlay of 541
        ("208", ("America/Boise", "America/Denver", "America/Los_Angeles")),
    ],
)
def test_area_code_zone_sets_easternmost_first(area_code: str, zones: tuple[str, ...]) -> None:
    """An area code gives every zone it can mean, corrections applied, easternmost first."""
    zone = resolve_timezone(None, f"+1{area_code}5550123", DEFAULT)
    assert zone.zones == zones
    assert zone.name == zones[0]
    assert zone.source == "area_code"
    if len(zones) > 1:
        assert " + ".join(zones) in zone.describe()


def test_corrections_cite_their_source() -> None:
    """A corrected area code says so, with the source, in its description."""
    assert "correction" in resolve_timezone(None, "+16895550123", DEFAULT).detail
    assert "correction" in resolve_timezone(None, "+14485550123", DEFAULT).detail
    assert "correction" not in resolve_timezone(None, "+18505550123", DEFAULT).detail


@pytest.mark.parametrize(
    "phone",
    [
        "+16245550100",  # 624: a new area code the phone metadata does not know yet
        "+13575550100",  # 357: same
        "+18005550100",  # toll free: no zone
        "+15555550100",  # not a geographic code
        "not a phone",
        None,
    ],
)
def test_default_when_area_code_gives_no_zone(phone: str | None) -> None:
    """An unknown, non-geographic or missing number falls back to the account default, saying so."""
    zone = resolve_timezone(None, phone, DEFAULT)
    assert (zone.name, zone.source, zone.zones) == (DEFAULT, "default", (DEFAULT,))
    assert "account default" in zone.describe()


def test_invalid_contact_zone_is_an_error() -> None:
    """A contact zone that is set but not a real zone is reported, not guessed around."""
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        resolve_timezone("Mars/Olympus", "+13055550123", DEFAULT)


def test_resolved_zone_validates_itself() -> None:
    """A ResolvedZone with an unknown or mis-cased name or source, or a bad set, cannot be built."""
    with pytest.raises(ValidationError):
        ResolvedZone("America/Chicago", "area_code", ("America/New_York", "America/Chicago"))
    with pytest.raises(ValidationError):
        ResolvedZone("Etc/Unknown", "default")
    with pytest.raises(ValidationError):
        ResolvedZone("america/new_york", "default")
    with pytest.raises(ValidationError):
        ResolvedZone("UTC", "guess")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("America/New_York", "America/New_York"), ("utc", "UTC"), ("europe/london", "Europe/London")],
)
def test_validate_timezone_accepts_iana_names(raw: str, expected: str) -> None:
    """Known zone names pass, in their canonical spelling."""
    assert validate_timezone(raw) == expected


@pytest.mark.parametrize("raw", ["", "  ", "Eastern", "Etc/Unknown", "../etc/passwd", "localtime"])
def test_validate_timezone_rejects_non_zones(raw: str) -> None:
    """Empty, made-up, unknown and path-like names are refused."""
    with pytest.raises(ValidationError):
        validate_timezone(raw)


@pytest.mark.parametrize(
    ("area_code", "state"),
    [
        *[(code, "FL") for code in ("305", "786", "954", "407", "813", "904", "561", "850")],
        *[(code, "OK") for code in ("405", "918", "539", "580")],
        *[(code, "MD") for code in ("301", "410", "240", "443", "667")],
        ("617", "MA"),
        ("212", "NY"),
        ("202", "DC"),
        ("201", "NJ"),
    ],
)
def test_area_code_gives_state(area_code: str, state: str) -> None:
    """Without an address state, the phone's area code decides the state."""
    assert resolve_state(None, f"+1{area_code}5550123") == state


def test_address_state_wins_over_area_code() -> None:
    """The contact's address state is used before the area code's."""
    assert resolve_state("ma", "+13055550123") == "MA"
    assert resolve_state("Florida", "+16175550123") == "FL"


@pytest.mark.parametrize(
    ("state", "phone"),
    [
        (None, "+18005550100"),  # toll free
        (None, "+14165550100"),  # Toronto
        (None, "+442079460000"),  # London
        (None, None),
        ("", "garbage"),
    ],
)
def test_no_state_for_numbers_outside_the_states(state: str | None, phone: str | None) -> None:
    """Toll-free, foreign and missing numbers give no state."""
    assert resolve_state(state, phone) is None


def test_states_are_address_and_area_code() -> None:
    """Both the address state and the area code's state apply; one each, address first."""
    assert resolve_states("MA", "+13055550123") == ("MA", "FL")
    assert resolve_states("FL", "+13055550123") == ("FL",)
    assert resolve_states(None, "+12035550123") == ("CT",)
    assert resolve_states("TX", "+16245550100") == ("TX",)  # unknown area code: no state
    assert resolve_states(None, None) == ()


def test_unrecognised_address_state_falls_back_to_area_code() -> None:
    """A junk address state does not hide the Florida area code's state rule."""
    assert resolve_state("N/A", "+13055550123") == "FL"


def test_normalize_state_names_and_codes() -> None:
    """Codes in any case and full names become two-letter codes; junk is refused."""
    assert normalize_state(" ok ") == "OK"
    assert normalize_state("new  york") == "NY"
    assert normalize_state("Washington D.C.") == "DC"
    with pytest.raises(ValidationError, match="Ontario"):
        normalize_state("Ontario")


def test_area_code_table_covers_every_state() -> None:
    """Every state and DC has at least one area code in the table."""
    assert set(AREA_CODE_STATES.values()) == set(STATE_NAMES)
    assert all(len(code) == 3 and code.isdigit() for code in AREA_CODE_STATES)


@pytest.mark.parametrize("state", ["FL", "OK", "MD"])
def test_area_code_table_agrees_with_libphonenumber(state: str) -> None:
    """For the rule states, every listed area code is that state in libphonenumber's geocoder."""
    name = STATE_NAMES[state]
    for code, listed in AREA_CODE_STATES.items():
        if listed != state:
            continue
        described = geocoder.description_for_number(phonenumbers.parse(f"+1{code}5550123"), "en")
        assert described == name or described.endswith(f", {state}"), (code, described)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+1 (305) 555-0123", "+13055550123"),
        ("305.555.0123", "+13055550123"),
        ("(617) 555-0123", "+16175550123"),
        ("1-617-555-0123", "+16175550123"),
        ("  +16175550123  ", "+16175550123"),
        ("+44 20 7946 0000", "+442079460000"),
    ],
)
def test_normalize_phone_good(raw: str, e164: str) -> None:
    """Numbers in everyday formats become E.164."""
    assert normalize_phone(raw) == e164


def test_normalize_phone_uses_default_region() -> None:
    """A number without + is read in the given default region."""
    assert normalize_phone("020 7946 0000", default_region="GB") == "+442079460000"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("hello", "not a phone number"),
        ("12", "too short"),
        ("555-0123", "too short"),
        ("+1 617 555 0123 4567", "too long"),
        ("+999 1234567", "country code"),
        ("+1 123 456 7890", "not a valid phone number"),
        ("617-555-0123 ext. 12", "extension"),
    ],
)
def test_normalize_phone_bad(raw: str, reason: str) -> None:
    """Unusable numbers raise ValidationError saying why."""
    with pytest.raises(ValidationError, match=reason):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", ["+1 624 555 0100", "(357) 555-0100"])
def test_new_area_codes_are_kept_not_refused(raw: str) -> None:
    """624 and 357 are in service before the phone metadata lists them: the number is kept."""
    number = normalize_phone(raw)
    assert number.startswith(("+1624", "+1357"))
    assert is_new_nanp_number(number)
    assert resolve_timezone(None, number, DEFAULT).source == "default"


@pytest.mark.parametrize(
    "raw", ["+1 999 555 0100", "+1 555 555 0100", "+1 211 555 0100", "+1 624 911 0100"]
)
def test_made_up_north_american_numbers_are_still_refused(raw: str) -> None:
    """Reserved (N9X, 5XX, N11) area codes and N11 exchanges are not new area codes."""
    with pytest.raises(ValidationError, match="not a valid phone number"):
        normalize_phone(raw)


def test_normalize_phone_rejects_unknown_region() -> None:
    """An unknown default region is a validation error, not a silent US guess."""
    with pytest.raises(ValidationError, match="region"):
        normalize_phone("6175550123", default_region="XX")


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"\+1[0-9]{10}", fullmatch=True))
def test_area_code_of_a_stored_number_is_what_phonenumbers_reads(phone: str) -> None:
    """The E.164 shortcut for area codes agrees with parsing the number with phonenumbers."""
    number = _parse(phone)
    expected = None
    if number is not None and number.country_code == 1:
        national = str(number.national_number)
        expected = national[:3] if len(national) == 10 else None
    assert area_code_of(phone) == expected


def test_e164_area_code_reads_the_digits_phonenumbers_reads() -> None:
    """For every +1 area code and exchange shape, the digit shortcut agrees with phonenumbers."""
    checked = 0
    for code in range(200, 1000):
        for exchange in ("200", "555", "911", "999"):
            e164 = f"+1{code}{exchange}0123"
            assert e164_area_code(e164) == area_code_of(e164), e164
            checked += 1
    assert checked == 3200
    for other in ("+12125550123x9", "+1212555012", "+11125550123", "+442079460105", "2125550123"):
        assert e164_area_code(other) is None, other
