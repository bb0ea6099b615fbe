"""Queries on conversations (``conversations``: one sender number and one contact)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from drip.store.models import Conversation


def footer_sent_at(session: Session, sender_phone: str, contact_id: int, at: datetime) -> None:
    """The conversation's last footer was sent at ``at``, unless a later one is recorded.

    The row must exist (:func:`drip.store.repository.ensure_conversations`).
    """
    session.execute(
        update(Conversation)
        .where(
            Conversation.sender_phone == sender_phone,
            Conversation.contact_id == contact_id,
            (Conversation.footer_last_sent_at.is_(None)) | (Conversation.footer_last_sent_at < at),
        )
        .values(footer_last_sent_at=at)
        .execution_options(synchronize_session=False)
    )
