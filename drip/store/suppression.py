"""The suppression list: erased contacts' phones and emails as keyed hashes, with their opt-outs.

A digest is HMAC-SHA256 of the normalized value (an E.164 number, or the
address stripped and in lower case) under the install's ``suppression`` key,
a random 32-byte secret made on first use and kept in ``install_keys``. A
reader of the table alone cannot tell which number a row is without that key
(docs/compliance.md#erasure-and-retention says what the key does not protect
against). Nothing here commits: the caller's transaction does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drip.store.models import InstallKey, Suppression

__all__ = ["Suppressed", "digest", "install_key", "lookup", "remember", "suppressed_among"]

KEY_NAME = "suppression"


def install_key(session: Session, now: datetime) -> bytes:
    """The install's suppression key, made (random) and stored on first use."""
    value = session.scalar(select(InstallKey.value).where(InstallKey.name == KEY_NAME))
    if value is None:
        try:
            with session.begin_nested():
                session.add(InstallKey(name=KEY_NAME, value=secrets.token_hex(32), created_at=now))
        except IntegrityError:  # another process made it first: use theirs
            pass
        value = session.scalar(select(InstallKey.value).where(InstallKey.name == KEY_NAME))
    assert value is not None
    return bytes.fromhex(value)


def normalized(kind: str, value: str) -> str:
    """What is hashed: the number as stored (E.164), the address stripped and in lower case."""
    return value.strip().lower() if kind == "email" else value.strip()


def digest(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of ``kind:value`` under ``key``, in hex."""
    message = f"{kind}:{normalized(kind, value)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Suppressed:
    """What a suppressed phone or email carries over to a contact created with it."""

    kind: str
    erased_at: datetime
    sms_opted_out_at: datetime | None
    sms_opted_out_how: str | None
    email_opted_out_at: datetime | None


def remember(
    session: Session,
    key: bytes,
    values: Iterable[tuple[str, str]],
    *,
    contact_id: int,
    now: datetime,
    sms_opted_out_at: datetime | None,
    sms_opted_out_how: str | None,
    email_opted_out_at: datetime | None,
) -> int:
    """Put (kind, value) pairs on the list (a known digest takes the latest erasure); how many."""
    n = 0
    for kind, value in values:
        d = digest(key, kind, value)
        row = session.scalars(
            select(Suppression).where(Suppression.kind == kind, Suppression.digest == d)
        ).one_or_none()
        if row is None:
            row = Suppression(kind=kind, digest=d)
            session.add(row)
        row.erased_at = now
        row.contact_id = contact_id
        row.sms_opted_out_at = sms_opted_out_at
        row.sms_opted_out_how = sms_opted_out_how
        row.email_opted_out_at = email_opted_out_at
        n += 1
    session.flush()
    return n


def _key_if_any(session: Session) -> bytes | None:
    value = session.scalar(select(InstallKey.value).where(InstallKey.name == KEY_NAME))
    return bytes.fromhex(value) if value is not None else None


def lookup(session: Session, phone: str | None, email: str | None) -> list[Suppressed]:
    """The suppressions of ``phone`` and ``email`` (none before the first erasure)."""
    key = _key_if_any(session)
    if key is None:
        return []
    wanted = [(k, v) for k, v in (("phone", phone), ("email", email)) if v]
    out: list[Suppressed] = []
    for kind, value in wanted:
        row = session.scalars(
            select(Suppression).where(
                Suppression.kind == kind, Suppression.digest == digest(key, kind, value)
            )
        ).one_or_none()
        if row is not None:
            out.append(
                Suppressed(
                    kind,
                    row.erased_at,
                    row.sms_opted_out_at,
                    row.sms_opted_out_how,
                    row.email_opted_out_at,
                )
            )
    return out


def suppressed_among(session: Session, kind: str, values: Sequence[str]) -> set[str]:
    """Which of ``values`` are on the list (one query per 500; none before the first erasure)."""
    key = _key_if_any(session)
    if key is None or not values:
        return set()
    by_digest = {digest(key, kind, v): v for v in values}
    found: set[str] = set()
    digests = list(by_digest)
    for start in range(0, len(digests), 500):
        part = digests[start : start + 500]
        rows = session.scalars(
            select(Suppression.digest).where(Suppression.kind == kind, Suppression.digest.in_(part))
        )
        found.update(by_digest[d] for d in rows)
    return found
