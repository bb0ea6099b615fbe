"""Narrower indexes on scheduled_sends: fewer index entries per state change of a send.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Every state change of a send (pending -> queued -> sending -> sent: three per
text) is a non-HOT update, since ``state`` is indexed, and a non-HOT update
adds an entry to every index of the table whose predicate the new row meets.
Two indexes now hold only the rows their queries look for:

- ``ix_scheduled_sends_bulk_id``: only rows with a bulk (``drip bulk cancel``
  looks sends up by ``bulk_id = :id``), on both databases. A campaign send no
  longer writes an entry in it at each of its three updates.
- ``ix_scheduled_sends_state_due_at`` on PostgreSQL: only ``queued``,
  ``sending`` and ``unknown`` rows (recovery, the carrier's in-flight count,
  reconcile). ``pending`` rows are in ``ix_scheduled_sends_pending_due_at``
  already, and no query looks a send up by a settled state alone, so the
  ``sending -> sent`` update writes no entry in it. SQLite has no pending-only
  index: there it keeps every row.

Measured with ``benchmarks/profile_pg.py`` (issue #15): WAL records per send
down from 49.6 to 45.6.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IN_FLIGHT = "state IN ('queued', 'sending', 'unknown')"
_IN_BULK = "bulk_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_scheduled_sends_bulk_id", table_name="scheduled_sends")
    op.create_index(
        "ix_scheduled_sends_bulk_id",
        "scheduled_sends",
        ["bulk_id"],
        sqlite_where=sa.text(_IN_BULK),
        postgresql_where=sa.text(_IN_BULK),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_scheduled_sends_state_due_at", table_name="scheduled_sends")
        op.create_index(
            "ix_scheduled_sends_state_due_at",
            "scheduled_sends",
            ["state", "due_at"],
            postgresql_where=sa.text(_IN_FLIGHT),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_scheduled_sends_state_due_at", table_name="scheduled_sends")
        op.create_index("ix_scheduled_sends_state_due_at", "scheduled_sends", ["state", "due_at"])
    op.drop_index("ix_scheduled_sends_bulk_id", table_name="scheduled_sends")
    op.create_index("ix_scheduled_sends_bulk_id", "scheduled_sends", ["bulk_id"])
