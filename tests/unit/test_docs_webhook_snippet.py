"""The receiver's signature check shown in docs/operations.md is the one the webhook tests run."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _code(text: str) -> str:
    """The text without comments or blank lines, so only a change of code counts."""
    lines = (re.sub(r"\s*#.*$", "", line).rstrip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def test_the_documented_verify_is_the_tested_snippet() -> None:
    """docs/operations.md's Python block with ``def verify`` is tests/integration/webhook_receiver_snippet.py."""
    page = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    shown = next(block for block in blocks if "def verify(" in block)
    snippet = (REPO / "tests" / "integration" / "webhook_receiver_snippet.py").read_text("utf-8")
    assert _code(shown) == _code(snippet)
