"""The contact rows an operator selects with filters (``contacts list``, ``enroll-many``).

Plain column tuples, not ORM objects: a selection may cover every contact.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from drip.domain.enums import EnrollmentStatus
from drip.store.models import Agent, Campaign, Contact, Enrollment

__all__ = ["active_campaigns_of", "contact_rows", "enrolled_contact_ids"]

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
    """Every contact (id order) with its agent's phone, as named tuples.

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
    stmt = stmt.where(Contact.id > after_id).order_by(Contact.id)
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
