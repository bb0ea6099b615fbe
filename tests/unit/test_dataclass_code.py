"""Dataclass methods compiled once and kept between processes: the same classes, compiled again when needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each probe runs in a fresh interpreter: install() changes the dataclasses module
# of the process it runs in, which must not be the test process.
PROBE = """
import dataclasses, json, sys
from drip import dataclass_code
dataclass_code.install()

@dataclasses.dataclass(frozen=True, slots=True, order=True)
class Point:
    x: int
    y: "int" = 2
    tags: tuple[str, ...] = ()

p = Point(1)
try:
    p.x = 5
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
print(json.dumps({
    "repr": repr(p),
    "eq": p == Point(1, 2),
    "lt": Point(0) < p,
    "hash": hash(p) == hash(Point(1, 2)),
    "frozen": frozen,
    "init_annotations": {k: str(v) for k, v in Point.__init__.__annotations__.items()},
    "file": Point.__init__.__code__.co_filename,
    "compiled": dataclass_code._compiled,
}))
"""


def _probe(cache: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = str(cache)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _plain() -> dict[str, object]:
    """What the probe's class looks like without install() (compiled by dataclasses itself)."""
    env = dict(os.environ)
    probe = PROBE.replace("dataclass_code.install()", "").replace(
        "dataclass_code._compiled", "False"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_the_second_process_compiles_nothing_and_gets_the_same_class(cache: Path) -> None:
    """The first process compiles and keeps the methods; the next reuses them, same behaviour."""
    first = _probe(cache)
    second = _probe(cache)
    plain = _plain()
    assert first["compiled"] is True
    assert second["compiled"] is False
    assert len(list((cache / "drip").glob("dataclass-code-*.marshal"))) == 1
    for result in (first, second):
        assert {k: v for k, v in result.items() if k != "compiled"} == {
            k: v for k, v in plain.items() if k != "compiled"
        }
    # Annotations are objects, as dataclasses makes them (not strings from a __future__ flag).
    assert plain["init_annotations"] == {
        "x": "<class 'int'>",
        "y": "int",
        "tags": "tuple[str, ...]",
        "return": "None",
    }
    assert plain["repr"] == "Point(x=1, y=2, tags=())"
    assert plain["frozen"] is True


def test_a_corrupt_cache_file_is_compiled_again(cache: Path) -> None:
    """A truncated or foreign file in the cache folder is ignored and replaced."""
    _probe(cache)
    (kept,) = (cache / "drip").glob("dataclass-code-*.marshal")
    kept.write_bytes(b"\x00not marshal")
    result = _probe(cache)
    assert result["compiled"] is True
    assert result["repr"] == "Point(x=1, y=2, tags=())"
    assert _probe(cache)["compiled"] is False


def test_an_unwritable_cache_folder_only_means_compiling_every_time(cache: Path) -> None:
    """When the cache folder cannot be made, every process compiles, silently."""
    cache.write_text("a file where the cache folder should be")
    for _ in range(2):
        result = _probe(cache)
        assert result["compiled"] is True
        assert result["eq"] is True


def test_a_file_others_may_write_is_not_run(cache: Path) -> None:
    """A kept file that is group- or world-writable is ignored: its code is compiled afresh."""
    _probe(cache)
    (kept,) = (cache / "drip").glob("dataclass-code-*.marshal")
    kept.chmod(0o666)
    assert _probe(cache)["compiled"] is True
