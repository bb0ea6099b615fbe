"""Create or migrate the database with Alembic, from code, without an ``alembic.ini``.

The migration scripts ship inside the package (``drip/store/migrations``) and
the Alembic ``Config`` is built here with ``script_location`` pointing at
them, so ``drip db upgrade`` works from any directory and from an installed
wheel.

On PostgreSQL the upgrade holds a transaction-level advisory lock, so two
processes starting at once (``migrate`` service and ``drip run``) do not run
the same migration twice: the second waits, then finds nothing to do.

A new revision, for developers (the development database at head first)::

    from alembic import command
    from drip.store.migrate import alembic_config

    command.revision(
        alembic_config(url="sqlite:///dev.db"),
        message="what changes",
        autogenerate=True,
        rev_id="0002",
    )

Review the generated file, write ``server_default``/types as plain SQLAlchemy
types like ``0001_initial.py`` does, and keep
``tests/integration/test_store_migrations.py`` passing (it compares the
migrated schema with the models on both databases).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from drip.errors import StoreError

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "include_object_for",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Key of the PostgreSQL advisory lock held while migrating ("drip" in ASCII).
_ADVISORY_LOCK_KEY = 0x64726970

IncludeObject = Callable[[Any, "str | None", str, bool, Any], bool]


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic ``Config`` for drip's migrations, bound to ``connection`` or ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser interpolation: a literal "%" (URL-encoded passwords) must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def include_object_for(dialect_name: str) -> IncludeObject:
    """An Alembic ``include_object`` hook for ``dialect_name``.

    It leaves out the schema items of the models meant for other databases
    only: they carry ``info={"dialects": (...)}`` (the PostgreSQL partial
    index on pending sends).
    """

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if reflected:
            return True
        dialects = getattr(obj, "info", {}).get("dialects")
        return not dialects or dialect_name in dialects

    return include_object


def head_revision() -> str | None:
    """The newest revision the shipped migration scripts define."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def migration_module(revision: str) -> ModuleType:
    """The module of one shipped migration (Alembic's ``Script.module``): the SQL a
    migration backfilled with, for the command that recounts the same way."""
    script = ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    if script is None:
        raise LookupError(f"no migration {revision}")
    return script.module


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest), creating it from empty."""
    try:
        with _engine(engine_or_url) as engine, engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
            command.upgrade(alembic_config(connection=conn), revision)
    except (SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"database migration to {revision} failed: {exc}") from exc


def current_revision(engine_or_url: Engine | str | URL) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    try:
        with _engine(engine_or_url) as engine, engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database revision: {exc}") from exc


@contextmanager
def _engine(engine_or_url: Engine | str | URL) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    from drip.store.engine import make_engine

    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()
