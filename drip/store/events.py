"""Queries of lead events: the inbox, contacts by the CRM's identity, enrollments by event."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import Integer, String, TypeEngine

from drip.store.models import Agent, Campaign, Contact, Enrollment, InboxEvent


def existing_events(session: Session, event_ids: Iterable[str]) -> dict[str, InboxEvent]:
    """The inbox rows already holding these producer ids."""
    wanted = list(dict.fromkeys(event_ids))
    out: dict[str, InboxEvent] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        where = one_of(session, InboxEvent.event_id, part, String())
        for row in session.scalars(select(InboxEvent).where(where)):
            out[row.event_id] = row
    return out


def one_of(
    session: Session,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Sequence[Any],
    kind: TypeEngine[Any],
) -> ColumnElement[bool]:
    """``column = ANY(:array)`` on PostgreSQL (one parameter, one cached plan for any
    count); ``column IN (...)`` elsewhere. For one bounded batch's worth of values."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(kind)))
    return column.in_(list(values))


def add_events(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert inbox rows (one dict of columns each, one statement executed for many);
    ``{event id: row id}``."""
    if not rows:
        return {}
    session.connection().execute(insert(InboxEvent), list(rows))
    ids = [r["event_id"] for r in rows]
    found = session.execute(
        select(InboxEvent.event_id, InboxEvent.id).where(
            one_of(session, InboxEvent.event_id, ids, String())
        )
    )
    return {str(row[0]): int(row[1]) for row in found}


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


def contacts_by_refs(
    session: Session, external_ids: Sequence[str], phones: Sequence[str], emails: Sequence[str]
) -> list[Contact]:
    """The contacts any of these identities name (one bounded batch of events' worth)."""
    found: dict[int, Contact] = {}
    for column, values in (
        (Contact.external_id, sorted(set(external_ids))),
        (Contact.phone, sorted(set(phones))),
        (func.lower(Contact.email), sorted({e.lower() for e in emails})),
    ):
        if values:
            where = one_of(session, column, values, String())
            for row in session.scalars(select(Contact).where(where)):
                found.setdefault(row.id, row)
    return [found[i] for i in sorted(found)]


def enrollments_of_many(
    session: Session, contact_ids: Sequence[int]
) -> dict[int, list[tuple[Enrollment, str]]]:
    """Every enrollment of these contacts with its campaign's name, by contact, in id order."""
    out: dict[int, list[tuple[Enrollment, str]]] = {i: [] for i in contact_ids}
    if not contact_ids:
        return out
    rows = session.execute(
        select(Enrollment, Campaign.name)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(one_of(session, Enrollment.contact_id, sorted(set(contact_ids)), Integer()))
        .order_by(Enrollment.id)
    )
    for enrollment, name in rows:
        out.setdefault(enrollment.contact_id, []).append((enrollment, name))
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


def mark_processed_many(
    session: Session, rows: Sequence[tuple[int, int | None, str]], now: datetime
) -> None:
    """Mark inbox rows ``(row id, contact id, outcome)`` processed, in one statement."""
    if rows:
        session.connection().execute(
            _MARK, [{"row_id": r, "cid": c, "said": said, "at": now} for r, c, said in rows]
        )


_EVENT_OF = (
    update(Enrollment).where(Enrollment.id == bindparam("eid")).values(event_id=bindparam("ev"))
)


def set_enrollment_events(session: Session, pairs: Sequence[tuple[int, str]]) -> None:
    """Record which event made each enrollment ``(enrollment id, event id)``."""
    if pairs:
        session.connection().execute(_EVENT_OF, [{"eid": e, "ev": ev} for e, ev in pairs])


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
# Built once from the constant column names above, never from input.
_WRITE_PG = text(
    "UPDATE contacts AS c SET "  # noqa: S608 - constant column names only
    + ", ".join(f"{n} = v.{n}::json" if n in _JSON_COLUMNS else f"{n} = v.{n}" for n in _NAMES)
    + " FROM unnest("
    + ", ".join(f"CAST(:{n} AS {_PG_TYPES.get(n, 'text')}[])" for n in ("id", *_NAMES))
    + f") AS v(id, {', '.join(_NAMES)}) WHERE c.id = v.id"
)


def write_contacts(session: Session, contacts: Sequence[Contact]) -> None:
    """Write the event-set columns of these (detached) contacts: on PostgreSQL one
    ``UPDATE ... FROM unnest(...)`` for them all, elsewhere one statement executed for each."""
    if not contacts:
        return
    names = _NAMES
    if session.get_bind().dialect.name == "postgresql":
        params: dict[str, Any] = {"id": [c.id for c in contacts]}
        for n in names:
            values = [getattr(c, n) for c in contacts]
            if n in _JSON_COLUMNS:
                values = [None if v is None else json.dumps(v) for v in values]
            params[n] = values
        session.execute(_WRITE_PG, params)
        return
    session.connection().execute(
        update(Contact)
        .where(Contact.id == bindparam("cid"))
        .values({n: bindparam(f"v_{n}") for n in names}),
        [{"cid": c.id, **{f"v_{n}": getattr(c, n) for n in names}} for c in contacts],
    )
