"""The set-based SQL of a CSV import: identity lookups and the inserts of new contacts.

An import batch asks which of its phones and emails are known in three
queries and inserts its new contacts and their consent events with COPY. On
PostgreSQL the lookups send one array parameter each (``IN (SELECT
unnest(:phones))``), the contacts get their ids from the table's sequence
first and then go in with the events by ``COPY ... FROM STDIN``: an ``IN``
list or a multi-row ``VALUES`` of thousands of placeholders costs more to
build and parse than the rows cost to write. SQLite gets the same results
through plain statements. Nothing here commits: the import's batch is the
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import String, bindparam, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from drip.store.copying import copy_rows
from drip.store.models import ConsentEvent, Contact, OrphanOptOut
from drip.store.types import as_utc

__all__ = ["insert_consent_events", "insert_contacts", "known_emails", "known_phones"]

#: Values per ``IN (...)`` on SQLite (32,766 bind values at most).
_SQLITE_CHUNK = 5000


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _among(column: Any, name: str, values: Sequence[str]) -> Any:
    """``column IN (SELECT unnest(:name))``: one array parameter, planned as a join.

    Not ``column = ANY(:name)``: psycopg prepares a statement run five times
    and PostgreSQL may then keep a generic plan, a scan of the whole table
    testing each row against the array, which made an import quadratic. A
    semi-join with the unnested array probes the index (or hashes) instead.
    """
    array = bindparam(name, list(values), type_=postgresql.ARRAY(String))
    return column.in_(select(func.unnest(array)).scalar_subquery())


def known_phones(session: Session, phones: Sequence[str]) -> set[str]:
    """Which of ``phones`` belong to a contact or to an orphan opt-out."""
    if not phones:
        return set()
    found: set[str] = set()
    for column in (Contact.phone, OrphanOptOut.phone):
        if _is_postgresql(session):
            found.update(session.scalars(select(column).where(_among(column, "p", phones))))
            continue
        for start in range(0, len(phones), _SQLITE_CHUNK):
            part = list(phones[start : start + _SQLITE_CHUNK])
            found.update(session.scalars(select(column).where(column.in_(part))))
    return {p for p in found if p is not None}


def known_emails(session: Session, emails: Sequence[str]) -> set[str]:
    """Which of ``emails`` (lower case) some contact has, in any case; lower case."""
    if not emails:
        return set()
    lowered = func.lower(Contact.email)
    found: set[str] = set()
    if _is_postgresql(session):
        found.update(session.scalars(select(lowered).where(_among(lowered, "e", emails))))
    else:
        for start in range(0, len(emails), _SQLITE_CHUNK):
            part = list(emails[start : start + _SQLITE_CHUNK])
            found.update(session.scalars(select(lowered).where(lowered.in_(part))))
    return {e for e in found if e}


#: Columns of a new contact (and their PostgreSQL types), in COPY order.
_CONTACT_COLUMNS = (
    ("first_name", "text"),
    ("last_name", "text"),
    ("phone", "text"),
    ("email", "text"),
    ("state", "text"),
    ("timezone", "text"),
    ("source", "text"),
    ("agent_id", "integer"),
    ("sms_consent_at", "timestamptz"),
    ("sms_consent_source", "text"),
    ("sms_consent_text", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_TIMES = frozenset(name for name, kind in _CONTACT_COLUMNS if kind == "timestamptz")


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def insert_contacts(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert new contacts (each with a phone no other row has); their ids, in ``rows`` order.

    Each row maps the names of :data:`_CONTACT_COLUMNS` to values (enum
    members or their values, aware datetimes or None).
    """
    if not rows:
        return []
    if not _is_postgresql(session):
        return list(
            session.scalars(
                insert(Contact).returning(Contact.id, sort_by_parameter_order=True), list(rows)
            )
        )
    # Ids from the table's own sequence, then COPY: a multi-row INSERT ...
    # RETURNING of 500 rows x 13 columns cost more to build and send than the
    # rows cost to write.
    ids = [
        int(i)
        for i in session.scalars(
            text(
                "SELECT nextval(pg_get_serial_sequence('contacts', 'id')) FROM generate_series(1, :n)"
            ),
            {"n": len(rows)},
        )
    ]
    names = [name for name, _ in _CONTACT_COLUMNS]
    values = (
        [cid, *(_copy_value(name, r.get(name)) for name in names)]
        for cid, r in zip(ids, rows, strict=True)
    )
    _copy(session, "contacts", ["id", *names], values)
    return ids


def _copy_value(name: str, value: Any) -> Any:
    if value is None or type(value) in _PLAIN_TYPES:
        return value
    return as_utc(value) if name in _TIMES else _plain(value)


#: Values COPY takes as they are (anything else: an enum member or a datetime).
_PLAIN_TYPES = frozenset({str, int, bool})


def _copy(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` in the session's transaction."""
    copy_rows(session.connection(), table, columns, rows)


def insert_consent_events(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """Insert consent events (``contact_id, kind, at, source, evidence``), in order."""
    if not events:
        return
    if not _is_postgresql(session):
        session.execute(insert(ConsentEvent), list(events))
        return
    _copy(
        session,
        "consent_events",
        ("contact_id", "kind", "at", "source", "evidence"),
        (
            (
                e["contact_id"],
                _plain(e["kind"]),
                as_utc(e["at"]),
                _plain(e["source"]),
                e.get("evidence"),
            )
            for e in events
        ),
    )
