"""Queries on console operators (``operators``) and on the actions people took
(``operator_actions``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from drip.store.models import Operator, OperatorAction


def by_name(session: Session, name: str) -> Operator | None:
    """The operator called ``name`` (exactly), active or not."""
    return session.scalar(select(Operator).where(Operator.name == name))


def all_operators(session: Session) -> list[Operator]:
    """Every operator, by name."""
    return list(session.scalars(select(Operator).order_by(Operator.name)))


def any_active(session: Session) -> bool:
    """At least one operator may log in."""
    return session.scalar(select(Operator.id).where(Operator.active).limit(1)) is not None


def add_action(session: Session, row: OperatorAction) -> None:
    """Append one action to the log."""
    session.add(row)


def actions_of_contact(session: Session, contact_id: int) -> list[OperatorAction]:
    """The actions taken on this contact, oldest first."""
    return list(
        session.scalars(
            select(OperatorAction)
            .where(OperatorAction.contact_id == contact_id)
            .order_by(OperatorAction.at, OperatorAction.id)
        )
    )


def actions_between(
    session: Session, start: datetime, end: datetime, limit: int
) -> Sequence[OperatorAction]:
    """The actions taken in ``[start, end)``, oldest first, at most ``limit``."""
    return list(
        session.scalars(
            select(OperatorAction)
            .where(OperatorAction.at >= start, OperatorAction.at < end)
            .order_by(OperatorAction.at, OperatorAction.id)
            .limit(limit)
        )
    )
