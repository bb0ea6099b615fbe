"""fire_record: new_message builds the constructor's message cheaper; record_sent's one statement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from drip.domain.enums import (
    Channel,
    ConsentSource,
    EnrollmentStatus,
    MessageKind,
    SenderRole,
    SendState,
)
from drip.store.fire_record import new_message, record_sent
from drip.store.models import (
    Campaign,
    Contact,
    Conversation,
    Enrollment,
    Message,
    ScheduledSend,
    SendDecision,
)

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


_PHONE = "+16175550100"


def _sending(session: Session, contact_id: int, enrollment_id: int, state: SendState) -> int:
    send = ScheduledSend(
        enrollment_id=enrollment_id, contact_id=contact_id, kind=MessageKind.CAMPAIGN,
        channel=Channel.SMS, sender_role=SenderRole.AGENT, due_at=_AT, state=state,
        created_at=_AT,
    )  # fmt: skip
    session.add(send)
    session.flush()
    return send.id


# record_sent is the PostgreSQL statement (SQLite records with ORM statements): PostgreSQL only.
@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("left_open", [False, True])
def test_record_sent_touches_only_its_contact_and_completes_a_finished_enrollment(
    engine: Engine, session: Session, left_open: bool
) -> None:
    """The footer moves on the sent contact's conversation only; the enrollment ends when nothing is open."""
    assert engine.dialect.name == "postgresql"
    campaign = Campaign(name="c", version="1", definition={}, updated_at=_AT)
    contacts = [
        Contact(first_name=n, phone=f"+1617555020{i}", source=ConsentSource.API, created_at=_AT)
        for i, n in enumerate(("Ana", "Ben"))
    ]
    session.add_all([campaign, *contacts])
    session.flush()
    enrollments = [
        Enrollment(contact_id=c.id, campaign_id=campaign.id, enrolled_at=_AT) for c in contacts
    ]
    earlier = _AT - timedelta(days=3)
    session.add_all(
        [*enrollments]
        + [Conversation(sender_phone=_PHONE, contact_id=c.id, footer_last_sent_at=earlier)
           for c in contacts]
    )  # fmt: skip
    session.flush()
    ana, ben = contacts
    send_id = _sending(session, ana.id, enrollments[0].id, SendState.SENDING)
    if left_open:
        _sending(session, ana.id, enrollments[0].id, SendState.PENDING)
    _sending(session, ben.id, enrollments[1].id, SendState.SENDING)
    session.commit()
    message = new_message(**{**_values(ana.id, "hi"), "send_id": send_id, "provider_sid": "SM1"})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        recorded = record_sent(
            conn, message, send_id,
            send_values={"state": SendState.SENT, "updated_at": _AT},
            decision={"at": _AT, "outcome": "sent", "code": "ok", "reason": "sent",
                      "footer": True, "footer_rule": "F1", "deferred_until": None},
            footer_phone=_PHONE, at=_AT, start=None,
        )  # fmt: skip
    assert recorded.send == (ana.id, enrollments[0].id)
    session.expire_all()
    footers = dict(
        session.execute(select(Conversation.contact_id, Conversation.footer_last_sent_at)).all()
    )
    assert footers == {ana.id: _AT, ben.id: earlier}
    status = dict(session.execute(select(Enrollment.contact_id, Enrollment.status)).all())
    expected = EnrollmentStatus.ACTIVE if left_open else EnrollmentStatus.COMPLETED
    assert status == {ana.id: expected, ben.id: EnrollmentStatus.ACTIVE}
    assert session.get(ScheduledSend, send_id).state is SendState.SENT  # type: ignore[union-attr]
    assert session.scalar(select(SendDecision.send_id)) == send_id
