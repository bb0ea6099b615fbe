"""Index scheduled_sends.bulk_id only where set: no entry per state change of a campaign send.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Every state change of a send (pending -> queued -> sending -> sent: three per
text) is a non-HOT update, since ``state`` is indexed, and a non-HOT update
adds an entry to every index of the table whose predicate the new row meets.
``ix_scheduled_sends_bulk_id`` serves one lookup, ``bulk_id = :id`` (``drip
bulk cancel``), and most sends belong to no bulk: it now holds only the rows
that have one, on both databases, so a campaign send writes no entry in it.

Measured with ``benchmarks/profile_pg.py`` (issue #15): three WAL records
fewer per fired send (49.6 -> 46.6).

Not done: a partial ``(state, due_at)`` index of the in-flight states only
(one entry fewer at ``sending -> sent``). On a table without statistics yet
the planner then chose that small index over the primary key for updates of
one send ``WHERE id = :id AND state = ...``, scanning every in-flight row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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


def downgrade() -> None:
    op.drop_index("ix_scheduled_sends_bulk_id", table_name="scheduled_sends")
    op.create_index("ix_scheduled_sends_bulk_id", "scheduled_sends", ["bulk_id"])
