"""Heartbeats: when each periodic job of drip last finished.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07

``heartbeats`` holds one row per job (``dispatch``: the dispatch tick of
Celery beat, ``drip run`` or ``drip tick``) and the time it last completed.
``/metrics`` reports it as ``drip_last_tick_timestamp_seconds``, so an alert
sees a beat that stopped whichever process scrapes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_heartbeats"),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
