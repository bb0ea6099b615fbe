"""Replies and events out: paused enrollments, the webhook outbox.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Enrollments gain ``paused_at``, ``paused_until`` (NULL: until an operator
resumes) and ``paused_by``. ``outbox_events`` holds the events for the
account's webhooks, written in the transaction of the change that caused
them and delivered by the webhook loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paused_by", sa.String(100), nullable=True))
    op.create_index(
        "ix_enrollments_paused_at",
        "enrollments",
        ["paused_at"],
        sqlite_where=sa.text("paused_at IS NOT NULL"),
        postgresql_where=sa.text("paused_at IS NOT NULL"),
    )
    op.create_table(
        "outbox_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_to", sa.JSON(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_events"),
        sa.UniqueConstraint("event_id", name="uq_outbox_events_event_id"),
    )
    op.create_index(
        "ix_outbox_events_state_next_attempt_at", "outbox_events", ["state", "next_attempt_at"]
    )
    op.create_index(
        "ix_outbox_events_pending_contact_id",
        "outbox_events",
        ["contact_id", "id"],
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_table("outbox_events")
    op.drop_index("ix_enrollments_paused_at", table_name="enrollments")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("paused_by")
        batch.drop_column("paused_until")
        batch.drop_column("paused_at")
