"""Which schema revision the database is at, and which one drip ships.

Every database command of the CLI checks that the database is at the latest
schema before it runs. The shipped head comes from Alembic's own
``ScriptDirectory`` (the one :mod:`drip.store.migrate` migrates with), read
once per process; the database's revision is the one row of
``alembic_version``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from drip.errors import StoreError

__all__ = ["VERSIONS_DIR", "database_revision", "migrations_digest", "shipped_head"]

VERSIONS_DIR = Path(__file__).resolve().parent / "migrations" / "versions"
#: Alembic's default version table (drip's env.py does not rename it).
VERSION_TABLE = "alembic_version"


@cache
def shipped_head() -> str | None:
    """The newest revision of the shipped migrations (what ``drip db upgrade`` reaches).

    Alembic's answer (``ScriptDirectory.get_current_head``), so a merge or a
    branch is read as Alembic reads it; several heads raise Alembic's error.
    """
    from drip.store.migrate import head_revision  # Alembic: only for commands that check

    return head_revision()


def migrations_digest() -> str:
    """A short digest of the shipped migration files' contents (a cache key for schemas)."""
    digest = hashlib.sha256()
    for path in sorted(VERSIONS_DIR.glob("*.py")):
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
