"""Operators: named console accounts, the actions people take, and who took them.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

``operators`` holds each console account (name, role, password hash, active);
``operator_actions`` one row per action a person took from the console or the
CLI; ``consent_events.actor`` and ``contacts.text_status_by`` name the person
behind a consent change and the current text status, so that ``drip history``,
``drip explain`` and the audit export can say who.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_operators"),
        sa.UniqueConstraint("name", name="uq_operators_name"),
    )
    op.create_table(
        "operator_actions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("campaign", sa.String(100), nullable=True),
        sa.Column("bulk_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_operator_actions"),
    )
    op.create_index("ix_operator_actions_contact_id_at", "operator_actions", ["contact_id", "at"])
    op.create_index("ix_operator_actions_at", "operator_actions", ["at"])
    # Plain ALTERs (no batch copy): SQLite adds a nullable column in place.
    op.add_column("consent_events", sa.Column("actor", sa.String(100), nullable=True))
    op.add_column("contacts", sa.Column("text_status_by", sa.String(100), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): no batch copy of the tables.
    op.execute("ALTER TABLE contacts DROP COLUMN text_status_by")
    op.execute("ALTER TABLE consent_events DROP COLUMN actor")
    op.drop_index("ix_operator_actions_at", table_name="operator_actions")
    op.drop_index("ix_operator_actions_contact_id_at", table_name="operator_actions")
    op.drop_table("operator_actions")
    op.drop_table("operators")
