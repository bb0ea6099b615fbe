"""Reading a campaign's ``triggers``, ``exit``, ``group``, ``priority`` and ``reenroll``.

Each problem is located (``path:line:col: error: message``) like every other
campaign problem: an unknown event type, a field a ``where`` cannot name for
that type, a bad ``cooldown`` (``7d``, ``12h``, ``30m``), a ``cooldown`` on an
exit. The rules are frozen into :class:`~drip.domain.triggers.Automation`.
What each field means is in docs/campaigns.md.
"""

from __future__ import annotations

import re
from datetime import timedelta

import yaml

from drip.campaigns.yamlsource import STR, Field, YamlSource, describe, is_null
from drip.domain.triggers import EVENT_TYPES, Automation, Condition, Rule, where_fields

AUTOMATION_FIELDS = ("triggers", "exit", "group", "priority", "reenroll")
RULE_FIELDS = ("on", "where", "cooldown")
COOLDOWN = re.compile(r"(\d+)\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
MAX_PRIORITY = 1_000_000
MAX_COOLDOWN = timedelta(days=3650)


def read_automation(source: YamlSource, fields: dict[str, Field]) -> Automation | None:
    """The campaign's automation (empty when it declares none); None after an error."""
    before = source.error_count
    triggers = _rules(source, fields.get("triggers"), "triggers", cooldown=True)
    exits = _rules(source, fields.get("exit"), "exit", cooldown=False)
    group: str | None = None
    item = fields.get("group")
    if item is not None and not is_null(item.value):
        group = source.string(item.value, "group")
        if group is not None:
            group = group.strip()
            if not group or any(ch.isspace() for ch in group):
                source.error(item.value, "group must be one word, e.g. new-lead")
    priority = 0
    item = fields.get("priority")
    if item is not None and not is_null(item.value):
        priority = (
            source.integer(item.value, "priority", minimum=-MAX_PRIORITY, maximum=MAX_PRIORITY) or 0
        )
        if "group" not in fields:
            source.error(item.key, "priority only means something with a group")
    reenroll = False
    item = fields.get("reenroll")
    if item is not None and not is_null(item.value):
        reenroll = bool(source.boolean(item.value, "reenroll"))
    if source.error_count > before:
        return None
    return Automation(tuple(triggers), tuple(exits), group, priority, reenroll)


def _rules(source: YamlSource, item: Field | None, what: str, *, cooldown: bool) -> list[Rule]:
    if item is None or is_null(item.value):
        return []
    nodes = source.sequence(item.value, what)
    if nodes is None:
        return []
    out: list[Rule] = []
    for number, node in enumerate(nodes, 1):
        rule = _rule(source, node, f"{what} {number}", cooldown=cooldown)
        if rule is not None:
            out.append(rule)
    return out


def _rule(source: YamlSource, node: yaml.Node, what: str, *, cooldown: bool) -> Rule | None:
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            # YAML 1.1 reads a bare ``on`` as a boolean; here it is the field's name.
            if isinstance(key, yaml.ScalarNode) and key.tag.endswith(":bool") and key.value == "on":
                key.tag = STR
    fields = source.mapping(node, what)
    if fields is None:
        return None
    allowed = RULE_FIELDS if cooldown else ("on", "where")
    if not source.check_fields(fields, node, what, allowed=allowed, required=("on",)):
        if "cooldown" in fields and not cooldown:
            source.error(fields["cooldown"].key, f"{what}: a cooldown belongs on a trigger")
        return None
    on = source.choice(fields["on"].value, f"{what} on", EVENT_TYPES)
    if on is None:
        return None
    where: list[Condition] = []
    if "where" in fields and not is_null(fields["where"].value):
        conditions = source.mapping(fields["where"].value, f"{what} where")
        if conditions is None:
            return None
        allowed_fields = where_fields(on)
        for name, cond in conditions.items():
            if name not in allowed_fields:
                source.error(
                    cond.key,
                    f"{what}: {on} has no field {name!r}; a where may name: "
                    + ", ".join(allowed_fields),
                )
                continue
            values = _values(source, cond.value, f"{what} where {name}")
            if values is not None:
                where.append(Condition(name, values))
    span: timedelta | None = None
    if "cooldown" in fields and not is_null(fields["cooldown"].value):
        span = _cooldown(source, fields["cooldown"].value, f"{what} cooldown")
    return Rule(on, tuple(where), span)


def _values(source: YamlSource, node: yaml.Node, what: str) -> tuple[str, ...] | None:
    if isinstance(node, yaml.SequenceNode):
        words: list[str] = []
        for item in node.value:
            word = _word(source, item, what)
            if word is None:
                return None
            words.append(word)
        if not words:
            source.error(node, f"{what}: give at least one value")
            return None
        return tuple(words)
    word = _word(source, node, what)
    return (word,) if word is not None else None


def _word(source: YamlSource, node: yaml.Node, what: str) -> str | None:
    if not isinstance(node, yaml.ScalarNode) or is_null(node):
        source.error(node, f"{what}: expected a word or a list of words, got {describe(node)}")
        return None
    text = str(node.value).strip()
    if not text:
        source.error(node, f"{what}: a value must not be empty")
        return None
    return text


def _cooldown(source: YamlSource, node: yaml.Node, what: str) -> timedelta | None:
    text = node.value if isinstance(node, yaml.ScalarNode) else None
    m = COOLDOWN.fullmatch(text.strip()) if isinstance(text, str) else None
    if m is None:
        source.error(node, f"{what} must be a span such as 7d, 12h or 30m, got {describe(node)}")
        return None
    span = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if not timedelta(minutes=1) <= span <= MAX_COOLDOWN:
        source.error(node, f"{what} must be from 1m to 3650d")
        return None
    return span
