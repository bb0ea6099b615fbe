"""The tables of drip, as SQLAlchemy 2 typed declarative models.

These classes are persistence rows, not domain values: services read them and
build the frozen values of :mod:`drip.domain` from them.

Conventions:

- Every instant is a :class:`~drip.store.types.UtcDateTime` (aware UTC).
  Library code never reads the clock, so ``created_at`` has no default: the
  caller passes ``now``. ``updated_at`` defaults to ``created_at`` on insert
  and ``scheduled_sends.original_due_at`` to ``due_at``; later changes set
  ``updated_at`` explicitly.
- Closed vocabularies (:mod:`drip.domain.enums`) are stored as their plain
  string values in ``VARCHAR`` columns (:class:`~drip.store.types.StrEnumType`),
  so a new member needs no migration. Open vocabularies (message status,
  decision outcome, opt-out "how") are plain strings; their known values are
  listed in the ``*_VALUES`` constants below.
- Columns with a constant default also carry a server default, so rows written
  by raw SQL or COPY get the same value.
- A few indexes exist on PostgreSQL only; they carry ``info={"dialects": (...)}``
  (read by the Alembic ``include_object`` hook) and ``ddl_if``.
- Partial indexes carry their ``WHERE`` for both databases as SQLAlchemy's own
  ``postgresql_where=`` / ``sqlite_where=`` keywords (checked when the model is
  built; this loads the PostgreSQL dialect module on SQLite too).
- ``scheduled_sends.message_id`` and ``messages.send_id`` reference each
  other; the first is created after both tables (``use_alter``).
"""

# No ``from __future__ import annotations`` here: SQLAlchemy would evaluate the
# 122 ``Mapped[...]`` annotations from strings (a compile each) on every start.

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from drip.domain.enums import (
    CampaignStatus,
    Channel,
    ConsentEventKind,
    ConsentSource,
    EnrollmentStatus,
    MessageKind,
    SenderRole,
    SendState,
    TextStatus,
)
from drip.store.compliance_models import SUPPRESSION_KINDS, InstallKey, NumberCheck, Suppression
from drip.store.model_base import (
    ADDRESS,
    CODE,
    EMAIL,
    EXTERNAL_ID,
    NAME,
    PHONE,
    Base,
    BigIntKey,
    only_on,
)
from drip.store.operator_models import OPERATOR_ROLES, Operator, OperatorAction
from drip.store.types import StrEnumType, UtcDateTime

__all__ = [
    "DECISION_OUTCOMES",
    "MESSAGE_DIRECTIONS",
    "MESSAGE_STATUSES",
    "OPERATOR_ROLES",
    "OPT_OUT_HOW_VALUES",
    "SUPPRESSION_KINDS",
    "Agent",
    "Base",
    "Bulk",
    "Campaign",
    "ConsentEvent",
    "Contact",
    "Conversation",
    "Enrollment",
    "InboxEvent",
    "InstallKey",
    "Message",
    "NumberCheck",
    "Operator",
    "OperatorAction",
    "OrphanOptOut",
    "OutboxEvent",
    "PendingCallback",
    "ScheduledSend",
    "SendDecision",
    "Suppression",
    "only_on",
]

#: ``contacts.sms_opted_out_how``
OPT_OUT_HOW_VALUES = ("keyword", "phrase", "operator", "carrier")
#: ``send_decisions.outcome``
DECISION_OUTCOMES = (
    "sent",
    "skipped",
    "deferred",
    "failed",
    "unknown",
    "cancelled",
    "rescheduled",
    "held",
    "released",
)
#: ``messages.direction``
MESSAGE_DIRECTIONS = ("outbound", "inbound")
#: ``messages.status`` (Twilio's vocabulary plus ``received`` for inbound)
MESSAGE_STATUSES = (
    "queued",
    "accepted",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "received",
    "read",
    "canceled",
)


def _default_from(column: str) -> Any:
    """An insert default copying another column of the same row."""

    def default(context: DefaultExecutionContext) -> Any:
        # SQLAlchemy leaves get_current_parameters unannotated.
        return context.get_current_parameters()[column]  # type: ignore[no-untyped-call]

    return default


class Agent(Base):
    """A person who texts leads from their own number (the sender)."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(NAME))
    last_name: Mapped[str] = mapped_column(String(NAME), default="")
    phone: Mapped[str] = mapped_column(String(PHONE), unique=True)
    email: Mapped[str | None] = mapped_column(String(EMAIL))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: False once deactivated: its contacts were reassigned and its number sends nothing more.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    deactivated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Contact(Base):
    """A lead: who they are, where they are, and what they agreed to."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_agent_id", "agent_id"),
        Index("ix_contacts_email", "email"),
        # A known email is the same contact in any case (the identity rule):
        # add, import and the API look contacts up by lower(email).
        Index("ix_contacts_email_lower", text("lower(email)")),
        # The CRM's lead id: unique where present (NULLs may repeat on both databases).
        Index("uq_contacts_external_id", "external_id", unique=True),
        # The opt-outs the summaries attribute: their number, not the contacts'.
        Index(
            "ix_contacts_sms_opted_out_at",
            "sms_opted_out_at",
            sqlite_where=text("sms_opted_out_at IS NOT NULL"),
            postgresql_where=text("sms_opted_out_at IS NOT NULL"),
        ),
        # Room on each page for a row's next version: a lead event's update of the
        # contact then touches none of its indexes (migration 0019).
        {"postgresql_with": {"fillfactor": 85}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_name: Mapped[str] = mapped_column(String(NAME))
    last_name: Mapped[str] = mapped_column(String(NAME), default="")
    # Unique where present; NULL (an email-only contact) may repeat on both databases.
    phone: Mapped[str | None] = mapped_column(String(PHONE), unique=True)
    email: Mapped[str | None] = mapped_column(String(EMAIL))
    state: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[ConsentSource] = mapped_column(StrEnumType(ConsentSource))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    sms_consent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sms_consent_source: Mapped[ConsentSource | None] = mapped_column(StrEnumType(ConsentSource))
    sms_consent_text: Mapped[str | None] = mapped_column(Text)
    sms_opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sms_opted_out_how: Mapped[str | None] = mapped_column(String(16))
    text_status: Mapped[TextStatus] = mapped_column(
        StrEnumType(TextStatus),
        default=TextStatus.TEXTABLE,
        server_default=TextStatus.TEXTABLE.value,
    )
    undeliverable_code: Mapped[int | None] = mapped_column(Integer)
    #: Who last set ``text_status`` by hand (an operator's name), so a skip can say who.
    text_status_by: Mapped[str | None] = mapped_column(String(NAME))
    email_opted_out: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    email_opted_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_default_from("created_at"))
    #: The CRM's lead id (unique where present), its stage, tags and where the lead came from.
    external_id: Mapped[str | None] = mapped_column(String(EXTERNAL_ID))
    stage: Mapped[str | None] = mapped_column(String(NAME))
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    lead_source: Mapped[str | None] = mapped_column(String(NAME))
    #: Per field set by a lead event: the ``occurred_at`` (ISO) of the event that set it, so
    #: that an older event arriving later does not move the field backwards.
    field_times: Mapped[dict[str, str] | None] = mapped_column(JSON)
    #: Erased (``drip contacts erase``): when and by whom; its personal data is gone.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    erased_by: Mapped[str | None] = mapped_column(String(NAME))


class ConsentEvent(Base):
    """One change of a contact's consent, with its evidence. Append-only."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_contact_id_at", "contact_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    kind: Mapped[ConsentEventKind] = mapped_column(StrEnumType(ConsentEventKind))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    source: Mapped[str] = mapped_column(String(CODE))
    evidence: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    #: The person who made the change: a console operator's name, the OS user or ``--as``
    #: of a CLI command; NULL when the contact, a carrier or drip itself made it.
    actor: Mapped[str | None] = mapped_column(String(NAME))


class Conversation(Base):
    """One (sender, contact) pair and its footer state."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("sender_phone", "contact_id"),
        Index("ix_conversations_contact_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender_phone: Mapped[str] = mapped_column(String(PHONE))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    footer_last_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    two_way_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Campaign(Base):
    """A loaded campaign: ``definition`` is ``domain.Campaign.as_dict()``."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    version: Mapped[str] = mapped_column(String(CODE))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_path: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: ``paused`` holds its sends at claim time; ``archived`` has none left.
    status: Mapped[CampaignStatus] = mapped_column(
        StrEnumType(CampaignStatus),
        default=CampaignStatus.ACTIVE,
        server_default=CampaignStatus.ACTIVE.value,
    )
    status_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Enrollment(Base):
    """A contact on a campaign; at most one ACTIVE per (contact, campaign)."""

    __tablename__ = "enrollments"
    __table_args__ = (
        Index("ix_enrollments_contact_id", "contact_id"),
        Index("ix_enrollments_campaign_id", "campaign_id"),
        Index(
            "uq_enrollments_active_contact_campaign",
            "contact_id",
            "campaign_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        # Dispatch skips the sends of paused enrollments: few rows, looked up on every claim.
        Index(
            "ix_enrollments_paused_at",
            "paused_at",
            sqlite_where=text("paused_at IS NOT NULL"),
            postgresql_where=text("paused_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    enrolled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    status: Mapped[EnrollmentStatus] = mapped_column(
        StrEnumType(EnrollmentStatus),
        default=EnrollmentStatus.ACTIVE,
        server_default=EnrollmentStatus.ACTIVE.value,
    )
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    stop_reason: Mapped[str | None] = mapped_column(Text)
    #: The lead event that enrolled the contact (a trigger), and the one that ended it (an exit).
    event_id: Mapped[str | None] = mapped_column(String(EXTERNAL_ID))
    stop_event_id: Mapped[str | None] = mapped_column(String(EXTERNAL_ID))
    #: Held since (a reply under ``on_reply: pause``, or an operator); its sends are held.
    paused_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: When it resumes by itself (quiet since the last reply); NULL: until an operator resumes.
    paused_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Who or what paused it: ``reply``, ``contact.touched`` or an operator's name.
    paused_by: Mapped[str | None] = mapped_column(String(NAME))


class ScheduledSend(Base):
    """A message to send at ``due_at``: a campaign step, a bulk text or a manual text.

    Campaign steps have no ``body``: they are rendered from the campaign at
    fire time, so an edited campaign reaches pending sends.
    """

    __tablename__ = "scheduled_sends"
    __table_args__ = (
        Index("ix_scheduled_sends_state_due_at", "state", "due_at"),
        Index(
            "ix_scheduled_sends_pending_due_at",
            "due_at",
            info=only_on("postgresql"),
            postgresql_where=text("state = 'pending'"),
        ).ddl_if(dialect="postgresql"),
        Index("ix_scheduled_sends_enrollment_id", "enrollment_id"),
        Index("ix_scheduled_sends_contact_id_due_at", "contact_id", "due_at"),
        # A campaign's sends, latest first (the console's campaign page, a page at a time).
        Index("ix_scheduled_sends_campaign_id_due_at", "campaign_id", "due_at", "id"),
        # Each state change of a send is a non-HOT update (state is indexed), which adds
        # an entry to every index whose predicate the new row meets. Only ``drip bulk
        # cancel`` looks sends up by bulk, and most sends have none (migration 0008).
        Index(
            "ix_scheduled_sends_bulk_id",
            "bulk_id",
            sqlite_where=text("bulk_id IS NOT NULL"),
            postgresql_where=text("bulk_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    enrollment_id: Mapped[int | None] = mapped_column(BigIntKey, ForeignKey("enrollments.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    step_id: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[MessageKind] = mapped_column(StrEnumType(MessageKind))
    channel: Mapped[Channel] = mapped_column(StrEnumType(Channel))
    body: Mapped[str | None] = mapped_column(Text)
    sender_role: Mapped[SenderRole] = mapped_column(StrEnumType(SenderRole))
    #: The exact number to send from (a reply goes out from the number the
    #: contact texted); NULL: resolved from ``sender_role`` at fire time.
    sender_phone: Mapped[str | None] = mapped_column(String(PHONE))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime())
    original_due_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=_default_from("due_at")
    )
    state: Mapped[SendState] = mapped_column(
        StrEnumType(SendState),
        default=SendState.PENDING,
        server_default=SendState.PENDING.value,
    )
    catching_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: A compliance text held to the window, state rules and pacing like a campaign
    #: text: the opt-in confirmation of consent brought in by an import.
    held_to_window: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: A bulk's ``--expires-at``: not sent by then, the send is skipped (``expired``).
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sending_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decision_code: Mapped[str | None] = mapped_column(String(CODE))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(
        BigIntKey,
        ForeignKey("messages.id", use_alter=True, name="fk_scheduled_sends_message_id_messages"),
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_default_from("created_at"))
    #: The ``drip bulk`` this send belongs to (``bulks.id``), for ``drip bulk cancel``.
    bulk_id: Mapped[int | None] = mapped_column(Integer)


class SendDecision(Base):
    """Why a send was sent, skipped, deferred...: the trail ``drip explain`` prints."""

    __tablename__ = "send_decisions"
    __table_args__ = (Index("ix_send_decisions_send_id", "send_id"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    send_id: Mapped[int] = mapped_column(BigIntKey, ForeignKey("scheduled_sends.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    outcome: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(CODE))
    reason: Mapped[str] = mapped_column(Text)
    footer: Mapped[bool | None] = mapped_column(Boolean)
    footer_rule: Mapped[str | None] = mapped_column(String(16))
    deferred_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Message(Base):
    """Every message in or out, with its delivery status."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_contact_id_created_at", "contact_id", "created_at"),
        Index("ix_messages_send_id", "send_id"),
        # NULLs are distinct in a unique index on both databases: unique where present.
        Index("uq_messages_provider_sid", "provider_sid", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))
    channel: Mapped[Channel] = mapped_column(StrEnumType(Channel))
    kind: Mapped[MessageKind | None] = mapped_column(StrEnumType(MessageKind))
    sender_phone: Mapped[str | None] = mapped_column(String(PHONE))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    from_addr: Mapped[str] = mapped_column(String(ADDRESS))
    to_addr: Mapped[str] = mapped_column(String(ADDRESS))
    body: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    footer: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    segments: Mapped[int | None] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(16))
    provider_sid: Mapped[str | None] = mapped_column(String(CODE))
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    send_id: Mapped[int | None] = mapped_column(BigIntKey, ForeignKey("scheduled_sends.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_default_from("created_at"))


class OrphanOptOut(Base):
    """An opt-out from a number that is not a contact yet: it starts opted out."""

    __tablename__ = "orphan_optouts"

    phone: Mapped[str] = mapped_column(String(PHONE), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    keyword: Mapped[str] = mapped_column(Text)


class Bulk(Base):
    """One ``drip bulk`` that scheduled sends: its id is what ``drip bulk cancel`` takes."""

    __tablename__ = "bulks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    #: The filters as the operator gave them, in words (for the record).
    filters: Mapped[str] = mapped_column(Text)
    recipients: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PendingCallback(Base):
    """A status callback for a message not recorded yet: applied, in order, when it is."""

    __tablename__ = "pending_callbacks"
    __table_args__ = (Index("ix_pending_callbacks_message_sid", "message_sid"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    message_sid: Mapped[str] = mapped_column(String(CODE))
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class InboxEvent(Base):
    """A lead event as the producer sent it, stored before it acts; processed once per id."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        Index("ix_inbox_events_contact_id_occurred_at", "contact_id", "occurred_at"),
        Index("ix_inbox_events_processed_at", "processed_at"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(EXTERNAL_ID), unique=True)
    type: Mapped[str] = mapped_column(String(CODE))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: How the event names its contact: ``{"external_id"|"phone"|"email": ...}``.
    contact_ref: Mapped[dict[str, Any]] = mapped_column(JSON)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: A digest of the body: a repeated id with another body is refused.
    digest: Mapped[str] = mapped_column(String(CODE))
    #: When it was stored, or last taken again to be applied (never applied, repeated
    #: by the producer after ``RETAKE_AFTER``: :func:`drip.store.events.retake_unapplied`).
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    contact_id: Mapped[int | None] = mapped_column(Integer)
    processed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: What it did, in words (``enrolled in revive-archived``; ``stage not moved back``).
    outcome: Mapped[str | None] = mapped_column(Text)


class SendTally(Base):
    """A running count behind ``drip stats`` and the console, kept by database triggers.

    One row per campaign step (or, with ``campaign_id`` 0, per kind of text
    outside campaigns), metric and reason code; the triggers of migration 0010
    add and subtract as sends, their messages and their decisions are written,
    in the writer's own transaction, so a read costs the number of steps, not
    the number of sends. See :mod:`drip.store.summary`.
    """

    __tablename__ = "send_tallies"

    campaign_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class SendTallyDelta(Base):
    """A change to :class:`SendTally` not folded in yet (PostgreSQL's statement triggers).

    Appended, never updated, by the triggers of migration 0010, one grouped
    row per statement and counter; :func:`drip.store.summary.fold` moves them
    into ``send_tallies``, and reads add the ones still here.
    """

    __tablename__ = "send_tally_deltas"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(Integer)
    bucket: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(CODE))
    n: Mapped[int] = mapped_column(BigInteger)


class AssignmentChange(Base):
    """One contact moved from one agent to another (None: the concierge). Append-only."""

    __tablename__ = "assignment_changes"
    __table_args__ = (Index("ix_assignment_changes_contact_id_at", "contact_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    from_agent_id: Mapped[int | None] = mapped_column(Integer)
    to_agent_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    #: Who or what moved it: ``operator``, ``lead.assigned e7``, ``agent.deactivated e9``.
    why: Mapped[str] = mapped_column(Text)
    #: The lead event that moved it, when an event did.
    event_id: Mapped[str | None] = mapped_column(String(EXTERNAL_ID))


#: ``outbox_events.state``
OUTBOX_STATES = ("pending", "delivered", "dead")


class OutboxEvent(Base):
    """An event for the account's webhooks, written in the transaction of its change."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_state_next_attempt_at", "state", "next_attempt_at"),
        Index(
            "ix_outbox_events_pending_contact_id",
            "contact_id",
            "id",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    #: The delivery's own id (``evt_...``): receivers deduplicate on it.
    event_id: Mapped[str] = mapped_column(String(CODE), unique=True)
    type: Mapped[str] = mapped_column(String(CODE))
    contact_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    first_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: The names of the webhooks that answered 2xx (a retry posts to the others only).
    delivered_to: Mapped[list[str] | None] = mapped_column(JSON)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)


class Heartbeat(Base):
    """When a periodic job (``dispatch``: the dispatch tick) last finished."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())


#: The key columns of :class:`QueueTally`, in order.
QUEUE_KEYS = (
    "campaign_id",
    "step_id",
    "kind",
    "channel",
    "sender_phone",
    "sender_role",
    "held_to_window",
    "agent_id",
    "state",
    "timezone",
    "text_status",
    "can_text",
    "due_hour",
)


class _QueueKey:
    """The key of a group of pending sends (see :class:`QueueTally`); NULLs stored as 0 or ''."""

    campaign_id: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    sender_phone: Mapped[str] = mapped_column(String(32))
    sender_role: Mapped[str] = mapped_column(String(32))
    held_to_window: Mapped[bool] = mapped_column(Boolean)
    agent_id: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    text_status: Mapped[str] = mapped_column(String(32))
    can_text: Mapped[bool] = mapped_column(Boolean)
    #: Whole UTC hours since 1970 of the sends' due time.
    due_hour: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(BigInteger)
    #: The latest due time ever added (an upper bound: the forecast errs late).
    last_due: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: The lowest send id ever added: the representative the forecast renders.
    rep: Mapped[int | None] = mapped_column(BigInteger)


class QueueTally(_QueueKey, Base):
    """A running count of pending sends per sender key and due hour, kept by triggers.

    What ``drip queue`` and its pacing forecast read instead of the sends;
    kept by the triggers of migration 0018 (see :mod:`drip.store.queue`).
    """

    __tablename__ = "queue_tallies"
    __table_args__ = (
        PrimaryKeyConstraint(*QUEUE_KEYS, name="pk_queue_tallies"),
        Index("ix_queue_tallies_due_hour", "due_hour"),
    )


class QueueTallyDelta(_QueueKey, Base):
    """A change to :class:`QueueTally` not folded in yet (PostgreSQL's statement triggers)."""

    __tablename__ = "queue_tally_deltas"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)


class ReplyMark(Base):
    """A sent text followed by a reply or an opt-out, in one scope (see migration 0018).

    Written by triggers when the inbound text or the opt-out is recorded; each
    new mark adds one to ``send_tallies`` (metric ``replied`` or ``opted_out``,
    code: the scope), so the summaries read no event.
    """

    __tablename__ = "reply_marks"
    __table_args__ = (Index("ix_reply_marks_contact_id", "contact_id", "metric"),)

    #: ``campaign`` (the last text of its campaign), ``all`` (the last campaign text)
    #: or ``outside`` (the last text, outside campaigns).
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    send_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    contact_id: Mapped[int] = mapped_column(Integer)
