"""Reading one field of a scenario file: optional fields, ``day N HH:MM`` and UTC times.

:class:`FieldReader` is what the readers of the scenario, its events and its
expectations share: each reports a problem on the :class:`YamlSource`, located
at the node it is about, and gives None for what it could not read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import TypeVar

import yaml

from drip.campaigns.yamlsource import STR, Field, YamlSource, describe, is_null
from drip.replay.scenario.format import DAY_TIME, MAX_DAY, START, TIMESTAMP
from drip.replay.scenario.values import DayTime

T = TypeVar("T")


class FieldReader:
    """The reading of one field at a time, shared by the scenario's readers."""

    def __init__(self, source: YamlSource) -> None:
        self.source = source

    def _opt(
        self, fields: dict[str, Field], name: str, read: Callable[[yaml.Node], T | None]
    ) -> T | None:
        item = fields.get(name)
        if item is None or is_null(item.value):
            return None
        return read(item.value)

    def _day_time(self, node: yaml.Node, what: str) -> DayTime | None:
        text = node.value if isinstance(node, yaml.ScalarNode) and node.tag == STR else None
        m = DAY_TIME.fullmatch(text.strip()) if text is not None else None
        if m is None:
            self.source.error(
                node, f'{what} must be "day N" or "day N HH:MM", got {describe(node)}'
            )
            return None
        day = int(m.group(1))
        if day > MAX_DAY:
            self.source.error(node, f"{what}: day must be at most {MAX_DAY}, got {day}")
            return None
        if m.group(2) is None:
            return DayTime(day)
        hour, minute = int(m.group(2)), int(m.group(3))
        if hour > 23 or minute > 59:
            self.source.error(
                node, f'{what}: "{m.group(2)}:{m.group(3)}" is not a time of day (00:00 to 23:59)'
            )
            return None
        return DayTime(day, time(hour, minute))

    def _utc(self, node: yaml.Node, what: str) -> datetime | None:
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        m = START.fullmatch(text.strip()) if isinstance(text, str) else None
        if m is None or node.tag not in (STR, TIMESTAMP):
            self.source.error(
                node, f'{what} must be a UTC time "YYYY-MM-DD HH:MM", got {describe(node)}'
            )
            return None
        year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
        try:
            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        except ValueError as exc:
            self.source.error(node, f"{what} {text!r} is not a date and time: {exc}")
            return None
