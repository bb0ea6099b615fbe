"""Tables of the console's named operators and of every action a person took.

Re-exported by :mod:`drip.store.models`, where every table is found.
"""

# No ``from __future__ import annotations``: see drip/store/models.py.
from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from drip.store.model_base import CODE, NAME, Base, BigIntKey
from drip.store.types import UtcDateTime

__all__ = ["OPERATOR_ROLES", "Operator", "OperatorAction"]

#: ``operators.role``: read only; contact and enrollment actions; every action and the audit.
OPERATOR_ROLES = ("viewer", "operator", "compliance")


class Operator(Base):
    """A named console account with a role and a slow salted password hash."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class OperatorAction(Base):
    """One action a person took from the console or the CLI, with who. Append-only."""

    __tablename__ = "operator_actions"
    __table_args__ = (
        Index("ix_operator_actions_contact_id_at", "contact_id", "at"),
        Index("ix_operator_actions_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(NAME))
    #: ``console`` or ``cli``.
    via: Mapped[str] = mapped_column(String(16))
    #: ``text_status``, ``opt_out``, ``assign``, ``pause_contact``, ``campaign_pause``...
    action: Mapped[str] = mapped_column(String(CODE))
    contact_id: Mapped[int | None] = mapped_column(Integer)
    campaign: Mapped[str | None] = mapped_column(String(NAME))
    bulk_id: Mapped[int | None] = mapped_column(Integer)
    #: What changed, in words (the sentence the action printed); no phone or email.
    detail: Mapped[str] = mapped_column(Text)
