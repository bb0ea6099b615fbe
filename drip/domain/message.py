"""Message text: template rendering, the opt-out footer, GSM-7/UCS-2 segment counting.

Pure functions on strings; no I/O.

Templates use ``{Name}`` tokens and nothing else: this is not Python's
``str.format``, so a brace that is not part of a ``{Name}`` token of the
allowed set is kept as written (``"{ok}"`` or ``"{}"`` stay in the text).

SMS sizes follow 3GPP TS 23.038 / 23.040 as carriers and Twilio apply them:

- GSM-7 when every character is in the GSM 03.38 basic set or its extension
  table; an extension character (``^ { } \\ [ ~ ] | €`` and form feed) is an
  escape pair and costs two septets. One segment holds 160 septets; a
  concatenated message holds 153 per segment (7 go to the UDH), and an escape
  pair is never split across two segments, so a segment may end one septet
  short.
- UCS-2 as soon as one character is outside GSM-7: the length is counted in
  UTF-16 code units (an emoji outside the BMP counts 2). One segment holds 70
  units, a concatenated message 67 per segment.
- Segments are filled by grapheme cluster (Unicode UAX #29 extended grapheme
  clusters, from the maintained ``regex`` library's ``\\X``), as Twilio's own
  message segment calculator does (github.com/TwilioDevEd/message-segment-calculator,
  ``SegmentedMessage._buildSegments``): a flag, a ZWJ family or an emoji with
  a skin tone never straddles two segments, so a segment may end short. As in
  that calculator, CR LF counts as two characters (``\r`` and ``\n`` are each
  GSM-7), and any cluster of more than one UTF-16 unit forces UCS-2.
- Twilio refuses a body longer than 1,600 characters (error 21617);
  :data:`MAX_BODY_CHARS` and :func:`too_long` say so before any provider call.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import regex


#: Variables a campaign step's body or subject may use.
TEMPLATE_VARIABLES: frozenset[str] = frozenset(
    {
        "VisitorFirstName",
        "VisitorLastName",
        "AgentFirstName",
        "AgentLastName",
        "AgentPhone",
        "CompanyName",
    }
)
#: Account texts (opt-in confirmation, help reply, ...) may also name support contacts.
ACCOUNT_TEMPLATE_VARIABLES: frozenset[str] = TEMPLATE_VARIABLES | {"SupportPhone", "SupportEmail"}

_TOKEN = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SPACED_TOKEN = re.compile(r"\{\s+([A-Za-z_][A-Za-z0-9_]*)\s*\}|\{([A-Za-z_][A-Za-z0-9_]*)\s+\}")


def template_variables(text: str) -> list[tuple[str, int]]:
    """Every ``{Name}`` token of ``text`` as (name, offset of its ``{``), in order."""
    return [(m.group(1), m.start()) for m in _TOKEN.finditer(text)]


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """A mistake in a template: where its token starts, the token as written, what is wrong."""

    offset: int
    token: str
    message: str


def template_problems(
    text: str, allowed: Collection[str] = TEMPLATE_VARIABLES
) -> list[TemplateProblem]:
    """Mistakes in the tokens of ``text``, in order of their offset.

    Reported: a ``{Name}`` whose name is not in ``allowed`` (with a suggestion
    when one is close), a known name in double braces (``{{CompanyName}}``
    would render as ``{Acme Realty}``) and a known name with blanks inside the
    braces (``{ CompanyName }`` is not a token and would be sent as written).
    """
    problems: list[TemplateProblem] = []
    for name, offset in template_variables(text):
        token = f"{{{name}}}"
        if name not in allowed:
            problems.append(TemplateProblem(offset, token, _unknown_message(name, allowed)))
        elif text[offset - 1 : offset] == "{" and text[offset + len(token) :][:1] == "}":
            problems.append(
                TemplateProblem(
                    offset - 1,
                    "{" + token + "}",
                    f"{{{token}}} has double braces; write {token} (single braces)",
                )
            )
    for m in _SPACED_TOKEN.finditer(text):
        name = m.group(1) or m.group(2)
        if name in allowed:
            problems.append(
                TemplateProblem(
                    m.start(),
                    m.group(0),
                    f'"{m.group(0)}" has blanks inside the braces; write {{{name}}}',
                )
            )
    return sorted(problems, key=lambda p: p.offset)


def _unknown_message(name: str, allowed: Collection[str]) -> str:
    known = sorted(allowed)
    by_case = [k for k in known if k.lower() == name.lower()]
    close = by_case or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean {{{close[0]}}}? " if close else ""
    return (
        f"unknown template variable {{{name}}}; {hint}"
        f"known: {', '.join('{' + k + '}' for k in known)}"
    )


def render(
    template: str,
    values: Mapping[str, str],
    *,
    allowed: Collection[str] = TEMPLATE_VARIABLES,
) -> str:
    """``template`` with each ``{Name}`` token of ``allowed`` replaced by ``values[Name]``.

    A name in ``allowed`` with no entry in ``values`` renders as the empty
    string (the caller decides what to supply; the loader has already refused
    unknown names). Tokens of names outside ``allowed`` and any other braces
    are kept literally. Pass ``ACCOUNT_TEMPLATE_VARIABLES`` for account texts.
    """

    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in allowed:
            return m.group(0)
        return values.get(name, "")

    return _TOKEN.sub(replace, template)


def with_footer(body: str, footer: str) -> str:
    """``body`` with ``footer`` appended as its last sentence, separated by one blank.

    Trailing white space of the body is dropped; an empty footer leaves the
    body unchanged and an empty body gives the footer alone.
    """
    end = footer.strip()
    if not end:
        return body
    start = body.rstrip()
    return f"{start} {end}" if start else end


# GSM 03.38 default alphabet (ESC, 0x1B, left out: it only introduces the extension table).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ\u00a7"  # the section sign
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Extension table: each costs an escape septet plus its own.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM7_ALL: frozenset[str] = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SmsSize:
    """How a text travels: its encoding, its length in ``units`` and in segments.

    ``units`` are septets for GSM-7 (extension characters count 2) and UTF-16
    code units for UCS-2; ``ucs2_chars`` are the distinct characters that
    forced UCS-2, in order of first appearance (empty for GSM-7).
    """

    encoding: Encoding
    units: int
    segments: int
    ucs2_chars: tuple[str, ...] = ()


def is_gsm7(char: str) -> bool:
    """Whether one character can be sent in GSM-7 (basic set or extension table)."""
    return char in GSM7_BASIC or char in GSM7_EXTENSION


@functools.cache
def _grapheme() -> regex.Pattern[str]:
    """The grapheme-cluster pattern (``regex``: ~10 ms to import, only for non-GSM-7 texts)."""
    import regex

    return regex.compile(r"\X")


#: Twilio's limit on a message body, in characters (error 21617 beyond it).
MAX_BODY_CHARS = 1600


def too_long(text: str) -> bool:
    """Whether Twilio would refuse ``text`` as longer than 1,600 characters (error 21617).

    Twilio counts the characters of the body as its API receives it; a
    character outside the Basic Multilingual Plane (an emoji) is counted as
    one, as Python's ``len`` does.
    """
    return len(text) > MAX_BODY_CHARS


def graphemes(text: str) -> list[str]:
    """``text`` split into extended grapheme clusters, CR LF kept as two (as Twilio does)."""
    out: list[str] = []
    for cluster in _grapheme().findall(text):
        if cluster == "\r\n":
            out.extend(("\r", "\n"))
        else:
            out.append(cluster)
    return out


def sms_size(text: str) -> SmsSize:
    """The encoding, length and number of segments of ``text`` sent as one SMS.

    An empty text is reported as one segment of zero units: a message always
    occupies at least one.
    """
    if _GSM7_ALL.issuperset(text):
        # Fast path (every text drip sends runs through here): no GSM-7 character
        # combines with another into one grapheme (CR LF counts as two, as in
        # :func:`graphemes`), so each character is its own unit or two.
        units = len(text) + sum(text.count(c) for c in GSM7_EXTENSION)
        if units <= GSM7_SINGLE:
            return SmsSize("GSM-7", units, 1)
        if units == len(text):  # every character one unit: _segments' count, without the walk
            return SmsSize("GSM-7", units, -(-units // GSM7_MULTI))
        return SmsSize("GSM-7", units, _gsm7_segments(text))
    clusters = graphemes(text)
    ucs2 = tuple(dict.fromkeys(c for c in text if not is_gsm7(c)))
    if ucs2 or any(len(c) > 1 for c in clusters):
        costs = [len(c.encode("utf-16-le")) // 2 for c in clusters]
        return SmsSize("UCS-2", sum(costs), _segments(costs, UCS2_SINGLE, UCS2_MULTI), ucs2)
    costs = [2 if c in GSM7_EXTENSION else 1 for c in clusters]
    return SmsSize("GSM-7", sum(costs), _segments(costs, GSM7_SINGLE, GSM7_MULTI))


def _gsm7_segments(text: str) -> int:
    """:func:`_segments` of a GSM-7 text longer than one segment, a segment at a time.

    Each segment is the longest run of characters whose units fit in
    :data:`GSM7_MULTI` (as the walk fills it): cut at ``GSM7_MULTI`` characters,
    then shortened by one character at a time while its two-unit characters
    overflow it, instead of one step per character of the text.
    """
    segments, start, length = 0, 0, len(text)
    while start < length:
        end = min(length, start + GSM7_MULTI)
        units = end - start + sum(text.count(c, start, end) for c in GSM7_EXTENSION)
        while units > GSM7_MULTI:
            end -= 1
            units -= 2 if text[end] in GSM7_EXTENSION else 1
        segments += 1
        start = end
    return segments


def _segments(costs: list[int], single: int, multi: int) -> int:
    """Segments needed when no grapheme's units may be split across two segments."""
    if sum(costs) <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > multi and used > 0:
            segments += 1
            used = 0
        used += cost
    return segments


def describe_char(char: str) -> str:
    """A character as a reader can spot it, with its code point: ``"x" (U+0078)``."""
    return f'"{char}" (U+{ord(char):04X})'


# --- no empty variable: a text lacking a value is skipped, never sent ---


def missing_values(
    templates: Collection[str | None], values: Mapping[str, str], allowed: Collection[str]
) -> list[str]:
    """The variables of ``templates`` (in order, once each) that would render empty.

    A message never goes out with an empty variable (an agent with no first
    name would give "I'm  , your agent"): the fire path skips it, naming them.
    """
    missing: list[str] = []
    for template in templates:
        if not template:
            continue
        for name, _ in template_variables(template):
            if name in allowed and not values.get(name, "").strip() and name not in missing:
                missing.append(name)
    return missing


def missing_reason(missing: list[str]) -> str:
    names = ", ".join("{" + m + "}" for m in missing)
    return (
        f"skipped: {names} has no value for this contact"
        if len(missing) == 1
        else f"skipped: {names} have no value for this contact"
    ) + "; a message never goes out with an empty variable"
