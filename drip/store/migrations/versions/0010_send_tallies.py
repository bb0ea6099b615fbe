"""Running counts of sends per campaign step, kept by triggers: stats that do not scan history.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

``drip stats`` and the console's campaign pages used to read every send of
every campaign (5,000,000 rows at 1,000,000 leads: 107 s). ``send_tallies``
holds one row per (campaign, step or kind, metric, reason code), and the
enrollments per campaign and status (bucket ``''``, metric ``enrollments``), and is kept
current by AFTER triggers on ``scheduled_sends``, ``messages``,
``send_decisions`` and ``enrollments``, inside the writer's transaction.

Why triggers rather than a call at each record point: sends are written by
enrollment, enroll-many, imports (opt-in confirmations), bulk, manual texts,
keyword replies, the fire path, claims, pauses, archives, stops, callbacks
and reconcile; a trigger sees every one of them (and a ``COPY``), so no
writer can forget a counter.

Each trigger adds a change's contribution after it and subtracts the one
before it, grouped, dropping zero sums: ``pending -> queued -> sending``
changes no counter; a send that goes out moves one count from ``pending`` to
``sent``. A message's footer, segments and delivery status count once its
send is ``sent`` and points at it: the send's trigger reads the message when
the send changes (a message is always written before the send points at it,
or in the same statement, whose AFTER triggers see it), and the message's
update trigger moves the counts when its status or footer changes later.

On PostgreSQL the triggers are per statement (transition tables) and only
append grouped rows to ``send_tally_deltas``: no row is updated, and no key
is shared, so a 5,000-row insert costs one small grouped insert and any
number of fire workers write side by side without waiting on each other's
locks. (Row triggers updating ``send_tallies`` directly cost one new version
of the same counter row per send: 70,000 sends in one transaction took
over 90 s, and concurrent workers queued on the row locks.) The dispatch
tick and every read fold the deltas into ``send_tallies``
(:func:`drip.store.summary.fold`), and reads add the unfolded ones, so the
counts are exact at any moment. On SQLite, which has one writer at a time
and no row versions, row triggers add to ``send_tallies`` directly.

The upgrade backfills the counts from the existing rows with the same rules.
"""

# ruff: noqa: S608 -- the trigger SQL is assembled from constants of this file (metric
# names, NEW/OLD), never from input: there is nothing to inject.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGINT_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OPEN = "('pending', 'queued', 'sending')"
_METRICS = (
    "scheduled",
    "pending",
    "sent",
    "skipped",
    "cancelled",
    "failed",
    "with_footer",
    "segments",
    "delivered",
    "undelivered",
)


def _value(metric: str) -> str:
    """The contribution of one source row (columns of ``_source``) to ``metric``."""
    state = {
        "scheduled": "1",
        "pending": f"CASE WHEN src.state IN {_OPEN} THEN 1 ELSE 0 END",
        "sent": "CASE WHEN src.state = 'sent' THEN 1 ELSE 0 END",
        "skipped": "CASE WHEN src.state = 'skipped' THEN 1 ELSE 0 END",
        "cancelled": "CASE WHEN src.state = 'cancelled' THEN 1 ELSE 0 END",
        "failed": "CASE WHEN src.state = 'failed' THEN 1 ELSE 0 END",
    }
    message = {
        "with_footer": "CASE WHEN src.footer THEN 1 ELSE 0 END",
        "segments": "COALESCE(src.segments, 0)",
        "delivered": "CASE WHEN src.status IN ('delivered', 'read') THEN 1 ELSE 0 END",
        "undelivered": "CASE WHEN src.status IN ('failed', 'undelivered') THEN 1 ELSE 0 END",
    }
    if metric in state:
        return f"src.whole * {state[metric]}"
    return f"CASE WHEN src.state = 'sent' THEN {message[metric]} ELSE 0 END"


_ADD = (
    " ON CONFLICT (campaign_id, bucket, metric, code) DO UPDATE SET n = send_tallies.n + excluded.n"
)


def _upsert(source: str, table: str = "send_tallies") -> str:
    """Add the grouped contributions of ``source`` to ``table``.

    ``send_tallies``: added to its rows; ``send_tally_deltas``: appended.

    ``source`` yields: campaign_id, kind, step_id, channel, state, decision_code,
    footer, segments, status (of the message), whole (1: count the send's state
    too, 0: only its message), sign.
    """
    metrics = " UNION ALL ".join(f"SELECT '{m}' AS metric" for m in _METRICS)
    value = "CASE k.metric " + " ".join(f"WHEN '{m}' THEN {_value(m)}" for m in _METRICS) + " END"
    code = (
        "CASE k.metric WHEN 'scheduled' THEN src.channel"
        " WHEN 'skipped' THEN COALESCE(src.decision_code, 'unknown') ELSE '' END"
    )
    return (
        f"INSERT INTO {table} (campaign_id, bucket, metric, code, n) "
        "SELECT COALESCE(src.campaign_id, 0),"
        " CASE WHEN src.campaign_id IS NULL THEN src.kind ELSE COALESCE(src.step_id, '?') END,"
        f" k.metric, {code}, SUM(src.sign * ({value})) "
        f"FROM ({source}) AS src CROSS JOIN ({metrics}) AS k "
        "GROUP BY 1, 2, 3, 4 HAVING SUM(src.sign * ("
        + value
        + ")) <> 0"
        + (_ADD if table == "send_tallies" else "")
    )


def _send_row(row: str, sign: int) -> str:
    """A send record (``NEW`` or ``OLD``) with its message, as one source row."""
    m = f"FROM messages WHERE messages.id = {row}.message_id"
    return (
        f"SELECT {row}.campaign_id AS campaign_id, {row}.kind AS kind,"
        f" {row}.step_id AS step_id, {row}.channel AS channel, {row}.state AS state,"
        f" {row}.decision_code AS decision_code, (SELECT footer {m}) AS footer,"
        f" (SELECT segments {m}) AS segments, (SELECT status {m}) AS status,"
        f" 1 AS whole, {sign} AS sign"
    )


def _message_row(row: str, sign: int) -> str:
    """A message record's send (the one pointing at it), counting only the message."""
    return (
        "SELECT s.campaign_id AS campaign_id, s.kind AS kind, s.step_id AS step_id,"
        " s.channel AS channel, s.state AS state, s.decision_code AS decision_code,"
        f" {row}.footer AS footer, {row}.segments AS segments, {row}.status AS status,"
        f" 0 AS whole, {sign} AS sign "
        f"FROM scheduled_sends AS s WHERE s.id = {row}.send_id AND s.message_id = {row}.id"
    )


_DEFERRED = (
    "INSERT INTO send_tallies (campaign_id, bucket, metric, code, n) "
    "SELECT COALESCE(s.campaign_id, 0),"
    " CASE WHEN s.campaign_id IS NULL THEN s.kind ELSE COALESCE(s.step_id, '?') END,"
    " 'deferred', NEW.code, 1 FROM scheduled_sends AS s "
    "WHERE s.id = NEW.send_id AND NEW.outcome = 'deferred' AND NOT EXISTS ("
    "SELECT 1 FROM send_decisions AS d WHERE d.send_id = NEW.send_id"
    " AND d.outcome = 'deferred' AND d.code = NEW.code AND d.id < NEW.id) "
    "ON CONFLICT (campaign_id, bucket, metric, code) "
    "DO UPDATE SET n = send_tallies.n + excluded.n"
)

#: name: (table, event, WHEN condition on SQLite, statement)
_TRIGGERS: dict[str, tuple[str, str, str | None, str]] = {
    "drip_tally_send_insert": (
        "scheduled_sends",
        "INSERT",
        None,
        _upsert(_send_row("NEW", 1)),
    ),
    "drip_tally_send_update": (
        "scheduled_sends",
        "UPDATE",
        "OLD.state IS NOT NEW.state OR OLD.decision_code IS NOT NEW.decision_code"
        " OR OLD.message_id IS NOT NEW.message_id OR OLD.campaign_id IS NOT NEW.campaign_id"
        " OR OLD.step_id IS NOT NEW.step_id",
        _upsert(_send_row("OLD", -1) + " UNION ALL " + _send_row("NEW", 1)),
    ),
    "drip_tally_message_update": (
        "messages",
        "UPDATE",
        "OLD.status IS NOT NEW.status OR OLD.footer IS NOT NEW.footer"
        " OR OLD.segments IS NOT NEW.segments OR OLD.send_id IS NOT NEW.send_id",
        _upsert(_message_row("OLD", -1) + " UNION ALL " + _message_row("NEW", 1)),
    ),
    "drip_tally_decision_insert": (
        "send_decisions",
        "INSERT",
        "NEW.outcome = 'deferred'",
        _DEFERRED,
    ),
}

_ENROLLMENTS = (
    "INSERT INTO send_tallies (campaign_id, bucket, metric, code, n) "
    "SELECT src.campaign_id, '', 'enrollments', src.status, SUM(src.sign) FROM ({}) AS src "
    "GROUP BY 1, 2, 3, 4 HAVING SUM(src.sign) <> 0 "
    "ON CONFLICT (campaign_id, bucket, metric, code) "
    "DO UPDATE SET n = send_tallies.n + excluded.n"
)
_TRIGGERS["drip_tally_enrollment_insert"] = (
    "enrollments",
    "INSERT",
    None,
    _ENROLLMENTS.format("SELECT NEW.campaign_id AS campaign_id, NEW.status AS status, 1 AS sign"),
)
_TRIGGERS["drip_tally_enrollment_update"] = (
    "enrollments",
    "UPDATE",
    "OLD.status IS NOT NEW.status OR OLD.campaign_id IS NOT NEW.campaign_id",
    _ENROLLMENTS.format(
        "SELECT OLD.campaign_id AS campaign_id, OLD.status AS status, -1 AS sign UNION ALL "
        "SELECT NEW.campaign_id AS campaign_id, NEW.status AS status, 1 AS sign"
    ),
)


def _pg_when(condition: str) -> str:
    return condition.replace(" IS NOT ", " IS DISTINCT FROM ")


_DELTAS = "send_tally_deltas"
_SEND_CHANGED = _pg_when(_TRIGGERS["drip_tally_send_update"][2] or "").replace("OLD.", "o.")
_SEND_CHANGED = _SEND_CHANGED.replace("NEW.", "n.")
_MESSAGE_CHANGED = _pg_when(_TRIGGERS["drip_tally_message_update"][2] or "")
_MESSAGE_CHANGED = _MESSAGE_CHANGED.replace("OLD.", "o.").replace("NEW.", "n.")
_ENROLLMENT_CHANGED = _pg_when(_TRIGGERS["drip_tally_enrollment_update"][2] or "")
_ENROLLMENT_CHANGED = _ENROLLMENT_CHANGED.replace("OLD.", "o.").replace("NEW.", "n.")


def _sends_of(rows: str, sign: int, changed: str | None = None) -> str:
    """The sends of transition table ``rows`` with their messages, as source rows.

    With ``changed``, only the rows whose counted columns an UPDATE changed
    (``o``: the old version, ``n``: the new one, joined on the send id).
    """
    me = "o" if rows == "drip_old" else "n"
    pair = (
        f" JOIN {'drip_new' if me == 'o' else 'drip_old'} AS {'n' if me == 'o' else 'o'}"
        f" ON n.id = o.id AND ({changed})"
        if changed
        else ""
    )
    return (
        f"SELECT {me}.campaign_id AS campaign_id, {me}.kind AS kind, {me}.step_id AS step_id,"
        f" {me}.channel AS channel, {me}.state AS state, {me}.decision_code AS decision_code,"
        " m.footer AS footer, m.segments AS segments, m.status AS status,"
        f" 1 AS whole, {sign} AS sign FROM {rows} AS {me}{pair}"
        f" LEFT JOIN messages AS m ON m.id = {me}.message_id"
    )


def _messages_of(me: str, sign: int) -> str:
    """The changed messages' old (``o``) or new (``n``) version, with the send they count for."""
    return (
        "SELECT s.campaign_id AS campaign_id, s.kind AS kind, s.step_id AS step_id,"
        " s.channel AS channel, s.state AS state, s.decision_code AS decision_code,"
        f" {me}.footer AS footer, {me}.segments AS segments, {me}.status AS status,"
        f" 0 AS whole, {sign} AS sign "
        f"FROM drip_old AS o JOIN drip_new AS n ON n.id = o.id AND ({_MESSAGE_CHANGED}) "
        f"JOIN scheduled_sends AS s ON s.id = {me}.send_id AND s.message_id = {me}.id"
    )


_PG_ENROLLMENTS = (
    f"INSERT INTO {_DELTAS} (campaign_id, bucket, metric, code, n) "
    "SELECT src.campaign_id, '', 'enrollments', src.status, SUM(src.sign) FROM ({}) AS src "
    "GROUP BY 1, 2, 3, 4 HAVING SUM(src.sign) <> 0"
)

#: PostgreSQL, per statement: name: (table, event, statement over drip_old / drip_new)
_PG_TRIGGERS: dict[str, tuple[str, str, str]] = {
    "drip_tally_send_insert": (
        "scheduled_sends",
        "INSERT",
        _upsert(_sends_of("drip_new", 1), _DELTAS),
    ),
    "drip_tally_send_update": (
        "scheduled_sends",
        "UPDATE",
        _upsert(
            _sends_of("drip_old", -1, _SEND_CHANGED)
            + " UNION ALL "
            + _sends_of("drip_new", 1, _SEND_CHANGED),
            _DELTAS,
        ),
    ),
    "drip_tally_message_update": (
        "messages",
        "UPDATE",
        _upsert(_messages_of("o", -1) + " UNION ALL " + _messages_of("n", 1), _DELTAS),
    ),
    "drip_tally_decision_insert": (
        "send_decisions",
        "INSERT",
        f"INSERT INTO {_DELTAS} (campaign_id, bucket, metric, code, n) "
        "SELECT COALESCE(s.campaign_id, 0),"
        " CASE WHEN s.campaign_id IS NULL THEN s.kind ELSE COALESCE(s.step_id, '?') END,"
        " 'deferred', n.code, COUNT(*) FROM drip_new AS n "
        "JOIN scheduled_sends AS s ON s.id = n.send_id "
        "WHERE n.outcome = 'deferred' AND NOT EXISTS ("
        "SELECT 1 FROM send_decisions AS d WHERE d.send_id = n.send_id"
        " AND d.outcome = 'deferred' AND d.code = n.code AND d.id < n.id) "
        "GROUP BY 1, 2, 3, 4",
    ),
    "drip_tally_enrollment_insert": (
        "enrollments",
        "INSERT",
        _PG_ENROLLMENTS.format(
            "SELECT n.campaign_id AS campaign_id, n.status AS status, 1 AS sign"
            " FROM drip_new AS n WHERE n.campaign_id IS NOT NULL"
        ),
    ),
    "drip_tally_enrollment_update": (
        "enrollments",
        "UPDATE",
        _PG_ENROLLMENTS.format(
            "SELECT o.campaign_id AS campaign_id, o.status AS status, -1 AS sign"
            f" FROM drip_old AS o JOIN drip_new AS n ON n.id = o.id AND ({_ENROLLMENT_CHANGED})"
            " WHERE o.campaign_id IS NOT NULL UNION ALL "
            "SELECT n.campaign_id AS campaign_id, n.status AS status, 1 AS sign"
            f" FROM drip_new AS n JOIN drip_old AS o ON n.id = o.id AND ({_ENROLLMENT_CHANGED})"
            " WHERE n.campaign_id IS NOT NULL"
        ),
    ),
}


#: A source row's columns but ``sign``.
_SOURCE_COLUMNS = (
    "campaign_id, kind, step_id, channel, state, decision_code, footer, segments, status, whole"
)


def _summed(source: str) -> str:
    """``source`` with its alike rows made one, ``sign`` their sum.

    Every metric is ``sign`` times a function of the other columns, so the counts
    are the same; but the ten metrics then multiply a few hundred rows, not every
    send: at 10,000,000 leads (50,000,000 sends) the backfill had spilled 29 GB of
    temporary files when it was stopped.
    """
    return (
        f"SELECT {_SOURCE_COLUMNS}, SUM(sign) AS sign FROM ({source}) AS one"
        f" GROUP BY {_SOURCE_COLUMNS}"
    )


_BACKFILL_SENDS = _upsert(
    _summed(
        "SELECT s.campaign_id AS campaign_id, s.kind AS kind, s.step_id AS step_id,"
        " s.channel AS channel, s.state AS state, s.decision_code AS decision_code,"
        " m.footer AS footer, m.segments AS segments, m.status AS status, 1 AS whole, 1 AS sign "
        "FROM scheduled_sends AS s LEFT JOIN messages AS m ON m.id = s.message_id"
    )
)
_BACKFILL_DEFERRED = (
    "INSERT INTO send_tallies (campaign_id, bucket, metric, code, n) "
    "SELECT COALESCE(s.campaign_id, 0),"
    " CASE WHEN s.campaign_id IS NULL THEN s.kind ELSE COALESCE(s.step_id, '?') END,"
    " 'deferred', d.code, COUNT(DISTINCT d.send_id) "
    "FROM send_decisions AS d JOIN scheduled_sends AS s ON s.id = d.send_id "
    "WHERE d.outcome = 'deferred' GROUP BY 1, 2, 3, 4 "
    "ON CONFLICT (campaign_id, bucket, metric, code) "
    "DO UPDATE SET n = send_tallies.n + excluded.n"
)


def upgrade() -> None:
    op.create_table(
        "send_tallies",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("n", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "campaign_id", "bucket", "metric", "code", name=op.f("pk_send_tallies")
        ),
    )
    op.create_table(
        "send_tally_deltas",
        sa.Column("id", _BIGINT_KEY, autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_tally_deltas")),
    )
    # The console's campaign page reads a campaign's sends latest first, a page at a time.
    op.drop_index("ix_scheduled_sends_campaign_id", table_name="scheduled_sends")
    op.create_index(
        "ix_scheduled_sends_campaign_id_due_at",
        "scheduled_sends",
        ["campaign_id", "due_at", "id"],
    )
    op.execute(_BACKFILL_SENDS)
    op.execute(_BACKFILL_DEFERRED)
    op.execute(
        _ENROLLMENTS.format(
            "SELECT campaign_id, status, 1 AS sign FROM enrollments WHERE campaign_id IS NOT NULL"
        )
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, (table, event, statement) in _PG_TRIGGERS.items():
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
    for name, (table, event, when, statement) in _TRIGGERS.items():
        guard = f" WHEN {when}" if when else ""
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} "
            f"FOR EACH ROW{guard} BEGIN {statement}; END"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, (table, _event, _when, _statement) in _TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index("ix_scheduled_sends_campaign_id_due_at", table_name="scheduled_sends")
    op.create_index("ix_scheduled_sends_campaign_id", "scheduled_sends", ["campaign_id"])
    op.drop_table("send_tally_deltas")
    op.drop_table("send_tallies")
