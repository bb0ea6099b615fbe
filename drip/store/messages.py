"""Queries on messages (``messages``): status moves, lookups by send and provider id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from drip.domain.enums import Channel
from drip.store.models import Contact, Message


def move_status(
    session: Session, message_id: int, sources: Iterable[str], values: Mapping[str, object]
) -> bool:
    """Set ``values`` on the message only while its status is one of ``sources``; moved or not.

    One conditional ``UPDATE``: two callbacks of one message handled at the
    same moment cannot make its status go backwards.
    """
    moved = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status.in_(list(sources)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]


def failed_to_number(
    session: Session, contact: Contact, statuses: Iterable[str], codes: Iterable[int]
) -> int:
    """Texts to the contact's current number that failed with one of ``codes``."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.contact_id == contact.id,
                Message.direction == "outbound",
                Message.channel == Channel.SMS,
                Message.to_addr == contact.phone,
                Message.status.in_(list(statuses)),
                Message.error_code.in_(list(codes)),
            )
        )
        or 0
    )


def of_sends(session: Session, send_ids: Iterable[int]) -> dict[int, Message]:
    """The message recorded for each of these sends (those that have one)."""
    ids = list(send_ids)
    if not ids:
        return {}
    return {
        m.send_id: m
        for m in session.scalars(select(Message).where(Message.send_id.in_(ids)))
        if m.send_id is not None
    }


def recorded_sids(session: Session, sids: Iterable[str]) -> set[str]:
    """Which of these provider ids are already recorded on a message."""
    wanted = list(sids)
    if not wanted:
        return set()
    query = select(Message.provider_sid).where(Message.provider_sid.in_(wanted))
    return {sid for sid in session.scalars(query) if sid is not None}
