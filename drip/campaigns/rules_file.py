"""State rules, blackouts and the federal window as data
(docs/compliance.md#the-state-rule-pack).

The bundled rule pack (``drip/rules/us.yaml``) and the ``state_rules`` and
``blackouts`` sections of ``campaigns/account.yaml`` are read here, with
problems reported like every other file's, ``path:line:col: error: message``.

A rule row::

    - state: TX                                   # two-letter code, capitals
      window: {start: "09:00", end: "21:00"}       # the daily legal hours
      days: {sun: {start: "12:00", end: "21:00"}}  # per weekday; `none` = no texts that day
      holidays: true                              # no texts on the state's legal holidays
      max_per_24h: 3                              # rolling cap on campaign and bulk texts
      source: "Tex. Bus. & Com. Code 301.051"      # the law (required in the bundled pack)
      checked: "2026-11-30"                        # when the row was checked against it
      enabled: false                              # account.yaml: turn a bundled row off
      notes: "..."

In ``account.yaml`` a row for a state replaces the bundled row for it (a row
without ``source`` cites the account file and line), a row for another state
is added, and ``{state: XX, enabled: false}`` alone turns the bundled row off
(it stays listed, marked off). A blackout::

    - {states: [LA], from: "2026-08-28", until: "2026-09-04", reason: "declared emergency"}

covers whole local days, ``from`` through ``until``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import yaml

from drip.campaigns.yamlsource import Field, Position, YamlSource, describe, is_null
from drip.domain.window import WEEKDAYS, Blackout, SendWindow, StateRule
from drip.errors import CampaignError

RULE_FIELDS = (
    "state",
    "window",
    "days",
    "holidays",
    "max_per_24h",
    "source",
    "checked",
    "enabled",
    "notes",
)
BLACKOUT_FIELDS = ("states", "from", "until", "reason")
PACK_FIELDS = ("federal", "state_rules")
FEDERAL_FIELDS = ("window", "source", "checked")
WINDOW_FIELDS = ("start", "end")
_STATE = re.compile(r"[A-Z]{2}")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True, slots=True)
class RulePack:
    """The bundled law: the federal quiet hours and the state rule rows."""

    federal: SendWindow
    federal_source: str
    state_rules: tuple[StateRule, ...]


@dataclass(frozen=True, slots=True)
class RowsRead:
    """Rows of a ``state_rules`` list: full rows (and where each is), states only turned off."""

    rules: tuple[StateRule, ...]
    disabled: tuple[str, ...]
    where: tuple[Position, ...] = ()


def looser_than(rule: StateRule, bundled: StateRule) -> list[str]:
    """How ``rule`` allows more than the bundled row it replaces (for a lint warning)."""
    wider: dict[tuple[str, str], list[str]] = {}
    for weekday in range(7):
        mine, law = rule.window_on(weekday), bundled.window_on(weekday)
        if mine is not None and (law is None or not mine.within(law)):
            wider.setdefault((str(mine), str(law or "no texts")), []).append(WEEKDAYS[weekday])
    found = [
        f"{'every day' if len(days) == 7 else ', '.join(days)} {mine} where the bundled row "
        f"allows {law}"
        for (mine, law), days in wider.items()
    ]
    if bundled.holidays and not rule.holidays:
        found.append("texts on state holidays")
    if bundled.max_per_24h is not None and (
        rule.max_per_24h is None or rule.max_per_24h > bundled.max_per_24h
    ):
        found.append(f"a cap of {rule.max_per_24h or 'none'} instead of {bundled.max_per_24h}")
    return found


def window(source: YamlSource, node: yaml.Node, what: str) -> SendWindow | None:
    """``{start: "HH:MM", end: "HH:MM"}`` with end after start."""
    fields = source.mapping(node, what)
    if fields is None:
        return None
    if not source.check_fields(fields, node, what, allowed=WINDOW_FIELDS, required=WINDOW_FIELDS):
        return None
    start = source.time_of_day(fields["start"].value, f"{what} start")
    end = source.time_of_day(fields["end"].value, f"{what} end")
    if start is None or end is None:
        return None
    if end <= start:
        source.error(
            fields["end"].value, f"{what} end {end:%H:%M} must be after its start {start:%H:%M}"
        )
        return None
    return SendWindow(start, end)


def send_window(
    source: YamlSource, node: yaml.Node, what: str, pack: RulePack
) -> SendWindow | None:
    """A send window read from ``node``, or None with an error when it is not one.

    A campaign's or the account's send window never reaches outside the federal
    quiet hours (08:00-21:00, ``pack``'s ``federal`` window and its source;
    see docs/compliance.md).
    """
    window_read = window(source, node, what)
    if window_read is None:
        return None
    if window_read.within(pack.federal):
        return window_read
    source.error(
        node,
        f"{what} {window_read} reaches outside the federal hours {pack.federal} "
        f"(no texts before {pack.federal.start:%H:%M} or from {pack.federal.end:%H:%M} "
        f"local time: {pack.federal_source})",
    )
    return None


def day(source: YamlSource, node: yaml.Node, what: str) -> date | None:
    """A date "YYYY-MM-DD" (quoted or not)."""
    text = node.value if isinstance(node, yaml.ScalarNode) else None
    m = _DATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        source.error(node, f'{what} must be a date "YYYY-MM-DD", got {describe(node)}')
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        source.error(node, f"{what} {text!r} is not a date: {exc}")
        return None


def state_rule_rows(
    source: YamlSource, node: yaml.Node, *, require_source: bool, allow_disable: bool
) -> RowsRead | None:
    """Every row of a ``state_rules`` list; None when any row has a problem."""
    items = source.sequence(node, "state_rules")
    if items is None:
        return None
    rules: list[StateRule] = []
    where: list[Position] = []
    disabled: list[str] = []
    first_line: dict[str, int] = {}
    ok = True
    for index, item in enumerate(items, start=1):
        what = f"state rule {index}"
        fields = source.mapping(item, what)
        if fields is None:
            ok = False
            continue
        off_only = (
            allow_disable
            and set(fields) <= {"state", "enabled", "notes"}
            and "enabled" in fields
            and "state" in fields
        )
        required = ("state",) if off_only else ("state", "window")
        if require_source:
            required = (*required, "source", "checked")
        if not source.check_fields(fields, item, what, allowed=RULE_FIELDS, required=required):
            ok = False
            continue
        state = _state(source, fields["state"].value, f"{what}: state")
        if state is None:
            ok = False
            continue
        if state in first_line:
            source.error(
                fields["state"].value,
                f"{what}: {state} already has a rule (line {first_line[state]})",
            )
            ok = False
            continue
        first_line[state] = source.at(fields["state"].value).line
        if off_only:
            enabled = source.boolean(fields["enabled"].value, f"{what}: enabled")
            if enabled is None:
                ok = False
            elif enabled:
                source.error(
                    fields["enabled"].value,
                    f"{what}: a row with only state and enabled turns a bundled rule off; "
                    "to change the rule give its window too",
                )
                ok = False
            else:
                disabled.append(state)
            continue
        rule = _rule(source, fields, what, state, source.at(item))
        if rule is None:
            ok = False
            continue
        rules.append(rule)
        where.append(source.at(item))
    return RowsRead(tuple(rules), tuple(disabled), tuple(where)) if ok else None


def _state(source: YamlSource, node: yaml.Node, what: str) -> str | None:
    value = source.string(node, what)
    if value is None:
        return None
    if not _STATE.fullmatch(value.strip()):
        source.error(
            node, f"{what} must be a two-letter code in capitals such as FL, got {value!r}"
        )
        return None
    return value.strip()


def _rule(
    source: YamlSource, fields: dict[str, Field], what: str, state: str, where: Position
) -> StateRule | None:
    before = source.error_count
    hours = window(source, fields["window"].value, f"{what}: window")
    days = _days(source, fields["days"].value, what) if _given(fields, "days") else ()
    holidays = (
        source.boolean(fields["holidays"].value, f"{what}: holidays")
        if _given(fields, "holidays")
        else False
    )
    cap = (
        source.integer(fields["max_per_24h"].value, f"{what}: max_per_24h", minimum=1, maximum=1000)
        if _given(fields, "max_per_24h")
        else None
    )
    cited = source.string(fields["source"].value, f"{what}: source") if "source" in fields else None
    checked = (
        day(source, fields["checked"].value, f"{what}: checked") if "checked" in fields else None
    )
    enabled = (
        source.boolean(fields["enabled"].value, f"{what}: enabled")
        if _given(fields, "enabled")
        else True
    )
    notes = (
        source.string(fields["notes"].value, f"{what}: notes", blank_ok=True)
        if _given(fields, "notes")
        else ""
    )
    if source.error_count > before or hours is None or days is None:
        return None
    return StateRule(
        state,
        hours,
        max_per_24h=cap,
        days=days,
        holidays=bool(holidays),
        source=" ".join((cited or f"{source.label}:{where.line}").split()),
        checked=checked,
        enabled=enabled is not False,
        notes=" ".join((notes or "").split()),
    )


def _given(fields: dict[str, Field], name: str) -> bool:
    return name in fields and not is_null(fields[name].value)


def _days(
    source: YamlSource, node: yaml.Node, what: str
) -> tuple[tuple[int, SendWindow | None], ...] | None:
    fields = source.mapping(node, f"{what}: days")
    if fields is None:
        return None
    if not source.check_fields(fields, node, f"{what}: days", allowed=WEEKDAYS):
        return None
    found: list[tuple[int, SendWindow | None]] = []
    ok = True
    for name, item in fields.items():
        label = f"{what}: days: {name}"
        if isinstance(item.value, yaml.ScalarNode) and item.value.value == "none":
            found.append((WEEKDAYS.index(name), None))
            continue
        hours = window(source, item.value, label)
        if hours is None:
            ok = False
            continue
        found.append((WEEKDAYS.index(name), hours))
    return tuple(sorted(found, key=lambda pair: pair[0])) if ok else None


def blackouts(source: YamlSource, node: yaml.Node) -> tuple[Blackout, ...] | None:
    """Every entry of a ``blackouts`` list; None when any has a problem."""
    items = source.sequence(node, "blackouts")
    if items is None:
        return None
    found: list[Blackout] = []
    ok = True
    for index, item in enumerate(items, start=1):
        what = f"blackout {index}"
        fields = source.mapping(item, what)
        if fields is None or not source.check_fields(
            fields, item, what, allowed=BLACKOUT_FIELDS, required=BLACKOUT_FIELDS
        ):
            ok = False
            continue
        before = source.error_count
        states_node = fields["states"].value
        states: list[str] = []
        for state_node in source.sequence(states_node, f"{what}: states") or []:
            state = _state(source, state_node, f"{what}: states")
            if state is not None:
                states.append(state)
        if not states and source.error_count == before:
            source.error(states_node, f"{what}: states must name at least one state")
        start = day(source, fields["from"].value, f"{what}: from")
        until = day(source, fields["until"].value, f"{what}: until")
        reason = source.string(fields["reason"].value, f"{what}: reason")
        if start is not None and until is not None and until < start:
            source.error(fields["until"].value, f"{what}: until {until} is before from {start}")
        if source.error_count > before or start is None or until is None or reason is None:
            ok = False
            continue
        found.append(Blackout(frozenset(states), start, until, " ".join(reason.split())))
    return tuple(found) if ok else None


def merge(bundled: tuple[StateRule, ...], given: RowsRead) -> tuple[StateRule, ...]:
    """The bundled rows with the account's replacements, additions and rows turned off."""
    rules = {rule.state: rule for rule in bundled}
    for state in given.disabled:
        if state in rules:
            rules[state] = replace(rules[state], enabled=False)
    for rule in given.rules:
        rules[rule.state] = rule
    return tuple(rules.values())


def parse_rule_pack(source: YamlSource) -> RulePack | None:
    """The rule pack of ``source``; problems are recorded on ``source``."""
    root = source.compose()
    if root is None:
        return None
    fields = source.mapping(root, "the rule pack")
    if fields is None:
        return None
    if not source.check_fields(
        fields, root, "the rule pack", allowed=PACK_FIELDS, required=PACK_FIELDS
    ):
        return None
    federal_node = fields["federal"].value
    federal = source.mapping(federal_node, "federal")
    if federal is None or not source.check_fields(
        federal, federal_node, "federal", allowed=FEDERAL_FIELDS, required=FEDERAL_FIELDS
    ):
        return None
    hours = window(source, federal["window"].value, "federal: window")
    cited = source.string(federal["source"].value, "federal: source")
    rows = state_rule_rows(
        source, fields["state_rules"].value, require_source=True, allow_disable=False
    )
    if hours is None or cited is None or rows is None or source.error_count:
        return None
    outside = [
        (rule.state, hours_on)
        for rule in rows.rules
        for hours_on in (rule.window_on(weekday) for weekday in range(7))
        if hours_on is not None and not hours_on.within(hours)
    ]
    for state, hours_on in outside:
        source.error(root, f"state rule {state}: {hours_on} is outside the federal {hours}")
    if outside:
        return None
    return RulePack(hours, " ".join(cited.split()), rows.rules)


def load_rule_pack(path: Path | str) -> RulePack:
    """The rule pack at ``path``; ``CampaignError`` lists every located problem."""
    source = YamlSource.read(path)
    pack = parse_rule_pack(source)
    if pack is None or source.errors:
        raise CampaignError(source.errors or [f"{source.label}:1:1: error: not a rule pack"])
    return pack
