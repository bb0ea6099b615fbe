"""Lead events: the inbox, contacts' CRM fields, agents that leave, enrollments by event.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

A CRM's lead events are stored in ``inbox_events`` (unique on the producer's
id) before they act. Contacts gain ``external_id`` (the CRM's lead id, unique
where present), ``stage``, ``tags``, ``lead_source`` and ``field_times`` (when
each field was last set by an event, so an older event does not move it
back). Agents gain ``active`` and ``deactivated_at``. Enrollments record the
event that enrolled (``event_id``) and ended (``stop_event_id``) them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_ref", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_events"),
        sa.UniqueConstraint("event_id", name="uq_inbox_events_event_id"),
    )
    op.create_index(
        "ix_inbox_events_contact_id_occurred_at", "inbox_events", ["contact_id", "occurred_at"]
    )
    op.create_index("ix_inbox_events_processed_at", "inbox_events", ["processed_at"])
    # Plain ADD COLUMN on both databases: SQLite's table rebuild (batch mode) would trip on
    # the foreign keys that point at contacts and on its expression index.
    op.add_column("contacts", sa.Column("external_id", sa.String(200), nullable=True))
    op.add_column("contacts", sa.Column("stage", sa.String(100), nullable=True))
    op.add_column("contacts", sa.Column("tags", sa.JSON(), nullable=True))
    op.add_column("contacts", sa.Column("lead_source", sa.String(100), nullable=True))
    op.add_column("contacts", sa.Column("field_times", sa.JSON(), nullable=True))
    op.create_index("uq_contacts_external_id", "contacts", ["external_id"], unique=True)
    op.add_column(
        "agents", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
    )
    op.add_column("agents", sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("enrollments", sa.Column("event_id", sa.String(200), nullable=True))
    op.add_column("enrollments", sa.Column("stop_event_id", sa.String(200), nullable=True))


def downgrade() -> None:
    # DROP COLUMN (SQLite 3.35+, PostgreSQL): no table rebuild, as in upgrade.
    for table, column in (
        ("enrollments", "stop_event_id"),
        ("enrollments", "event_id"),
        ("agents", "deactivated_at"),
        ("agents", "active"),
    ):
        op.drop_column(table, column)
    op.drop_index("uq_contacts_external_id", table_name="contacts")
    for column in ("field_times", "lead_source", "tags", "stage", "external_id"):
        op.drop_column("contacts", column)
    op.drop_index("ix_inbox_events_processed_at", table_name="inbox_events")
    op.drop_index("ix_inbox_events_contact_id_occurred_at", table_name="inbox_events")
    op.drop_table("inbox_events")
