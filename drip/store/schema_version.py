"""Which schema revision the database is at, and which one drip ships: without Alembic.

Every database command of the CLI checks that the database is at the latest
schema before it runs. Asking Alembic costs about 0.3 s of imports and script
loading per command (``ScriptDirectory`` executes every migration file), while
the answer is one row of ``alembic_version`` and the ``revision`` /
``down_revision`` lines of the shipped migration files. This module reads
those directly; :mod:`drip.store.migrate` (Alembic) stays the one that
migrates, and :func:`shipped_head` falls back to it when the files are not the
plain single chain it can read (a merge, a branch, an unreadable line).

The result of reading the files is cached per process, keyed by their names,
sizes and modification times.
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from drip.errors import StoreError

__all__ = ["VERSIONS_DIR", "database_revision", "migrations_digest", "shipped_head"]

VERSIONS_DIR = Path(__file__).resolve().parent / "migrations" / "versions"
#: Alembic's default version table (drip's env.py does not rename it).
VERSION_TABLE = "alembic_version"

_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*(.+?)\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(.+?)\s*$", re.MULTILINE)


def _files() -> tuple[Path, ...]:
    return tuple(sorted(VERSIONS_DIR.glob("*.py")))


def _stamp(files: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    return tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)


def shipped_head() -> str | None:
    """The newest revision of the shipped migrations (what ``drip db upgrade`` reaches)."""
    files = _files()
    head = _head_of(_stamp(files))
    if head is not None:
        return head
    from drip.store.migrate import head_revision  # not a plain chain: ask Alembic

    return head_revision()


@cache
def _head_of(stamp: tuple[tuple[str, int, int], ...]) -> str | None:
    """The single head of the chain in the files ``stamp`` names, or None if unsure."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for name, _size, _mtime in stamp:
        source = (VERSIONS_DIR / name).read_text(encoding="utf-8")
        revision = _literal(_REVISION, source)
        down = _literal(_DOWN_REVISION, source, optional=True)
        if not isinstance(revision, str):
            return None
        if isinstance(down, str):
            parents.add(down)
        elif down is not None:
            return None  # a merge point: leave it to Alembic
        revisions.add(revision)
    heads = revisions - parents
    if len(heads) != 1 or not parents <= revisions:
        return None
    return heads.pop()


class _Unreadable:
    """A ``revision``/``down_revision`` line this module cannot read as a literal."""


def _literal(pattern: re.Pattern[str], source: str, *, optional: bool = False) -> object:
    found = pattern.findall(source)
    if len(found) != 1:
        return None if optional and not found else _Unreadable()
    try:
        return ast.literal_eval(found[0])
    except (ValueError, SyntaxError):
        return _Unreadable()


def migrations_digest() -> str:
    """A short digest of the shipped migration files' contents (a cache key for schemas)."""
    digest = hashlib.sha256()
    for path in _files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def database_revision(engine: Engine) -> str | None:
    """The revision the database is at (one query), or None for a database never migrated."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database revision: {exc}") from exc
    if len(rows) > 1:
        raise StoreError(f"the database is at several revisions at once: {', '.join(rows)}")
    return str(rows[0]) if rows else None
