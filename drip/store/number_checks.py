"""Queries on the reassigned-numbers check's answers (``number_checks``).

Each row is one ``yes`` or ``no`` per keyed digest of a number and the
``LastVerifiedDate`` asked with: the cache of that pair. A number's latest
``no`` is its last verification.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drip.store.models import NumberCheck, SendDecision


@dataclass(frozen=True, slots=True)
class KnownAnswer:
    """An answer kept for a (number, date) pair."""

    answer: str
    evidence: str
    checked_at: datetime


def last_verified(session: Session, digests: Collection[str]) -> dict[str, datetime]:
    """``{digest: when the check last said "no"}`` for the numbers that have such an answer."""
    if not digests:
        return {}
    rows = session.execute(
        select(NumberCheck.phone_digest, func.max(NumberCheck.checked_at))
        .where(NumberCheck.phone_digest.in_(list(digests)), NumberCheck.answer == "no")
        .group_by(NumberCheck.phone_digest)
    )
    return {digest: at for digest, at in rows if at is not None}


def known_answer(session: Session, digest: str, last_verified_date: date) -> KnownAnswer | None:
    """The answer kept for this number and date, if any."""
    row = session.execute(
        select(NumberCheck.answer, NumberCheck.evidence, NumberCheck.checked_at).where(
            NumberCheck.phone_digest == digest,
            NumberCheck.last_verified_date == last_verified_date,
        )
    ).first()
    return KnownAnswer(row[0], row[1], row[2]) if row is not None else None


def keep_answer(
    session: Session,
    *,
    contact_id: int | None,
    digest: str,
    last_verified_date: date,
    answer: str,
    evidence: str,
    at: datetime,
) -> bool:
    """Keep an answer for the pair; False when one was kept already (another worker's)."""
    try:
        with session.begin_nested():
            session.add(
                NumberCheck(
                    contact_id=contact_id,
                    phone_digest=digest,
                    last_verified_date=last_verified_date,
                    answer=answer,
                    evidence=evidence,
                    checked_at=at,
                )
            )
    except IntegrityError:
        return False
    return True


def unanswered_checks(session: Session, send_id: int, code: str) -> int:
    """How many times this send was already deferred with ``code`` (its checks without answer)."""
    found = session.scalar(
        select(func.count())
        .select_from(SendDecision)
        .where(SendDecision.send_id == send_id, SendDecision.code == code)
    )
    return int(found or 0)


def forget_contact(session: Session, contact_id: int) -> int:
    """Remove the answers kept for a contact's number (erasure); how many were removed."""
    result = session.execute(delete(NumberCheck).where(NumberCheck.contact_id == contact_id))
    return int(getattr(result, "rowcount", 0) or 0)
