"""Template rendering, the footer and GSM-7/UCS-2 segment counting (drip.domain.message)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drip.domain.message import (
    ACCOUNT_TEMPLATE_VARIABLES,
    render,
    sms_size,
    template_problems,
    template_variables,
    with_footer,
)

VALUES = {"VisitorFirstName": "Dana", "AgentFirstName": "Sam", "CompanyName": "Acme Realty"}


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_segments_by_length(length: int, segments: int) -> None:
    """GSM-7 holds 160 septets in one segment and 153 per segment beyond that."""
    size = sms_size("a" * length)
    assert size.encoding == "GSM-7"
    assert size.units == length
    assert size.segments == segments
    assert size.ucs2_chars == ()


@pytest.mark.parametrize("char", ["€", "{", "}", "[", "]", "~", "^", "|", "\\", "\f"])
def test_gsm7_extension_characters_count_two(char: str) -> None:
    """An extension-table character is an escape pair: two septets, still GSM-7."""
    size = sms_size(char)
    assert size.encoding == "GSM-7"
    assert size.units == 2


def test_extension_character_pushes_a_single_segment_over() -> None:
    """159 plain characters and one euro sign are 161 septets: two segments."""
    assert sms_size("a" * 158 + "€").segments == 1
    assert sms_size("a" * 159 + "€").segments == 2


def test_escape_pair_is_never_split_across_segments() -> None:
    """An escape pair that would straddle a segment boundary moves to the next segment."""
    text = "a" * 152 + "€" + "a" * 152  # 306 septets, but the pair cannot split at 153
    size = sms_size(text)
    assert size.units == 306
    assert size.segments == 3
    assert sms_size("a" * 151 + "€" + "a" * 153).segments == 2  # pair fits exactly


def test_gsm7_basic_accented_letters_stay_gsm7() -> None:
    """Letters of the GSM basic set such as é, ñ, ü and Ç do not force UCS-2."""
    assert sms_size("Café señor über Ç £ ¥ ¿ ¡ §").encoding == "GSM-7"


def test_one_emoji_switches_to_ucs2_and_counts_two_units() -> None:
    """An emoji is outside GSM-7 and outside the BMP: UCS-2, two UTF-16 units."""
    size = sms_size("Hi 😀")
    assert size.encoding == "UCS-2"
    assert size.units == 5
    assert size.ucs2_chars == ("😀",)


def test_curly_quote_switches_to_ucs2() -> None:
    """A right single quotation mark (U+2019) from a word processor forces UCS-2."""
    size = sms_size("it\u2019s á")
    assert size.encoding == "UCS-2"
    assert size.ucs2_chars == ("\u2019", "á")


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_segments_by_length(length: int, segments: int) -> None:
    """UCS-2 holds 70 units in one segment and 67 per segment beyond that."""
    size = sms_size("\u2019" * length)
    assert size.encoding == "UCS-2"
    assert size.units == length
    assert size.segments == segments


def test_surrogate_pair_is_never_split_across_segments() -> None:
    """An emoji that would straddle a UCS-2 segment boundary moves to the next segment."""
    text = "\u2019" * 66 + "😀" + "\u2019" * 66  # 134 units, but the pair cannot split at 67
    size = sms_size(text)
    assert size.units == 134
    assert size.segments == 3


def test_empty_text_is_one_segment_of_zero_units() -> None:
    """An empty text still occupies one segment."""
    assert (sms_size("").units, sms_size("").segments) == (0, 1)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hi {VisitorFirstName}, it's {AgentFirstName}.", "Hi Dana, it's Sam."),
        ("{CompanyName}{CompanyName}", "Acme RealtyAcme Realty"),
        ("Hi {VisitorLastName}!", "Hi !"),  # known variable without a value: empty
        ("Use {Unknown} as is", "Use {Unknown} as is"),  # not an allowed name: kept
        ("Braces {} and { x } and {0} stay", "Braces {} and { x } and {0} stay"),
        ("{{CompanyName}}", "{Acme Realty}"),
        ("no tokens", "no tokens"),
        ("{SupportPhone}", "{SupportPhone}"),  # account-only name, campaign set: kept
    ],
)
def test_render_replaces_only_allowed_tokens(template: str, expected: str) -> None:
    """Only {Name} tokens of the allowed set are replaced; other braces stay literal."""
    assert render(template, VALUES) == expected


def test_render_with_account_variables() -> None:
    """Account texts may use {SupportPhone} and {SupportEmail} when that set is allowed."""
    text = "{CompanyName}: call {SupportPhone} or {SupportEmail}"
    values = {**VALUES, "SupportPhone": "+16175550100", "SupportEmail": "help@acme.test"}
    assert (
        render(text, values, allowed=ACCOUNT_TEMPLATE_VARIABLES)
        == "Acme Realty: call +16175550100 or help@acme.test"
    )


def test_render_does_not_reinterpret_values() -> None:
    """A value that itself looks like a token is inserted as written, not rendered again."""
    assert render("{VisitorFirstName}", {"VisitorFirstName": "{CompanyName}"}) == "{CompanyName}"


def test_template_variables_gives_names_and_offsets() -> None:
    """Each token is reported with the offset of its opening brace."""
    assert template_variables("Hi {VisitorFirstName}, {Nope} {}") == [
        ("VisitorFirstName", 3),
        ("Nope", 23),
    ]


def test_template_problems_flags_unknown_double_and_spaced_tokens() -> None:
    """Unknown names (with a suggestion), double braces and blanks inside braces are mistakes."""
    problems = template_problems("{VisitorFirstname} {{CompanyName}} { AgentPhone } {Foo}")
    assert [(p.offset, p.token) for p in problems] == [
        (0, "{VisitorFirstname}"),
        (19, "{{CompanyName}}"),
        (35, "{ AgentPhone }"),
        (50, "{Foo}"),
    ]
    assert "did you mean {VisitorFirstName}?" in problems[0].message
    assert "did you mean" not in problems[3].message


def test_template_problems_accepts_known_tokens_and_plain_braces() -> None:
    """Known tokens and braces that are not tokens are fine."""
    assert template_problems("Hi {VisitorFirstName} {} {1} { x }") == []


@pytest.mark.parametrize(
    ("body", "footer", "expected"),
    [
        ("Hi Dana.", "Reply STOP to opt out.", "Hi Dana. Reply STOP to opt out."),
        ("Hi Dana.  \n", "Reply STOP.", "Hi Dana. Reply STOP."),
        ("Hi Dana.", "", "Hi Dana."),
        ("", "Reply STOP.", "Reply STOP."),
    ],
)
def test_with_footer_appends_the_last_sentence(body: str, footer: str, expected: str) -> None:
    """The footer follows the body after one blank, as the text's last sentence."""
    assert with_footer(body, footer) == expected


@given(
    text=st.text(alphabet="ab €{", min_size=150, max_size=700),
)
def test_gsm7_segments_match_the_walk_over_each_character(text: str) -> None:
    """Long GSM-7 texts, with or without two-unit characters, split as the per-character walk."""
    from drip.domain.message import GSM7_EXTENSION, GSM7_MULTI, GSM7_SINGLE, _segments

    costs = [2 if c in GSM7_EXTENSION else 1 for c in text]
    size = sms_size(text)
    assert (size.encoding, size.units) == ("GSM-7", sum(costs))
    assert size.segments == _segments(costs, GSM7_SINGLE, GSM7_MULTI)
