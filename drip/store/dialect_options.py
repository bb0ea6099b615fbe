"""Dialect options of a schema item, checked and set when first read.

SQLAlchemy checks a ``postgresql_where=`` keyword when the ``Index`` is built,
and to check it loads the PostgreSQL dialect: the ``sqlalchemy.dialects.postgresql``
package, which imports every PostgreSQL driver module (about 6% of the
instructions of ``drip history`` on SQLite, which never uses them).

:func:`deferred` gives an index its options for one dialect the first time
anything reads that index's ``dialect_options``, ``dialect_kwargs`` or
``kwargs`` for that dialect, or iterates them (DDL compilation, Alembic's
comparison, ``Table.to_metadata``): every reader sees the same options as
with the keyword argument, checked the same way (an unknown option is an
``ArgumentError``, raised at the first read instead of at import).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import exc
from sqlalchemy.sql.base import DialectKWArgs
from sqlalchemy.util import PopulateDict

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values

__all__ = ["deferred"]

T = TypeVar("T", bound=DialectKWArgs)


class _PendingOptions(PopulateDict[str, Any]):
    """``dialect_options`` whose entries for some dialects are filled in on first read."""

    def __init__(self, creator: Any, pending: dict[str, dict[str, Any]]) -> None:
        super().__init__(creator)
        self._pending = pending

    def __missing__(self, key: Any) -> Any:
        options = super().__missing__(key)  # loads the dialect's argument table
        for name, value in self._pending.pop(key, {}).items():
            # as DialectKWArgs._validate_dialect_kwargs does for a keyword argument
            if "*" not in options and name not in options:
                raise exc.ArgumentError(
                    f"Argument '{key}_{name}' is not accepted by dialect {key!r}"
                )
            options[name] = value
        return options

    def _settle(self) -> None:
        for key in list(self._pending):
            self[key]

    def __contains__(self, key: object) -> bool:
        if key in self._pending:
            self[key]
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._settle()
        return super().__iter__()

    def __len__(self) -> int:
        self._settle()
        return super().__len__()

    def keys(self) -> dict_keys[str, Any]:
        self._settle()
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        self._settle()
        return super().values()

    def items(self) -> dict_items[str, Any]:
        self._settle()
        return super().items()

    def get(self, key: str, default: Any = None) -> Any:
        # dict.get skips __missing__; self.get here would call itself.
        return self[key] if key in self else default  # noqa: SIM401


def deferred(item: T, dialect: str, **options: Any) -> T:
    """``item`` with ``options`` for ``dialect`` (``where=`` for ``postgresql_where=``)."""
    current = item.dialect_options  # already holds the options of the other dialects
    pending = _PendingOptions(current.creator, {dialect: options})
    pending.update(current)
    # dialect_options is a memoized property: the instance's __dict__ holds its value.
    item.__dict__["dialect_options"] = pending
    return item
