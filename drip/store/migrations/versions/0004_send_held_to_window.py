"""A compliance text may be held to the send window: imported consent's confirmation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Consent brought in by an import is evidence of an earlier opt-in;
its confirmation goes through the ordinary send pipeline (send window, state
rules, pacing), never in a burst at night. The send keeps its kind
(``opt_in_confirmation``) and is marked ``held_to_window``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "scheduled_sends",
        sa.Column("held_to_window", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("scheduled_sends") as batch:
        batch.drop_column("held_to_window")
