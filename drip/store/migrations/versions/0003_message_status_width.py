"""Message statuses up to 32 characters: Twilio's ``partially_delivered`` is 19.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Twilio's Message resource has statuses longer than the 16 characters the
column held (``partially_delivered``); a callback carrying one failed to
store. Widening a VARCHAR keeps every row as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.alter_column(
            "status", existing_type=sa.String(16), type_=sa.String(32), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.alter_column(
            "status", existing_type=sa.String(32), type_=sa.String(16), existing_nullable=False
        )
