"""Running counts of pending sends per sender key and hour, kept by triggers: a queue that reads no sends.

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-07

``drip queue`` and the console's queue page grouped every pending send due
in the next 24 hours (2,000,000 after a big import: 20 s, in proportion to
them). ``queue_tallies`` holds one row per group of pending sends that share
what decides their sender, text and window (campaign, step, kind, channel,
fixed sender number and role, held to the window, the contact's agent,
state, time zone, text status and whether it can be texted) and the UTC hour
they fall due in (``due_hour``: whole hours since 1970), with the count, the
latest due time ever added (an upper bound: the forecast errs late) and the
lowest send id ever added (the representative the forecast renders).

Kept like ``send_tallies`` (migration 0010): a send's insert, a change of its
state, due time or any key column, and a change of a contact's agent, state,
zone, text status, consent or opt-out move the counts, in the writer's
transaction. On PostgreSQL per statement, appending grouped rows to
``queue_tally_deltas`` (no counter row is locked by a writer;
:func:`drip.store.queue.fold` moves them); on SQLite per row, into
``queue_tallies`` directly. Sends and contacts are never deleted by drip, so
there is no delete trigger (a test database's ``DELETE`` empties every table).

The upgrade backfills the counts from the pending sends. It also adds a
partial index on ``contacts.sms_opted_out_at`` (the opt-outs the summaries
attribute), so that reading them costs their number, not the contacts'.
"""

# ruff: noqa: S608 -- the trigger SQL is assembled from constants of this file, never input.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: The group's key columns, in order (each NOT NULL: NULL is stored as 0 or '').
KEYS = (
    "campaign_id",
    "step_id",
    "kind",
    "channel",
    "sender_phone",
    "sender_role",
    "held_to_window",
    "agent_id",
    "state",
    "timezone",
    "text_status",
    "can_text",
    "due_hour",
)
#: A send's columns whose change moves it between groups (with ``state``).
_SEND_COLUMNS = (
    "state",
    "due_at",
    "campaign_id",
    "step_id",
    "kind",
    "channel",
    "sender_phone",
    "sender_role",
    "held_to_window",
    "contact_id",
)
#: A contact's: the ``can_text`` key is whether consent is set and opt-out is not.
_CONTACT_COLUMNS = ("agent_id", "state", "timezone", "text_status")


def hour(column: str, dialect: str) -> str:
    """Whole UTC hours since 1970 of a timestamp column (SQLite stores UTC text)."""
    if dialect == "postgresql":
        return f"floor(extract(epoch FROM {column}) / 3600)::bigint"
    return f"(CAST(strftime('%s', {column}) AS INTEGER) / 3600)"


def source(send: str, contact: str, sign: int, dialect: str) -> str:
    """The key, due time, id and ``sign`` of one pending send ``send`` of contact ``contact``."""
    s, c = send, contact
    return (
        f"SELECT COALESCE({s}.campaign_id, 0) AS campaign_id, COALESCE({s}.step_id, '') AS step_id,"
        f" {s}.kind AS kind, {s}.channel AS channel,"
        f" COALESCE({s}.sender_phone, '') AS sender_phone, {s}.sender_role AS sender_role,"
        f" {s}.held_to_window AS held_to_window, COALESCE({c}.agent_id, 0) AS agent_id,"
        f" COALESCE({c}.state, '') AS state, COALESCE({c}.timezone, '') AS timezone,"
        f" {c}.text_status AS text_status,"
        f" ({c}.sms_consent_at IS NOT NULL AND {c}.sms_opted_out_at IS NULL) AS can_text,"
        f" {hour(s + '.due_at', dialect)} AS due_hour, {s}.due_at AS due_at, {s}.id AS send_id,"
        f" {sign} AS sign"
    )


def grouped(src: str, table: str) -> str:
    """Add the grouped contributions of ``src`` (rows of :func:`source`) to ``table``.

    ``queue_tallies`` (SQLite): added to its rows; ``queue_tally_deltas``: appended.
    A group written with only additions of no net count still raises ``last_due``.
    """
    keys = ", ".join(KEYS)
    plus_due = "MAX(CASE WHEN src.sign > 0 THEN src.due_at END)"
    plus_id = "MIN(CASE WHEN src.sign > 0 THEN src.send_id END)"
    out = (
        f"INSERT INTO {table} ({keys}, n, last_due, rep) "
        f"SELECT {', '.join('src.' + k for k in KEYS)}, SUM(src.sign), {plus_due}, {plus_id} "
        f"FROM ({src}) AS src GROUP BY {', '.join('src.' + k for k in KEYS)} "
        "HAVING SUM(src.sign) <> 0 OR MAX(src.sign) > 0"
    )
    if table == "queue_tallies":
        out += (
            f" ON CONFLICT ({keys}) DO UPDATE SET n = queue_tallies.n + excluded.n,"
            " last_due = max(COALESCE(queue_tallies.last_due, excluded.last_due),"
            " COALESCE(excluded.last_due, queue_tallies.last_due)),"
            " rep = min(COALESCE(queue_tallies.rep, excluded.rep),"
            " COALESCE(excluded.rep, queue_tallies.rep))"
        )
    return out


def _changed(columns: Sequence[str], old: str, new: str, distinct: str) -> str:
    return " OR ".join(f"{old}.{col} {distinct} {new}.{col}" for col in columns)


def _contact_changed(old: str, new: str, distinct: str) -> str:
    text = _changed(_CONTACT_COLUMNS, old, new, distinct)
    return (
        f"{text} OR ({old}.sms_consent_at IS NULL) <> ({new}.sms_consent_at IS NULL)"
        f" OR ({old}.sms_opted_out_at IS NULL) <> ({new}.sms_opted_out_at IS NULL)"
    )


def _sqlite_triggers() -> dict[str, tuple[str, str, str | None, str]]:
    """name: (table, event, WHEN condition, statement), per row."""
    t = "queue_tallies"
    pending = "'pending'"
    contact = "(SELECT * FROM contacts WHERE contacts.id = {}.contact_id)"
    send_old = source("OLD", "c", -1, "sqlite") + f" FROM {contact.format('OLD')} AS c"
    send_new = source("NEW", "c", 1, "sqlite") + f" FROM {contact.format('NEW')} AS c"
    mine = "FROM scheduled_sends AS s WHERE s.contact_id = {}.id AND s.state = 'pending'"
    return {
        "drip_queue_send_insert": (
            "scheduled_sends",
            "INSERT",
            f"NEW.state = {pending}",
            grouped(send_new, t),
        ),
        "drip_queue_send_update": (
            "scheduled_sends",
            "UPDATE",
            f"(OLD.state = {pending} OR NEW.state = {pending}) AND ("
            + _changed(_SEND_COLUMNS, "OLD", "NEW", "IS NOT")
            + ")",
            grouped(
                f"{send_old} WHERE OLD.state = {pending} UNION ALL "
                f"{send_new} WHERE NEW.state = {pending}",
                t,
            ),
        ),
        "drip_queue_contact_update": (
            "contacts",
            "UPDATE",
            _contact_changed("OLD", "NEW", "IS NOT"),
            grouped(
                source("s", "OLD", -1, "sqlite")
                + f" {mine.format('OLD')} UNION ALL "
                + source("s", "NEW", 1, "sqlite")
                + f" {mine.format('NEW')}",
                t,
            ),
        ),
    }


def _pg_triggers() -> dict[str, tuple[str, str, str]]:
    """name: (table, event, statement over the transition tables drip_old / drip_new)."""
    t = "queue_tally_deltas"
    pending = "'pending'"
    joined = " JOIN contacts AS c ON c.id = {}.contact_id"
    changed = _changed(_SEND_COLUMNS, "o", "n", "IS DISTINCT FROM")
    both = " FROM drip_old AS o JOIN drip_new AS n ON n.id = o.id AND ({})"
    mine = " JOIN scheduled_sends AS s ON s.contact_id = {}.id AND s.state = 'pending'"
    contact_changed = _contact_changed("o", "n", "IS DISTINCT FROM")
    return {
        "drip_queue_send_insert": (
            "scheduled_sends",
            "INSERT",
            grouped(
                source("n", "c", 1, "postgresql")
                + " FROM drip_new AS n"
                + joined.format("n")
                + f" WHERE n.state = {pending}",
                t,
            ),
        ),
        "drip_queue_send_update": (
            "scheduled_sends",
            "UPDATE",
            grouped(
                source("o", "c", -1, "postgresql")
                + both.format(changed)
                + joined.format("o")
                + f" WHERE o.state = {pending} UNION ALL "
                + source("n", "c", 1, "postgresql")
                + both.format(changed)
                + joined.format("n")
                + f" WHERE n.state = {pending}",
                t,
            ),
        ),
        "drip_queue_contact_update": (
            "contacts",
            "UPDATE",
            grouped(
                source("s", "o", -1, "postgresql")
                + both.format(contact_changed)
                + mine.format("o")
                + " UNION ALL "
                + source("s", "n", 1, "postgresql")
                + both.format(contact_changed)
                + mine.format("n"),
                t,
            ),
        ),
    }


def backfill(dialect: str) -> str:
    """Every pending send's contribution, into ``queue_tallies`` (an empty table)."""
    src = (
        source("s", "c", 1, dialect)
        + " FROM scheduled_sends AS s JOIN contacts AS c ON c.id = s.contact_id"
        " WHERE s.state = 'pending'"
    )
    return grouped(src, "queue_tally_deltas").replace("queue_tally_deltas", "queue_tallies", 1)


def _key_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sender_phone", sa.String(32), nullable=False),
        sa.Column("sender_role", sa.String(32), nullable=False),
        sa.Column("held_to_window", sa.Boolean(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(2), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("text_status", sa.String(32), nullable=False),
        sa.Column("can_text", sa.Boolean(), nullable=False),
        sa.Column("due_hour", sa.BigInteger(), nullable=False),
    ]


def _values() -> list[sa.Column[object]]:
    return [
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("last_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rep", sa.BigInteger(), nullable=True),
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "queue_tallies",
        *_key_columns(),
        *_values(),
        sa.PrimaryKeyConstraint(*KEYS, name=op.f("pk_queue_tallies")),
    )
    op.create_index("ix_queue_tallies_due_hour", "queue_tallies", ["due_hour"])
    op.create_table(
        "queue_tally_deltas",
        sa.Column("id", _BIGINT_KEY, autoincrement=True, nullable=False),
        *_key_columns(),
        *_values(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_tally_deltas")),
    )
    op.create_index(
        "ix_contacts_sms_opted_out_at",
        "contacts",
        ["sms_opted_out_at"],
        postgresql_where=sa.text("sms_opted_out_at IS NOT NULL"),
        sqlite_where=sa.text("sms_opted_out_at IS NOT NULL"),
    )
    op.execute(backfill(dialect))
    if dialect == "postgresql":
        for name, (table, event, statement) in _pg_triggers().items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {statement}; RETURN NULL; END $$"
            )
            tables = "NEW TABLE AS drip_new"
            if event == "UPDATE":
                tables = "OLD TABLE AS drip_old " + tables
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {tables} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        return
    for name, (table, event, when, statement) in _sqlite_triggers().items():
        guard = f" WHEN {when}" if when else ""
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} "
            f"FOR EACH ROW{guard} BEGIN {statement}; END"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, (table, *_rest) in _sqlite_triggers().items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index("ix_contacts_sms_opted_out_at", table_name="contacts")
    op.drop_table("queue_tally_deltas")
    op.drop_index("ix_queue_tallies_due_hour", table_name="queue_tallies")
    op.drop_table("queue_tallies")
