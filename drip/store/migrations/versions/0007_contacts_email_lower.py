"""An index on lower(email): identity lookups by email without a scan of every contact.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

A known email is the same contact in any case, so ``contacts add``, the
import and ``POST /contacts`` look contacts up by ``lower(email)``. Without
this index each lookup read the whole table: an import of N rows in batches
of 500 read it N/500 times, quadratic in the import's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_contacts_email_lower", "contacts", [sa.text("lower(email)")], unique=False)


def downgrade() -> None:
    op.drop_index("ix_contacts_email_lower", table_name="contacts")
