"""Reassigned numbers: the answers of the check, per number and date.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

``number_checks`` keeps each ``yes`` or ``no`` answer of the reassigned-numbers
check (Twilio Lookup v2) per keyed digest of the number and the
``LastVerifiedDate`` asked with; the latest ``no`` of a number is its last
verification.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "number_checks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("phone_digest", sa.String(64), nullable=False),
        sa.Column("last_verified_date", sa.Date(), nullable=False),
        sa.Column("answer", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_number_checks"),
        sa.UniqueConstraint(
            "phone_digest",
            "last_verified_date",
            name="uq_number_checks_phone_digest_last_verified_date",
        ),
    )
    op.create_index(
        "ix_number_checks_phone_digest_checked_at",
        "number_checks",
        ["phone_digest", "checked_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_number_checks_phone_digest_checked_at", table_name="number_checks")
    op.drop_table("number_checks")
