"""Readers for the compliance settings shared by ``account.yaml`` and scenarios.

``frequency_cap: {texts: N, days: D}``: at most N campaign and bulk texts to
one contact in any D days, across campaigns and senders; a text beyond it
waits until it fits (docs/compliance.md). Errors are located like every
other field's, ``path:line:col: error: message``.
"""

from __future__ import annotations

import yaml

from drip.campaigns.yamlsource import YamlSource, is_null
from drip.domain.frequency import FrequencyCap

FREQUENCY_CAP_FIELDS = ("texts", "days")
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
