"""Constraints and defaults of the schema, enforced by the database itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drip.domain.enums import (
    Channel,
    ConsentSource,
    EnrollmentStatus,
    MessageKind,
    SenderRole,
    SendState,
)
from drip.store.models import (
    Agent,
    Campaign,
    Contact,
    Conversation,
    Enrollment,
    Message,
    ScheduledSend,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _campaign(session: Session, name: str = "smart-drip") -> int:
    campaign = Campaign(
        name=name, version="v1", definition={"name": name, "steps": []}, updated_at=NOW
    )
    session.add(campaign)
    session.commit()
    return campaign.id


def _enroll(session: Session, contact_id: int, campaign_id: int) -> Enrollment:
    enrollment = Enrollment(contact_id=contact_id, campaign_id=campaign_id, enrolled_at=NOW)
    session.add(enrollment)
    session.commit()
    return enrollment


def _message(sid: str | None, contact_id: int) -> Message:
    return Message(
        direction="outbound",
        channel=Channel.SMS,
        contact_id=contact_id,
        from_addr="+16175550100",
        to_addr="+16175550123",
        body="Hi",
        provider_sid=sid,
        status="queued",
        created_at=NOW,
    )


def test_one_active_enrollment_per_contact_and_campaign(session: Session, contact_id: int) -> None:
    """A second ACTIVE enrollment on the same campaign is refused by the partial unique index."""
    campaign_id = _campaign(session)
    _enroll(session, contact_id, campaign_id)
    with pytest.raises(IntegrityError):
        _enroll(session, contact_id, campaign_id)
    session.rollback()


def test_stopped_enrollments_do_not_block_a_new_one(session: Session, contact_id: int) -> None:
    """Once stopped, an enrollment no longer counts: re-enrolling works, repeatedly."""
    campaign_id = _campaign(session)
    for _ in range(2):
        first = _enroll(session, contact_id, campaign_id)
        first.status = EnrollmentStatus.STOPPED
        first.stopped_at = NOW
        session.commit()
    _enroll(session, contact_id, campaign_id)
    statuses = session.scalars(select(Enrollment.status).order_by(Enrollment.id)).all()
    assert statuses == [EnrollmentStatus.STOPPED, EnrollmentStatus.STOPPED, EnrollmentStatus.ACTIVE]


def test_active_enrollments_on_different_campaigns_coexist(
    session: Session, contact_id: int
) -> None:
    """The uniqueness is per (contact, campaign): other campaigns are not affected."""
    _enroll(session, contact_id, _campaign(session, "a"))
    _enroll(session, contact_id, _campaign(session, "b"))
    assert len(session.scalars(select(Enrollment)).all()) == 2


def test_contact_phone_is_unique_but_may_be_missing(session: Session, contact_id: int) -> None:
    """Two contacts cannot share a phone; any number of email-only contacts can exist."""
    for email in ("a@example.com", "b@example.com"):
        session.add(
            Contact(first_name="E", email=email, source=ConsentSource.MANUAL, created_at=NOW)
        )
    session.commit()
    session.add(
        Contact(first_name="Twin", phone="+16175550123", source=ConsentSource.API, created_at=NOW)
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_provider_sid_is_unique_where_present(session: Session, contact_id: int) -> None:
    """Messages without a provider id coexist; a repeated provider id is refused."""
    session.add_all([_message(None, contact_id), _message(None, contact_id)])
    session.add(_message("SM123", contact_id))
    session.commit()
    session.add(_message("SM123", contact_id))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_one_conversation_per_sender_and_contact(session: Session, contact_id: int) -> None:
    """The (sender phone, contact) pair is unique."""
    session.add(Conversation(sender_phone="+16175550100", contact_id=contact_id))
    session.add(Conversation(sender_phone="+16175550199", contact_id=contact_id))
    session.commit()
    session.add(Conversation(sender_phone="+16175550100", contact_id=contact_id))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_foreign_keys_are_enforced(session: Session) -> None:
    """A send for a contact that does not exist is refused (foreign_keys=ON on SQLite too)."""
    session.add(
        ScheduledSend(
            contact_id=987654,
            kind=MessageKind.MANUAL,
            channel=Channel.SMS,
            sender_role=SenderRole.AGENT,
            body="Hi",
            due_at=NOW,
            created_at=NOW,
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_agent_phone_is_unique(session: Session) -> None:
    """Two agents cannot text from the same number."""
    session.add(Agent(first_name="Sam", phone="+16175550100", created_at=NOW))
    session.commit()
    session.add(Agent(first_name="Kim", phone="+16175550100", created_at=NOW))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


def test_send_defaults(session: Session, contact_id: int) -> None:
    """A new send is pending, not catching up, unattempted, with original_due_at = due_at."""
    due = NOW + timedelta(days=15)
    send = ScheduledSend(
        contact_id=contact_id,
        kind=MessageKind.CAMPAIGN,
        channel=Channel.SMS,
        sender_role=SenderRole.AGENT,
        due_at=due,
        created_at=NOW,
    )
    session.add(send)
    session.commit()
    session.expunge_all()
    loaded = session.get(ScheduledSend, send.id)
    assert loaded is not None
    assert loaded.state is SendState.PENDING
    assert (loaded.catching_up, loaded.attempts) == (False, 0)
    assert loaded.original_due_at == due
    assert loaded.updated_at == NOW


def test_sends_and_messages_reference_each_other(session: Session, contact_id: int) -> None:
    """A send can point at its message and the message back at the send."""
    send = ScheduledSend(
        contact_id=contact_id,
        kind=MessageKind.MANUAL,
        channel=Channel.SMS,
        sender_role=SenderRole.AGENT,
        body="Hi",
        due_at=NOW,
        created_at=NOW,
    )
    session.add(send)
    session.flush()
    message = _message("SM1", contact_id)
    message.send_id = send.id
    session.add(message)
    session.flush()
    session.execute(
        update(ScheduledSend).where(ScheduledSend.id == send.id).values(message_id=message.id)
    )
    session.commit()
    session.expunge_all()
    loaded = session.get(ScheduledSend, send.id)
    assert loaded is not None
    assert loaded.message_id == message.id
    dangling = update(ScheduledSend).where(ScheduledSend.id == send.id).values(message_id=10**9)
    with pytest.raises(IntegrityError):
        session.execute(dangling)
    session.rollback()
