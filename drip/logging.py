"""Structured logging: one output for drip's structlog events and every library's records.

``configure_logging`` sets up structlog and the standard library's root logger
so that both go through the same chain: ISO UTC timestamp, level, logger name,
masking of phone numbers and e-mail addresses, then JSON (production, anything
that is not a terminal) or a console renderer (a terminal). Celery, SQLAlchemy
and ``warnings`` records take the same path, so nothing reaches a log line
without being masked.

Events are short snake_case names (``send_decided``, ``inbound_received``) with
stable keys (``send_id``, ``contact_id``, ``decision``, ``reason``)::

    log = get_logger(__name__)
    log.info("send_decided", send_id=42, decision="skip", reason="no_consent")

Logs go to standard error unless told otherwise, so standard output stays free
for command output (``drip replay --json``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import threading
import unicodedata
from collections.abc import Mapping
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from drip.errors import ConfigError

LOG_FORMATS: Final = ("auto", "json", "console")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_PLUS = r"(?:\+|%2[Bb])"  # a plus sign, also URL-encoded as in Twilio webhook bodies
_SEP = r"[ .\-]"
_PHONE: Final = re.compile(
    rf"""
    (?<![A-Za-z0-9+])
    (?:
        {_PLUS}[1-9][0-9]{{6,14}}                     # E.164: +16175550123
      |
        (?:{_PLUS}?1{_SEP}?)?                         # optional US country code
        (?:\([0-9]{{3}}\){_SEP}?|[0-9]{{3}}{_SEP}?)   # area code: (617) or 617
        [0-9]{{3}}{_SEP}?[0-9]{{4}}                   # 555-0123
    )
    (?![A-Za-z0-9])
    """,
    re.VERBOSE,
)
# The "@" of an address (also URL-encoded, as in webhook bodies) and its domain, which is kept.
# Domains may be internationalised (RFC 6531): any letter or digit, any script.
_AT_DOMAIN: Final = re.compile(r"(@|%40)([\w\-]+(?:\.[\w\-]+)*)(?![@\w\-])")
# Every character RFC 5322 allows in the local part of an address, plus the backslash
# of an escaped byte (``d\xc3\xa1na@`` in a repr); any non-ASCII letter too (RFC 6531).
_ATEXT: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~.-\\"
)
#: Longest quoted local part looked for (RFC 5321 allows 64 octets; escapes make it longer).
_MAX_QUOTED = 200
_MAX_DEPTH: Final = 20
_lock = threading.Lock()
_current: tuple[str, str, int] | None = None


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    prefix = ""
    if text[:3].upper() == "%2B":
        prefix, text = text[:3], text[3:]
    elif text.startswith("+"):
        prefix, text = "+", text[1:]
    positions = [i for i, char in enumerate(text) if char.isdigit()]
    keep = set(positions[-4:])
    if prefix or (len(positions) == 11 and text[positions[0]] == "1"):
        keep.add(positions[0])  # the country code says nothing about the person
    masked = "".join(
        "*" if char.isdigit() and i not in keep else char for i, char in enumerate(text)
    )
    return prefix + masked


def mask_text(text: str) -> str:
    """``text`` with phone numbers reduced to their last 4 digits and e-mail local parts hidden.

    ``"+16175550123"`` becomes ``"+1******0123"``, ``"(617) 555-0123"`` becomes
    ``"(***) ***-0123"``, ``"+44 20 7946 0958"`` becomes ``"+4* ** **** 0958"`` and
    ``"dana@example.com"`` becomes ``"d***@example.com"`` (also ``"dána@..."`` and
    ``"\"dana ruiz\"@..."``).

    US shapes (also URL-encoded, and the fictitious 555 numbers) are found by a
    pattern; international numbers in any format by ``phonenumbers``' own
    ``PhoneNumberMatcher``, which only accepts valid numbers, so ids and
    timestamps are left alone.
    """
    if text[:1] == "+" and _E164.fullmatch(text) is not None:
        # A bare E.164 number (a contact's ``to``, unique per event, so the cache below
        # would miss): what the patterns make of it, without running them.
        return f"+{text[1]}{'*' * (len(text) - 6)}{text[-4:]}"
    if len(text) <= _CACHED_LENGTH:
        return _mask_short(text)
    return _mask_uncached(text)


#: A whole string that is one E.164 number, as :data:`_PHONE`'s first branch matches it
#: entirely: its masked form is the "+", the first digit, stars, and the last 4 digits.
_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")


def _mask_uncached(text: str) -> str:
    return _mask_international(_PHONE.sub(_mask_phone, _mask_emails(text)))


#: Most logged strings recur (keys, event names, codes, a rule's reason), and the
#: patterns cost more than the rest of a log event: the short ones are masked once.
_CACHED_LENGTH: Final = 512
_mask_short = functools.lru_cache(maxsize=4096)(_mask_uncached)


def _mask_international(text: str) -> str:
    if "+" not in text or sum(c.isdigit() for c in text) < 7:
        return text  # nothing international left to find: skip the costly matcher
    import phonenumbers  # only when there may be one: a command that logs nothing skips it

    spans = [
        (m.start, m.end)
        for m in phonenumbers.PhoneNumberMatcher(
            text, "US", leniency=phonenumbers.Leniency.VALID, max_tries=1000
        )
    ]
    if not spans:
        return text
    out: list[str] = []
    done = 0
    for start, end in spans:
        out.append(text[done:start])
        part = text[start:end]
        digits = [i for i, c in enumerate(part) if c.isdigit()]
        keep = set(digits[-4:])
        if part.startswith("+") and digits:
            keep.add(digits[0])  # the country code's first digit says nothing about the person
        out.append("".join("*" if c.isdigit() and i not in keep else c for i, c in enumerate(part)))
        done = end
    out.append(text[done:])
    return "".join(out)


def _mask_emails(text: str) -> str:
    # Found from the "@" leftwards rather than with one regex: a local-part pattern
    # that has to backtrack is quadratic on long strings without any "@".
    parts: list[str] = []
    done = 0
    for match in _AT_DOMAIN.finditer(text):
        start = match.start()
        local = _local_start(text, start, done)
        if local == start:
            continue  # "@" with nothing before it: a decorator, a handle, not an address
        parts += [text[done:local], text[local], "***", match.group(1), match.group(2)]
        done = match.end()
    parts.append(text[done:])
    return "".join(parts)


def _local_start(text: str, at: int, floor: int) -> int:
    """Where the local part ending before ``text[at]`` (an "@") starts, not before ``floor``."""
    if at - 1 >= floor and text[at - 1] == '"':  # a quoted local part: "dana ruiz"@example.com
        i = at - 2
        lowest = max(floor, at - _MAX_QUOTED)
        while i >= lowest:
            if text[i] == '"' and (i == floor or text[i - 1] != "\\"):
                return i
            i -= 1
    local = at
    while local > floor and (text[local - 1] in _ATEXT or _is_intl_letter(text[local - 1])):
        local -= 1
    return local


def _is_intl_letter(char: str) -> bool:
    return not char.isascii() and (char.isalnum() or unicodedata.category(char).startswith("M"))


def mask_value(value: object, _depth: int = 0) -> object:
    """``value`` with every string in it masked, walking dicts, lists, tuples and sets.

    Numbers, booleans and None are kept; any other object is replaced by its
    masked ``str()``, which is what a renderer would have printed anyway.
    """
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if _depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {
            mask_value(key, _depth + 1) if isinstance(key, str) else key: mask_value(
                item, _depth + 1
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [mask_value(item, _depth + 1) for item in value]
        return items if isinstance(value, list) else tuple(items)
    try:
        return mask_text(str(value))
    except Exception:  # a broken __str__ must not lose the log line
        return f"<unprintable {type(value).__name__}>"


#: What ``TimeStamper(fmt="iso", utc=True)`` writes: no phone number or address can be in
#: it, and as it differs in every event it would always miss the masking cache.
_ISO_STAMP: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z"
)


#: Short strings with nothing to mask, looked up before any call: an event's keys and
#: most of its values (codes, kinds, a rule's reason) recur in every event. Strings
#: that masking changes (a phone number, an address) are not kept here.
_SEEN: dict[str, str] = {}
_SEEN_MAX: Final = 4096


def _mask_seen(text: str) -> str:
    masked = mask_text(text)
    if masked == text and len(text) <= _CACHED_LENGTH and len(_SEEN) < _SEEN_MAX:
        _SEEN[text] = text
    return masked


def mask_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask phone numbers and e-mail addresses in every key and value."""
    out: EventDict = {}
    seen = _SEEN
    for key, value in event_dict.items():
        kind = type(value)
        masked = value
        if kind is int or kind is bool or value is None:
            pass  # most values of an event: nothing to mask, no call
        elif kind is str:
            masked = seen.get(value)
            if masked is None:
                stamp = key == "timestamp" and _ISO_STAMP.fullmatch(value) is not None
                masked = value if stamp else _mask_seen(value)
        else:
            masked = mask_value(value)
        if isinstance(key, str):
            key = seen.get(key) or _mask_seen(key)  # noqa: PLW2901 - the masked key
        out[key] = masked
    return out


def _mask_exception(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The formatter's masking of the traceback ``format_exc_info`` has just made into text.

    Every other value was masked before it reached the formatter: a structlog
    event by :func:`mask_processor` in structlog's chain, a record of the
    standard library (Celery, SQLAlchemy, ``warnings``) by the same processor
    in the formatter's ``foreign_pre_chain``.
    """
    if "exception" in event_dict:
        event_dict["exception"] = mask_value(event_dict["exception"])
    return event_dict


_ENCODERS: dict[Any, json.JSONEncoder] = {}


def _json_dumps(obj: Any, **kw: Any) -> str:
    """``json.dumps(obj, **kw)``; for structlog's one ``default``, with an encoder made once.

    ``json.dumps`` builds a new ``JSONEncoder`` on every call that passes
    ``default`` (as ``JSONRenderer`` does): a third of a line's JSON cost.
    The encoder keeps no state between calls, so one serves every thread.
    """
    if kw.keys() != {"default"}:
        return json.dumps(obj, **kw)
    default = kw["default"]
    encoder = _ENCODERS.get(default)
    if encoder is None:
        encoder = _ENCODERS[default] = json.JSONEncoder(default=default)
    return encoder.encode(obj)


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time (pytest and CLI runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


class _DripHandler(logging.StreamHandler[Any]):
    """The root handler drip installs; recognised so that reconfiguring replaces it."""


def _is_tty(stream: TextIO | _CurrentStderr) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def configure_logging(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Set up structlog and stdlib logging once; calling again with the same values does nothing.

    ``fmt`` is ``auto`` (console renderer on a terminal, JSON otherwise),
    ``json`` or ``console``; ``level`` a standard level name; ``stream``
    defaults to the current standard error. Calling again with other values
    replaces the previous setup rather than adding a second output.
    """
    global _current  # noqa: PLW0603 - logging is process-wide state by nature
    fmt_key, level_key = fmt.strip().lower(), level.strip().upper()
    if fmt_key not in LOG_FORMATS:
        raise ConfigError(
            f"DRIP_LOG_FORMAT={fmt!r} is not valid: expected one of {', '.join(LOG_FORMATS)}"
        )
    if level_key not in LOG_LEVELS:
        raise ConfigError(
            f"DRIP_LOG_LEVEL={level!r} is not valid: expected one of {', '.join(LOG_LEVELS)}"
        )
    target: TextIO | _CurrentStderr = stream if stream is not None else _CurrentStderr()
    tty = _is_tty(target)
    renderer_name = ("console" if tty else "json") if fmt_key == "auto" else fmt_key
    state = (renderer_name, level_key, id(stream) if stream is not None else 0)

    with _lock:
        if state == _current and structlog.is_configured():
            return

        timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
        shared: list[Processor] = [
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            timestamper,
        ]
        renderer: Processor = (
            structlog.dev.ConsoleRenderer(colors=tty)
            if renderer_name == "console"
            else structlog.processors.JSONRenderer(serializer=_json_dumps)
        )
        formatter = structlog.stdlib.ProcessorFormatter(
            # Only records of the standard library take this chain: masked here.
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), mask_processor],
            processors=[
                structlog.processors.format_exc_info,  # a traceback is text to mask too
                _mask_exception,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
        handler = _DripHandler(target)
        handler.setFormatter(formatter)

        root = logging.getLogger()
        for old in [h for h in root.handlers if isinstance(h, _DripHandler)]:
            root.removeHandler(old)
            old.close()
        root.addHandler(handler)
        root.setLevel(level_key)
        logging.captureWarnings(True)

        structlog.configure(
            processors=[
                structlog.stdlib.filter_by_level,
                *shared,
                structlog.stdlib.PositionalArgumentsFormatter(),
                structlog.processors.StackInfoRenderer(),
                # Masked before the event becomes a LogRecord, so that every handler
                # (drip's, Celery's, pytest's caplog, an error tracker's) sees it masked.
                mask_processor,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
        _current = state


def reset_logging() -> None:
    """Undo ``configure_logging``: remove drip's handler and structlog's configuration (tests)."""
    global _current  # noqa: PLW0603 - see configure_logging
    with _lock:
        root = logging.getLogger()
        for old in [h for h in root.handlers if isinstance(h, _DripHandler)]:
            root.removeHandler(old)
            old.close()
        root.setLevel(logging.WARNING)  # the standard library's own default
        logging.captureWarnings(False)
        structlog.reset_defaults()
        _current = None


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name``; sets up default logging first if nobody has yet.

    The default setup means a stray log call can never bypass masking or print
    to standard output; an entry point's own ``configure_logging`` call later
    replaces it.
    """
    if not structlog.is_configured():
        configure_logging()
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def current_level() -> str:
    """The level logging is configured at now (``INFO`` before any setup).

    Code that builds its own settings (the replay) passes it on, so that it
    does not raise the level a command chose.
    """
    with _lock:
        return _current[1] if _current is not None else "INFO"
