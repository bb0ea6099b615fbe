"""The fire path's reads of a batch (:mod:`drip.services.fire.gather`), as plain rows.

Nothing the gather reads is written back through the ORM (a send's record is
its own statement, keyed by id), so its sends, contacts and agents come back
as small frozen values built from Core rows: one joined statement for the
sends, their contacts, agents and enrollments instead of four, and no ORM
identity map or instance state per row (building about four ORM instances per
send was most of the gather's CPU). The statements are built once: building
one cost more CPU than executing it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from drip.domain.enums import (
    Channel,
    EnrollmentStatus,
    MessageKind,
    SenderRole,
    SendState,
    TextStatus,
)
from drip.store.models import (
    Agent,
    Campaign,
    Contact,
    Conversation,
    Enrollment,
    ScheduledSend,
)


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


@dataclass(frozen=True, slots=True)
class FireSend:
    """The columns of a queued send that firing it reads."""

    id: int
    contact_id: int
    campaign_id: int | None
    enrollment_id: int | None
    step_id: str | None
    kind: MessageKind
    channel: Channel
    body: str | None
    sender_role: SenderRole
    sender_phone: str | None
    due_at: datetime
    catching_up: bool
    held_to_window: bool
    claimed_at: datetime | None
    attempts: int
    #: When the send was first due, before any deferral (a step's expiry counts from it).
    original_due_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class FireContact:
    """The columns of a contact that deciding and rendering its sends read."""

    id: int
    first_name: str
    last_name: str
    phone: str | None
    email: str | None
    state: str | None
    timezone: str | None
    agent_id: int | None
    sms_consent_at: datetime | None
    sms_opted_out_at: datetime | None
    text_status: TextStatus
    email_opted_out: bool
    text_status_by: str | None


@dataclass(frozen=True, slots=True)
class FireAgent:
    """The columns of an agent that the sender and the template read."""

    first_name: str
    last_name: str
    phone: str


@dataclass(frozen=True, slots=True)
class Gathered:
    """One queued send of the batch with its contact, agent and enrollment."""

    send: FireSend
    contact: FireContact
    agent: FireAgent | None
    #: False once its enrollment ended (a reply, a stop); True without one.
    enrollment_active: bool


# Table columns, not ORM attributes, run on the session's connection: the rows then
# skip the ORM's per-row column processing (same types, so the same values).
_S, _C, _A, _E = (_table(m).c for m in (ScheduledSend, Contact, Agent, Enrollment))
_SEND_COLUMNS = (
    _S.id, _S.contact_id, _S.campaign_id, _S.enrollment_id, _S.step_id, _S.kind, _S.channel,
    _S.body, _S.sender_role, _S.sender_phone, _S.due_at, _S.catching_up, _S.held_to_window,
    _S.claimed_at, _S.attempts, _S.original_due_at, _S.expires_at,
)  # fmt: skip
_CONTACT_COLUMNS = (
    _C.id, _C.first_name, _C.last_name, _C.phone, _C.email, _C.state, _C.timezone, _C.agent_id,
    _C.sms_consent_at, _C.sms_opted_out_at, _C.text_status, _C.email_opted_out,
    _C.text_status_by,
)  # fmt: skip
_NS, _NC = len(_SEND_COLUMNS), len(_CONTACT_COLUMNS)

#: Only sends still ``queued``: a second delivery of the task, a send cancelled or
#: recovered meanwhile, is not the batch's. Same order as the claim's.
_QUEUED_SENDS = (
    select(*_SEND_COLUMNS, *_CONTACT_COLUMNS, _A.first_name, _A.last_name, _A.phone, _E.status)
    .select_from(
        _table(ScheduledSend)
        .join(_table(Contact), _C.id == _S.contact_id)
        .outerjoin(_table(Agent), _A.id == _C.agent_id)
        .outerjoin(_table(Enrollment), _E.id == _S.enrollment_id)
    )
    .where(_S.id.in_(bindparam("ids", expanding=True)), _S.state == SendState.QUEUED)
    .order_by(_S.due_at, _S.original_due_at, _S.id)
)


def queued_sends(session: Session, ids: Sequence[int]) -> list[Gathered]:
    """The batch's sends still queued, in firing order, each with what firing it reads."""
    if not ids:
        return []
    out: list[Gathered] = []
    contacts: dict[int, FireContact] = {}
    # Rows typed Any: their columns are spread positionally into the values below.
    rows: Any = session.connection().execute(_QUEUED_SENDS, {"ids": list(ids)})
    for row in rows:
        send = FireSend(*row[:_NS])
        contact = contacts.get(send.contact_id)
        if contact is None:
            contact = contacts[send.contact_id] = FireContact(*row[_NS : _NS + _NC])
        first, last, phone, status = row[_NS + _NC :]
        agent = FireAgent(first, last, phone) if phone is not None else None
        active = send.enrollment_id is None or status == EnrollmentStatus.ACTIVE
        out.append(Gathered(send, contact, agent, active))
    return out


_G = _table(Campaign).c
_CAMPAIGNS_OF = select(_G.id, _G.name, _G.version, _G.definition).where(
    _G.id.in_(bindparam("ids", expanding=True))
)


def campaign_rows(
    session: Session, ids: Iterable[int]
) -> list[tuple[int, str, str, dict[str, Any]]]:
    """``(id, name, version, definition)`` of these stored campaigns."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    rows = session.connection().execute(_CAMPAIGNS_OF, {"ids": wanted})
    return [(cid, name, version, definition) for cid, name, version, definition in rows]


_V = _table(Conversation).c
_CONVERSATIONS_OF = select(
    _V.sender_phone, _V.contact_id, _V.footer_last_sent_at, _V.two_way_at
).where(_V.contact_id.in_(bindparam("ids", expanding=True)))


def conversation_times(
    session: Session, pairs: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], tuple[datetime | None, datetime | None]]:
    """``{(sender, contact): (footer_last_sent_at, two_way_at)}`` of these conversations."""
    wanted = set(pairs)
    if not wanted:
        return {}
    rows = session.connection().execute(_CONVERSATIONS_OF, {"ids": sorted({c for _, c in wanted})})
    return {
        (phone, cid): (footer, two_way)
        for phone, cid, footer, two_way in rows
        if (phone, cid) in wanted
    }
