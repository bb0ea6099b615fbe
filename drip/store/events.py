"""Queries of lead events: the inbox, contacts by the CRM's identity, enrollments by event."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Text,
    TextClause,
    and_,
    any_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import Integer, String, TypeEngine

from drip.store.models import Agent, Campaign, Contact, Enrollment, InboxEvent
from drip.store.types import StrEnumType, UtcDateTime


def existing_digests(session: Session, event_ids: Iterable[str]) -> dict[str, str]:
    """``{producer id: digest}`` of the inbox rows already holding these producer ids (one
    query on PostgreSQL, one per 500 ids elsewhere)."""
    wanted = list(dict.fromkeys(event_ids))
    step = max(len(wanted), 1) if session.get_bind().dialect.name == "postgresql" else 500
    out: dict[str, str] = {}
    for start in range(0, len(wanted), step):
        where = one_of(session, InboxEvent.event_id, wanted[start : start + step], String())
        for event_id, digest in session.execute(
            select(InboxEvent.event_id, InboxEvent.digest).where(where)
        ):
            out[event_id] = digest
    return out


def one_of(
    session: Session,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Sequence[Any],
    kind: TypeEngine[Any],
) -> ColumnElement[bool]:
    """``column = ANY(ARRAY(...))`` of one JSON parameter on PostgreSQL (one parameter,
    one cached plan for any count); ``column IN (...)`` elsewhere. For one bounded
    batch's worth of values.

    The values travel as one JSON array, not as a PostgreSQL array: psycopg builds an
    array parameter element by element in Python (4.6 ms for 5,000 numbers, against
    0.1 ms for their JSON), and a batch of events reads by several such lists.
    """
    if session.get_bind().dialect.name == "postgresql":
        listed = bindparam(None, json.dumps(list(values)), type_=Text())
        elements = select(cast(func.json_array_elements_text(cast(listed, JSON)), kind))
        return column == any_(func.array(elements.scalar_subquery()))
    return column.in_(list(values))


def _instant(value: datetime | str) -> datetime:
    """An instant given as one or as its ISO 8601 text with an offset."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return _iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@functools.lru_cache(maxsize=256)
def _iso(value: datetime) -> str:
    # A batch's rows share a few instants (its ``now``): each is written out once.
    return value.isoformat()


def _zipped(columns: Sequence[tuple[str, str]]) -> str:
    """``(SELECT ... FROM ROWS FROM (json_array_elements_text(:c_<name>), ...)) AS v``: rows
    zipped from one JSON array per column (``c_<name>``), typed, with their position
    ``v.k`` (from 1). A column's values as one array cost a fraction of the same values
    as one JSON object per row (every key repeated) to build, encode and decode. Built
    from constant names and types only."""
    elements = ", ".join(
        f"json_array_elements{'' if kind == 'json' else '_text'}(CAST(:c_{name} AS json))"
        for name, kind in columns
    )
    typed = ", ".join(
        # An element that is JSON null is SQL NULL (a missing value, not the JSON null).
        f"CASE WHEN json_typeof(r{i}) = 'null' THEN NULL ELSE r{i} END AS {name}"
        if kind == "json"
        else f"CAST(r{i} AS {kind}) AS {name}"
        for i, (name, kind) in enumerate(columns)
    )
    aliases = ", ".join(f"r{i}" for i in range(len(columns)))
    return (
        f"(SELECT {typed}, k FROM ROWS FROM ({elements})"  # noqa: S608 - constants
        f" WITH ORDINALITY AS r({aliases}, k)) AS v"
    )


def _column_params(names: Sequence[str], columns: Sequence[Sequence[Any]]) -> dict[str, str]:
    """The parameters of :func:`_zipped`: each column's values as one JSON array."""
    return {
        f"c_{name}": json.dumps(list(values), default=_when, separators=(",", ":"))
        for name, values in zip(names, columns, strict=True)
    }


_INBOX = (
    ("event_id", "text"), ("type", "text"), ("occurred_at", "timestamptz"),
    ("contact_ref", "json"), ("data", "json"), ("digest", "text"), ("received_at", "timestamptz"),
)  # fmt: skip
# Built once from the constant column names above, never from input.
_ADD_PG = text(
    f"INSERT INTO inbox_events ({', '.join(n for n, _ in _INBOX)})"  # noqa: S608 - constants
    f" SELECT {', '.join('v.' + n for n, _ in _INBOX)} FROM {_zipped(_INBOX)}"
    " ORDER BY v.k RETURNING event_id, id"
)


def add_events(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert inbox rows (one dict of columns each); ``{event id: row id}``. On PostgreSQL
    one ``INSERT ... SELECT ... RETURNING`` for them all (their columns as JSON arrays, ids
    given in their order), elsewhere one statement executed for many and one query for
    the ids.

    ``occurred_at`` may be given as its ISO 8601 text with an offset (a parsed event holds
    it already): on PostgreSQL it is sent as it is, not written out again for each row.
    """
    if not rows:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        names = [n for n, _ in _INBOX]
        columns = [[r[n] for r in rows] for n in names]
        found = session.execute(_ADD_PG, _column_params(names, columns))
        return {str(r[0]): int(r[1]) for r in found}
    session.connection().execute(
        insert(InboxEvent), [{**r, "occurred_at": _instant(r["occurred_at"])} for r in rows]
    )
    ids = [r["event_id"] for r in rows]
    found = session.execute(
        select(InboxEvent.event_id, InboxEvent.id).where(
            one_of(session, InboxEvent.event_id, ids, String())
        )
    )
    return {str(row[0]): int(row[1]) for row in found}


def retake_unapplied(
    session: Session, event_ids: Sequence[str], now: datetime, stored_before: datetime
) -> dict[str, int]:
    """Of these stored events, the ones never applied and stored before ``stored_before``
    (whatever stored them stopped before applying them), taken to be applied now;
    ``{event id: row id}``.

    Taking one sets its ``received_at`` to ``now``: a second taker at the same moment
    finds it taken (on PostgreSQL it waits for the first one's row lock, then reads the
    new time), and one that comes later waits out the same time again.
    """
    if not event_ids:
        return {}
    named = one_of(session, InboxEvent.event_id, sorted(set(event_ids)), String())
    return {r.event_id: r.id for r in _take(session, named, now, stored_before)}


def take_unapplied(
    session: Session, now: datetime, stored_before: datetime, limit: int
) -> list[InboxEvent]:
    """Up to ``limit`` stored events never applied and stored before ``stored_before``,
    oldest ``occurred_at`` first, taken to be applied now as :func:`retake_unapplied`
    takes them (rows another taker holds are skipped on PostgreSQL)."""
    wanted = (
        select(InboxEvent.id)
        .where(_waiting(stored_before))
        .order_by(InboxEvent.occurred_at, InboxEvent.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        wanted = wanted.with_for_update(skip_locked=True)
    rows = _take(session, InboxEvent.id.in_(wanted.scalar_subquery()), now, stored_before)
    return sorted(rows, key=lambda r: (r.occurred_at, r.id))


def _waiting(stored_before: datetime) -> ColumnElement[bool]:
    """Stored before ``stored_before`` and never applied."""
    return and_(InboxEvent.processed_at.is_(None), InboxEvent.received_at < stored_before)


def _take(
    session: Session, chosen: ColumnElement[bool], now: datetime, stored_before: datetime
) -> list[InboxEvent]:
    """The waiting rows ``chosen`` names, taken (``received_at`` set to ``now``) and
    returned by the same statement (``UPDATE ... RETURNING``)."""
    taken = session.scalars(
        update(InboxEvent)
        .where(chosen, _waiting(stored_before))
        .values(received_at=now)
        .returning(InboxEvent)
        .execution_options(synchronize_session=False)
    )
    return list(taken)


def mark_processed(
    session: Session, row_id: int, contact_id: int | None, outcome: str, now: datetime
) -> None:
    session.execute(
        update(InboxEvent)
        .where(InboxEvent.id == row_id)
        .values(processed_at=now, contact_id=contact_id, outcome=outcome)
        .execution_options(synchronize_session=False)
    )


def event_by_id(session: Session, event_id: str) -> InboxEvent | None:
    return session.scalars(select(InboxEvent).where(InboxEvent.event_id == event_id)).first()


def contact_by_ref(
    session: Session, external_id: str | None, phone: str | None, email: str | None
) -> Contact | None:
    """The contact an event names: by external id, else phone, else email (any case)."""
    if external_id:
        found = session.scalars(select(Contact).where(Contact.external_id == external_id)).first()
        if found is not None:
            return found
    if phone:
        found = session.scalars(select(Contact).where(Contact.phone == phone)).first()
        if found is not None:
            return found
    if email:
        return session.scalars(
            select(Contact)
            .where(func.lower(Contact.email) == email.lower())
            .order_by(Contact.id)
            .limit(1)
        ).first()
    return None


def agent_by_ref(session: Session, ref: str) -> Agent | None:
    """An agent by phone (E.164) or id."""
    if ref.isdigit():
        return session.get(Agent, int(ref))
    return session.scalars(select(Agent).where(Agent.phone == ref)).first()


def active_agents(session: Session) -> list[Agent]:
    return list(session.scalars(select(Agent).where(Agent.active.is_(True)).order_by(Agent.id)))


def contacts_of_agent(session: Session, agent_id: int) -> list[Contact]:
    return list(
        session.scalars(select(Contact).where(Contact.agent_id == agent_id).order_by(Contact.id))
    )


def enrollments_of(session: Session, contact_id: int) -> list[tuple[Enrollment, str]]:
    """Every enrollment of the contact (active or ended) with its campaign's name."""
    rows = session.execute(
        select(Enrollment, Campaign.name)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(Enrollment.contact_id == contact_id)
        .order_by(Enrollment.id)
    )
    return [(row[0], row[1]) for row in rows]


def automated_campaigns(session: Session) -> list[Campaign]:
    """Campaign rows whose definition declares triggers, exits or a group."""
    return [
        row
        for row in session.scalars(select(Campaign).order_by(Campaign.name))
        if isinstance(row.definition, dict) and "automation" in row.definition
    ]


def contact_rows_by_refs(
    session: Session,
    columns: Sequence[str],
    external_ids: Sequence[str],
    phones: Sequence[str],
    emails: Sequence[str],
) -> list[Sequence[Any]]:
    """The contacts any of these identities name (one bounded batch of events' worth), as
    plain rows of ``columns`` (the first: ``id``), in id order. On PostgreSQL one query
    whose rows come back as one JSON array (decoded at once, not value by value)."""
    wanted = [getattr(Contact, name) for name in columns]
    lookups = [
        (column, values)
        for column, values in (
            (Contact.external_id, sorted(set(external_ids))),
            (Contact.phone, sorted(set(phones))),
            (func.lower(Contact.email), sorted({e.lower() for e in emails})),
        )
        if values
    ]
    if not lookups:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return _contact_rows_json(session, columns, lookups)
    found: dict[int, Sequence[Any]] = {}
    for column, values in lookups:
        where = one_of(session, column, values, String())
        for row in session.execute(select(*wanted).where(where)):
            found.setdefault(row[0], row)
    return [found[i] for i in sorted(found)]


def _contact_rows_json(
    session: Session, columns: Sequence[str], lookups: Sequence[tuple[Any, Sequence[str]]]
) -> list[Sequence[Any]]:
    """:func:`contact_rows_by_refs` on PostgreSQL: ``json_agg`` of the rows, each a JSON
    array of ``columns``; instants and enums are rebuilt from their JSON text."""
    table = Contact.__table__.c
    built = func.json_build_array(*(table[name] for name in columns))
    doc = session.scalar(
        select(func.json_agg(aggregate_order_by(built, table.id))).where(
            or_(*(one_of(session, column, values, String()) for column, values in lookups))
        )
    )
    rows: list[list[Any]] = doc or []
    for position, name in enumerate(columns):
        kind = table[name].type
        if isinstance(kind, UtcDateTime):
            for row in rows:
                if row[position] is not None:
                    row[position] = datetime.fromisoformat(row[position]).astimezone(UTC)
        elif isinstance(kind, StrEnumType):
            # By value from a table of the members: calling the enum class costs more.
            members = {member.value: member for member in kind.enum_class}
            for row in rows:
                if row[position] is not None:
                    row[position] = members.get(row[position]) or kind.enum_class(row[position])
    return list(rows)


def enrollments_of_many(session: Session, contact_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Every enrollment of these contacts as a row ``(id, contact_id, status, enrolled_at,
    name)`` (``name``: its campaign's), by contact, in id order; plain rows, not objects."""
    out: dict[int, list[Any]] = {i: [] for i in contact_ids}
    if not contact_ids:
        return out
    query = select(
        Enrollment.id,
        Enrollment.contact_id,
        Enrollment.status,
        Enrollment.enrolled_at,
        Campaign.name,
    ).join(Campaign, Campaign.id == Enrollment.campaign_id)
    wanted = sorted(set(contact_ids))
    if session.get_bind().dialect.name == "postgresql":
        # Joined to the ids as rows, not ``= ANY(array)``: with the table growing by a
        # file's enrollments faster than its statistics, the plan kept for the ``ANY``
        # form went from 2 ms a batch of 5,000 events to 120 ms by the 20th; this one
        # stays at 2-4 ms.
        listed = bindparam(None, json.dumps(wanted), type_=Text())
        ids = func.json_array_elements_text(cast(listed, JSON)).table_valued("value")
        query = query.join(ids, cast(ids.c.value, Integer) == Enrollment.contact_id)
    else:
        query = query.where(Enrollment.contact_id.in_(wanted))
    for row in sorted(session.execute(query), key=attrgetter("id")):
        out.setdefault(row.contact_id, []).append(row)
    return out


_MARK = (
    update(InboxEvent)
    .where(InboxEvent.id == bindparam("row_id"))
    .values(
        processed_at=bindparam("at"),
        contact_id=bindparam("cid"),
        outcome=bindparam("said"),
    )
)
_MARKED = (("id", "bigint"), ("cid", "integer"), ("said", "text"))
_MARK_PG = text(
    "UPDATE inbox_events AS e SET processed_at = :at, contact_id = v.cid, outcome = v.said"  # noqa: S608 - constants
    f" FROM {_zipped(_MARKED)} WHERE e.id = v.id"
)


def mark_processed_many(
    session: Session, rows: Sequence[tuple[int, int | None, str]], now: datetime
) -> None:
    """Mark inbox rows ``(row id, contact id, outcome)`` processed, in one statement (on
    PostgreSQL an ``UPDATE ... FROM`` their columns as JSON arrays, elsewhere one executed
    for many)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        columns = list(zip(*rows, strict=True))
        session.execute(_MARK_PG, {"at": now, **_column_params([n for n, _ in _MARKED], columns)})
        return
    session.connection().execute(
        _MARK, [{"row_id": r, "cid": c, "said": said, "at": now} for r, c, said in rows]
    )


def contact_keys(
    session: Session, external_ids: Sequence[str], phones: Sequence[str], emails: Sequence[str]
) -> set[str]:
    """Which of these identities name a contact: external ids and phones as given, emails
    as ``"@" + lower(email)``."""
    keys: set[str] = set()
    for column, values, prefix in (
        (Contact.external_id, sorted(set(external_ids)), ""),
        (Contact.phone, sorted(set(phones)), ""),
        (func.lower(Contact.email), sorted({e.lower() for e in emails}), "@"),
    ):
        if values:
            found = session.scalars(select(column).where(one_of(session, column, values, String())))
            keys.update(prefix + str(k) for k in found if k)
    return keys


#: The columns a lead event sets on a contact, written back for a whole run at once.
EVENT_COLUMNS = (
    "first_name", "last_name", "email", "state", "timezone", "stage", "lead_source",
    "external_id", "agent_id", "updated_at",
)  # fmt: skip
_JSON_COLUMNS = ("tags", "field_times")
_PG_TYPES = {"id": "integer", "agent_id": "integer", "updated_at": "timestamptz"}
_NAMES = (*EVENT_COLUMNS, *_JSON_COLUMNS)
_TYPES = {n: "json" if n in _JSON_COLUMNS else _PG_TYPES.get(n, "text") for n in ("id", *_NAMES)}


@functools.cache
def _write_pg(names: tuple[str, ...]) -> TextClause:
    """``UPDATE contacts ... FROM`` these columns as JSON arrays (a subset of
    :data:`_NAMES`, constants, never input), built once per subset."""
    assert set(names) <= set(_NAMES)
    return text(
        "UPDATE contacts AS c SET "  # noqa: S608 - constant column names only
        + ", ".join(f"{n} = v.{n}" for n in names)
        + f" FROM {_zipped([(n, _TYPES[n]) for n in ('id', *names)])} WHERE c.id = v.id"
    )


#: The values :func:`write_contacts` writes of a contact: its id, then :data:`_NAMES`.
written_values = attrgetter("id", *_NAMES)


def write_contacts(
    session: Session, contacts: Sequence[Any], before: Mapping[int, Sequence[Any]] | None = None
) -> None:
    """Write the event-set columns of these contacts (objects with those attributes, not in
    the session). ``before``: a contact's :func:`written_values` as read; a contact whose
    values are the same is not written, and on PostgreSQL only the columns that changed
    on some contact are (one ``UPDATE ... FROM`` their columns as JSON arrays, for them all:
    an event sets a field or two, and the others' values cost JSON both ways). Elsewhere
    one statement executed for each contact."""
    rows: list[Sequence[Any]] = []
    olds: list[Sequence[Any] | None] = []
    for c in contacts:
        values = written_values(c)
        old = before.get(c.id) if before is not None else None
        if old != values:
            rows.append(values)
            olds.append(old)
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        columns = list(zip(*rows, strict=True))
        if any(old is None for old in olds):
            positions = list(range(1, len(_NAMES) + 1))
        else:  # compared a column at a time: one comparison of two tuples each
            was = list(zip(*olds, strict=True))
            positions = [i for i in range(1, len(_NAMES) + 1) if columns[i] != was[i]]
        names = tuple(_NAMES[i - 1] for i in positions)
        session.execute(
            _write_pg(names),
            _column_params(("id", *names), [columns[0], *(columns[i] for i in positions)]),
        )
        return
    session.connection().execute(
        update(Contact)
        .where(Contact.id == bindparam("cid"))
        .values({n: bindparam(f"v_{n}") for n in _NAMES}),
        [{"cid": v[0], **{f"v_{n}": v[i] for i, n in enumerate(_NAMES, 1)}} for v in rows],
    )
