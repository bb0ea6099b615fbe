"""``webhooks:`` in account.yaml: where drip posts its events, each problem located.

    webhooks:
      - name: crm                      # optional; default: the URL's host
        url: https://crm.example.com/drip
        events: [reply.received, contact.opted_out]
        secret_env: DRIP_WEBHOOK_SECRET_CRM

The URL must be http or https here; that it is https outside embedded mode
(``drip run``) is checked where the delivery loop starts, with the webhook's name.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yaml

from drip.campaigns.yamlsource import YamlSource, describe
from drip.domain.account import WEBHOOK_EVENTS, WebhookTarget

WEBHOOK_FIELDS = ("name", "url", "events", "secret_env")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def read_webhooks(source: YamlSource, node: yaml.Node) -> tuple[WebhookTarget, ...] | None:
    """The webhooks of ``node`` (a list of mappings), or None after recording the problems."""
    items = source.sequence(node, "webhooks")
    if items is None:
        return None
    before = source.error_count
    out: list[WebhookTarget] = []
    for number, item in enumerate(items, 1):
        what = f"webhooks {number}"
        fields = source.mapping(item, what)
        if fields is None:
            continue
        source.check_fields(
            fields, item, what, allowed=WEBHOOK_FIELDS, required=("url", "events", "secret_env")
        )
        url = source.string(fields["url"].value, f"{what} url") if "url" in fields else None
        if url is not None:
            parts = urlsplit(url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                source.error(fields["url"].value, f"{what} url must be an http(s) URL, got {url!r}")
                url = None
        name = source.string(fields["name"].value, f"{what} name") if "name" in fields else None
        if url is not None and not name:
            name = urlsplit(url.strip()).hostname
        events = _events(source, fields["events"].value, what) if "events" in fields else None
        env = None
        if "secret_env" in fields:
            env = source.string(fields["secret_env"].value, f"{what} secret_env")
            if env is not None and not _ENV_NAME.fullmatch(env):
                source.error(
                    fields["secret_env"].value,
                    f"{what} secret_env must be an environment variable name, got {env!r}",
                )
                env = None
        if url and name and events and env:
            out.append(WebhookTarget(name.strip(), url.strip(), events, env))
    names = [w.name for w in out]
    for w in out:
        if names.count(w.name) > 1:
            source.error(node, f"webhooks: two webhooks are named {w.name!r}; give each a name")
            break
    return tuple(out) if source.error_count == before else None


def _events(source: YamlSource, node: yaml.Node, what: str) -> frozenset[str] | None:
    items = node.value if isinstance(node, yaml.SequenceNode) else None
    if not items:
        source.error(node, f"{what} events must be a list of event types, got {describe(node)}")
        return None
    found: set[str] = set()
    for item in items:
        word = source.string(item, f"{what} events")
        if word is None:
            continue
        if word not in WEBHOOK_EVENTS:
            source.error(
                item, f"{what}: unknown event {word!r}; events are: {', '.join(WEBHOOK_EVENTS)}"
            )
            continue
        found.add(word)
    return frozenset(found) if len(found) == len(items) else None
