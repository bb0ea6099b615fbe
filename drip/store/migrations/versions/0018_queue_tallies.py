"""Running counts of pending sends per sender key and hour, kept by triggers: a queue that reads no sends.

Revision ID: 0018
Revises: 0017
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

One race is left on PostgreSQL: a contact's agent, zone or textability
changing in one transaction while another claims or decides one of its
pending sends (each trigger reads the other table as its own snapshot saw
it) can leave that send counted in its old group; ``drip queue --recount``
runs :func:`backfill` again into emptied tables, writers held off, and says
how far off the counts were.

The upgrade backfills the counts from the pending sends. It also adds a
partial index on ``contacts.sms_opted_out_at`` (the opt-outs the summaries
attribute), so that reading them costs their number, not the contacts'.
"""

# ruff: noqa: S608 -- the trigger SQL is assembled from constants of this file, never input.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
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


# --------------------------------------------------------------------------- replies and opt-outs
#
# A reply (an inbound text) or an opt-out counts for the contact's last sent text at or
# before it, in three scopes: ``campaign`` (the last text of each campaign: ``drip stats
# CAMPAIGN``), ``all`` (the last campaign text: ``drip stats``) and ``outside`` (the last
# text of any kind, when it is outside campaigns). ``reply_marks`` holds one row per
# (scope, send, metric), written when the event is recorded; its triggers add each new
# mark to ``send_tallies`` (metric ``replied`` or ``opted_out``, code: the scope), so a
# summary reads no event. A contact's opt-out marks follow its ``sms_opted_out_at``:
# cleared, they are removed; changed, they are recomputed.

SCOPES = ("campaign", "all", "outside")
_AT = "COALESCE({m}.sent_at, {m}.created_at)"


def _before(s: str, m: str, metric: str) -> str:
    """Text ``s`` (its message ``m``) went out before the event ``ev``.

    At the same instant (a frozen clock), a text before a reply has the lower
    message id, and an opt-out's own confirmation is never before it: so a
    recount from the rows agrees with the marks written at the time.
    """
    at = _AT.format(m=m)
    tie = f"{m}.id < ev.mid" if metric == "replied" else f"{s}.kind <> 'opt_out_confirmation'"
    return f"({at} < ev.at OR ({at} = ev.at AND {tie}))"


def _within(column: str, within: tuple[int, int] | None) -> str:
    """`` AND column >= lo AND column < hi`` for ``within`` = ``(lo, hi)``; nothing for None."""
    if within is None:
        return ""
    return f" AND {column} >= {int(within[0])} AND {column} < {int(within[1])}"


def _last(scope: str, metric: str, within: tuple[int, int] | None = None) -> str:
    """The condition that no later sent text of the same scope precedes the event."""
    same = {
        "campaign": " AND s2.campaign_id = s.campaign_id",
        "all": " AND s2.campaign_id IS NOT NULL",
        "outside": "",
    }[scope]
    at, at2 = _AT.format(m="m"), _AT.format(m="m2")
    return (
        "NOT EXISTS (SELECT 1 FROM scheduled_sends AS s2 JOIN messages AS m2"
        " ON m2.id = s2.message_id WHERE s2.contact_id = s.contact_id AND s2.state = 'sent'"
        f"{same}{_within('s2.contact_id', within)} AND {_before('s2', 'm2', metric)}"
        f" AND ({at2} > {at} OR ({at2} = {at} AND s2.id > s.id)))"
    )


def marks(events: str, metric: str, within: tuple[int, int] | None = None) -> str:
    """Insert the marks of ``events`` (a query of ``contact_id, at, mid``) for ``metric``.

    ``mid``: the inbound text's message id (replies; NULL for opt-outs). ``within``:
    the events are of the contacts with ids in ``[lo, hi)``; the sends are read in that
    range too (PostgreSQL does not carry a range across the joins' equalities, and
    would read every sent text for the later-text test).
    """
    own = {
        "campaign": "s.campaign_id IS NOT NULL",
        "all": "s.campaign_id IS NOT NULL",
        "outside": "s.campaign_id IS NULL",
    }
    parts = [
        f"SELECT '{scope}' AS scope, s.id AS send_id, '{metric}' AS metric,"
        " s.contact_id AS contact_id FROM (" + events + ") AS ev"
        " JOIN scheduled_sends AS s ON s.contact_id = ev.contact_id AND s.state = 'sent'"
        " JOIN messages AS m ON m.id = s.message_id"
        f" WHERE {own[scope]}{_within('s.contact_id', within)} AND {_before('s', 'm', metric)}"
        f" AND {_last(scope, metric, within)}"
        for scope in SCOPES
    ]
    return (
        "INSERT INTO reply_marks (scope, send_id, metric, contact_id) "
        "SELECT DISTINCT u.scope, u.send_id, u.metric, u.contact_id FROM ("
        + " UNION ALL ".join(parts)
        + ") AS u WHERE true ON CONFLICT (scope, send_id, metric) DO NOTHING"
    )


def _mark_tally(rows: str, sign: int, table: str) -> str:
    """Add (``sign``) the marks of ``rows`` to ``send_tallies`` or append to its deltas."""
    out = (
        f"INSERT INTO {table} (campaign_id, bucket, metric, code, n) "
        "SELECT COALESCE(s.campaign_id, 0),"
        " CASE WHEN s.campaign_id IS NULL THEN s.kind ELSE COALESCE(s.step_id, '?') END,"
        f" r.metric, r.scope, {sign} * COUNT(*) FROM ({rows}) AS r"
        " JOIN scheduled_sends AS s ON s.id = r.send_id WHERE true GROUP BY 1, 2, 3, 4"
    )
    if table == "send_tallies":
        out += (
            " ON CONFLICT (campaign_id, bucket, metric, code)"
            " DO UPDATE SET n = send_tallies.n + excluded.n"
        )
    return out


_INBOUND = "direction = 'inbound' AND {r}.contact_id IS NOT NULL"
_OPTED = "{r}.sms_opted_out_at IS NOT NULL"


def _sqlite_mark_triggers() -> dict[str, tuple[str, str, str | None, str]]:
    me = "SELECT NEW.scope AS scope, NEW.send_id AS send_id, NEW.metric AS metric"
    old = "SELECT OLD.scope AS scope, OLD.send_id AS send_id, OLD.metric AS metric"
    return {
        "drip_marks_inbound": (
            "messages",
            "INSERT",
            "NEW." + _INBOUND.format(r="NEW"),
            marks(
                "SELECT NEW.contact_id AS contact_id, NEW.created_at AS at, NEW.id AS mid",
                "replied",
            ),
        ),
        "drip_marks_opt_out": (
            "contacts",
            "UPDATE",
            "OLD.sms_opted_out_at IS NOT NEW.sms_opted_out_at",
            "DELETE FROM reply_marks WHERE contact_id = NEW.id AND metric = 'opted_out'; "
            + marks(
                "SELECT NEW.id AS contact_id, NEW.sms_opted_out_at AS at, NULL AS mid"
                " WHERE NEW.sms_opted_out_at IS NOT NULL",
                "opted_out",
            ),
        ),
        "drip_marks_insert": ("reply_marks", "INSERT", None, _mark_tally(me, 1, "send_tallies")),
        "drip_marks_delete": ("reply_marks", "DELETE", None, _mark_tally(old, -1, "send_tallies")),
    }


def _pg_mark_triggers() -> dict[str, tuple[str, str, str]]:
    changed = (
        "FROM drip_old AS o JOIN drip_new AS n ON n.id = o.id"
        " AND o.sms_opted_out_at IS DISTINCT FROM n.sms_opted_out_at"
    )
    return {
        "drip_marks_inbound": (
            "messages",
            "INSERT",
            marks(
                "SELECT n.contact_id AS contact_id, n.created_at AS at, n.id AS mid FROM drip_new AS n"
                " WHERE n." + _INBOUND.format(r="n"),
                "replied",
            ),
        ),
        "drip_marks_opt_out": (
            "contacts",
            "UPDATE",
            "DELETE FROM reply_marks AS r USING drip_old AS o JOIN drip_new AS n ON n.id = o.id"
            " AND o.sms_opted_out_at IS DISTINCT FROM n.sms_opted_out_at"
            " WHERE r.contact_id = n.id AND r.metric = 'opted_out'; "
            + marks(
                f"SELECT n.id AS contact_id, n.sms_opted_out_at AS at, NULL AS mid {changed}"
                " WHERE n.sms_opted_out_at IS NOT NULL",
                "opted_out",
            ),
        ),
        "drip_marks_insert": (
            "reply_marks",
            "INSERT",
            _mark_tally("SELECT * FROM drip_new", 1, "send_tally_deltas"),
        ),
        "drip_marks_delete": (
            "reply_marks",
            "DELETE",
            _mark_tally("SELECT * FROM drip_old", -1, "send_tally_deltas"),
        ),
    }


#: Contacts whose marks one backfill statement computes. In one statement over every
#: contact, PostgreSQL hashes all sent texts against all events: at 10,000,000 leads
#: (40,000,000 sent texts) that spilled more than 16 GB of temporary files. A range
#: of contact ids small beside the table keeps each statement on the contact indexes
#: (at 1,000,000 leads: 0.1 s a range of 10,000; ranges of 100,000 read the whole
#: messages table each, 1.2 s), so the backfill grows with the contacts, not their square.
MARK_RANGE = 10_000


def backfill_marks(within: tuple[int, int] | None = None) -> list[str]:
    """The marks of every inbound text and every opt-out (``reply_marks`` empty).

    ``within``: only the contacts with ids in ``[lo, hi)`` (see :func:`contact_ranges`).
    """
    return [
        marks(
            "SELECT r.contact_id AS contact_id, r.created_at AS at, r.id AS mid FROM messages AS r"
            " WHERE r." + _INBOUND.format(r="r") + _within("r.contact_id", within),
            "replied",
            within,
        ),
        marks(
            "SELECT r.id AS contact_id, r.sms_opted_out_at AS at, NULL AS mid FROM contacts AS r"
            " WHERE " + _OPTED.format(r="r") + _within("r.id", within),
            "opted_out",
            within,
        ),
    ]


def contact_ranges(
    low: int | None, high: int | None, size: int = MARK_RANGE
) -> list[tuple[int, int]]:
    """The contact ids ``low`` to ``high`` (the table's least and greatest; None when it is
    empty) as half-open ranges of ``size`` ids, lowest first."""
    if low is None or high is None:
        return []
    return [(lo, min(lo + size, high + 1)) for lo in range(low, high + 1, size)]


def tally_marks() -> str:
    """Every mark of ``reply_marks`` into ``send_tallies`` (its replied and opted_out rows empty)."""
    return _mark_tally("SELECT scope, send_id, metric FROM reply_marks", 1, "send_tallies")


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
    op.create_table(
        "reply_marks",
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("send_id", sa.BigInteger(), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "send_id", "metric", name=op.f("pk_reply_marks")),
    )
    op.create_index("ix_reply_marks_contact_id", "reply_marks", ["contact_id", "metric"])
    op.execute(backfill(dialect))
    op.execute("DELETE FROM send_tallies WHERE metric IN ('replied', 'opted_out')")
    if dialect == "postgresql":
        # Each range's statement costs enough on paper for JIT compilation, which takes
        # longer than the statement (1-4 s against 0.1 s at 1,000,000 leads).
        op.execute("SET LOCAL jit = off")
    low, high = op.get_bind().execute(sa.text("SELECT MIN(id), MAX(id) FROM contacts")).one()
    for within in contact_ranges(low, high):
        for statement in backfill_marks(within):
            op.execute(statement)
    op.execute(tally_marks())
    if dialect == "postgresql":
        for name, (table, event, statement) in {**_pg_triggers(), **_pg_mark_triggers()}.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {statement}; RETURN NULL; END $$"
            )
            tables = {
                "INSERT": "NEW TABLE AS drip_new",
                "UPDATE": "OLD TABLE AS drip_old NEW TABLE AS drip_new",
                "DELETE": "OLD TABLE AS drip_old",
            }[event]
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {tables} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
        return
    for name, (table, event, when, statement) in {
        **_sqlite_triggers(),
        **_sqlite_mark_triggers(),
    }.items():
        guard = f" WHEN {when}" if when else ""
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} "
            f"FOR EACH ROW{guard} BEGIN {statement}; END"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, (table, *_rest) in {**_sqlite_triggers(), **_sqlite_mark_triggers()}.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.execute("DELETE FROM send_tallies WHERE metric IN ('replied', 'opted_out')")
    op.drop_index("ix_reply_marks_contact_id", table_name="reply_marks")
    op.drop_table("reply_marks")
    op.drop_index("ix_contacts_sms_opted_out_at", table_name="contacts")
    op.drop_table("queue_tally_deltas")
    op.drop_index("ix_queue_tallies_due_hour", table_name="queue_tallies")
    op.drop_table("queue_tallies")
