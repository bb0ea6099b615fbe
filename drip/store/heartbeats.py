"""Heartbeats: when each periodic job last finished (one row per job name)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from drip.store.models import Heartbeat
from drip.store.types import as_utc

__all__ = ["beat", "last"]


def beat(session: Session, name: str, now: datetime) -> None:
    """Record that job ``name`` finished at ``now`` (one upsert, in the caller's transaction)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(Heartbeat).values(name=name, at=as_utc(now))
    session.execute(
        stmt.on_conflict_do_update(index_elements=["name"], set_={"at": stmt.excluded.at})
    )


def last(session: Session, name: str) -> datetime | None:
    """When job ``name`` last finished, or None if it never did."""
    return session.scalar(select(Heartbeat.at).where(Heartbeat.name == name))
