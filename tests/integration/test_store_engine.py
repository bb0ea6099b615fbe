"""Engines: SQLite connection settings and transactions, error translation, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from drip.domain.enums import ConsentSource
from drip.errors import StoreError
from drip.store.engine import (
    PREPARE_THRESHOLD,
    SQLITE_BEGIN_OPTION,
    make_engine,
    safe_url,
    session_factory,
)
from drip.store.migrate import upgrade
from drip.store.models import Contact, OrphanOptOut

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite engine, for the tests about SQLite's own behaviour."""
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def test_sqlite_connections_are_configured(sqlite_engine: Engine) -> None:
    """Every SQLite connection has WAL, a 30 s busy timeout and foreign keys on."""
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_reads_are_transactional(sqlite_engine: Engine) -> None:
    """A read-only SQLite transaction keeps its snapshot: BEGIN is emitted before a SELECT."""
    factory = session_factory(sqlite_engine)
    count = select(func.count()).select_from(OrphanOptOut)
    with factory() as reader, factory() as writer:
        assert reader.scalar(count) == 0
        writer.add(OrphanOptOut(phone="+16175550100", at=NOW, keyword="STOP"))
        writer.commit()
        assert reader.scalar(count) == 0  # same transaction, same snapshot
        reader.commit()
        assert reader.scalar(count) == 1


def test_sqlite_begin_immediate_takes_the_write_lock_at_once(
    sqlite_engine: Engine, sqlite_url: str
) -> None:
    """A BEGIN IMMEDIATE transaction holds the write lock before writing anything."""
    impatient = make_engine(sqlite_url)
    try:
        with sqlite_engine.connect() as holder:
            holder.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with holder.begin():
                holder.exec_driver_sql("SELECT 1")  # nothing written yet
                with impatient.connect() as other:
                    other.exec_driver_sql("PRAGMA busy_timeout = 50")
                    with pytest.raises(OperationalError, match="locked"):
                        other.execute(text("DELETE FROM orphan_optouts"))
    finally:
        impatient.dispose()


def test_unreachable_database_raises_store_error(backend: str, tmp_path: Path) -> None:
    """A database that cannot be opened raises StoreError naming it, with the cause kept."""
    url = (
        f"sqlite:///{tmp_path / 'missing-dir' / 'drip.db'}"
        if backend == "sqlite"
        else "postgresql+psycopg://postgres:secret@127.0.0.1:1/nowhere"
    )
    engine = make_engine(url)
    try:
        with pytest.raises(StoreError) as info, engine.connect():
            pass
        assert info.value.__cause__ is not None
        assert "secret" not in str(info.value)
        assert "unreachable" in str(info.value)
    finally:
        engine.dispose()


def test_ctrl_c_inside_a_statement_is_not_an_unreachable_database(tmp_path: Path) -> None:
    """A KeyboardInterrupt raised while a statement runs reaches the caller as itself."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ctrl-c.db'}")

    @event.listens_for(engine, "before_cursor_execute")
    def _interrupt(*_args: object) -> None:
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/drip", "not a url", "postgresql+nosuchdriver://x/y"]
)
def test_unsupported_urls_raise_store_error(url: str) -> None:
    """Only SQLite and PostgreSQL URLs make an engine; anything else is a StoreError."""
    with pytest.raises(StoreError):
        make_engine(url)


def test_safe_url_hides_the_password() -> None:
    """URLs in messages never show the password."""
    shown = safe_url("postgresql+psycopg://drip:hunter2@db:5432/drip")
    assert "hunter2" not in shown
    assert "db:5432/drip" in shown


def test_postgres_pool_survives_a_dropped_connection(pg_url: str) -> None:
    """A pooled PostgreSQL connection killed by the server is replaced on next use (pre-ping)."""
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(_libpq(pg_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        with engine.connect() as conn:
            second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_sessions_keep_values_after_commit(engine: Engine, session: Session) -> None:
    """Objects stay loaded after commit (expire_on_commit=False): no reload, no error."""
    contact = Contact(first_name="Dana", source=ConsentSource.API, created_at=NOW)
    session.add(contact)
    session.commit()
    assert not inspect(contact).expired
    engine.dispose()  # no database round trip is needed to read the values
    assert (contact.first_name, contact.created_at) == ("Dana", NOW)


@pytest.mark.postgres
@pytest.mark.parametrize("pgbouncer", [False, True])
def test_postgres_prepares_a_repeated_statement_unless_behind_pgbouncer(
    pg_url: str, pgbouncer: bool
) -> None:
    """psycopg prepares a statement run PREPARE_THRESHOLD times; never with pgbouncer=True."""
    engine = make_engine(pg_url, pgbouncer=pgbouncer)
    try:
        with engine.connect() as conn:
            for n in range(PREPARE_THRESHOLD + 1):
                conn.execute(text("SELECT :n + 1"), {"n": n}).scalar_one()
            prepared = conn.execute(
                text(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1%'"
                )
            ).scalar_one()
        assert prepared == (0 if pgbouncer else 1)
    finally:
        engine.dispose()
