"""Status callbacks that arrived before their message row: kept until it is recorded.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Twilio may call back before the worker has committed the message that
carries the ``MessageSid`` (or while it is ``unknown``, before ``drip
reconcile`` finds it). Such a callback is stored here and applied, in
arrival order, when the message is recorded; it is never lost to a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pending_callbacks",
        sa.Column("id", BIGINT_KEY, nullable=False),
        sa.Column("message_sid", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_callbacks")),
    )
    op.create_index(
        "ix_pending_callbacks_message_sid", "pending_callbacks", ["message_sid"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_pending_callbacks_message_sid", table_name="pending_callbacks")
    op.drop_table("pending_callbacks")
