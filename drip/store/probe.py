"""Probes of the database for ``drip doctor``: its clock."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from drip.store.types import as_utc

__all__ = ["database_now"]


def database_now(engine: Engine) -> datetime:
    """The database server's current time (UTC)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            value = conn.execute(text("SELECT now()")).scalar_one()
            return as_utc(value)
        raw = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.fromisoformat(str(raw)).replace(tzinfo=UTC)
