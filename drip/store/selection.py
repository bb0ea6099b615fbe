"""The contact rows an operator selects with filters (``contacts list``, ``enroll-many``).

Plain column tuples, not ORM objects: a selection may cover every contact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from drip.domain.enums import EnrollmentStatus
from drip.store.models import Agent, Campaign, Contact, Enrollment

__all__ = ["active_campaigns_of", "contact_rows", "enrolled_contact_ids"]

#: Ids per ``IN (...)``: SQLite allows 32,766 bind values.
IN_CHUNK = 5000


def contact_rows(session: Session, *, after_id: int = 0) -> Sequence[Any]:
    """Every contact (id order) with its agent's phone, as named tuples."""
    stmt = (
        select(
            Contact.id,
            Contact.first_name,
            Contact.last_name,
            Contact.phone,
            Contact.email,
            Contact.state,
            Contact.timezone,
            Contact.source,
            Contact.sms_consent_at,
            Contact.sms_opted_out_at,
            Contact.text_status,
            Contact.email_opted_out,
            Contact.created_at,
            Agent.phone.label("agent_phone"),
        )
        .outerjoin(Agent, Agent.id == Contact.agent_id)
        .where(Contact.id > after_id)
        .order_by(Contact.id)
    )
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
