"""Readers for the compliance settings shared by ``account.yaml`` and scenarios.

``frequency_cap: {texts: N, days: D}``: at most N campaign and bulk texts to
one contact in any D days, across campaigns and senders; a text beyond it
waits until it fits. ``reassigned_numbers: {enabled, max_age_days,
on_unknown}``: the reassigned-numbers check before campaign and bulk texts
on consent older than ``max_age_days`` (docs/compliance.md).

``retention: {message_bodies_days: N}`` (account.yaml only): ``drip purge``
removes message bodies older than N days; left out, the 4-year limitation
period of 28 U.S.C. 1658(a), 1,461 days (drip/data/retention.json). Errors are
located like every other field's, ``path:line:col: error: message``.
"""

from __future__ import annotations

import yaml

from drip.campaigns.yamlsource import YamlSource, is_null
from drip.domain.frequency import FrequencyCap
from drip.domain.reassigned_settings import MAX_AGE_DAYS_LIMIT, ON_UNKNOWN, ReassignedNumbers
from drip.domain.retention import MAX_DAYS, MIN_DAYS, Retention

FREQUENCY_CAP_FIELDS = ("texts", "days")
REASSIGNED_FIELDS = ("enabled", "max_age_days", "on_unknown")
RETENTION_FIELDS = ("message_bodies_days",)
#: Beyond a year a cap is a configuration mistake, and the gather reads that far back.
MAX_CAP_DAYS = 366


def frequency_cap(source: YamlSource, node: yaml.Node) -> FrequencyCap | None:
    """The ``frequency_cap`` mapping, or None (an error is recorded) when it is not valid."""
    what = "frequency_cap"
    if is_null(node):
        return None
    fields = source.mapping(node, what)
    if fields is None:
        return None
    if not source.check_fields(
        fields, node, what, allowed=FREQUENCY_CAP_FIELDS, required=FREQUENCY_CAP_FIELDS
    ):
        return None
    texts = source.integer(fields["texts"].value, f"{what}: texts", minimum=1, maximum=10_000)
    days = source.integer(fields["days"].value, f"{what}: days", minimum=1, maximum=MAX_CAP_DAYS)
    if texts is None or days is None:
        return None
    return FrequencyCap(texts=texts, days=days)


def retention(source: YamlSource, node: yaml.Node) -> Retention | None:
    """The ``retention`` mapping, or None (an error is recorded) when it is not valid."""
    what = "retention"
    if is_null(node):
        return None
    fields = source.mapping(node, what)
    if fields is None:
        return None
    if not source.check_fields(fields, node, what, allowed=RETENTION_FIELDS):
        return None
    item = fields.get("message_bodies_days")
    if item is None:
        return Retention()
    days = source.integer(
        item.value, f"{what}: message_bodies_days", minimum=MIN_DAYS, maximum=MAX_DAYS
    )
    if days is None:
        return None
    return Retention(message_bodies_days=days)


def reassigned_numbers(source: YamlSource, node: yaml.Node) -> ReassignedNumbers | None:
    """The ``reassigned_numbers`` mapping, or None (an error is recorded) when it is not valid."""
    what = "reassigned_numbers"
    if is_null(node):
        return ReassignedNumbers()
    fields = source.mapping(node, what)
    if fields is None:
        return None
    if not source.check_fields(fields, node, what, allowed=REASSIGNED_FIELDS, required=()):
        return None
    defaults = ReassignedNumbers()
    enabled: bool | None = defaults.enabled
    max_age: int | None = defaults.max_age_days
    on_unknown: str | None = defaults.on_unknown
    if "enabled" in fields:
        enabled = source.boolean(fields["enabled"].value, f"{what}: enabled")
    if "max_age_days" in fields:
        max_age = source.integer(
            fields["max_age_days"].value,
            f"{what}: max_age_days",
            minimum=1,
            maximum=MAX_AGE_DAYS_LIMIT,
        )
    if "on_unknown" in fields:
        on_unknown = source.choice(fields["on_unknown"].value, f"{what}: on_unknown", ON_UNKNOWN)
    if enabled is None or max_age is None or on_unknown is None:
        return None
    return ReassignedNumbers(enabled=enabled, max_age_days=max_age, on_unknown=on_unknown)
