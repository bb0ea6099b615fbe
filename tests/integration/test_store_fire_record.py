"""fire_record.new_message builds the same message as the ORM constructor, only cheaper."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, MessageKind
from drip.store.fire_record import new_message
from drip.store.models import Message

_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _values(contact_id: int, body: str) -> dict[str, object]:
    return {
        "direction": "outbound",
        "channel": Channel.SMS,
        "kind": MessageKind.CAMPAIGN,
        "sender_phone": "+16175550100",
        "contact_id": contact_id,
        "from_addr": "+16175550100",
        "to_addr": "+16175550123",
        "body": body,
        "footer": True,
        "segments": 1,
        "encoding": "GSM-7",
        "status": "queued",
        "created_at": _AT,
    }


def test_a_new_message_is_stored_like_one_built_by_the_constructor(
    session: Session, contact_id: int
) -> None:
    """Added to a session, both insert the same columns, defaults included, and later sets apply."""
    fast = new_message(**_values(contact_id, "fast"))
    slow = Message(**_values(contact_id, "slow"))
    for message in (fast, slow):
        message.provider_sid = f"SM-{message.body}"
    session.add_all([fast, slow])
    session.commit()
    rows = {m.body: m for m in session.scalars(select(Message).order_by(Message.id))}
    columns = [c.key for c in Message.__mapper__.column_attrs if c.key not in ("id", "body")]
    stored = {body: {k: getattr(rows[body], k) for k in columns} for body in ("fast", "slow")}
    assert stored["fast"] == {**stored["slow"], "provider_sid": "SM-fast"}
    assert stored["fast"]["updated_at"] == _AT  # the Python-side default applied


def test_a_new_message_refuses_an_unknown_name() -> None:
    """A name that is not a column is an error, as with the constructor."""
    with pytest.raises(TypeError, match="bogus"):
        new_message(bogus=1)
