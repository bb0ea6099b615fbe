"""The contact rows an operator selects with filters (``contacts list``, ``enroll-many``).

Plain column tuples, not ORM objects: a selection may cover every contact.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from drip.domain.enums import ConsentSource, EnrollmentStatus, TextStatus
from drip.domain.zones import AREA_CODE_STATES, STATE_NAMES
from drip.store.models import Agent, Campaign, Contact, Enrollment

__all__ = [
    "ContactQuery",
    "active_campaigns_of",
    "contact_page",
    "contact_rows",
    "count_contacts",
    "enrolled_contact_ids",
]

#: Ids per ``IN (...)``: SQLite allows 32,766 bind values.
IN_CHUNK = 5000


#: The columns of :func:`contact_rows`, by name.
_COLUMNS: dict[str, Any] = {
    "id": Contact.id,
    "first_name": Contact.first_name,
    "last_name": Contact.last_name,
    "phone": Contact.phone,
    "email": Contact.email,
    "state": Contact.state,
    "timezone": Contact.timezone,
    "source": Contact.source,
    "sms_consent_at": Contact.sms_consent_at,
    "sms_opted_out_at": Contact.sms_opted_out_at,
    "text_status": Contact.text_status,
    "email_opted_out": Contact.email_opted_out,
    "created_at": Contact.created_at,
    "stage": Contact.stage,
    "tags": Contact.tags,
    "agent_phone": Agent.phone.label("agent_phone"),
}


def contact_rows(
    session: Session, *, after_id: int = 0, columns: Collection[str] | None = None
) -> Sequence[Any]:
    """Every contact not erased (id order) with its agent's phone, as named tuples.

    ``columns`` narrows the tuples to those names (``id`` always comes along):
    a selection over every contact reads only what its filters look at.
    """
    names = list(_COLUMNS) if columns is None else ["id", *(c for c in _COLUMNS if c in columns)]
    unknown = set(columns or ()) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"contacts have no column(s) {', '.join(sorted(unknown))}")
    stmt = select(*(_COLUMNS[n] for n in dict.fromkeys(names)))
    if "agent_phone" in names:
        stmt = stmt.outerjoin(Agent, Agent.id == Contact.agent_id)
    # An erased contact is never chosen again (it has no phone or email left anyway).
    stmt = stmt.where(Contact.id > after_id, Contact.erased_at.is_(None)).order_by(Contact.id)
    rows: Sequence[Any] = session.execute(stmt).all()
    return rows


def enrolled_contact_ids(session: Session, campaign_id: int | None = None) -> set[int]:
    """Contacts with an active enrollment (in ``campaign_id``, or in any campaign)."""
    stmt = select(Enrollment.contact_id).where(Enrollment.status == EnrollmentStatus.ACTIVE)
    if campaign_id is not None:
        stmt = stmt.where(Enrollment.campaign_id == campaign_id)
    return set(session.scalars(stmt))


def active_campaigns_of(session: Session, contact_ids: Iterable[int]) -> dict[int, list[str]]:
    """``{contact id: [campaign names]}`` of the contacts' active enrollments."""
    ids = list(contact_ids)
    out: dict[int, list[str]] = {}
    for start in range(0, len(ids), IN_CHUNK):
        rows = session.execute(
            select(Enrollment.contact_id, Campaign.name)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .where(
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Enrollment.contact_id.in_(ids[start : start + IN_CHUNK]),
            )
            .order_by(Campaign.name)
        )
        for cid, name in rows:
            out.setdefault(cid, []).append(name)
    return out


@dataclass(frozen=True, slots=True)
class ContactQuery:
    """The filters of ``drip contacts list``, normalised (see :mod:`drip.services.selection`)."""

    state: str | None = None  # a two-letter code
    source: ConsentSource | None = None
    agent: str | None = None  # E.164
    name: str | None = None
    textable: bool | None = None
    not_enrolled: bool = False


def _state_is(state: str) -> ColumnElement[bool]:
    """The address state is ``state``; or there is none (or no US one) and the area code's is.

    Both lists are the state table's and the area code table's: the statement's
    size does not depend on the data.
    """
    codes = sorted(code for code, st in AREA_CODE_STATES.items() if st == state)
    address = func.upper(func.trim(Contact.state))
    no_address = or_(Contact.state.is_(None), address.not_in(sorted(STATE_NAMES)))
    by_area = and_(
        no_address,
        Contact.phone.like("+1%"),
        func.substr(Contact.phone, 3, 3).in_(codes) if codes else false(),
    )
    return or_(address == state, by_area)


def _filtered(stmt: Select[Any], q: ContactQuery) -> Select[Any]:
    if q.state is not None:
        stmt = stmt.where(_state_is(q.state))
    if q.source is not None:
        stmt = stmt.where(Contact.source == q.source)
    if q.agent is not None:
        chosen = aliased(Agent)
        stmt = stmt.where(exists().where(chosen.id == Contact.agent_id, chosen.phone == q.agent))
    if q.name:
        full = func.lower(Contact.first_name + " " + func.coalesce(Contact.last_name, ""))
        stmt = stmt.where(full.contains(q.name.lower(), autoescape=True))
    if q.textable is not None:
        can = and_(
            Contact.sms_consent_at.is_not(None),
            Contact.sms_opted_out_at.is_(None),
            Contact.text_status == TextStatus.TEXTABLE,
        )
        stmt = stmt.where(can if q.textable else not_(can))
    if q.not_enrolled:
        stmt = stmt.where(
            ~exists().where(
                Enrollment.contact_id == Contact.id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        )
    return stmt


def contact_page(session: Session, q: ContactQuery, *, after: int, limit: int) -> Sequence[Any]:
    """Up to ``limit`` contacts matching ``q`` with an id above ``after`` (id order).

    Filtered in SQL, a keyset page (``id > after``): the cost is the page, and
    an index walk on the id, not the number of contacts.
    """
    stmt = select(*_COLUMNS.values()).outerjoin(Agent, Agent.id == Contact.agent_id)
    stmt = _filtered(stmt, q).where(Contact.id > after).order_by(Contact.id).limit(limit)
    rows: Sequence[Any] = session.execute(stmt).all()
    return rows


def count_contacts(session: Session, q: ContactQuery) -> int:
    """How many contacts match ``q`` (one counting query)."""
    return int(session.execute(_filtered(select(func.count(Contact.id)), q)).scalar_one())
