"""Initial schema: contacts, consent, conversations, campaigns, the send queue, messages.

Revision ID: 0001
Revises:
Create Date: 2026-03-01

Written by hand from the models (autogenerate output reviewed), using plain
SQLAlchemy types so that this file never changes when the models do:
``UtcDateTime`` is ``DateTime(timezone=True)`` and ``StrEnumType`` is
``String(32)`` here. ``tests/integration/test_store_migrations.py`` checks,
on SQLite and PostgreSQL, that the migrated schema equals the models.

``scheduled_sends.message_id`` and ``messages.send_id`` reference each other:
on PostgreSQL the first foreign key is added once both tables exist; SQLite
cannot add a constraint to an existing table, but resolves a foreign key only
when rows are written, so there it is declared inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FK_SEND_MESSAGE = "fk_scheduled_sends_message_id_messages"


def _ts(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _enum(name: str, *, nullable: bool = False, default: str | None = None) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), nullable=nullable, server_default=default)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"

    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(16), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("phone", name=op.f("uq_agents_phone")),
    )

    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )

    op.create_table(
        "orphan_optouts",
        sa.Column("phone", sa.String(16), nullable=False),
        _ts("at"),
        sa.Column("keyword", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("phone", name=op.f("pk_orphan_optouts")),
    )

    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(100), nullable=False),
        sa.Column("last_name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(16), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("state", sa.String(2), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        _enum("source"),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        _ts("sms_consent_at", nullable=True),
        _enum("sms_consent_source", nullable=True),
        sa.Column("sms_consent_text", sa.Text(), nullable=True),
        _ts("sms_opted_out_at", nullable=True),
        sa.Column("sms_opted_out_how", sa.String(16), nullable=True),
        _enum("text_status", default="textable"),
        sa.Column("undeliverable_code", sa.Integer(), nullable=True),
        sa.Column("email_opted_out", sa.Boolean(), server_default=sa.false(), nullable=False),
        _ts("email_opted_out_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_contacts_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("phone", name=op.f("uq_contacts_phone")),
    )
    op.create_index("ix_contacts_agent_id", "contacts", ["agent_id"])
    op.create_index("ix_contacts_email", "contacts", ["email"])

    op.create_table(
        "consent_events",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        _enum("kind"),
        _ts("at"),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_consent_events_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    op.create_index("ix_consent_events_contact_id_at", "consent_events", ["contact_id", "at"])

    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_phone", sa.String(16), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        _ts("footer_last_sent_at", nullable=True),
        _ts("two_way_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_conversations_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint(
            "sender_phone", "contact_id", name=op.f("uq_conversations_sender_phone_contact_id")
        ),
    )
    op.create_index("ix_conversations_contact_id", "conversations", ["contact_id"])

    op.create_table(
        "enrollments",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        _ts("enrolled_at"),
        _enum("status", default="active"),
        _ts("stopped_at", nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_enrollments_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_enrollments_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
    )
    op.create_index("ix_enrollments_campaign_id", "enrollments", ["campaign_id"])
    op.create_index("ix_enrollments_contact_id", "enrollments", ["contact_id"])
    op.create_index(
        "uq_enrollments_active_contact_campaign",
        "enrollments",
        ["contact_id", "campaign_id"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )

    send_message_fk = (
        [sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name=FK_SEND_MESSAGE)]
        if sqlite
        else []
    )
    op.create_table(
        "scheduled_sends",
        sa.Column("id", BIGINT_KEY, autoincrement=True, nullable=False),
        sa.Column("enrollment_id", BIGINT_KEY, nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("step_id", sa.String(200), nullable=True),
        _enum("kind"),
        _enum("channel"),
        sa.Column("body", sa.Text(), nullable=True),
        _enum("sender_role"),
        _ts("due_at"),
        _ts("original_due_at"),
        _enum("state", default="pending"),
        sa.Column("catching_up", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _ts("claimed_at", nullable=True),
        _ts("sending_started_at", nullable=True),
        sa.Column("decision_code", sa.String(64), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("message_id", BIGINT_KEY, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_scheduled_sends_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_scheduled_sends_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name=op.f("fk_scheduled_sends_enrollment_id_enrollments"),
        ),
        *send_message_fk,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_sends")),
    )
    op.create_index("ix_scheduled_sends_state_due_at", "scheduled_sends", ["state", "due_at"])
    if not sqlite:
        # The dispatch claim scans only pending rows: keep that index small.
        op.create_index(
            "ix_scheduled_sends_pending_due_at",
            "scheduled_sends",
            ["due_at"],
            postgresql_where=sa.text("state = 'pending'"),
        )
    op.create_index("ix_scheduled_sends_enrollment_id", "scheduled_sends", ["enrollment_id"])
    op.create_index(
        "ix_scheduled_sends_contact_id_due_at", "scheduled_sends", ["contact_id", "due_at"]
    )
    op.create_index("ix_scheduled_sends_campaign_id", "scheduled_sends", ["campaign_id"])

    op.create_table(
        "messages",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        _enum("channel"),
        _enum("kind", nullable=True),
        sa.Column("sender_phone", sa.String(16), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("from_addr", sa.String(320), nullable=False),
        sa.Column("to_addr", sa.String(320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("footer", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=True),
        sa.Column("encoding", sa.String(16), nullable=True),
        sa.Column("provider_sid", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("send_id", BIGINT_KEY, nullable=True),
        _ts("created_at"),
        _ts("sent_at", nullable=True),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_messages_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["send_id"], ["scheduled_sends.id"], name=op.f("fk_messages_send_id_scheduled_sends")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index("ix_messages_contact_id_created_at", "messages", ["contact_id", "created_at"])
    op.create_index("ix_messages_send_id", "messages", ["send_id"])
    # NULLs are distinct in a unique index on both databases: unique where present.
    op.create_index("uq_messages_provider_sid", "messages", ["provider_sid"], unique=True)

    if not sqlite:
        op.create_foreign_key(
            FK_SEND_MESSAGE, "scheduled_sends", "messages", ["message_id"], ["id"]
        )

    op.create_table(
        "send_decisions",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("send_id", BIGINT_KEY, nullable=False),
        _ts("at"),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("footer", sa.Boolean(), nullable=True),
        sa.Column("footer_rule", sa.String(16), nullable=True),
        _ts("deferred_until", nullable=True),
        sa.ForeignKeyConstraint(
            ["send_id"],
            ["scheduled_sends.id"],
            name=op.f("fk_send_decisions_send_id_scheduled_sends"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_decisions")),
    )
    op.create_index("ix_send_decisions_send_id", "send_decisions", ["send_id"])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # messages and scheduled_sends reference each other: check at commit, not per drop.
        op.execute("PRAGMA defer_foreign_keys = ON")
    op.drop_table("send_decisions")
    if not sqlite:
        op.drop_constraint(FK_SEND_MESSAGE, "scheduled_sends", type_="foreignkey")
    op.drop_table("messages")
    op.drop_table("scheduled_sends")
    op.drop_table("enrollments")
    op.drop_table("conversations")
    op.drop_table("consent_events")
    op.drop_table("contacts")
    op.drop_table("orphan_optouts")
    op.drop_table("campaigns")
    op.drop_table("agents")
