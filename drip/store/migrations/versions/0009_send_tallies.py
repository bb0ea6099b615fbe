"""Running counts of sends per campaign step, kept by triggers: stats that do not scan history.

Revision ID: 0009
Revises: 0008
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
writer can forget a counter. The same INSERT text runs as a SQLite trigger
body and inside a PL/pgSQL function on PostgreSQL.

Each trigger adds a send's contribution after the change and subtracts the
one before it, grouped, dropping zero sums: ``pending -> queued -> sending``
changes no counter (no row locked); a send that goes out moves one count
from ``pending`` to ``sent``. A message's footer, segments and delivery
status count once its send is ``sent`` and points at it: the send's trigger
reads the message when the send changes (a message is always written before
the send points at it, or in the same statement, whose AFTER triggers see
it), and the message's update trigger moves the counts when its status or
footer changes later.

The upgrade backfills the counts from the existing rows with the same rules.
"""

# ruff: noqa: S608 -- the trigger SQL is assembled from constants of this file (metric
# names, NEW/OLD), never from input: there is nothing to inject.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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


def _upsert(source: str) -> str:
    """Add the grouped contributions of ``source`` to ``send_tallies``.

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
        "INSERT INTO send_tallies (campaign_id, bucket, metric, code, n) "
        "SELECT COALESCE(src.campaign_id, 0),"
        " CASE WHEN src.campaign_id IS NULL THEN src.kind ELSE COALESCE(src.step_id, '?') END,"
        f" k.metric, {code}, SUM(src.sign * ({value})) "
        f"FROM ({source}) AS src CROSS JOIN ({metrics}) AS k "
        "GROUP BY 1, 2, 3, 4 HAVING SUM(src.sign * (" + value + ")) <> 0 "
        "ON CONFLICT (campaign_id, bucket, metric, code) "
        "DO UPDATE SET n = send_tallies.n + excluded.n"
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


_BACKFILL_SENDS = _upsert(
    "SELECT s.campaign_id AS campaign_id, s.kind AS kind, s.step_id AS step_id,"
    " s.channel AS channel, s.state AS state, s.decision_code AS decision_code,"
    " m.footer AS footer, m.segments AS segments, m.status AS status, 1 AS whole, 1 AS sign "
    "FROM scheduled_sends AS s LEFT JOIN messages AS m ON m.id = s.message_id"
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
    op.execute(_BACKFILL_SENDS)
    op.execute(_BACKFILL_DEFERRED)
    op.execute(
        _ENROLLMENTS.format(
            "SELECT campaign_id, status, 1 AS sign FROM enrollments WHERE campaign_id IS NOT NULL"
        )
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, (table, event, when, statement) in _TRIGGERS.items():
        if postgres:
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {statement}; RETURN NULL; END $$"
            )
            guard = f" WHEN ({_pg_when(when)})" if when else ""
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                f"FOR EACH ROW{guard} EXECUTE FUNCTION {name}()"
            )
        else:
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
    op.drop_table("send_tallies")
