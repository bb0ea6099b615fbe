"""Queries the services need, in one place: services never build SQL themselves.

Every function takes the ``Session`` of the caller's unit of work, so the
caller decides the transaction; none of them commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, EnrollmentStatus, MessageKind, SendState
from drip.store import outbox
from drip.store.models import (
    Agent,
    Campaign,
    ConsentEvent,
    Contact,
    Conversation,
    Enrollment,
    Message,
    ScheduledSend,
    SendDecision,
)

MARKETING_KINDS = (MessageKind.CAMPAIGN, MessageKind.BULK)
#: Message statuses that mean the provider did not take the message.
NOT_SENT_STATUSES = ("failed",)


def contact_by_phone(session: Session, phone: str) -> Contact | None:
    return session.scalars(select(Contact).where(Contact.phone == phone)).one_or_none()


def _ids() -> Any:
    """The ``:ids`` list of a prebuilt ``IN``: the fire path runs these per batch, and
    building a statement (every clause coerced, a cache key computed) cost more CPU
    than executing it."""
    return bindparam("ids", expanding=True)


_CONTACTS_BY_ID = select(Contact).where(Contact.id.in_(_ids()))
_AGENTS_BY_ID = select(Agent).where(Agent.id.in_(_ids()))
_CAMPAIGNS_BY_ID = select(Campaign).where(Campaign.id.in_(_ids()))


def contacts_by_id(session: Session, ids: Iterable[int]) -> dict[int, Contact]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.scalars(_CONTACTS_BY_ID, {"ids": sorted(wanted)})
    return {c.id: c for c in rows}


def agents_by_id(session: Session, ids: Iterable[int]) -> dict[int, Agent]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {a.id: a for a in session.scalars(_AGENTS_BY_ID, {"ids": sorted(wanted)})}


def agent_by_phone(session: Session, phone: str) -> Agent | None:
    return session.scalars(select(Agent).where(Agent.phone == phone)).one_or_none()


def campaign_by_name(session: Session, name: str) -> Campaign | None:
    return session.scalars(select(Campaign).where(Campaign.name == name)).one_or_none()


def campaigns_by_id(session: Session, ids: Iterable[int]) -> dict[int, Campaign]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {c.id: c for c in session.scalars(_CAMPAIGNS_BY_ID, {"ids": sorted(wanted)})}


def all_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.name)))


#: PostgreSQL: the pairs as two arrays, so one statement text (built, compiled and
#: prepared once) serves any number of them; a multi-row VALUES was a new statement,
#: compiled anew, at every batch (a quarter of a batch's gather). ``conversations``
#: has no column default to apply.
_ENSURE_CONVERSATIONS_PG = text(
    "INSERT INTO conversations (sender_phone, contact_id)"
    " SELECT * FROM unnest(CAST(:phones AS VARCHAR[]), CAST(:contact_ids AS INTEGER[]))"
    " ON CONFLICT DO NOTHING"
)


def ensure_conversations(session: Session, pairs: Iterable[tuple[str, int]]) -> None:
    """Create missing (sender, contact) conversations; concurrent creators do not collide."""
    wanted = sorted(set(pairs))  # sorted: concurrent batches take row locks in one order
    if not wanted:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(
            _ENSURE_CONVERSATIONS_PG,
            {"phones": [s for s, _ in wanted], "contact_ids": [c for _, c in wanted]},
        )
    else:
        rows = [{"sender_phone": s, "contact_id": c} for s, c in wanted]
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(Conversation).values(rows).on_conflict_do_nothing())


_CONVERSATIONS_OF = select(Conversation).where(Conversation.contact_id.in_(_ids()))


def conversations_for(
    session: Session, pairs: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], Conversation]:
    wanted = set(pairs)
    if not wanted:
        return {}
    contact_ids = sorted({c for _, c in wanted})
    rows = session.scalars(_CONVERSATIONS_OF, {"ids": contact_ids})
    found = {(r.sender_phone, r.contact_id): r for r in rows}
    return {k: v for k, v in found.items() if k in wanted}


def conversation(session: Session, sender_phone: str, contact_id: int) -> Conversation:
    ensure_conversations(session, [(sender_phone, contact_id)])
    return session.scalars(
        select(Conversation).where(
            Conversation.sender_phone == sender_phone, Conversation.contact_id == contact_id
        )
    ).one()


_MARKETING_SENT = select(Message.contact_id, Message.sent_at).where(
    Message.contact_id.in_(_ids()),
    Message.direction == "outbound",
    Message.channel == Channel.SMS,
    Message.kind.in_(MARKETING_KINDS),
    Message.sent_at >= bindparam("since", type_=Message.__table__.c.sent_at.type),
    Message.status.not_in(NOT_SENT_STATUSES),
)


def marketing_sent_since(
    session: Session, contact_ids: Iterable[int], since: datetime
) -> dict[int, list[datetime]]:
    """Send times of campaign and bulk texts per contact since ``since`` (state caps)."""
    wanted = set(contact_ids)
    out: dict[int, list[datetime]] = defaultdict(list)
    if not wanted:
        return out
    rows = session.execute(_MARKETING_SENT, {"ids": sorted(wanted), "since": since})
    for contact_id, sent_at in rows:
        if contact_id is not None and sent_at is not None:
            out[contact_id].append(sent_at)
    return out


_LAST_SENT = (
    select(ScheduledSend.enrollment_id, func.max(Message.sent_at))
    .join(Message, Message.id == ScheduledSend.message_id)
    .where(
        ScheduledSend.enrollment_id.in_(_ids()),
        ScheduledSend.state == SendState.SENT,
        ScheduledSend.catching_up.is_(True),
    )
    .group_by(ScheduledSend.enrollment_id)
)


def enrollment_last_sent(session: Session, enrollment_ids: Iterable[int]) -> dict[int, datetime]:
    """The last time each enrollment had an overdue step go out (catch-up).

    Only steps sent overdue count (``catching_up`` is set on them when they
    go out): a step sent on time does not hold back a lone overdue one.
    """
    wanted = set(enrollment_ids)
    if not wanted:
        return {}
    rows = session.execute(_LAST_SENT, {"ids": sorted(wanted)})
    return {eid: at for eid, at in rows if eid is not None and at is not None}


def active_enrollment(session: Session, contact_id: int, campaign_id: int) -> Enrollment | None:
    return session.scalars(
        select(Enrollment).where(
            Enrollment.contact_id == contact_id,
            Enrollment.campaign_id == campaign_id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
    ).one_or_none()


def active_enrollments_of(session: Session, contact_id: int) -> list[Enrollment]:
    return list(
        session.scalars(
            select(Enrollment).where(
                Enrollment.contact_id == contact_id, Enrollment.status == EnrollmentStatus.ACTIVE
            )
        )
    )


def sends_of_campaign(session: Session, campaign_id: int) -> list[ScheduledSend]:
    """Every send of the campaign's active enrollments, whatever its state (for sync)."""
    return list(
        session.scalars(
            select(ScheduledSend)
            .join(Enrollment, Enrollment.id == ScheduledSend.enrollment_id)
            .where(
                ScheduledSend.campaign_id == campaign_id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        )
    )


def active_enrollments_of_campaign(session: Session, campaign_id: int) -> list[Enrollment]:
    return list(
        session.scalars(
            select(Enrollment).where(
                Enrollment.campaign_id == campaign_id, Enrollment.status == EnrollmentStatus.ACTIVE
            )
        )
    )


def active_enrollment_ids_for(
    session: Session, campaign_id: int, contact_ids: Sequence[int]
) -> dict[int, int]:
    """``{contact id: enrollment id}`` of the contacts' active enrollments in the campaign.

    Two columns, no ORM objects: enrolling thousands of contacts at once only
    needs the ids.
    """
    rows = session.execute(
        select(Enrollment.contact_id, Enrollment.id).where(
            Enrollment.campaign_id == campaign_id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.contact_id.in_(contact_ids),
        )
    )
    return {row[0]: row[1] for row in rows}


_ACTIVE_ENROLLMENTS = select(Enrollment.id).where(
    Enrollment.id.in_(_ids()), Enrollment.status == EnrollmentStatus.ACTIVE
)


def active_enrollment_ids(session: Session, enrollment_ids: Iterable[int]) -> set[int]:
    """Which of these enrollments are still active (a reply may have ended one)."""
    wanted = set(enrollment_ids)
    if not wanted:
        return set()
    return set(session.scalars(_ACTIVE_ENROLLMENTS, {"ids": sorted(wanted)}))


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def finish_enrollments(session: Session, enrollment_ids: Iterable[int], now: datetime) -> None:
    """Mark enrollments with nothing left pending or in flight as completed."""
    wanted = set(enrollment_ids)
    if not wanted:
        return
    session.connection().execute(_FINISH, {"b_ids": sorted(wanted), "b_now": now})


def _finish_statement() -> Any:
    """Built once: :func:`finish_enrollments` runs once per text sent, and building a
    statement costs more CPU than executing it (Core, not an ORM-enabled UPDATE)."""
    open_states = (SendState.PENDING, SendState.QUEUED, SendState.SENDING)
    sends, enrollments = _table(ScheduledSend), _table(Enrollment)
    still_open = select(sends.c.id).where(
        sends.c.enrollment_id == enrollments.c.id, sends.c.state.in_(open_states)
    )
    return (
        update(enrollments)
        .where(
            enrollments.c.id.in_(bindparam("b_ids", expanding=True)),
            enrollments.c.status == EnrollmentStatus.ACTIVE,
            ~still_open.exists(),
        )
        .values(
            status=EnrollmentStatus.COMPLETED,
            stopped_at=bindparam("b_now", type_=enrollments.c.stopped_at.type),
            stop_reason="all steps done",
        )
    )


_FINISH = _finish_statement()


def decisions_of(session: Session, send_id: int) -> list[SendDecision]:
    return list(
        session.scalars(
            select(SendDecision)
            .where(SendDecision.send_id == send_id)
            .order_by(SendDecision.at, SendDecision.id)
        )
    )


def messages_of(session: Session, contact_id: int) -> list[Message]:
    return list(
        session.scalars(
            select(Message)
            .where(Message.contact_id == contact_id)
            .order_by(Message.created_at, Message.id)
        )
    )


def consent_events_of(session: Session, contact_id: int) -> list[ConsentEvent]:
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(ConsentEvent.at, ConsentEvent.id)
        )
    )


def sends_of_contact(session: Session, contact_id: int) -> list[ScheduledSend]:
    return list(
        session.scalars(
            select(ScheduledSend)
            .where(ScheduledSend.contact_id == contact_id)
            .order_by(ScheduledSend.original_due_at, ScheduledSend.id)
        )
    )


def decisions_of_sends(session: Session, send_ids: Iterable[int]) -> list[SendDecision]:
    wanted = set(send_ids)
    if not wanted:
        return []
    return list(
        session.scalars(
            select(SendDecision)
            .where(SendDecision.send_id.in_(wanted))
            .order_by(SendDecision.at, SendDecision.id)
        )
    )


def next_due_at(session: Session) -> datetime | None:
    """The earliest pending due time dispatch would claim (replay jumps there).

    Sends of a paused campaign are held, so they do not count.
    """
    from drip.store.claims import not_held
    from drip.store.pausing import next_resume_at

    due = session.scalar(
        select(func.min(ScheduledSend.due_at)).where(
            ScheduledSend.state == SendState.PENDING, not_held()
        )
    )
    resume = next_resume_at(session)  # a paused enrollment's automatic resume is due work too
    return min((t for t in (due, resume) if t is not None), default=None)


def message_by_sid(session: Session, sid: str) -> Message | None:
    return session.scalars(select(Message).where(Message.provider_sid == sid)).one_or_none()


def stop_enrollments(
    session: Session, enrollment_ids: Iterable[int], now: datetime, reason: str
) -> list[int]:
    """Stop enrollments and cancel their pending sends; returns the cancelled send ids."""
    wanted = set(enrollment_ids)
    if not wanted:
        return []
    ended = session.execute(
        update(Enrollment)
        .where(Enrollment.id.in_(wanted), Enrollment.status == EnrollmentStatus.ACTIVE)
        .values(status=EnrollmentStatus.STOPPED, stopped_at=now, stop_reason=reason)
        .returning(Enrollment.id, Enrollment.contact_id, Enrollment.campaign_id)
        .execution_options(synchronize_session=False)
    )
    outbox.append_ended(session, [(r[0], r[1], r[2]) for r in ended], "stopped", reason, now)
    return list(
        session.scalars(
            update(ScheduledSend)
            .where(
                ScheduledSend.enrollment_id.in_(wanted), ScheduledSend.state == SendState.PENDING
            )
            .values(
                state=SendState.CANCELLED,
                decision_code="cancelled",
                decision_reason=reason,
                updated_at=now,
            )
            .returning(ScheduledSend.id)
        )
    )


def count_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(ScheduledSend.state, func.count()).group_by(ScheduledSend.state))
    return {str(state): int(n) for state, n in rows}


def last_outbound_at(session: Session, contact_ids: Iterable[int]) -> dict[int, datetime]:
    wanted = set(contact_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(Message.contact_id, func.max(Message.sent_at))
        .where(Message.contact_id.in_(wanted), Message.direction == "outbound")
        .group_by(Message.contact_id)
    )
    return {cid: at for cid, at in rows if cid is not None and at is not None}
