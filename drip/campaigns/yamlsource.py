"""YAML with positions: every problem is reported as ``path:line:col: severity: message``.

The file is parsed with PyYAML's composer (``yaml.compose`` with the pure
Python ``SafeLoader``), which keeps each node's start mark. Nothing is
constructed into Python objects by PyYAML: the readers below check each node's
resolved tag themselves, so a wrong type, a duplicate key or an unknown field
is reported where it is written, and reading goes on to find the next problem.

Lines and columns are 1-based; a column counts characters (not bytes).

Conventions shared by the campaign and account files:

- Keys must be plain strings; a key given twice in one mapping is an error.
- An explicit ``null`` (``key:`` with nothing after it) on an optional field
  means "not given"; on a required field it is a wrong type.
- Times are ``"HH:MM"`` (``H:MM`` too), 00:00 to 23:59. Unquoted ``10:30``
  is accepted as written although YAML 1.1 reads it as the number 630.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Literal

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"

Severity = Literal["error", "warning"]

_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_LINE_BREAKS = "\n\r\x85\u2028\u2029"
_CONSTRUCTOR = SafeConstructor()


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A 1-based line and column in a file."""

    line: int
    column: int


def format_problem(path: str, where: Position, severity: Severity, message: str) -> str:
    """The one format of every located problem: ``path:line:col: severity: message``."""
    return f"{path}:{where.line}:{where.column}: {severity}: {message}"


@dataclass(frozen=True, slots=True)
class Field:
    """One ``key: value`` entry of a mapping."""

    key: yaml.ScalarNode
    value: yaml.Node


class YamlSource:
    """One YAML file's text and the problems found in it, in the order found."""

    def __init__(self, path: Path | str, text: str) -> None:
        self.path = Path(path)
        self.label = str(path)
        self.text = text[1:] if text.startswith("\ufeff") else text
        self._errors: list[tuple[Position, str]] = []
        self._warnings: list[tuple[Position, str]] = []

    @classmethod
    def read(cls, path: Path | str) -> YamlSource:
        """The file at ``path``; an unreadable file gives an empty source with one error."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            source = cls(path, "")
            source.error(Position(1, 1), f"cannot read the file: {exc.strerror or exc}")
            return source
        try:
            return cls(path, data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            good = data[: exc.start].decode("utf-8")
            source = cls(path, "")
            source.error(
                source.position_of_index(good, len(good)),
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
            )
            return source

    # -- reporting ---------------------------------------------------------

    def at(self, where: Position | yaml.Node) -> Position:
        if isinstance(where, Position):
            return where
        mark = where.start_mark
        return Position(mark.line + 1, mark.column + 1)

    @property
    def errors(self) -> list[str]:
        """The errors found so far, formatted, in the order of their position in the file."""
        return self._formatted(self._errors, "error")

    @property
    def warnings(self) -> list[str]:
        """The warnings found so far, formatted, in the order of their position in the file."""
        return self._formatted(self._warnings, "warning")

    @property
    def problems(self) -> list[tuple[Severity, str]]:
        """Errors and warnings together, formatted, in the order of their position in the file.

        At one position an error comes before a warning.
        """
        found: list[tuple[Position, int, int, Severity, str]] = [
            (where, 0, i, "error", msg) for i, (where, msg) in enumerate(self._errors)
        ]
        found += [(where, 1, i, "warning", msg) for i, (where, msg) in enumerate(self._warnings)]
        found.sort(key=lambda item: item[:3])
        return [
            (severity, format_problem(self.label, where, severity, msg))
            for where, _, _, severity, msg in found
        ]

    def _formatted(self, found: list[tuple[Position, str]], severity: Severity) -> list[str]:
        ordered = sorted(enumerate(found), key=lambda item: (item[1][0], item[0]))
        return [format_problem(self.label, where, severity, msg) for _, (where, msg) in ordered]

    def error(self, where: Position | yaml.Node, message: str) -> None:
        self._errors.append((self.at(where), message))

    def warning(self, where: Position | yaml.Node, message: str) -> None:
        self._warnings.append((self.at(where), message))

    @property
    def error_count(self) -> int:
        return len(self._errors)

    def format(self, where: Position | yaml.Node, severity: Severity, message: str) -> str:
        return format_problem(self.label, self.at(where), severity, message)

    # -- parsing -----------------------------------------------------------

    def _quote_hint(self, where: Position) -> str:
        """Advice to quote a value when an unquoted text on the lines around is the likely cause.

        A plain (unquoted) YAML value may not contain ``": "`` or ``" #"``
        nor start with one of ``{ [ * & ! % @ ` | > ' "``; texts often do. A
        quoted value may not go on after its closing quote. Fields that hold
        no text (``day``, ``at``, ``kind`` ...) get no such advice: quoting
        would not make them right.
        """
        lines = self.text.splitlines()
        for number in (where.line, where.line - 1):
            if not 1 <= number <= len(lines):
                continue
            found = _PLAIN_VALUE.match(lines[number - 1])
            if found is None or found.group(1) in _NOT_TEXT:
                continue
            key, value = found.group(1), found.group(2).rstrip()
            if value[:1] in "\"'":
                closing = value.find(value[0], 1)
                after = value[closing + 1 :].strip() if closing > 0 else ""
                if after and not after.startswith("#"):
                    return (
                        f" (line {number}: the value of {key!r} goes on after its closing "
                        f"quote; put the whole text in double quotes, writing a quote "
                        f'inside it as \\")'
                    )
                continue
            risky = ": " in value or " #" in value or value[:1] in _PLAIN_STARTS
            if risky:
                return (
                    f" (line {number}: the value of {key!r} is unquoted text with "
                    f'{_risk(value)}; put it in double quotes: {key}: "...")'
                )
        return ""

    def compose(self) -> yaml.Node | None:
        """The document's root node; None (with an error recorded) when there is none."""
        if self._errors:
            return None
        try:
            node = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
            what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
            hint = self._quote_hint(where)
            if not hint and ("expected <block end>" in what or "mapping values" in what):
                hint = " (check the indentation of this line and of the line before it)"
            self.error(where, f"YAML syntax error: {what or exc}{hint}")
            return None
        except yaml.reader.ReaderError as exc:
            where = self.position_of_index(self.text, exc.position)
            self.error(where, f"YAML cannot read this character: {exc.reason}")
            return None
        except RecursionError:
            self.error(Position(1, 1), "the YAML is nested too deeply to read")
            return None
        except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is one of the above
            self.error(Position(1, 1), f"YAML error: {exc}")
            return None
        if node is None:
            self.error(Position(1, 1), "the file is empty; expected a mapping of fields")
        return node

    def comment_after(self, node: yaml.Node) -> Position | None:
        """Where a ``#`` comment cuts an unquoted value short, else None.

        In YAML ``" #"`` after a plain (unquoted) value starts a comment, so
        ``body: Call me #1 agent`` is the text "Call me"; a quoted value is
        whole and its comment was meant.
        """
        if not isinstance(node, yaml.ScalarNode) or node.style is not None:
            return None
        end = node.end_mark.index
        rest = self.text[end:].split("\n", 1)[0]
        found = _CUT_COMMENT.match(rest)
        if found is None:
            return None
        return self.position_of_index(self.text, end + found.end() - 1)

    @staticmethod
    def position_of_index(text: str, index: int) -> Position:
        """The position of character ``index`` of ``text``, counting YAML's line breaks."""
        return _advance(Position(1, 1), text, 0, index)

    def find(self, node: yaml.Node, value: str, offset: int, needle: str) -> Position:
        """Where ``needle``, found at ``offset`` of the scalar ``value`` of ``node``, is written.

        The k-th occurrence of ``needle`` in the value is matched with the k-th
        occurrence in the node's source text; when escapes or folding make the
        counts differ, the node's own start is given instead.
        """
        start = self.at(node)
        if not needle:
            return start
        raw = self.text[node.start_mark.index : node.end_mark.index]
        occurrences = _indices(raw, needle)
        if len(occurrences) != len(_indices(value, needle)):
            return start
        k = len(_indices(value[:offset], needle))
        if k >= len(occurrences):
            return start
        return _advance(start, raw, 0, occurrences[k])

    # -- typed readers (each records its own error and returns None) ------

    def mapping(self, node: yaml.Node, what: str) -> dict[str, Field] | None:
        """The fields of a mapping node, keyed by name; duplicates and odd keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping (key: value lines), got {describe(node)}")
            return None
        fields: dict[str, Field] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag != STR:
                self.error(key, f"{what}: a key must be a plain name, got {describe(key)}")
                continue
            first = fields.get(key.value)
            if first is not None:
                self.error(
                    key,
                    f"{what}: duplicate key {key.value!r} "
                    f"(first given on line {first.key.start_mark.line + 1})",
                )
                continue
            fields[key.value] = Field(key, value)
        return fields

    def check_fields(
        self,
        fields: dict[str, Field],
        node: yaml.Node,
        what: str,
        *,
        allowed: Sequence[str],
        required: Sequence[str] = (),
    ) -> bool:
        """Report unknown and missing fields; True when there were none."""
        ok = True
        for name, item in fields.items():
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.error(
                    item.key,
                    f"unknown field {name!r} in {what}; {hint}allowed: {', '.join(allowed)}",
                )
                ok = False
        for name in required:
            if name not in fields:
                self.error(node, f"missing required field {name!r} in {what}")
                ok = False
            elif is_null(fields[name].value):
                value = fields[name].value
                hint = (
                    "; the '#' after it starts a YAML comment: put the text in double quotes"
                    if self.comment_after(value) is not None
                    else ""
                )
                self.error(value, f"{what}: {name} must be given, got null{hint}")
                ok = False
        return ok

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list, got {describe(node)}")
            return None
        return list(node.value)

    def string(self, node: yaml.Node, what: str, *, blank_ok: bool = False) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR:
            # YAML reads yes, no, 10:30, 1.5 as other types; quotes keep them text.
            hint = (
                f'; put it in double quotes: "{node.value}"'
                if isinstance(node, yaml.ScalarNode) and node.tag != NULL
                else ""
            )
            self.error(node, f"{what} must be text, got {describe(node)}{hint}")
            return None
        value = str(node.value)
        if not blank_ok and not value.strip():
            self.error(node, f"{what} must not be empty")
            return None
        return value

    def integer(self, node: yaml.Node, what: str, *, minimum: int, maximum: int) -> int | None:
        """A whole number in [minimum, maximum]; floats, booleans and quoted numbers are errors."""
        value = scalar_int(node)
        if value is None:
            self.error(node, f"{what} must be a whole number, got {describe(node)}")
            return None
        if value < minimum:
            words = "negative" if minimum == 0 and value < 0 else f"less than {minimum}"
            self.error(node, f"{what} must not be {words}, got {value}")
            return None
        if value > maximum:
            self.error(node, f"{what} must be at most {maximum}, got {value}")
            return None
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != BOOL:
            self.error(node, f"{what} must be true or false, got {describe(node)}")
            return None
        return bool(_CONSTRUCTOR.construct_yaml_bool(node))

    def choice(self, node: yaml.Node, what: str, allowed: Sequence[str]) -> str | None:
        listing = " | ".join(allowed)
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR:
            self.error(node, f"{what} must be one of {listing}, got {describe(node)}")
            return None
        if node.value not in allowed:
            close = difflib.get_close_matches(node.value, allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.error(node, f"{what} must be one of {listing}, got {node.value!r}{hint}")
            return None
        return str(node.value)

    def time_of_day(self, node: yaml.Node, what: str) -> time | None:
        """A local time "HH:MM" between 00:00 and 23:59."""
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(text, str) or node.tag not in (STR, INT):
            self.error(node, f'{what} must be a time "HH:MM", got {describe(node)}')
            return None
        m = _TIME.fullmatch(text.strip())
        if m is None:
            self.error(node, f'{what} must be a time "HH:MM", got {describe(node)}')
            return None
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            self.error(node, f'{what} "{text.strip()}" is not a time of day (00:00 to 23:59)')
            return None
        return time(hour, minute)


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL


def scalar_int(node: yaml.Node) -> int | None:
    """The integer an ``!!int`` scalar stands for, else None (booleans are not integers)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag != INT:
        return None
    if ":" in str(node.value):  # YAML 1.1 reads 10:30 as 630 (base 60): never meant as a number
        return None
    try:
        value = _CONSTRUCTOR.construct_yaml_int(node)
    except (ConstructorError, ValueError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describe(node: yaml.Node) -> str:
    """A node as the user wrote it, for messages: ``a text "15"``, ``a list``, ``null``."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if not isinstance(node, yaml.ScalarNode):  # pragma: no cover - the three node kinds
        return "something else"
    value = str(node.value)
    shown = value if len(value) <= 40 else value[:37] + "..."
    if node.tag == STR:
        return f"a text {_quote(shown)}"
    if node.tag == NULL:
        return "null"
    if node.tag == BOOL:
        return f"a boolean {shown}"
    if node.tag == INT and ":" in value:
        return f"a time {shown}"
    if node.tag == INT:
        return f"a number {shown}"
    if node.tag == FLOAT:
        return f"a decimal number {shown}"
    kind = node.tag.rsplit(":", 1)[-1]
    return f"a {kind} {shown}"


_PLAIN_VALUE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w-]*):\s+(\S.*)$")
_PLAIN_STARTS = frozenset("{[*&!%@`|>")
_CUT_COMMENT = re.compile(r"[ \t]*#")
#: Fields whose value is no text: a syntax error there is not cured by quotes.
_NOT_TEXT = frozenset(
    {
        "day",
        "at",
        "kind",
        "sender",
        "channel",
        "opt_out",
        "stop_on_reply",
        "steps",
        "send_window",
        "interval_days",
        "start",
        "end",
        "window",
        "days",
        "holidays",
        "max_per_24h",
        "twilio_sends_opt_out_confirmation",
        "keywords",
        "help",
        "opt_in",
        "state_rules",
        "blackouts",
        "states",
        "federal",
        "senders",
        "numbers",
        "daily_segments",
        "default_agent",
    }
)


def _risk(value: str) -> str:
    if ": " in value:
        return '": " in it'
    if " #" in value:
        return '" #" in it (the rest would be a comment)'
    return f"{value[0]!r} at its start"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _indices(text: str, needle: str) -> list[int]:
    found: list[int] = []
    start = text.find(needle)
    while start != -1:
        found.append(start)
        start = text.find(needle, start + len(needle))
    return found


def _advance(start: Position, text: str, begin: int, end: int) -> Position:
    """``start`` moved over ``text[begin:end]``, counting YAML line breaks (CRLF is one)."""
    line, column = start.line, start.column
    i = begin
    while i < end:
        char = text[i]
        if char in _LINE_BREAKS:
            if char == "\r" and text[i + 1 : i + 2] == "\n":
                i += 1
            line, column = line + 1, 1
        else:
            column += 1
        i += 1
    return Position(line, column)
