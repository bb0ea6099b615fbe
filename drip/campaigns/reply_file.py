"""``on_reply`` and ``resume_after`` of a campaign file, each problem located on its node.

``on_reply: stop | pause | continue`` (default ``continue``; ``stop_on_reply: true``
is the older spelling of ``stop``); ``resume_after`` (a span such as ``7d``,
``36h``, ``30m``; default 7 days) goes only with ``pause``. See docs/campaigns.md.
"""

from __future__ import annotations

from datetime import timedelta

import yaml

from drip.campaigns.triggers_file import COOLDOWN
from drip.campaigns.yamlsource import Field, YamlSource, describe, is_null
from drip.domain.campaign import DEFAULT_RESUME_AFTER, OnReply


def _opt_choice(source: YamlSource, fields: dict[str, Field], words: tuple[str, ...]) -> str | None:
    item = fields.get("on_reply")
    if item is None or is_null(item.value):
        return None
    return source.choice(item.value, "on_reply", words)


def read_on_reply(
    source: YamlSource, fields: dict[str, Field], stop_on_reply: bool | None
) -> tuple[OnReply, timedelta]:
    """``on_reply`` and ``resume_after``, each problem located on its own node."""
    words = tuple(m.value for m in OnReply)
    word = _opt_choice(source, fields, words)
    action = OnReply(word) if word else (OnReply.STOP if stop_on_reply else OnReply.CONTINUE)
    if word and stop_on_reply and action is not OnReply.STOP:
        source.error(
            fields["stop_on_reply"].key,
            f"stop_on_reply: true contradicts on_reply: {word} (keep one of them)",
        )
    span = DEFAULT_RESUME_AFTER
    item = fields.get("resume_after")
    if item is not None and not is_null(item.value):
        node = item.value
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        m = COOLDOWN.fullmatch(text.strip()) if isinstance(text, str) else None
        if m is None:
            source.error(
                node, f"resume_after must be a span such as 7d, 12h or 30m, got {describe(node)}"
            )
        else:
            unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
            span = timedelta(**{unit: int(m.group(1))})
            if not timedelta(minutes=1) <= span <= timedelta(days=3650):
                source.error(node, "resume_after must be from 1m to 3650d")
                span = DEFAULT_RESUME_AFTER
        if action is not OnReply.PAUSE:
            source.error(item.key, f"resume_after belongs with on_reply: pause (this is {action})")
    return action, span
