"""fire_gather: the batch's queued sends as plain rows, with contact, agent and enrollment state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from drip.domain.enums import (
    Channel,
    ConsentSource,
    EnrollmentStatus,
    MessageKind,
    SenderRole,
    SendState,
    TextStatus,
)
from drip.store.fire_gather import FireAgent, conversation_times, queued_sends
from drip.store.models import Agent, Campaign, Contact, Conversation, Enrollment, ScheduledSend

_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _send(session: Session, contact: Contact, due: datetime, **kw: object) -> int:
    send = ScheduledSend(
        contact_id=contact.id, kind=MessageKind.CAMPAIGN, channel=Channel.SMS,
        sender_role=SenderRole.AGENT, due_at=due, created_at=_AT, **{"state": SendState.QUEUED, **kw},
    )  # fmt: skip
    session.add(send)
    session.flush()
    return send.id


def test_queued_sends_are_read_in_firing_order_with_their_contact_agent_and_enrollment(
    session: Session,
) -> None:
    """Only queued sends, by due time; the agent only when assigned; an ended enrollment says so."""
    agent = Agent(first_name="Ann", last_name="Lee", phone="+16175550100", created_at=_AT)
    campaign = Campaign(name="c", version="1", definition={}, updated_at=_AT)
    session.add_all([agent, campaign])
    session.flush()
    ana = Contact(first_name="Ana", phone="+16175550201", source=ConsentSource.API,
                  agent_id=agent.id, sms_consent_at=_AT, created_at=_AT)  # fmt: skip
    ben = Contact(first_name="Ben", email="ben@example.com", source=ConsentSource.API,
                  text_status=TextStatus.CANNOT_BE_TEXTED, created_at=_AT)  # fmt: skip
    session.add_all([ana, ben])
    session.flush()
    active = Enrollment(contact_id=ana.id, campaign_id=campaign.id, enrolled_at=_AT)
    ended = Enrollment(contact_id=ben.id, campaign_id=campaign.id, enrolled_at=_AT,
                       status=EnrollmentStatus.STOPPED)  # fmt: skip
    session.add_all([active, ended])
    session.flush()
    later = _send(session, ana, _AT + timedelta(minutes=5), enrollment_id=active.id,
                  campaign_id=campaign.id, step_id="s2")  # fmt: skip
    first = _send(session, ben, _AT, enrollment_id=ended.id, campaign_id=campaign.id)
    manual = _send(session, ana, _AT + timedelta(minutes=9), body="Hi", sender_phone="+16175550999")
    taken = _send(session, ana, _AT, state=SendState.SENDING)
    session.add(Conversation(sender_phone=agent.phone, contact_id=ana.id, footer_last_sent_at=_AT))
    session.commit()

    rows = queued_sends(session, [later, first, manual, taken, 10_000])

    assert [r.send.id for r in rows] == [first, later, manual]
    b, a, m = rows
    assert (b.enrollment_active, b.agent, b.contact.text_status) == (
        False, None, TextStatus.CANNOT_BE_TEXTED,
    )  # fmt: skip
    assert (a.enrollment_active, a.agent, a.send.step_id) == (
        True, FireAgent("Ann", "Lee", "+16175550100"), "s2",
    )  # fmt: skip
    assert (m.enrollment_active, m.send.body, m.send.sender_phone) == (True, "Hi", "+16175550999")
    assert a.contact is m.contact  # one value per contact
    assert a.contact.sms_consent_at == _AT and a.send.kind is MessageKind.CAMPAIGN
    assert conversation_times(session, [(agent.phone, ana.id), ("+16175550999", ana.id)]) == {
        (agent.phone, ana.id): (_AT, None)
    }
