"""Where a contact is: phone numbers, time zones and states
(docs/compliance.md#where-the-contact-is).

- ``normalize_phone`` turns what a person typed into E.164, or says why not.
- ``resolve_timezone``: the contact record's zone; else the *set* of zones
  the phone number's area code can mean (``drip/rules/area_code_zones.json``,
  generated from libphonenumber's per-exchange data, with the cited
  corrections of ``area_code_corrections.yaml``: 689 is Eastern, an overlay
  means the zones of the code it overlays), easternmost first; else the
  account default, saying why. Every window is applied in every zone of the
  set; due times are computed in the first. An area code the data does not
  know yet (624, 357) falls back to the default, never raises.
- ``resolve_states``: every state the contact may be in: the address state
  and the state of the phone number's area code (``AREA_CODE_STATES``); all
  their rules apply. ``resolve_state`` keeps the single answer (address
  first) for filters such as ``drip bulk --state``.

No clock, no network. The area code table is static data bundled with the
package, read once on first use, like libphonenumber's own metadata. Time
zone names are checked against the IANA database that ``zoneinfo`` (and
pendulum) use.
"""

from __future__ import annotations

import functools
import re
import sys
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from drip.errors import ValidationError

if TYPE_CHECKING:
    import phonenumbers

ZoneSource = Literal["contact", "area_code", "default"]

#: Names present in the zoneinfo tree that are not zones a contact lives in.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})

#: Two-letter codes of the 50 states, DC and the inhabited territories, by name.
STATE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "AL": "Alabama",
        "AK": "Alaska",
        "AZ": "Arizona",
        "AR": "Arkansas",
        "CA": "California",
        "CO": "Colorado",
        "CT": "Connecticut",
        "DE": "Delaware",
        "DC": "District of Columbia",
        "FL": "Florida",
        "GA": "Georgia",
        "HI": "Hawaii",
        "ID": "Idaho",
        "IL": "Illinois",
        "IN": "Indiana",
        "IA": "Iowa",
        "KS": "Kansas",
        "KY": "Kentucky",
        "LA": "Louisiana",
        "ME": "Maine",
        "MD": "Maryland",
        "MA": "Massachusetts",
        "MI": "Michigan",
        "MN": "Minnesota",
        "MS": "Mississippi",
        "MO": "Missouri",
        "MT": "Montana",
        "NE": "Nebraska",
        "NV": "Nevada",
        "NH": "New Hampshire",
        "NJ": "New Jersey",
        "NM": "New Mexico",
        "NY": "New York",
        "NC": "North Carolina",
        "ND": "North Dakota",
        "OH": "Ohio",
        "OK": "Oklahoma",
        "OR": "Oregon",
        "PA": "Pennsylvania",
        "RI": "Rhode Island",
        "SC": "South Carolina",
        "SD": "South Dakota",
        "TN": "Tennessee",
        "TX": "Texas",
        "UT": "Utah",
        "VT": "Vermont",
        "VA": "Virginia",
        "WA": "Washington",
        "WV": "West Virginia",
        "WI": "Wisconsin",
        "WY": "Wyoming",
        "AS": "American Samoa",
        "GU": "Guam",
        "MP": "Northern Mariana Islands",
        "PR": "Puerto Rico",
        "VI": "U.S. Virgin Islands",
    }
)

#: Geographic area codes of each state, DC and territory, as assigned by
#: NANPA (taken from libphonenumber's geocoding data, release 9.0.43, and
#: checked by hand; 201, the one code with a stray prefix abroad, is New
#: Jersey's). Non-geographic codes (8XX toll-free, 900, 5XX) belong to none.
#: Add a new overlay code here when NANPA puts one in service.
_AREA_CODES_BY_STATE: Mapping[str, str] = MappingProxyType(
    {
        "AK": "907",
        "AL": "205 251 256 334 659 938",
        "AR": "327 479 501 870",
        "AZ": "480 520 602 623 928",
        "CA": (
            "209 213 279 310 323 341 350 369 408 415 424 442 510 530 559 562 619 626 628"
            " 650 657 661 669 707 714 738 747 760 805 818 820 831 840 858 909 916 925 949 951"
        ),
        "CO": "303 719 720 748 970 983",
        "CT": "203 475 860 959",
        "DC": "202 771",
        "DE": "302",
        "FL": (
            "239 305 321 324 352 386 407 448 561 645 656 689 727 728 754 772 786 813 850"
            " 863 904 941 954"
        ),
        "GA": "229 404 470 478 678 706 762 770 912 943",
        "HI": "808",
        "IA": "319 515 563 641 712",
        "ID": "208 986",
        "IL": "217 224 309 312 331 447 464 618 630 708 730 773 779 815 847 872",
        "IN": "219 260 317 463 574 765 812 930",
        "KS": "316 620 785 913",
        "KY": "270 364 502 606 859",
        "LA": "225 318 337 504 985",
        "MA": "339 351 413 508 617 774 781 857 978",
        "MD": "227 240 301 410 443 667",
        "ME": "207",
        "MI": "231 248 269 313 517 586 616 734 810 906 947 989",
        "MN": "218 320 507 612 651 763 952",
        "MO": "235 314 417 557 573 636 660 816 975",
        "MS": "228 601 662 769",
        "MT": "406",
        "NC": "252 336 472 704 743 828 910 919 980 984",
        "ND": "701",
        "NE": "308 402 531",
        "NH": "603",
        "NJ": "201 551 609 640 732 848 856 862 908 973",
        "NM": "505 575",
        "NV": "702 725 775",
        "NY": (
            "212 315 329 332 347 363 516 518 585 607 631 646 680 716 718 838 845 914 917 929 934"
        ),
        "OH": "216 220 234 283 326 330 380 419 440 513 567 614 740 937",
        "OK": "405 539 572 580 918",
        "OR": "458 503 541 971",
        "PA": "215 223 267 272 412 445 484 570 582 610 717 724 814 835 878",
        "RI": "401",
        "SC": "803 821 839 843 854 864",
        "SD": "605",
        "TN": "423 615 629 731 865 901 931",
        "TX": (
            "210 214 254 281 325 346 361 409 430 432 469 512 682 713 726 737 806 817 830"
            " 832 903 915 936 940 945 956 972 979"
        ),
        "UT": "385 435 801",
        "VA": "276 434 540 571 686 703 757 804 826 948",
        "VT": "802",
        "WA": "206 253 360 425 509 564",
        "WI": "262 274 353 414 534 608 715 920",
        "WV": "304 681",
        "WY": "307",
        "AS": "684",
        "GU": "671",
        "MP": "670",
        "PR": "787 939",
        "VI": "340",
    }
)


def _invert(by_state: Mapping[str, str]) -> Mapping[str, str]:
    table: dict[str, str] = {}
    for state, codes in by_state.items():
        if state not in STATE_NAMES:
            raise ValidationError(f"area code table: unknown state {state!r}")
        for code in codes.split():
            if len(code) != 3 or not code.isdigit():
                raise ValidationError(f"area code table: {code!r} ({state}) is not an area code")
            if code in table:
                raise ValidationError(
                    f"area code table: {code} is listed for both {table[code]} and {state}"
                )
            table[code] = state
    return MappingProxyType(table)


#: Area code (three digits) -> two-letter state code.
AREA_CODE_STATES: Mapping[str, str] = _invert(_AREA_CODES_BY_STATE)

_STATE_BY_NAME: Mapping[str, str] = MappingProxyType(
    {name.casefold(): code for code, name in STATE_NAMES.items()}
    | {"washington dc": "DC", "washington d.c.": "DC", "virgin islands": "VI"}
)


@dataclass(frozen=True, slots=True)
class ResolvedZone:
    """A contact's time zone(s) and where they came from (for ``drip explain``).

    ``name`` is the zone due times are computed in (the first of ``zones``);
    ``zones`` is every zone the contact may be in, easternmost first (just
    ``name`` unless an area code spans several); ``detail`` says why, in words.
    """

    name: str
    source: ZoneSource
    zones: tuple[str, ...] = ()
    detail: str = ""

    def __post_init__(self) -> None:
        if validate_timezone(self.name) != self.name:
            raise ValidationError(f"time zone {self.name!r} is not in its canonical spelling")
        if self.source not in ("contact", "area_code", "default"):
            raise ValidationError(f"unknown time zone source {self.source!r}")
        if not self.zones:
            object.__setattr__(self, "zones", (self.name,))
        if self.zones[0] != self.name:
            raise ValidationError(f"zone set {self.zones} must start with {self.name}")
        for zone in self.zones:
            if validate_timezone(zone) != zone:
                raise ValidationError(f"time zone {zone!r} is not in its canonical spelling")

    def describe(self) -> str:
        """The zone or the set, and why: what history, preview and explain print."""
        names = " + ".join(self.zones)
        if len(self.zones) > 1:
            names += f" (every window applies in each; due times in {self.name})"
        return f"{names}: {self.detail}" if self.detail else names


@functools.cache
def _zones_by_folded_name() -> Mapping[str, str]:
    names = zoneinfo.available_timezones() - _NOT_ZONES
    return MappingProxyType({name.casefold(): name for name in names})


#: Zone files are looked up case-sensitively here, so a name that opens is spelled as its file.
_CASE_SENSITIVE_ZONE_FILES = sys.platform.startswith("linux")


@functools.lru_cache(maxsize=1024)  # bounded: names come from requests too
def _canonical_zone(name: str) -> str | None:
    """The IANA spelling of ``name``, or None when no zone has that name (any case).

    A name spelled exactly as its zone is answered by opening that one zone
    file; only other spellings list every zone on the system (about 30 ms,
    which would otherwise be paid by every command that shows a contact).
    """
    if _CASE_SENSITIVE_ZONE_FILES and name not in _NOT_ZONES:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
        else:
            return name
    return _zones_by_folded_name().get(name.casefold())


def validate_timezone(name: str) -> str:
    """The canonical IANA spelling of ``name`` ("america/new_york" -> "America/New_York").

    Raises ValidationError for an empty or unknown name, "Etc/Unknown" included.
    """
    cleaned = name.strip()
    if not cleaned:
        raise ValidationError("time zone is empty")
    canonical = _canonical_zone(cleaned)
    if canonical is None:
        raise ValidationError(
            f"time zone {name!r} is not an IANA time zone name (e.g. America/New_York)"
        )
    return canonical


def normalize_state(raw: str) -> str:
    """A two-letter state code from a code or a name in any case ("fl", "Florida" -> "FL")."""
    cleaned = " ".join(raw.split())
    upper = cleaned.upper()
    if upper in STATE_NAMES:
        return upper
    code = _STATE_BY_NAME.get(cleaned.casefold())
    if code is None:
        raise ValidationError(f"state {raw!r} is not a US state or its two-letter code")
    return code


def _parse(phone: str | None) -> phonenumbers.PhoneNumber | None:
    if phone is None or not phone.strip():
        return None
    import phonenumbers  # its metadata costs ~10 ms: only for numbers not already E.164

    try:
        return phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return None


#: A stored North American number ("+1" and ten digits, the first 2-9): phonenumbers
#: reads its national number as exactly those ten digits (tests compare the two).
_E164_NANP = re.compile(r"\+1([2-9]\d{9})")


def area_code_of(phone: str | None) -> str | None:
    """The three-digit area code of a North American number, or None."""
    if phone is not None and (stored := _E164_NANP.fullmatch(phone)):
        return stored[1][:3]
    number = _parse(phone)
    if number is None or number.country_code != 1:
        return None
    national = str(number.national_number)
    return national[:3] if len(national) == 10 else None


def e164_area_code(phone: str) -> str | None:
    """The area code of a North American number in E.164 form, read off its digits; else None.

    The same as :func:`area_code_of` for such numbers, without the parse (a
    bulk enrollment zones thousands of stored numbers).
    """
    return stored[1][:3] if (stored := _E164_NANP.fullmatch(phone)) else None


def area_code_zones(phone: str | None) -> tuple[tuple[str, ...], str]:
    """The zones the number's area code can mean, easternmost first, and why (may be empty)."""
    from drip.rules import area_code_table  # static package data, loaded once

    if phone is None or not phone.strip():
        return (), "there is no phone number"
    code = area_code_of(phone)
    if code is None:
        return (), "the phone number has no North American area code"
    entry = area_code_table().get(code)
    if entry is None:
        return (), f"area code {code} gives no zone in the phone metadata (new or non-geographic)"
    zones = tuple(z for z in map(_canonical_zone, entry.zones) if z is not None)
    if not zones:
        return (), f"area code {code}: its zones are not in this system's time zone database"
    return zones, f"area code {code} ({entry.source})"


def area_code_timezone(phone: str | None) -> str | None:
    """The one zone the number's area code means, or None (unknown, several, unparsable)."""
    zones, _ = area_code_zones(phone)
    return zones[0] if len(zones) == 1 else None


def area_code_state(phone: str | None) -> str | None:
    """The state of a North American number's area code, or None if it has none."""
    code = area_code_of(phone)
    return AREA_CODE_STATES.get(code) if code is not None else None


def resolve_timezone(contact_tz: str | None, phone: str | None, default_tz: str) -> ResolvedZone:
    """The contact's zone; else its area code's zone set; else the account default.

    A contact zone that is set but not a valid name raises ValidationError
    rather than being silently replaced: the record needs fixing, and a wrong
    guess would put texts in the contact's quiet hours. Blank counts as unset.
    """
    if contact_tz is not None and contact_tz.strip():
        return ResolvedZone(validate_timezone(contact_tz), "contact", detail="the contact's record")
    zones, why = area_code_zones(phone)
    if zones:
        return ResolvedZone(zones[0], "area_code", zones, why)
    default = validate_timezone(default_tz)
    return ResolvedZone(default, "default", detail=f"the account default, since {why}")


def _address_state(contact_state: str | None) -> str | None:
    if contact_state is not None and contact_state.strip():
        try:
            return normalize_state(contact_state)
        except ValidationError:
            return None
    return None


def resolve_state(contact_state: str | None, phone: str | None) -> str | None:
    """The contact's address state (two-letter code); else its phone area code's state.

    An address state that is not recognisable ("N/A", a Canadian province)
    falls through to the area code, so that a state rule still applies when
    the number says Florida; the import validates states with
    ``normalize_state`` so such values are rare.
    """
    return _address_state(contact_state) or area_code_state(phone)


def resolve_states(contact_state: str | None, phone: str | None) -> tuple[str, ...]:
    """Which state: the address state and the area code's state (both may apply).

    Florida, Oklahoma and Connecticut presume a resident from the area code,
    so a Massachusetts address with a Florida number gets both states' rules.
    """
    found = (_address_state(contact_state), area_code_state(phone))
    return tuple(dict.fromkeys(state for state in found if state is not None))


@functools.cache
def _reasons() -> tuple[Mapping[int, str], Mapping[int, str]]:
    """Why phonenumbers refused a number: parse errors, then "possible number" results."""
    from phonenumbers import NumberParseException, ValidationResult

    parse = {
        NumberParseException.INVALID_COUNTRY_CODE: "unknown or missing country code",
        NumberParseException.NOT_A_NUMBER: "not a phone number",
        NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        NumberParseException.TOO_SHORT_NSN: "too short",
        NumberParseException.TOO_LONG: "too long",
    }
    possible = {
        ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short (no area code)",
        ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
        ValidationResult.TOO_SHORT: "too short",
        ValidationResult.TOO_LONG: "too long",
        ValidationResult.INVALID_LENGTH: "wrong number of digits for its country",
    }
    return MappingProxyType(parse), MappingProxyType(possible)


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """``raw`` as E.164 ("+13055550123"); numbers without "+" are read as ``default_region``.

    Raises ValidationError naming the number and the reason: empty, not a
    phone number, too short, too long, unknown country code, an extension
    (a text cannot reach one), or not a valid phone number (e.g. area code 123).
    """
    return _normalize_phone(raw, default_region)


@functools.lru_cache(maxsize=65536)
def _normalize_phone(raw: str, default_region: str) -> str:
    # Cached: an import normalizes each number more than once (the batch's
    # identity check, then the row), and a re-import the same numbers again.
    import phonenumbers
    from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

    parse_reasons, possible_reasons = _reasons()
    if default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"default region {default_region!r} is not a known region code")
    if not raw.strip():
        raise ValidationError("phone number is empty")
    if _E164_NANP.fullmatch(raw):
        # Already E.164 with country code 1 and a national number starting 2-9:
        # phonenumbers.parse would give exactly this (no national prefix "1" to
        # strip, no extension), at half the cost of the whole normalization.
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(raw[2:]))
    else:
        try:
            number = phonenumbers.parse(raw, default_region)
        except NumberParseException as exc:
            reason = parse_reasons.get(exc.error_type, "not a phone number")
            raise ValidationError(f"phone number {raw!r}: {reason}") from exc
    if number.extension:
        raise ValidationError(f"phone number {raw!r}: has an extension, which cannot get texts")
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        reason = possible_reasons.get(possible, "not a valid phone number")
        raise ValidationError(f"phone number {raw!r}: {reason}")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if not phonenumbers.is_valid_number(number) and not is_new_nanp_number(e164):
        raise ValidationError(f"phone number {raw!r}: not a valid phone number")
    return e164


#: A North American number by the plan's own format: area code NXX (not N9X,
#: reserved for expansion, nor N11), exchange NXX (not N11), four digits.
_NANP_FORM = re.compile(r"\+1([2-9](?!11)[0-8]\d)([2-9](?!11)\d\d)\d{4}")
#: Area codes never assigned to a place: easily recognizable codes (N00, 222,
#: 333, ..., 888: toll-free, premium, directory) and the 5XX personal codes.
_NOT_GEOGRAPHIC = re.compile(r"[2-9]00|([2-9])\1\1|5\d\d")


def is_new_nanp_number(e164: str) -> bool:
    """A well-formed North American number whose area code the phone metadata lacks.

    New overlays (624 in New York, 357 in California) are in service before
    libphonenumber lists them; such a number is kept, not refused. Its zone
    is then the account default and ``drip explain`` says why.
    """
    m = _NANP_FORM.fullmatch(e164)
    if m is None or _NOT_GEOGRAPHIC.fullmatch(m.group(1)):
        return False
    return area_code_zones(e164)[0] == () and m.group(1) not in AREA_CODE_STATES
