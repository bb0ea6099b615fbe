"""Readers for the compliance settings shared by ``account.yaml`` and scenarios.

``frequency_cap: {texts: N, days: D}``: at most N campaign and bulk texts to
one contact in any D days, across campaigns and senders; a text beyond it
waits until it fits (docs/compliance.md).

``retention: {message_bodies_days: N}`` (account.yaml only): ``drip purge``
removes message bodies older than N days; left out, the 4-year limitation
period of 28 U.S.C. 1658(a), 1,461 days (drip/data/retention.json). Errors are located like every
other field's, ``path:line:col: error: message``.
"""

from __future__ import annotations

import yaml

from drip.campaigns.yamlsource import YamlSource, is_null
from drip.domain.frequency import FrequencyCap
from drip.domain.retention import MAX_DAYS, MIN_DAYS, Retention

FREQUENCY_CAP_FIELDS = ("texts", "days")
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
