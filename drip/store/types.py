"""Column types that keep the database honest about time and vocabularies.

``UtcDateTime`` is the only datetime type drip stores: it refuses a naive
datetime on write (a naive value is a bug, its zone is a guess), stores UTC
(``timestamptz`` on PostgreSQL, naive-UTC text on SQLite, which has no zone
support) and always gives back an aware UTC ``datetime`` on read.

``StrEnumType`` stores a ``StrEnum`` member as its plain string value in a
``VARCHAR`` column (no database ENUM and no CHECK constraint, so adding a
member needs no migration) and gives the member back on read.

Both types raise :class:`drip.errors.ValidationError` for a bad value.
SQLAlchemy wraps errors raised while binding parameters in
``sqlalchemy.exc.StatementError``; the original is its ``.orig``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import DateTime, Dialect, String
from sqlalchemy.types import TypeDecorator

from drip.errors import StoreError, ValidationError

__all__ = ["StrEnumType", "UtcDateTime", "as_utc"]

E = TypeVar("E", bound=StrEnum)


def as_utc(value: datetime) -> datetime:
    """``value`` as a plain ``datetime`` in UTC; a naive value is refused.

    Subclasses (pendulum's ``DateTime``) are rebuilt as ``datetime`` so that
    every driver adapts them the same way.
    """
    if not isinstance(value, datetime):
        raise ValidationError(f"expected a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"refusing naive datetime {value.isoformat()}: drip stores only timezone-aware instants"
        )
    utc = value.astimezone(UTC)
    if type(utc) is not datetime or utc.tzinfo is not UTC:
        utc = datetime(
            utc.year,
            utc.month,
            utc.day,
            utc.hour,
            utc.minute,
            utc.second,
            utc.microsecond,
            tzinfo=UTC,
        )
    return utc


class UtcDateTime(TypeDecorator[datetime]):
    """An instant: aware UTC in, aware UTC out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = as_utc(value)
        if dialect.name == "sqlite":
            # SQLite's DATETIME is text without a zone: store UTC wall time.
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise StoreError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            # SQLite: the stored text is UTC by construction (see process_bind_param).
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class StrEnumType(TypeDecorator[E], Generic[E]):
    """A ``StrEnum`` stored as its value in a ``VARCHAR(length)``."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int = 32) -> None:
        longest = max((len(m.value) for m in enum_class), default=0)
        if longest > length:
            raise ValueError(f"{enum_class.__name__} has a value longer than {length}")
        super().__init__(length)
        self.enum_class = enum_class
        self.length = length

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            return self.enum_class(value).value
        except ValueError as exc:
            raise ValidationError(
                f"{value!r} is not a valid {self.enum_class.__name__} "
                f"(one of {', '.join(m.value for m in self.enum_class)})"
            ) from exc

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        if value is None:
            return None
        try:
            return self.enum_class(value)
        except ValueError as exc:
            raise StoreError(
                f"the database holds {value!r}, which is not a {self.enum_class.__name__}; "
                "is this code older than the data?"
            ) from exc

    def __repr__(self) -> str:
        return f"StrEnumType({self.enum_class.__name__}, length={self.length})"
