"""What every table model shares: the declarative base, its naming convention, column sizes.

Kept apart from :mod:`drip.store.models` so that the tables of later features
(:mod:`drip.store.operator_models`, :mod:`drip.store.compliance_models`) can
be declared in modules of their own on the same metadata.
"""

# No ``from __future__ import annotations``: see drip/store/models.py.
from typing import Any

from sqlalchemy import BigInteger, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase

__all__ = [
    "ADDRESS",
    "CODE",
    "EMAIL",
    "EXTERNAL_ID",
    "NAME",
    "NAMING_CONVENTION",
    "PHONE",
    "Base",
    "BigIntKey",
    "only_on",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: A 64-bit key on PostgreSQL; on SQLite plain INTEGER so that it is the rowid.
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")

PHONE = 16  # E.164: "+" and at most 15 digits
NAME = 100
EMAIL = 254
ADDRESS = 320  # a phone number or an email address
CODE = 64
EXTERNAL_ID = 200  # a producer's id (a CRM lead id, an event id)


def only_on(*dialects: str) -> dict[str, Any]:
    """``info`` for a schema item that exists on the named dialects only."""
    return {"dialects": tuple(dialects)}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
