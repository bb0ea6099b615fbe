"""Tables of compliance beyond the clock: the erasure suppression list and its key, number checks.

Re-exported by :mod:`drip.store.models`, where every table is found.
"""

# No ``from __future__ import annotations``: see drip/store/models.py.
from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from drip.store.model_base import CODE, Base, BigIntKey
from drip.store.types import UtcDateTime

__all__ = ["SUPPRESSION_KINDS", "InstallKey", "NumberCheck", "Suppression"]

#: ``suppressions.kind``
SUPPRESSION_KINDS = ("phone", "email")


class Suppression(Base):
    """An erased contact's phone or email as a keyed hash, and whether it had opted out.

    ``digest`` is HMAC-SHA256 of the E.164 number or the lower-case address under
    the install's key (:class:`InstallKey` ``suppression``): a contact created
    later with the same number or address starts opted out when the erased one
    had (docs/compliance.md#erasure-and-retention).
    """

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("kind", "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    digest: Mapped[str] = mapped_column(String(CODE))
    erased_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: The erased contact (its row stays, without personal data).
    contact_id: Mapped[int] = mapped_column(Integer)
    sms_opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sms_opted_out_how: Mapped[str | None] = mapped_column(String(16))
    email_opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class InstallKey(Base):
    """A secret made once per install (random, on first use), by name: ``suppression``."""

    __tablename__ = "install_keys"

    name: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class NumberCheck(Base):
    """One answer of the reassigned-numbers check, per number and ``LastVerifiedDate``.

    The number is kept as a keyed digest (``phone_digest``), never in clear; the
    answer (``yes`` or ``no``; checks without an answer are not kept) is the
    cache of that (number, date) pair, and the latest ``no`` of a number is its
    last verification. ``evidence`` is the source's ``reassigned_number`` object.
    """

    __tablename__ = "number_checks"
    __table_args__ = (
        UniqueConstraint("phone_digest", "last_verified_date"),
        Index("ix_number_checks_phone_digest_checked_at", "phone_digest", "checked_at"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    contact_id: Mapped[int | None] = mapped_column(Integer)
    phone_digest: Mapped[str] = mapped_column(String(64))
    last_verified_date: Mapped[date] = mapped_column(Date)
    answer: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime())
