"""Alembic environment for drip, driven from code (see :mod:`drip.store.migrate`).

There is no ``alembic.ini``: :func:`drip.store.migrate.alembic_config` builds
the configuration and hands over an open connection in
``config.attributes["connection"]``, or a URL in the ``sqlalchemy.url``
option. SQLite gets ``render_as_batch`` so that later migrations that alter
tables work there too.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from drip.store.migrate import include_object_for
from drip.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object_for(connection.dialect.name),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("offline drip migrations need sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        include_object=include_object_for(make_url(url).get_backend_name()),
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from drip.store.engine import make_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("drip migrations need a connection or sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
