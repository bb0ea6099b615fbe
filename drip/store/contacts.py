"""Queries on contacts (``contacts``) that services need besides :mod:`drip.store.repository`'s."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drip.store.models import Contact


def by_email(session: Session, email: str, *, without_phone: bool = False) -> Contact | None:
    """The oldest contact with this email (any case); only one without a phone when asked."""
    query = select(Contact).where(func.lower(Contact.email) == email.lower())
    if without_phone:
        query = query.where(Contact.phone.is_(None))
    return session.scalars(query.order_by(Contact.id).limit(1)).one_or_none()


def all_by_id(session: Session) -> list[Contact]:
    """Every contact, oldest first."""
    return list(session.scalars(select(Contact).order_by(Contact.id)))
