"""House rules a reader of the code relies on: short modules, no hand-built infrastructure."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 700
#: Names that mean hand-built infrastructure or a library's internals (issue 21):
#: raw sockets, fd passing, logging dispatch, SQLAlchemy compiler internals, pickle.
FORBIDDEN = ("socket.socket", "SCM_RIGHTS", "callHandlers", "bind_names", "pickle", "PopulateDict")


def _sources(*folders: str) -> list[Path]:
    return sorted(
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    )


def test_no_module_over_700_lines() -> None:
    """No Python module under drip/ or workers/ is longer than 700 lines."""
    long = {
        str(path.relative_to(ROOT)): length
        for path in _sources("drip", "workers")
        if (length := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


@pytest.mark.parametrize("name", FORBIDDEN)
def test_no_forbidden_name_in_drip(name: str) -> None:
    """The name appears in no file under drip/ (code, templates or data)."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "drip").rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".png"
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1
        )
        if name in line
    ]
    assert found == []
