"""Assignment changes: each contact moved from one agent to another, recorded.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

``assignment_changes`` keeps one row per contact moved (a reassignment or an
agent's deactivation), with who or what moved it and the lead event's id, so
that ``drip history`` shows when a contact changed hands and why.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assignment_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("from_agent_id", sa.Integer(), nullable=True),
        sa.Column("to_agent_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name="fk_assignment_changes_contact_id_contacts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_assignment_changes"),
    )
    op.create_index(
        "ix_assignment_changes_contact_id_at", "assignment_changes", ["contact_id", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_assignment_changes_contact_id_at", table_name="assignment_changes")
    op.drop_table("assignment_changes")
