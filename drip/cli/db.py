"""``drip db upgrade`` and ``drip status``: the database and where drip keeps its data."""

from __future__ import annotations

from drip.cli import framework as cli


def register(app: cli.App) -> None:
    """Add the ``db`` group and ``status`` to ``app``."""
    db_app = cli.App(help="Database schema.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    app.add_group(db_app, name="db")
    app.command("status")(status)


def db_upgrade() -> None:
    """Create or migrate the database to the latest schema (Alembic)."""
    from drip.bootstrap import ensure_home, load_settings
    from drip.store.engine import make_engine, safe_url
    from drip.store.migrate import current_revision, upgrade

    settings = load_settings()
    ensure_home(settings)
    engine = make_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    try:
        upgrade(engine)
        revision = current_revision(engine)
    finally:
        engine.dispose()
    cli.echo(f"database at {safe_url(settings.database_url)} is at revision {revision}")


def status() -> None:
    """Where drip keeps its data and what it is connected to."""
    from drip.bootstrap import load_settings
    from drip.store.engine import make_engine, safe_url
    from drip.store.schema_version import database_revision

    settings = load_settings()
    mode = "embedded (no broker)" if settings.embedded else "Celery broker"
    transport = "twilio" if settings.twilio_enabled else "console"
    engine = make_engine(settings.database_url, pgbouncer=settings.database_pgbouncer)
    try:
        revision = database_revision(engine) or "none: run `drip db upgrade`"
    finally:
        engine.dispose()
    cli.echo(f"database: {safe_url(settings.database_url)} (revision {revision})")
    cli.echo(f"mode: {mode}; sms transport: {transport}; campaigns: {settings.campaigns_dir}")
