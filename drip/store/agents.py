"""Queries on agents (``agents``: the people whose numbers text their contacts)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from drip.store.models import Agent


def all_agents(session: Session) -> list[Agent]:
    """Every agent."""
    return list(session.scalars(select(Agent)))
