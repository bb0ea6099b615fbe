"""Room on each page of ``contacts`` for its next version: the CRM's updates stay on the page.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

A lead event rewrites its contact (stage, tags, the fields' times), so the
CRM updates ``contacts`` all day. PostgreSQL writes an updated row as a new
version; when that version fits on the same page and no indexed column
changed (events change none: the indexes are on the phone, email, CRM id,
agent and opt-out), the update is "heap-only" and none of the table's seven
indexes is touched. Pages filled to 100 % leave no room, so every update
wrote every index: a batch of 5,000 events' contact updates took 115-170 ms,
and 40-50 ms with pages filled to 85 % (every update heap-only).

On PostgreSQL only (``fillfactor`` applies to pages written from now on; a
``VACUUM FULL`` or ``pg_repack`` applies it to the existing ones). SQLite has
no such setting.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Percent of each page ``contacts`` fills on insert (the model says the same).
FILLFACTOR = 85


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE contacts SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE contacts RESET (fillfactor)")
