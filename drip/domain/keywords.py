"""What an inbound text is: a keyword, a plain-words revocation, or ordinary text.

Order of the decision:

1. Twilio's ``OptOutType`` (STOP, START, HELP), when the webhook carries it,
   decides: Twilio has already acted on it at the carrier level.
2. Keywords, matched on the whole message: case-insensitive, Unicode
   compatibility forms folded (full-width letters), invisible format
   characters dropped, white space and punctuation around the message ignored
   (leading as well as trailing: ``"STOP"`` in quotes is still STOP), inner
   runs of white space collapsed. A dash or underscore between words counts as
   a space, so "opt-out" and "opt_out" are OPT OUT; OPTOUT is its own keyword.
3. Revocation in plain words: a *short* message (at most ``MAX_PHRASE_WORDS``
   words and ``MAX_PHRASE_CHARS`` characters once normalized) that matches,
   as a whole, one of ``REVOCATION_PHRASES``. The bound is 10 words / 80
   characters: room for a polite wrapper ("hey, could you please stop texting
   me, thanks") or a name after "wrong number", while a longer message is a
   conversation a person should read. Matching is anchored on the whole
   message, never a substring search: "I'll stop by at 5" and "Don't stop
   sending listings!" are ordinary texts. A false opt-out loses a lead, a
   missed revocation is a TCPA risk; anchored patterns keep both rare, and
   anything they miss is ordinary text, which reaches the agent as a reply.
   The bound is checked before any pattern runs, so no regular expression
   ever sees a long input. Deliberately not revocations: "not interested"
   alone (a lead saying no, not "stop texting"), "don't call me" and "stop
   calling me" (often a lead who prefers texts), and conditional requests
   such as "don't text me before 9am" or "stop texting me about condos".
4. Anything else is ordinary text.

Keywords match accent-insensitively (``ARRÊT`` is ``ARRET``, ``stóp`` is
STOP): the message is folded (NFKD, combining marks dropped) before the
lookup. An account adds words to each family with ``keywords`` in
``account.yaml``; :func:`keyword_table` merges them with :data:`KEYWORDS`
(an account word never changes the family of a built-in one).

START, UNSTOP and YES are classified OPT_IN whoever sends them; whether they
restore consent (only after a keyword or phrase opt-out) or are ordinary text
is the inbound service's decision, with the contact's history in hand.

Adding a phrase is adding a ``RevocationPhrase`` to ``REVOCATION_PHRASES``;
``<name>`` in a pattern expands to ``PHRASE_FRAGMENTS[name]``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from drip.errors import ValidationError


class InboundKind(StrEnum):
    OPT_OUT = "opt_out"
    REVOCATION_PHRASE = "revocation_phrase"
    HELP = "help"
    OPT_IN = "opt_in"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Classification:
    """What an inbound text is; ``keyword`` is the keyword or canonical phrase that matched."""

    kind: InboundKind
    keyword: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is InboundKind.TEXT) != (self.keyword is None):
            raise ValidationError(
                f"classification {self.kind.value}: a keyword is required for every kind "
                "but text, and text has none"
            )


#: Keyword (normalized, upper case) -> what it is. "OPT OUT" also matches
#: "opt-out" and "opt_out".
KEYWORDS: Mapping[str, InboundKind] = MappingProxyType(
    {
        **dict.fromkeys(
            ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"),
            InboundKind.OPT_OUT,
        ),
        "OPT OUT": InboundKind.OPT_OUT,
        "HELP": InboundKind.HELP,
        "INFO": InboundKind.HELP,
        "START": InboundKind.OPT_IN,
        "UNSTOP": InboundKind.OPT_IN,
        "YES": InboundKind.OPT_IN,
    }
)

#: Twilio's ``OptOutType`` webhook parameter -> kind.
TWILIO_OPT_OUT_TYPES: Mapping[str, InboundKind] = MappingProxyType(
    {"STOP": InboundKind.OPT_OUT, "START": InboundKind.OPT_IN, "HELP": InboundKind.HELP}
)

MAX_PHRASE_WORDS = 10
MAX_PHRASE_CHARS = 80

#: Words allowed around any phrase: greetings, fillers and "not interested"
#: before or after, politeness and emphasis after ("hey, please stop texting me
#: now, thanks"; "Not interested. Remove me"). They never make a phrase on
#: their own: a core pattern must match as well.
PHRASE_FILLERS = (
    r"(?:not interested|i'm not interested|im not interested|i am not interested"
    r"|no longer interested|i'm no longer interested|no thanks|no thank you|who is this"
    r"|who's this|sorry|seriously|again|ok|okay)"
)
PHRASE_PREFIX = (
    r"(?:(?:<fillers>|hey|hi|hello|no|nope|yes|yeah|yep|just|i said|please|pls|plz|kindly"
    r"|can you|could you|would you|will you|for the last time) ){0,4}"
)
PHRASE_SUFFIX = (
    r"(?: (?:<fillers>|please|pls|plz|thanks|thank you|thx|ty|now|asap|immediately|already"
    r"|anymore|any more|ever again|for good|right now|forever|bye|lol)){0,4}"
)

#: Reusable parts of revocation patterns, over normalized text (lower case,
#: straight apostrophes, punctuation turned into single spaces).
PHRASE_FRAGMENTS: Mapping[str, str] = MappingProxyType(
    {
        "texts": (
            r"(?:texts?|txts?|text messages?|messages?|msgs?|sms|sms messages|smses"
            r"|texting|messaging|emails and texts|texts and emails)"
        ),
        "texting": (
            r"(?:texting|txting|texing|txt|text|messaging|msging|contacting"
            r"|bothering|spamming|calling and texting|texting and calling"
            r"|sending (?:me )?(?:<these><texts>|these|this|stuff|things))"
        ),
        "me": r"(?: me| us| this number| my number| my phone)?",
        "list": (
            r"(?:(?:your|this|the|ur|that|these|all|all your|all of your) )?"
            r"(?:list|lists|mailing list|texting list|text list|sms list|contact list"
            r"|contacts|database|system|campaign)"
        ),
        "these": r"(?:(?:these|this|the|your|ur|all|all the|all these|any|any more|anymore) )?",
        "dont": r"(?:don't|dont|do not|donot|never|please don't|please dont|pls don't|pls dont)",
        "iwant": (
            r"(?:i want to|i wanna|i'd like to|id like to|i would like to|i need to|let me"
            r"|i wish to|how do i|how can i|can i|how to)"
        ),
        "intens": r"(?:fucking|freaking|frickin|effing|damn|f\*+ing|f\*+king)",
        "fillers": PHRASE_FILLERS,
        "unsub": (
            r"(?:unsubscribe|unsub|unsubcribe|unsubscibe|unsuscribe|unsubscrib|unsubsribe"
            r"|unsubscribed)"
        ),
    }
)

_FRAGMENT = re.compile(r"<(\w+)>")


def _expand(pattern: str) -> str:
    for _ in range(4):  # fragments may use fragments, not recursively without end
        expanded = _FRAGMENT.sub(lambda m: PHRASE_FRAGMENTS[m.group(1)], pattern)
        if expanded == pattern:
            return expanded
        pattern = expanded
    raise ValidationError(f"revocation pattern nests fragments too deeply: {pattern!r}")


@functools.cache
def _compile_phrase(pattern: str) -> re.Pattern[str]:
    return re.compile(_expand(f"{PHRASE_PREFIX}(?:{pattern}){PHRASE_SUFFIX}"))


#: While True, new phrases are compiled on first use, not at construction:
#: the built-in ones below (tests/unit/test_keywords.py compiles them all), so
#: a command that never reads an inbound text does not pay for eleven large
#: patterns at start-up.
_DEFER_COMPILE = True


@dataclass(frozen=True, slots=True)
class RevocationPhrase:
    """A canonical phrase and the pattern of the short messages that mean it.

    ``pattern`` is a regular expression over the normalized message, matched
    on the whole message (``PHRASE_PREFIX`` and ``PHRASE_SUFFIX`` are added
    around it); ``<name>`` expands to ``PHRASE_FRAGMENTS[name]``. A new phrase
    is compiled (and refused if it does not compile) when it is made.
    """

    phrase: str
    pattern: str

    def __post_init__(self) -> None:
        if not self.phrase.strip():
            raise ValidationError("revocation phrase must not be empty")
        if not _DEFER_COMPILE:
            self.regex  # noqa: B018  (compiles: a bad pattern fails here, not at match time)

    @property
    def regex(self) -> re.Pattern[str]:
        """The anchored pattern, compiled once per process."""
        try:
            return _compile_phrase(self.pattern)
        except (re.error, KeyError) as exc:
            raise ValidationError(
                f"revocation phrase {self.phrase!r}: bad pattern {self.pattern!r}: {exc}"
            ) from exc

    def matches(self, normalized: str) -> bool:
        return self.regex.fullmatch(normalized) is not None


#: The plain-words revocations, first match wins. The canonical phrase is
#: what the decision records for a person to review.
REVOCATION_PHRASES: tuple[RevocationPhrase, ...] = (
    RevocationPhrase(
        "stop texting me",
        r"(?:stop|quit|cease|end)(?: <intens>)? <texting><me>"
        r"|(?:stop|end|cancel|quit) <these><texts>"
        r"|stop (?:getting|receiving) <these><texts>"
        r"|<iwant> (?:stop|end) (?:getting |receiving )?(?:<these><texts>|this|these|them|it)",
    ),
    RevocationPhrase(
        "please stop",
        r"stop(?: this| that| all| all of this| now)?|stop(?: stop)+"
        r"|(?:please|pls|plz|just) stop it",
    ),
    RevocationPhrase(
        "do not text",
        r"(?:do not|donot)(?: ever)? (?:text|txt|message|msg|contact)(?: me| us| this number)?"
        r"(?: again| anymore| any more| ever again)?",
    ),
    RevocationPhrase(
        "don't text me",
        r"<dont>(?: ever)? (?:text|txt|message|msg|contact|text or call|call or text"
        r"|bother|send me (?:<texts>|anything|anything else))(?: me| us| this number)?"
        r"(?: again| anymore| any more| ever again)?(?: just)?(?: call(?: me)?(?: instead)?)?",
    ),
    RevocationPhrase(
        "no more texts",
        r"(?:no more|nomore|no further|enough|enough with the|enough of the) <texts>"
        r"|no (?:texts|texting|txts|text messages|sms)"
        r"|i (?:don't|dont|do not) want (?:<these>|more )?<texts>(?: from you)?",
    ),
    RevocationPhrase(
        "remove me from your list",
        r"(?:remove|delete) (?:me|my number|my phone number|my info|this number|my name)"
        r"(?: from (?:<list>|<these><texts>))?"
        r"|(?:<iwant> )?be removed(?: from (?:<list>|<these><texts>))?",
    ),
    RevocationPhrase(
        "take me off",
        r"(?:<iwant> )?(?:take|get) (?:me|my number|this number|my name|my phone number)"
        r" (?:off|off of|out of)(?: <list>)?"
        r"|(?:<iwant> )?be taken off(?: <list>)?",
    ),
    RevocationPhrase(
        "unsubscribe me",
        r"(?:<iwant> )?<unsub>(?: me| my number| this number)?"
        r"(?: from (?:<list>|<these><texts>))?",
    ),
    RevocationPhrase(
        "opt me out",
        r"(?:<iwant> )?(?:opt(?: me| us| my number)? out|optout)"
        r"(?: of (?:<list>|<these><texts>|this|it))?",
    ),
    RevocationPhrase("leave me alone", r"leave me alone|lose my number|forget my number"),
    RevocationPhrase(
        "wrong number",
        r"(?:(?:you have|you've got|youve got|you got|you have got|u have|this is|it's|its"
        r"|that's|thats) )?(?:the |a )?wrong (?:number|#|num|no|phone number|person|cell)"
        r"(?: (?:i'm not|im not|i am not|this isn't|this is not|this isnt|not|no)"
        r" [^\W\d_][\w']*(?: [^\W\d_][\w']*)?(?: here)?)?",
    ),
)
_DEFER_COMPILE = False


_APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u201b\u02bc\u0060\u00b4\u2032", "'"))
_WORD_JOINERS = re.compile(r"[\s_\-\u2010-\u2015]+")
_PICTOGRAPHS = frozenset({"So", "Sk"})
_VARIATION_SELECTORS = frozenset("\ufe0e\ufe0f")


def _is_edge_noise(char: str) -> bool:
    """White space or punctuation, which surround a keyword without changing it."""
    return char.isspace() or unicodedata.category(char).startswith("P")


def _clean(body: str) -> str:
    """NFKC, no invisible format characters, apostrophes straightened, lower case."""
    text = unicodedata.normalize("NFKC", body)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return text.translate(_APOSTROPHES).casefold()


def normalize_keyword(body: str) -> str:
    """The message as a keyword candidate: upper case, edges trimmed, words single-spaced."""
    text = _clean(body)
    start, end = 0, len(text)
    while start < end and _is_edge_noise(text[start]):
        start += 1
    while end > start and _is_edge_noise(text[end - 1]):
        end -= 1
    return _WORD_JOINERS.sub(" ", text[start:end]).upper()


def normalize_phrase(body: str) -> str:
    """The message as a phrase candidate: lower case, every punctuation run a single space.

    Apostrophes inside words stay ("don't"); "#" and "*" stay ("wrong #",
    "f**king"). Emoji and other pictographs count as spaces, so "stop 🛑" is
    "stop".
    """
    text = _clean(body)
    out: list[str] = []
    for i, char in enumerate(text):
        if char == "'":
            inside = 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()
            out.append(char if inside else " ")
        elif char in "#*":
            out.append(char)
        elif _is_edge_noise(char) or unicodedata.category(char) in _PICTOGRAPHS:
            out.append(" ")
        elif char not in _VARIATION_SELECTORS:
            out.append(char)
    return " ".join("".join(out).split())


def match_revocation(body: str) -> str | None:
    """The canonical revocation phrase ``body`` means, or None (too long or no match)."""
    text = normalize_phrase(body)
    if not text or len(text) > MAX_PHRASE_CHARS or len(text.split()) > MAX_PHRASE_WORDS:
        return None
    for phrase in REVOCATION_PHRASES:
        if phrase.matches(text):
            return phrase.phrase
    return None


FAMILIES: Mapping[str, InboundKind] = MappingProxyType(
    {"opt_out": InboundKind.OPT_OUT, "help": InboundKind.HELP, "opt_in": InboundKind.OPT_IN}
)


def fold_accents(text: str) -> str:
    """``text`` without accents: NFKD, combining marks dropped (``ARRÊT`` -> ``ARRET``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def keyword_key(body: str) -> str:
    """The message as a key of a keyword table: normalized, upper case, accents folded."""
    return fold_accents(normalize_keyword(body))


def keyword_table(extra: Iterable[tuple[str, str]] = ()) -> Mapping[str, InboundKind]:
    """:data:`KEYWORDS` plus an account's ``(word, family)`` pairs, keyed by :func:`keyword_key`.

    A word already built in keeps its family; an unknown family is a ValidationError.
    """
    table: dict[str, InboundKind] = {}
    for word, family in extra:
        kind = FAMILIES.get(family)
        if kind is None:
            raise ValidationError(f"keyword family {family!r} is not one of {', '.join(FAMILIES)}")
        key = keyword_key(word)
        if not key:
            raise ValidationError(f"keyword {word!r} is empty once normalized")
        table[key] = kind
    table.update({keyword_key(k): v for k, v in KEYWORDS.items()})
    return MappingProxyType(table)


_BUILT_IN_TABLE = keyword_table()


def classify(
    body: str,
    opt_out_type: str | None = None,
    keywords: Mapping[str, InboundKind] | None = None,
) -> Classification:
    """Classify one inbound text; ``opt_out_type`` is Twilio's ``OptOutType``, if any.

    ``keywords`` is the account's table from :func:`keyword_table` (the
    built-in words when None). For a Twilio-decided message the keyword is
    ours when the body is one of that kind, else the normalized body (an
    account's custom keyword).
    """
    table = _BUILT_IN_TABLE if keywords is None else keywords
    keyword = keyword_key(body)
    twilio_type = (opt_out_type or "").strip().upper()
    twilio_kind = TWILIO_OPT_OUT_TYPES.get(twilio_type)
    if twilio_kind is not None:
        if table.get(keyword) is twilio_kind:
            return Classification(twilio_kind, keyword)
        phrase = match_revocation(body) if twilio_kind is InboundKind.OPT_OUT else None
        return Classification(twilio_kind, phrase or keyword or twilio_type)
    kind = table.get(keyword)
    if kind is not None:
        return Classification(kind, keyword)
    phrase = match_revocation(body)
    if phrase is not None:
        return Classification(InboundKind.REVOCATION_PHRASE, phrase)
    return Classification(InboundKind.TEXT)
