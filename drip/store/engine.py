"""Engines and sessions for SQLite (embedded) and PostgreSQL (scale-out).

SQLite connections get, on connect: WAL journal (readers never block the one
writer), ``busy_timeout`` 30 s (a writer waits for the lock instead of failing
at once) and ``foreign_keys=ON``. ``synchronous`` stays at its default FULL:
with NORMAL a power cut may undo a committed ``sending`` mark, and the send
could then be made twice. Transaction control is taken away from the
``sqlite3`` module, whose legacy mode does not BEGIN before a SELECT or DDL
(SQLAlchemy's SQLite documentation, "Enabling Non-Legacy SQLite Transactional
Modes"): ``isolation_level = None`` on connect and our own ``BEGIN`` in the
``begin`` event. A connection whose execution option ``sqlite_begin`` is
``"IMMEDIATE"`` (or ``"EXCLUSIVE"``) begins with ``BEGIN IMMEDIATE``: the
write lock is taken at the start, so the claim of :mod:`drip.store.claims`
cannot lose a read-to-write upgrade race.

PostgreSQL uses psycopg 3 with ``pool_pre_ping``. psycopg prepares a
statement on the server once a connection has run it
:data:`PREPARE_THRESHOLD` times (psycopg's own ``prepare_threshold``): the
fire path's recording statement then costs the server no new plan per send.
Behind PgBouncer in transaction pooling a prepared statement may be gone on
the next transaction's server connection, so ``make_engine(url,
pgbouncer=True)`` (``DRIP_DATABASE_PGBOUNCER=1``) switches preparing off.

Failures to reach the database are raised as :class:`drip.errors.StoreError`
(with the driver's error as ``__cause__``); other database errors
(``IntegrityError``...) stay SQLAlchemy errors for the store functions to
translate where they know what they mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

from drip.errors import StoreError

__all__ = [
    "PREPARE_THRESHOLD",
    "SQLITE_BEGIN_OPTION",
    "begin_writing",
    "make_engine",
    "safe_url",
    "session_factory",
]

#: Connection execution option naming the SQLite BEGIN mode: DEFERRED, IMMEDIATE, EXCLUSIVE.
SQLITE_BEGIN_OPTION = "sqlite_begin"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_BEGIN_MODES = {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}
#: Executions of one statement on a connection after which psycopg prepares it (its default).
PREPARE_THRESHOLD = 5


def begin_writing(session: Session) -> None:
    """Begin ``session``'s transaction as a writer: on SQLite ``BEGIN IMMEDIATE`` (the
    write lock up front, so a transaction that reads before it writes cannot lose the
    read-to-write upgrade to another writer's commit); elsewhere an ordinary begin."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})


def safe_url(url: str | URL) -> str:
    """The URL with any password hidden, fit for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str | URL, *, pgbouncer: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    ``pgbouncer``: PostgreSQL is reached through PgBouncer in transaction
    pooling, so no statement is prepared on the server. Extra keyword
    arguments go to :func:`sqlalchemy.create_engine`. Creating the
    engine does not connect; a database that cannot be reached raises
    :class:`StoreError` at first use.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            engine = create_engine(parsed, **kwargs)
            _install_sqlite_hooks(engine)
        elif backend == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            kwargs.setdefault("pool_pre_ping", True)
            connect_args = dict(kwargs.pop("connect_args", {}))
            connect_args.setdefault("prepare_threshold", None if pgbouncer else PREPARE_THRESHOLD)
            kwargs["connect_args"] = connect_args
            engine = create_engine(parsed, **kwargs)
        else:
            raise StoreError(
                f"unsupported database {safe_url(parsed)}: drip runs on SQLite or PostgreSQL"
            )
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use database {safe_url(parsed)}: {exc}") from exc
    _install_error_translation(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on ``engine`` that keep loaded values readable after commit."""
    from sqlalchemy.orm import sessionmaker  # the ORM: only for commands that use sessions

    return sessionmaker(bind=engine, expire_on_commit=False)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module; the "begin" hook emits it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = str(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")).upper()
        if mode not in _BEGIN_MODES:
            raise StoreError(f"unknown SQLite BEGIN mode {mode!r}")
        conn.exec_driver_sql("BEGIN" if mode == "DEFERRED" else f"BEGIN {mode}")


def _install_error_translation(engine: Engine) -> None:
    where = safe_url(engine.url)

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if context.is_pre_ping:
            return  # the pool reconnects on its own after a failed ping
        if not isinstance(context.original_exception, Exception):
            # Ctrl-C (KeyboardInterrupt) or SystemExit inside a statement: SQLAlchemy
            # counts it as a disconnect to discard the connection, but it is the
            # person or the process stopping, not the database: let it through as is.
            return
        unreachable = context.connection is None and context.engine is not None
        if unreachable or context.is_disconnect:
            raise StoreError(
                f"database {where} is unreachable: {context.original_exception}"
            ) from context.original_exception
