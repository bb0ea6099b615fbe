"""Erasure: contacts remember when and by whom they were erased; the suppression list.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

``contacts`` gains ``erased_at`` and ``erased_by``. ``suppressions`` keeps an
erased contact's phone and email as keyed hashes (HMAC-SHA256 under the
install's ``suppression`` key in ``install_keys``) with its opt-outs, so a
contact created later with the same number starts opted out. Plain ALTER and
CREATE on SQLite (no batch table copy: 0010's tally triggers).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("contacts", sa.Column("erased_by", sa.String(100), nullable=True))
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("sms_opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sms_opted_out_how", sa.String(16), nullable=True),
        sa.Column("email_opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
        sa.UniqueConstraint("kind", "digest", name="uq_suppressions_kind_digest"),
    )
    op.create_table(
        "install_keys",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_install_keys"),
    )


def downgrade() -> None:
    op.drop_table("install_keys")
    op.drop_table("suppressions")
    op.drop_column("contacts", "erased_by")
    op.drop_column("contacts", "erased_at")
