"""A contact update finds the contacts whose counted columns changed before it reads their pending sends.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07

The statement trigger of migration 0018 on ``contacts`` joined the update's
old rows to the pending sends first and only then kept the contacts whose
agent, state, zone, text status, consent or opt-out changed. A lead event
batch updates thousands of contacts (stage, tags, the fields' times) and
changes none of those: the trigger still read every pending send of every
contact in the batch, 20 ms a batch of 4,000 contacts with 20,000 pending
sends, and more as the schedule grows.

Now the changed contacts are found first (a materialized CTE over the
transition tables) and their pending sends are read by the send table's
contact index, one lookup per changed contact. An update that changes no
counted column reads no send. The counts written are the same; SQLite's row
triggers already checked the change first (their ``WHEN``).

The opt-out marks' trigger on ``contacts`` (migration 0018) now first asks
whether any contact's opt-out changed, with one join of the old and new rows,
and does nothing more when none did: its two statements joined them four
times, 6 ms a batch of 4,000 contacts, for an opt-out that lead events never
change.

Every trigger function of drip (migrations 0010 and 0018) also runs with JIT
compilation off. A trigger's statement is planned once per session, for the
rows of the first statement that fires it; when that statement is large, the
plan's estimated cost passes ``jit_above_cost`` and every later firing
compiles it again: 500 ms for a contact update whose trigger work took 2.5 ms.
The statements are short (one write's rows), so compiling never pays.
"""

# ruff: noqa: S608 -- the trigger SQL is assembled from constants of migration 0018, never input.

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from drip.store.migrate import migration_module

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "drip_queue_contact_update"
#: drip's trigger functions on PostgreSQL (migrations 0010 and 0018).
TRIGGER_FUNCTIONS = (
    "drip_marks_delete", "drip_marks_inbound", "drip_marks_insert", "drip_marks_opt_out",
    "drip_queue_contact_update", "drip_queue_send_insert", "drip_queue_send_update",
    "drip_tally_decision_insert", "drip_tally_enrollment_insert", "drip_tally_enrollment_update",
    "drip_tally_message_update", "drip_tally_send_insert", "drip_tally_send_update",
)  # fmt: skip


def statement() -> str:
    """The trigger's statement: the changed contacts' pending sends, out of their old group
    (sign -1) and into their new one (+1), appended to ``queue_tally_deltas``."""
    tallies = migration_module("0018")
    # The columns ``source`` reads of a contact, as 0018's change test names them.
    columns = ("id", *tallies._CONTACT_COLUMNS, "sms_consent_at", "sms_opted_out_at")
    changed = tallies._contact_changed("o", "n", "IS DISTINCT FROM")
    # One join of the old and new rows; each changed contact gives its old side and its new.
    sides = ", ".join(
        f"({', '.join(f'{alias}.{c}' for c in columns)}, {sign})"
        for alias, sign in (("o", -1), ("n", 1))
    )
    pairs = (
        f"SELECT v.* FROM drip_old AS o JOIN drip_new AS n ON n.id = o.id AND ({changed})"
        f" CROSS JOIN LATERAL (VALUES {sides}) AS v({', '.join(columns)}, sign)"
    )

    # ``source`` writes a constant sign; here each row carries its own.
    send = tallies.source("s", "c", 0, "postgresql").replace(" 0 AS sign", " c.sign AS sign")
    # A lookup of each changed contact's sends by the contact index, then the pending ones
    # kept. ``OFFSET 0`` keeps the subquery apart: pulled up into the join, it was planned
    # as a hash of every pending send; with the state inside it, as that lookup combined
    # with a scan of the pending sends' index, both of which grow with the schedule.
    sends = (
        f"{send} FROM changed AS c CROSS JOIN LATERAL (SELECT * FROM scheduled_sends AS p"
        " WHERE p.contact_id = c.id OFFSET 0) AS s WHERE s.state = 'pending'"
    )
    return f"WITH changed AS MATERIALIZED ({pairs}) " + str(
        tallies.grouped(sends, "queue_tally_deltas")
    )


OPT_OUT = "drip_marks_opt_out"


def opt_out_statement() -> str:
    """The opt-out marks' statements of migration 0018, run only when an opt-out changed."""
    marks = str(migration_module("0018")._pg_mark_triggers()[OPT_OUT][2])
    # A count, not EXISTS: planned to stop at the first row, EXISTS took a nested loop over
    # both tables (200 ms for 4,000 contacts with no opt-out changed); the count hashes.
    return (
        "IF (SELECT count(*) FROM drip_old AS o JOIN drip_new AS n ON n.id = o.id"
        f" AND o.sms_opted_out_at IS DISTINCT FROM n.sms_opted_out_at) > 0 THEN {marks}; END IF"
    )


def _replace(name: str, body: str) -> None:
    op.execute(
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {body}; RETURN NULL; END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _replace(NAME, statement())
        _replace(OPT_OUT, opt_out_statement())
        for name in TRIGGER_FUNCTIONS:
            op.execute(f"ALTER FUNCTION {name}() SET jit = off")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        tallies = migration_module("0018")
        _replace(NAME, str(tallies._pg_triggers()[NAME][2]))
        _replace(OPT_OUT, str(tallies._pg_mark_triggers()[OPT_OUT][2]))
        for name in TRIGGER_FUNCTIONS:
            op.execute(f"ALTER FUNCTION {name}() RESET jit")
