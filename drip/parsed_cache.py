"""Parsed data files kept between processes (start-up time).

Every command reads ``account.yaml`` and most look up an area code; parsing
them (the YAML reader with positions, the text checks, the bundled rule pack,
the area code table and its corrections) cost about as much as the rest of
``drip history`` together. What a parse gives is kept in the user's cache
folder (``$XDG_CACHE_HOME/drip``, else ``~/.cache/drip``, beside the replay
template), named by a digest of the input bytes and of drip's data and parser
files (name, size and modification time of everything in ``drip/campaigns``,
``drip/domain``, ``drip/rules`` and ``drip/data``), so an edited file or an
upgraded drip parses again. A parse that raises keeps nothing: a bad file
reports its located problems every time, as before. Without a writable cache
folder everything is parsed every time.

The cache holds pickles this user wrote into this user's cache folder,
readable by this user only (``mkstemp``); anything unreadable there is
ignored and replaced.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: How many parsed versions of one kind stay in the cache folder.
KEEP_VERSIONS = 8
#: The folders whose files a parse depends on, relative to the drip package.
_PARSER_FOLDERS = ("campaigns", "domain", "rules", "data")


def cache_dir() -> Path:
    """Where drip keeps what it can rebuild: ``$XDG_CACHE_HOME/drip`` or ``~/.cache/drip``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "drip"


def _code_stamp() -> bytes:
    package = Path(__file__).resolve().parent
    parts = [sys.version]
    for folder in _PARSER_FOLDERS:
        with os.scandir(package / folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_file():
                    stat = entry.stat()
                    parts.append(f"{folder}/{entry.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(parts).encode()


def cache_key(content: bytes) -> str:
    """The digest naming what was parsed from these bytes by this drip."""
    digest = hashlib.sha256(_code_stamp())
    digest.update(b"\0")
    digest.update(content)
    return digest.hexdigest()[:24]


def load_cached(kind: str, content: bytes, parse: Callable[[], T], expected: type[T]) -> T:
    """``parse()``, or what it gave last time for the same ``content`` (an ``expected``)."""
    try:
        folder = cache_dir()
        kept = folder / f"{kind}-{cache_key(content)}.pickle"
    except (OSError, RuntimeError):  # RuntimeError: no home folder to find
        return parse()
    try:
        with kept.open("rb") as fh:
            found = pickle.load(fh)  # noqa: S301  (this user's own file, see above)
    except Exception:  # missing, truncated or from another drip: parse again
        found = None
    if isinstance(found, expected):
        return found
    value = parse()  # raises on a bad file: nothing is kept
    _keep(folder, kind, kept, value)
    return value


def _keep(folder: Path, kind: str, kept: Path, value: object) -> None:
    import tempfile  # only when writing: tempfile imports shutil and random

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{kind}-", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, kept)
        # A few versions per kind (several checkouts or campaign folders), the newest.
        versions = sorted(
            folder.glob(f"{kind}-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for old in versions[KEEP_VERSIONS:]:
            old.unlink(missing_ok=True)
    except OSError:
        return  # a read-only or full cache folder: parse every time
