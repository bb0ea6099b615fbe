"""A send may carry the exact number it goes out from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

A compliance reply (STOP, HELP, START confirmations) must come from the
number the contact texted, which is not always the contact's assigned agent
(the concierge line, another agent's number, or no agent at all). NULL keeps
the old rule: the number is resolved from ``sender_role`` at fire time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("scheduled_sends", sa.Column("sender_phone", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduled_sends") as batch:
        batch.drop_column("sender_phone")
