"""Campaign lifecycle (pause, resume, archive, unenroll) and bulk texts with an id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

- ``campaigns.status``: ``active`` (default), ``paused`` (dispatch claims
  none of its sends: they are held, not skipped) or ``archived`` (no new
  enrollments; its pending sends were cancelled), and when it last changed.
- ``bulks``: one row per ``drip bulk`` that scheduled sends, so that
  ``drip bulk cancel ID`` can cancel what it has not sent yet;
  ``scheduled_sends.bulk_id`` says which bulk a send belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "campaigns",
        sa.Column("status", sa.String(32), nullable=False, server_default="active"),
    )
    op.add_column(
        "campaigns", sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "bulks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulks")),
    )
    op.add_column("scheduled_sends", sa.Column("bulk_id", sa.Integer(), nullable=True))
    op.create_index(
        op.f("ix_scheduled_sends_bulk_id"), "scheduled_sends", ["bulk_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_scheduled_sends_bulk_id"), table_name="scheduled_sends")
    with op.batch_alter_table("scheduled_sends") as batch:
        batch.drop_column("bulk_id")
    op.drop_table("bulks")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("status_changed_at")
        batch.drop_column("status")
