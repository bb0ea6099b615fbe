"""What users and QA read points to the project's own docs, never to a SPEC section.

The README, ``docs/``, everything under ``drip/`` (help texts, messages,
docstrings, comments, data files), the campaigns and the scenario files are
scanned for the word ``SPEC`` and the section sign; every ``docs/PAGE.md#anchor``
they cite must name a page and a heading that exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import takewhile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"\bSPEC\b|§")
DOCS_LINK = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")
#: Its example block is the contract's text verbatim (a replay test compares
#: them), so only its header comment is the project's own words.
SEED = ROOT / "tests" / "scenarios" / "seed_never_replies.yaml"


def _text_files() -> Iterator[Path]:
    yield ROOT / "README.md"
    yield from sorted((ROOT / "docs").glob("*.md"))
    for folder in ("drip", "campaigns", "tests/scenarios"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                yield path


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if b"\0" in data:
        return []  # binary (an image)
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return []
    if path == SEED:
        return list(takewhile(lambda line: line.startswith("#"), lines))
    return lines


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    lines = page.read_text(encoding="utf-8").splitlines()
    return {_slug(line.lstrip("#")) for line in lines if line.startswith("#")}


def test_nothing_cites_a_spec_section() -> None:
    """No README, docs, drip, campaign or scenario line says SPEC or carries a section sign."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _text_files()
        for number, line in enumerate(_lines(path), start=1)
        if CITATION.search(line)
    ]
    assert found == [], "\n".join(found)


def test_the_scan_sees_a_citation_where_there_is_one() -> None:
    """The pattern catches the forms the old texts used and spares words that merely contain SPEC."""
    for cited in ("(SPEC §4a)", "SPEC C3:", "see §2", "the SPEC's words"):
        assert CITATION.search(cited), cited
    for clean in ("CAN-SPAM", "SPECIFIC", "a spec file", "docs/compliance.md#consent"):
        assert not CITATION.search(clean), clean


def test_every_docs_anchor_cited_exists() -> None:
    """Each docs/PAGE.md#anchor cited in the scanned files names a heading of that page."""
    anchors = {page.name: _anchors(page) for page in (ROOT / "docs").glob("*.md")}
    broken = [
        f"{path.relative_to(ROOT)}:{number}: docs/{page}#{anchor}"
        for path in _text_files()
        for number, line in enumerate(_lines(path), start=1)
        for page, anchor in DOCS_LINK.findall(line)
        if anchor not in anchors.get(page, set())
    ]
    assert broken == [], "\n".join(broken)
    assert _slug("Load it: `drip sync`") == "load-it-drip-sync"
    assert _slug("The carrier's clock") == "the-carriers-clock"
