"""Inbound SMS classification (SPEC §3): keywords, plain-words revocations and ordinary text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.domain.keywords import (
    KEYWORDS,
    MAX_PHRASE_CHARS,
    MAX_PHRASE_WORDS,
    REVOCATION_PHRASES,
    Classification,
    InboundKind,
    RevocationPhrase,
    classify,
    match_revocation,
)
from drip.errors import ValidationError

OUT = InboundKind.OPT_OUT
PHRASE = InboundKind.REVOCATION_PHRASE
HELP = InboundKind.HELP
IN = InboundKind.OPT_IN
TEXT = InboundKind.TEXT

TABLE: list[tuple[str, InboundKind, str | None]] = [
    # Opt-out keywords, with case, space and punctuation variants.
    ("STOP", OUT, "STOP"),
    ("stop", OUT, "STOP"),
    ("  Stop!! ", OUT, "STOP"),
    ("stop.", OUT, "STOP"),
    ("STOP?!", OUT, "STOP"),
    ("\tsToP\n", OUT, "STOP"),
    ('"STOP"', OUT, "STOP"),
    ("STOP\u2026", OUT, "STOP"),
    ("\uff33\uff34\uff2f\uff30", OUT, "STOP"),  # full-width letters
    ("STOP\u200b", OUT, "STOP"),  # zero-width space
    ("StopAll", OUT, "STOPALL"),
    ("unsubscribe", OUT, "UNSUBSCRIBE"),
    ("Unsubscribe.", OUT, "UNSUBSCRIBE"),
    ("CANCEL", OUT, "CANCEL"),
    ("cancel!", OUT, "CANCEL"),
    ("end", OUT, "END"),
    ("End.", OUT, "END"),
    ("QUIT", OUT, "QUIT"),
    ("revoke", OUT, "REVOKE"),
    ("OptOut", OUT, "OPTOUT"),
    ("opt out", OUT, "OPT OUT"),
    ("OPT   OUT", OUT, "OPT OUT"),
    ("Opt-Out!", OUT, "OPT OUT"),
    ("opt_out", OUT, "OPT OUT"),
    # Help and opt-in keywords.
    ("HELP", HELP, "HELP"),
    ("help?", HELP, "HELP"),
    ("Info", HELP, "INFO"),
    (" info. ", HELP, "INFO"),
    ("START", IN, "START"),
    ("start!", IN, "START"),
    ("Unstop", IN, "UNSTOP"),
    ("YES", IN, "YES"),
    ("yes!!", IN, "YES"),
    # Plain-words revocations.
    ("stop texting me", PHRASE, "stop texting me"),
    ("Stop texting me please", PHRASE, "stop texting me"),
    ("stop texting", PHRASE, "stop texting me"),
    ("Stop messaging me!", PHRASE, "stop texting me"),
    ("Hey, could you please stop texting me, thanks!", PHRASE, "stop texting me"),
    ("stop sending me these texts", PHRASE, "stop texting me"),
    ("stop f***ing texting me", PHRASE, "stop texting me"),
    ("How do I stop these messages?", PHRASE, "stop texting me"),
    ("please stop", PHRASE, "please stop"),
    ("Stop please", PHRASE, "please stop"),
    ("STOP STOP STOP", PHRASE, "please stop"),
    ("stop \U0001f6d1", PHRASE, "please stop"),
    ("STOP ALL", PHRASE, "please stop"),
    ("don't text me", PHRASE, "don't text me"),
    ("Don\u2019t text me", PHRASE, "don't text me"),
    ("dont text me anymore", PHRASE, "don't text me"),
    ("Please don't text me, call me instead", PHRASE, "don't text me"),
    ("do not text", PHRASE, "do not text"),
    ("DO NOT TEXT ME AGAIN", PHRASE, "do not text"),
    ("remove me from your list", PHRASE, "remove me from your list"),
    ("please remove me", PHRASE, "remove me from your list"),
    ("Remove my number from your list.", PHRASE, "remove me from your list"),
    ("take me off", PHRASE, "take me off"),
    ("Take me off your list", PHRASE, "take me off"),
    ("unsubscribe me", PHRASE, "unsubscribe me"),
    ("Unsubscribe please", PHRASE, "unsubscribe me"),
    ("unsub", PHRASE, "unsubscribe me"),
    ("opt me out", PHRASE, "opt me out"),
    ("I want to opt out", PHRASE, "opt me out"),
    ("no more texts", PHRASE, "no more texts"),
    ("No more messages please", PHRASE, "no more texts"),
    ("I don't want these texts", PHRASE, "no more texts"),
    ("wrong number", PHRASE, "wrong number"),
    ("wrong number!", PHRASE, "wrong number"),
    ("Wrong #", PHRASE, "wrong number"),
    ("You have the wrong number", PHRASE, "wrong number"),
    ("Wrong number, I'm not Dana", PHRASE, "wrong number"),
    ("leave me alone", PHRASE, "leave me alone"),
    ("Not interested. Stop texting me", PHRASE, "stop texting me"),
    ("I'm not interested, please remove me", PHRASE, "remove me from your list"),
    ("stop! not interested", PHRASE, "please stop"),
    # Ordinary texts that merely contain a keyword word.
    ("I'll stop by at 5", TEXT, None),
    ("Can we stop at the open house?", TEXT, None),
    ("yes I'm interested but not until spring", TEXT, None),
    ("the end of the month works", TEXT, None),
    ("Info on 12 Main St please", TEXT, None),
    ("Don't stop sending listings!", TEXT, None),
    ("Cancel my 3pm showing", TEXT, None),
    ("Is the house at the end of the street still available", TEXT, None),
    ("Please stop by the office tomorrow", TEXT, None),
    ("help me find a 3 bedroom in Tampa", TEXT, None),
    ("Yes please", TEXT, None),
    ("yes, send me more", TEXT, None),
    ("Start the search in June", TEXT, None),
    ("I had to quit my job so we are waiting", TEXT, None),
    ("Wrong number of bedrooms on that listing", TEXT, None),
    ("You have the wrong number for the seller", TEXT, None),
    ("remove me from the showing list for Saturday", TEXT, None),
    ("Take me off the waitlist for 5 Elm", TEXT, None),
    ("no more showings please, we bought a house", TEXT, None),
    ("Don't text me before 9am", TEXT, None),
    ("stop texting my wife", TEXT, None),
    ("Don't call me", TEXT, None),
    ("no messages", TEXT, None),
    ("stop it", TEXT, None),
    ("STOP sending houses over 500k", TEXT, None),
    ("no thanks", TEXT, None),
    ("not interested", TEXT, None),
    ("stop texting me about condos", TEXT, None),
    ("can I opt out of emails", TEXT, None),
    ("Sounds good", TEXT, None),
    ("", TEXT, None),
    ("?!", TEXT, None),
]


@pytest.mark.parametrize(("body", "kind", "keyword"), TABLE)
def test_classification_table(body: str, kind: InboundKind, keyword: str | None) -> None:
    """Each inbound text gets the expected kind and matched keyword or phrase."""
    assert classify(body) == Classification(kind, keyword)


def test_table_is_large_and_varied() -> None:
    """The table meets its own brief: 60+ rows, 15+ ordinary look-alikes, 12+ phrases."""
    kinds = [kind for _, kind, _ in TABLE]
    assert len(TABLE) >= 60
    assert kinds.count(TEXT) >= 15
    assert kinds.count(PHRASE) >= 12
    covered = {keyword for _, kind, keyword in TABLE if kind in (OUT, HELP, IN)}
    assert covered == set(KEYWORDS)
    assert {keyword for _, kind, keyword in TABLE if kind is PHRASE} == {
        p.phrase for p in REVOCATION_PHRASES
    }


@pytest.mark.parametrize(
    ("body", "opt_out_type", "expected"),
    [
        ("ARRET", "STOP", Classification(OUT, "ARRET")),
        ("stop", "STOP", Classification(OUT, "STOP")),
        ("stop texting me", "stop", Classification(OUT, "stop texting me")),
        ("", "HELP", Classification(HELP, "HELP")),
        ("Hi there", "START", Classification(IN, "HI THERE")),
        ("I'll stop by at 5", "", Classification(TEXT, None)),
        ("STOP", "unknown-type", Classification(OUT, "STOP")),
        ("Sounds good", None, Classification(TEXT, None)),
    ],
)
def test_twilio_opt_out_type_decides(
    body: str, opt_out_type: str | None, expected: Classification
) -> None:
    """Twilio's OptOutType overrides the body; an empty or unknown one is ignored."""
    assert classify(body, opt_out_type) == expected


def test_phrase_longer_than_the_bound_is_text() -> None:
    """A revocation phrase padded past the word bound is left for a person to read."""
    padded = "hey ok just please could you " + "please " * MAX_PHRASE_WORDS + "stop texting me"
    assert match_revocation(padded) is None
    assert classify(padded).kind is TEXT


def test_phrase_longer_than_the_char_bound_is_text() -> None:
    """A message over the character bound never counts as a revocation phrase."""
    long_name = "x" * MAX_PHRASE_CHARS
    assert classify(f"wrong number not {long_name}").kind is TEXT
    assert classify("wrong number not dana").kind is PHRASE


def test_phrases_are_extensible_data() -> None:
    """A new RevocationPhrase with fragment placeholders compiles and matches anchored."""
    extra = RevocationPhrase("quit bugging me", r"quit bugging<me>")
    assert extra.matches("please quit bugging me thanks")
    assert not extra.matches("tell him to quit bugging me")


def test_every_built_in_phrase_compiles() -> None:
    """The built-in phrases, compiled on first use, all compile and match their own words."""
    for phrase in REVOCATION_PHRASES:
        assert phrase.matches(phrase.phrase), phrase.phrase
        assert not phrase.matches("hello there")


def test_bad_phrase_pattern_is_a_validation_error() -> None:
    """A malformed pattern or unknown fragment is refused when the phrase is built."""
    with pytest.raises(ValidationError, match="bad pattern"):
        RevocationPhrase("broken", r"stop(")
    with pytest.raises(ValidationError, match="bad pattern"):
        RevocationPhrase("unknown fragment", r"stop <nonesuch>")


def test_classification_requires_keyword_unless_text() -> None:
    """A keyword kind without its keyword, or text with one, cannot be built."""
    with pytest.raises(ValidationError):
        Classification(OUT, None)
    with pytest.raises(ValidationError):
        Classification(TEXT, "STOP")


KEYWORD_NAMES = sorted(KEYWORDS)
PUNCTUATION = st.text(alphabet=".!?,;", max_size=4)
SPACE = st.text(alphabet=" \t\n\u00a0", max_size=3)


@st.composite
def keyword_variants(draw: st.DrawFn) -> tuple[str, str]:
    """A keyword and a variant of it with random case, surrounding space and punctuation."""
    keyword = draw(st.sampled_from(KEYWORD_NAMES))
    cased = "".join(
        c.upper() if draw(st.booleans()) else c.lower() for c in keyword.replace(" ", "\x00")
    )
    inner = draw(st.sampled_from([" ", "  ", "\t", " \n "]))
    variant = draw(SPACE) + cased.replace("\x00", inner) + draw(PUNCTUATION) + draw(SPACE)
    return keyword, variant


@settings(max_examples=300, deadline=None)
@given(keyword_variants())
def test_keyword_variants_classify_as_the_bare_keyword(pair: tuple[str, str]) -> None:
    """Case, surrounding white space and trailing punctuation never change a keyword's meaning."""
    keyword, variant = pair
    assert classify(variant) == classify(keyword) == Classification(KEYWORDS[keyword], keyword)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.one_of(st.none(), st.text(max_size=10)))
def test_classify_never_raises(body: str, opt_out_type: str | None) -> None:
    """Any text, with any OptOutType, gets a classification instead of an exception."""
    result = classify(body, opt_out_type)
    assert isinstance(result, Classification)
    assert (result.kind is TEXT) == (result.keyword is None)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([p for _, k, p in TABLE if k is PHRASE]),
    st.sampled_from(["", ".", "!", "!!", "?", " :)"]),
    st.sampled_from(["lower", "upper", "title"]),
)
def test_revocation_phrases_survive_case_and_punctuation(
    phrase: str | None, tail: str, case: str
) -> None:
    """A canonical phrase still matches itself in any case and with trailing punctuation."""
    assert phrase is not None
    body = getattr(phrase, case)() + tail
    assert classify(body) == Classification(PHRASE, phrase)
