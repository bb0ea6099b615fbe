"""``COPY table (columns) FROM STDIN``: many rows into PostgreSQL at the cost of writing them.

A multi-row ``INSERT`` of thousands of rows costs more to build, send and parse than
the rows cost to write; psycopg's ``Cursor.copy`` streams them in COPY's own format
instead. Used where a batch inserts thousands of rows it already holds: scheduled
sends, imported contacts and their consent events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection

from drip.errors import StoreError


def copy_rows(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY ``rows`` (values in ``columns`` order, adapted by psycopg) into ``table`` on
    ``conn``'s psycopg connection, in its transaction. ``table`` and ``columns`` are
    constants of the caller, never input."""
    import psycopg

    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise StoreError("COPY needs a psycopg 3 connection")
    try:
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        raise StoreError(f"COPY into {table} failed: {exc}") from exc
