"""Links and opt-out wording in texts: what campaign, account and bulk texts are checked for.

Split from :mod:`drip.campaigns.loader` so that reading ``account.yaml`` (every
command) does not import the campaign loader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["Link", "find_links", "link_shorteners", "mentions_opt_out", "shortener_of"]

_OPT_OUT_KEYWORD = re.compile(
    r"\b(STOP|STOPALL|UNSUBSCRIBE|CANCEL|END|QUIT|REVOKE|OPTOUT|OPT OUT)\b", re.IGNORECASE
)
_LINK = re.compile(
    r"(?<![\w@.\-/])"
    r"(?:(?P<scheme>[a-z][a-z0-9+.\-]*)://)?"
    r"(?P<host>(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z](?:[a-z0-9\-]*[a-z0-9])?)"
    r"(?![\w\-@])"
    r"(?::\d+)?(?:[/?#]\S*)?",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)]}'\""


# -- links ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Link:
    """A link found in a text: ``text`` as written, from ``offset``, and its host."""

    offset: int
    text: str
    host: str
    scheme: str | None


def find_links(text: str) -> list[Link]:
    """Every link of ``text``, with or without a scheme (``bit.ly/x`` counts)."""
    links: list[Link] = []
    for m in _LINK.finditer(text):
        written = m.group(0).rstrip(_TRAILING)
        scheme = m.group("scheme")
        host = m.group("host").lower().rstrip(".")
        links.append(Link(m.start(), written, host, scheme.lower() if scheme else None))
    return links


@cache
def link_shorteners() -> frozenset[str]:
    """The known link-shortener domains, from ``drip/data/link_shorteners.txt``."""
    data = (Path(__file__).parents[1] / "data" / "link_shorteners.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower()
        for line in data.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def shortener_of(host: str) -> str | None:
    """The shortener domain ``host`` belongs to (itself or a subdomain), else None."""
    host = host.lower().rstrip(".")
    for domain in link_shorteners():
        if host == domain or host.endswith("." + domain):
            return domain
    return None


def mentions_opt_out(text: str) -> bool:
    """Whether ``text`` names a STOP-family keyword a contact can reply with."""
    return _OPT_OUT_KEYWORD.search(text) is not None
