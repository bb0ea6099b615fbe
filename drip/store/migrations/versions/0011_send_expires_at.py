"""A send may expire: a bulk's ``--expires-at`` is kept on each of its sends.

Revision ID: 0011
Revises: 0010
Create Date: 2027-01-15

A campaign or bulk text that cannot go out by its expiry (send window, caps,
pacing, an outage) is skipped (``expired``), never sent late. A campaign
step's ``expires_after`` is read from the step at fire time; a bulk's
absolute expiry has no other home than the send itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "scheduled_sends", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy of the table on SQLite
    # would trip the running-count triggers of 0010, which name the table.
    op.execute("ALTER TABLE scheduled_sends DROP COLUMN expires_at")
