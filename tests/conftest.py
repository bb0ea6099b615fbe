"""Shared fixtures: real SQLite and PostgreSQL databases, a real Redis, service checks.

Databases
---------
- ``sqlite_url``: a fresh, empty SQLite file (not migrated).
- ``pg_url``: a fresh, empty PostgreSQL database ``drip_test_<random>``,
  created for the test and dropped after it (about 0.15 s). For tests that
  migrate or change the schema.
- ``empty_db_url``: ``sqlite_url`` or ``pg_url``, parametrized over both.
- ``db_url``: a *migrated* database, parametrized over ``sqlite`` and
  ``postgres``; ``engine`` and ``session`` are bound to it.

  SQLite: a copy of a database file migrated once per session (about 1 ms).
  PostgreSQL: one database migrated once per session (per xdist worker),
  shared by the tests one after the other and emptied after each test with
  ``DELETE`` (about 5 ms; ``TRUNCATE`` measured 50-280 ms and a per-test clone
  ``CREATE DATABASE ... TEMPLATE`` 80 ms plus 60 ms to drop). So ids are not
  reset between tests: do not assert literal ids. When emptying fails (the
  test changed the schema, or leaked a connection holding locks: a 5 s
  ``lock_timeout``), the shared database is dropped and rebuilt; tests that
  change the schema should use ``pg_url`` instead.

Redis
-----
- ``redis_url``: the test Redis server with a database number of the test's
  own (1-15), reserved with a lock key in the base database so concurrent
  test sessions never share one, flushed before and after the test.

Services
--------
PostgreSQL and Redis are checked once per session. When one is unreachable,
its tests are skipped with the reason, or fail when ``CI=true``.
Addresses: ``DRIP_TEST_DATABASE_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, the admin database
where test databases are created) and ``DRIP_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``).

Tests using ``pg_url``/``db_url[postgres]`` are marked ``postgres`` and
tests using ``redis_url`` are marked ``redis`` automatically, so
``-m "not postgres"`` runs the rest.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from drip.domain.enums import ConsentSource
from drip.store.engine import make_engine, safe_url, session_factory
from drip.store.migrate import head_revision, upgrade
from drip.store.models import Base, Contact

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_FIXED_NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

_REDIS_LOCK_PREFIX = "drip-test:db-lock:"
_REDIS_LOCK_SECONDS = 900  # longer than the pytest-timeout of one test
_REDIS_WAIT_SECONDS = 60


# --------------------------------------------------------------------------- services

_service_errors: dict[str, str | None] = {}


def require_service(name: str, address: str, env: str, probe: Callable[[], None]) -> None:
    """Skip (or fail when ``CI=true``) unless ``probe`` reached the service; probed once."""
    key = f"{name} {address}"
    if key not in _service_errors:
        try:
            probe()
        except Exception as exc:  # any failure to reach the service means "unreachable"
            _service_errors[key] = f"{type(exc).__name__}: {exc}".strip()
        else:
            _service_errors[key] = None
    error = _service_errors[key]
    if error is None:
        return
    message = f"{name} is not reachable at {address} ({error}); start it or set {env}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}. CI=true, so required services must be up.", pytrace=False)
    pytest.skip(message)


def _admin_database_url() -> str:
    return os.environ.get("DRIP_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[tuple[str, psycopg.Connection[tuple[object, ...]]]]:
    """The admin URL and an autocommit connection to it, for CREATE/DROP DATABASE."""
    url = _admin_database_url()

    def probe() -> None:
        psycopg.connect(_libpq(url), connect_timeout=3).close()

    require_service("PostgreSQL", safe_url(url), "DRIP_TEST_DATABASE_URL", probe)
    conn = psycopg.connect(_libpq(url), autocommit=True)
    yield url, conn
    conn.close()


def _create_database(admin: psycopg.Connection[tuple[object, ...]]) -> str:
    name = f"drip_test_{secrets.token_hex(6)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _drop_database(admin: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --------------------------------------------------------------------------- empty databases


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL of a fresh SQLite file that does not exist yet (not migrated)."""
    return f"sqlite:///{tmp_path / 'fresh.db'}"


@pytest.fixture
def pg_url(pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]]) -> Iterator[str]:
    """A URL of a fresh, empty PostgreSQL database, dropped after the test."""
    admin_url, admin = pg_admin
    name = _create_database(admin)
    try:
        yield _database_url(admin_url, name)
    finally:
        _drop_database(admin, name)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``: the database the test runs on."""
    return str(request.param)


@pytest.fixture
def empty_db_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty (not migrated) database on each backend."""
    return str(request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url"))


# --------------------------------------------------------------------------- migrated databases


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "drip.db"
    upgrade(f"sqlite:///{path}")
    return path


class _SharedPg:
    """One migrated PostgreSQL database for the session, emptied after each test."""

    def __init__(self, admin_url: str, admin: psycopg.Connection[tuple[object, ...]]) -> None:
        self.admin_url, self.admin = admin_url, admin
        self.head = head_revision()
        self.name, self.url, self.conn = self._create()

    def _create(self) -> tuple[str, str, psycopg.Connection[tuple[object, ...]]]:
        name = _create_database(self.admin)
        url = _database_url(self.admin_url, name)
        upgrade(url)
        conn = psycopg.connect(_libpq(url), autocommit=True)
        conn.execute("SET lock_timeout = '5s'")
        return name, url, conn

    def empty(self) -> None:
        """Delete every row (the circular send/message reference first), or rebuild."""
        row = self.conn.execute(
            "SELECT to_regclass('alembic_version') IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM alembic_version WHERE version_num = %s)",
            (self.head,),
        ).fetchone()
        if not (row and row[0]):
            self.rebuild()
            return
        try:
            with self.conn.transaction():
                self.conn.execute("UPDATE scheduled_sends SET message_id = NULL")
                for table in reversed(Base.metadata.sorted_tables):
                    self.conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table.name)))
        except psycopg.Error:
            # A connection the test leaked still holds locks (lock_timeout), or the
            # test broke the schema: start from a new database.
            self.rebuild()

    def rebuild(self) -> None:
        """A new database: a test changed the schema of the shared one."""
        self.close()
        self.name, self.url, self.conn = self._create()

    def close(self) -> None:
        self.conn.close()
        _drop_database(self.admin, self.name)


@pytest.fixture(scope="session")
def _shared_pg(
    pg_admin: tuple[str, psycopg.Connection[tuple[object, ...]]],
) -> Iterator[_SharedPg]:
    shared = _SharedPg(*pg_admin)
    yield shared
    shared.close()


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database on each backend; ``engine`` and ``session`` use it."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        target = tmp_path / "drip.db"
        shutil.copyfile(template, target)
        for suffix in ("-wal", "-shm"):
            extra = template.with_name(template.name + suffix)
            if extra.exists():
                shutil.copyfile(extra, target.with_name(target.name + suffix))
        yield f"sqlite:///{target}"
        return
    shared: _SharedPg = request.getfixturevalue("_shared_pg")
    try:
        yield shared.url
    finally:
        shared.empty()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url``, disposed after the test."""
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on ``engine`` (``expire_on_commit=False``), closed after the test."""
    with session_factory(engine)() as s:
        yield s


@pytest.fixture
def contact_id(session: Session) -> int:
    """The id of one committed, consenting contact, for rows that need a contact."""
    contact = Contact(
        first_name="Dana",
        last_name="Ruiz",
        phone="+16175550123",
        source=ConsentSource.REGISTRATION,
        sms_consent_at=_FIXED_NOW,
        sms_consent_source=ConsentSource.REGISTRATION,
        sms_consent_text="Yes, text me about homes.",
        created_at=_FIXED_NOW,
    )
    session.add(contact)
    session.commit()
    return contact.id


# --------------------------------------------------------------------------- redis


def _redis_base_url() -> str:
    return os.environ.get("DRIP_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _redis_databases(client: redis.Redis) -> int:
    try:
        reply = client.config_get("databases")
        return int(reply.get("databases") or 16)
    except redis.ResponseError:  # CONFIG may be disabled on managed servers
        return 16


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis URL whose database number is this test's alone; flushed before and after."""
    base = _redis_base_url()
    parts = urlsplit(base)
    shown = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"  # no password

    def probe() -> None:
        redis.Redis.from_url(base, socket_connect_timeout=3).ping()

    require_service("Redis", shown, "DRIP_TEST_REDIS_URL", probe)
    locks = redis.Redis.from_url(base)
    base_db = int(locks.connection_pool.connection_kwargs.get("db", 0))
    candidates = [n for n in range(_redis_databases(locks)) if n != base_db]
    token = secrets.token_hex(8)
    deadline = time.monotonic() + _REDIS_WAIT_SECONDS
    chosen: int | None = None
    while chosen is None:
        for n in secrets.SystemRandom().sample(candidates, len(candidates)):
            if locks.set(f"{_REDIS_LOCK_PREFIX}{n}", token, nx=True, ex=_REDIS_LOCK_SECONDS):
                chosen = n
                break
        else:
            if time.monotonic() > deadline:
                pytest.fail(f"no free Redis test database on {shown} after {_REDIS_WAIT_SECONDS}s")
            time.sleep(0.05)
    url = _with_db(base, chosen)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
        key = f"{_REDIS_LOCK_PREFIX}{chosen}"
        if locks.get(key) == token.encode():
            locks.delete(key)
        locks.close()


# --------------------------------------------------------------------------- markers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the services their fixtures need, for ``-m``; the longest tests go first."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "pg_url" in names or "pg_admin" in names:
            item.add_marker(pytest.mark.postgres)
        if "redis_url" in names:
            item.add_marker(pytest.mark.redis)
    first = {nodeid: rank for rank, nodeid in enumerate(START_FIRST)}
    items.sort(key=lambda item: first.get(item.nodeid, len(first)))  # stable: the rest keep order


# --------------------------------------------------------------------------- parallel runs

#: The tests that start first, in this order. ``make test`` runs the suite on
#: pytest-xdist workers (``-n``, ``--dist loadgroup``): a free worker takes the
#: next test or group in collection order, so a long test collected last would
#: leave the run waiting on it alone.
START_FIRST = (
    "tests/integration/test_pacing_celery.py::"
    "test_two_workers_and_two_dispatchers_keep_every_sender_under_its_rate",
    "tests/integration/test_workers_celery.py::"
    "test_two_workers_and_two_dispatchers_send_10000_due_sends_exactly_once",
    "tests/integration/test_workers_celery.py::"
    "test_a_worker_fires_each_step_of_1000_enrollments_exactly_once",
    "tests/integration/test_benchmarks_smoke.py::test_smoke_run_prints_the_table_then_one_json_line",
    "tests/integration/test_faults_suite.py::test_the_bounded_fault_suite_meets_every_goal",
    "tests/acceptance/test_readme_commands.py::test_every_readme_command_runs_as_written",
)

#: Groups of tests that run on one worker, one after the other, in collection
#: order. ``celery-heavy``: the tests that start Celery worker processes and
#: fire thousands of texts, and the fault suite, which starts its own workers,
#: web apps and fake servers (the 250 s pacing test first). Run at once they
#: would compete for the 2 cores, and the pacing test measures arrival times at
#: the fake carrier, which another of them would jitter.
SERIAL_GROUPS = {"celery-heavy": frozenset(START_FIRST[:5])}
#: Modules whose tests share a module-scoped fixture that takes the best part of a
#: minute to build (the demo run through the pipeline): each module's tests run on
#: one worker, so the fixture is built once, not once on every worker that takes one.
ONE_WORKER_MODULES = frozenset(
    {
        "tests/acceptance/test_demo_html_chromium.py",
        "tests/acceptance/test_console_browser.py",
        "tests/acceptance/test_console_actions_browser.py",
    }
)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With ``--dist loadgroup``, keep each of :data:`SERIAL_GROUPS`, and the tests of each
    of :data:`ONE_WORKER_MODULES`, on one worker.

    pytest-xdist groups by ``xdist_group`` marks by renaming ``item._nodeid``,
    which pytest 9 no longer reads, so the marks group nothing; this scheduler
    groups by node id instead. Every other test is a group of its own, and the
    largest groups start first (xdist's ``--loadscope-reorder``).
    """
    if config.getoption("dist", None) != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    group_of = {nodeid: name for name, ids in SERIAL_GROUPS.items() for nodeid in ids}

    class SerialGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return group_of.get(nodeid) or (module if module in ONE_WORKER_MODULES else nodeid)

    return SerialGroups(config, log)
