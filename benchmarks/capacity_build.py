"""The database of ``capacity.py --scale``: N leads and four years of their texts, built in the server.

N contacts (ids 1..N) enrolled one after the other over four years
(1,460 days, the last one now) in the bundled 5-step ``smart-drip-new-lead``,
so each has its five sends (ids ``5 (g - 1) + k``): the ones due after now
are pending (about 12 % of the sends), the others went out (90 %), were
skipped (6 %), failed (2 %) or were cancelled (2 %); a text that went out has
its message (the same id), every send decided has its decision, one in 25 a
deferral before it, one sent text in 20 a reply, one contact in 200 opted out
after its first text (its later sends cancelled). At 10,000,000 leads that is
50,000,000 sends, about 6,000,000 of them pending, 40,000,000 messages and
45,000,000 decisions. No row leaves PostgreSQL (``generate_series``).

Two ways to the same rows:

- ``fast``: ``session_replication_role = replica`` (no trigger, no foreign
  key check: the rows are consistent by construction), the secondary indexes
  dropped before the load and created again after it, the send's message id
  written with the send, and the counts the triggers keep (``send_tallies``,
  ``queue_tallies``, ``reply_marks``) computed at the end by the backfill
  statements of migrations 0010 and 0018, one aggregate ``INSERT`` each;
- ``triggers``: every statement through drip's triggers, messages linked by an
  ``UPDATE`` after them (as the fire path records them).

:func:`summaries` reads the counts of either (deltas added), so the two can be
compared: ``capacity.py --verify`` builds a small database both ways and
fails unless they are equal.
"""

from __future__ import annotations

import importlib
import time
from datetime import datetime
from typing import Any

from harness import connect, say

STEPS = (
    (1, "day-15-check-in", 15),
    (2, "day-45-market-update", 45),
    (3, "day-180-timing", 180),
    (4, "day-270-new-listings", 270),
    (5, "day-360-anniversary", 360),
)
DAYS = 1460  # four years of enrollments
#: The tables the load writes; their secondary indexes are dropped and rebuilt (fast).
LOADED = ("contacts", "enrollments", "scheduled_sends", "messages", "send_decisions")
#: Every table worth a size line.
SIZED = (*LOADED, "send_tallies", "queue_tallies", "reply_marks")
AGENT_PHONE = "+16175550100"  # harness.add_agent's


def _phone(g: str) -> str:
    """The phone of contact ``g``: +1200... / +1201..., clear of the harness's seeded numbers."""
    return f"'+12' || lpad(({g})::text, 9, '0')"


def _enrolled(g: str) -> str:
    """When contact ``g`` enrolled: evenly over the four years, the last one now."""
    return f"(%(now)s - ((%(n)s - {g})::bigint * {DAYS * 86400} / %(n)s) * interval '1 second')"


_STEPS_VALUES = ", ".join(f"({k}, '{step}', {day})" for k, step, day in STEPS)

#: (g, k, id, step, due, state) of every send.
_SENDS = f"""
SELECT g, st.k, 5 * (g - 1)::bigint + st.k AS id, st.step, en,
       en + st.day * interval '1 day' AS due,
       CASE WHEN g %% 200 = 7 AND st.k >= 2 THEN 'cancelled'
            WHEN en + st.day * interval '1 day' > %(now)s THEN 'pending'
            WHEN (5 * (g - 1)::bigint + st.k) %% 100 < 90 THEN 'sent'
            WHEN (5 * (g - 1)::bigint + st.k) %% 100 < 96 THEN 'skipped'
            WHEN (5 * (g - 1)::bigint + st.k) %% 100 < 98 THEN 'failed'
            ELSE 'cancelled' END AS state
FROM generate_series(1, %(n)s) AS g
CROSS JOIN LATERAL (SELECT {_enrolled("g")} AS en) AS e
CROSS JOIN (VALUES {_STEPS_VALUES}) AS st(k, step, day)
"""


def _statements(fast: bool) -> list[tuple[str, str]]:
    """(what, SQL) in order; ``fast`` links each sent send to its message as it is written."""
    link = "CASE WHEN s.state = 'sent' THEN s.id END" if fast else "NULL"
    out = [
        (
            "contacts",
            "INSERT INTO contacts (id, first_name, last_name, phone, email, state, timezone,"
            " source, agent_id, sms_consent_at, sms_consent_source, sms_consent_text,"
            " text_status, email_opted_out, created_at, updated_at) "
            f"SELECT g, 'Lead' || g, 'Capacity', {_phone('g')}, 'cap' || g || '@example.com',"
            " (ARRAY['MA','FL','NY','IL','CA'])[1 + g %% 5],"
            " (ARRAY['America/New_York','America/New_York','America/New_York',"
            "'America/Chicago','America/Los_Angeles'])[1 + g %% 5],"
            " 'import', %(a)s, e.en - interval '1 hour', 'import', 'Yes, text me.', 'textable',"
            " false, e.en - interval '1 hour', e.en - interval '1 hour'"
            f" FROM generate_series(1, %(n)s) AS g CROSS JOIN LATERAL (SELECT {_enrolled('g')}"
            " AS en) AS e",
        ),
        (
            "enrollments",
            "INSERT INTO enrollments (id, contact_id, campaign_id, enrolled_at, status,"
            " stopped_at, stop_reason) "
            "SELECT g, g, %(c)s, e.en, CASE WHEN g %% 200 = 7 THEN 'stopped'"
            " WHEN e.en > %(now)s - interval '361 days' THEN 'active' ELSE 'completed' END,"
            " CASE WHEN g %% 200 = 7 THEN e.en + interval '16 days' END,"
            " CASE WHEN g %% 200 = 7 THEN 'opted out' END"
            f" FROM generate_series(1, %(n)s) AS g CROSS JOIN LATERAL (SELECT {_enrolled('g')}"
            " AS en) AS e",
        ),
        (
            "sends",
            "INSERT INTO scheduled_sends (id, enrollment_id, contact_id, campaign_id, step_id,"
            " kind, channel, sender_role, due_at, original_due_at, state, attempts, catching_up,"
            " held_to_window, claimed_at, sending_started_at, decision_code, decision_reason,"
            " message_id, created_at, updated_at) "
            "SELECT s.id, s.g, s.g, %(c)s, s.step, 'campaign', 'sms', 'agent', s.due, s.due,"
            " s.state, CASE WHEN s.state IN ('sent', 'failed') THEN 1 ELSE 0 END, false, false,"
            " CASE WHEN s.state IN ('sent', 'failed') THEN s.due END,"
            " CASE WHEN s.state IN ('sent', 'failed') THEN s.due END,"
            " CASE s.state WHEN 'skipped' THEN 'quiet_hours' WHEN 'failed' THEN 'provider_error'"
            " WHEN 'cancelled' THEN 'enrollment_stopped' END,"
            " CASE s.state WHEN 'skipped' THEN 'outside the window too long' END,"
            f" {link}, s.en, LEAST(s.due, %(now)s) FROM ({_SENDS}) AS s",
        ),
        (
            "outbound messages",
            "INSERT INTO messages (id, direction, channel, kind, sender_phone, contact_id,"
            " from_addr, to_addr, body, footer, segments, encoding, provider_sid, status,"
            " send_id, created_at, sent_at, updated_at) "
            f"SELECT s.id, 'outbound', 'sms', 'campaign', '{AGENT_PHONE}', s.contact_id,"
            f" '{AGENT_PHONE}', {_phone('s.contact_id')},"
            " 'Hi, checking in about your home search. Any questions?',"
            " s.step_id = 'day-15-check-in', 1, 'GSM-7', 'SM' || lpad(to_hex(s.id), 32, '0'),"
            " CASE WHEN s.id %% 50 = 1 THEN 'undelivered' ELSE 'delivered' END, s.id,"
            " s.due_at, s.due_at, s.due_at + interval '5 seconds'"
            " FROM scheduled_sends AS s WHERE s.state = 'sent'",
        ),
    ]
    if not fast:
        out.append(
            (
                "messages linked",
                "UPDATE scheduled_sends SET message_id = id WHERE state = 'sent'",
            )
        )
    out += [
        (
            "replies",
            "INSERT INTO messages (id, direction, channel, contact_id, from_addr, to_addr, body,"
            " footer, provider_sid, status, created_at, updated_at) "
            "SELECT 5 * %(n)s::bigint + m.id, 'inbound', 'sms', m.contact_id, m.to_addr,"
            " m.from_addr, 'Thanks, we are still looking.', false,"
            " 'SMR' || lpad(to_hex(m.id), 31, '0'), 'received',"
            " m.created_at + interval '1 hour', m.created_at + interval '1 hour'"
            " FROM messages AS m WHERE m.direction = 'outbound' AND m.id %% 20 = 3",
        ),
        (
            "decisions",
            "INSERT INTO send_decisions (id, send_id, at, outcome, code, reason, footer,"
            " footer_rule) "
            "SELECT s.id, s.id, s.due_at, s.state,"
            " COALESCE(s.decision_code, 'sent'), COALESCE(s.decision_reason, 'sent'),"
            " CASE WHEN s.state = 'sent' THEN s.step_id = 'day-15-check-in' END,"
            " CASE WHEN s.state = 'sent' THEN 'first' END"
            " FROM scheduled_sends AS s WHERE s.state <> 'pending'",
        ),
        (
            "deferrals",
            "INSERT INTO send_decisions (id, send_id, at, outcome, code, reason, deferred_until) "
            "SELECT 5 * %(n)s::bigint + s.id, s.id, s.due_at - interval '10 hours', 'deferred',"
            " 'quiet_hours', 'outside the send window', s.due_at"
            " FROM scheduled_sends AS s WHERE s.state <> 'pending' AND s.id %% 25 = 1",
        ),
        (
            "opt-outs",
            "UPDATE contacts SET sms_opted_out_at = created_at + interval '16 days',"
            " sms_opted_out_how = 'keyword' WHERE id %% 200 = 7"
            " AND created_at + interval '16 days' < %(now)s",
        ),
    ]
    return out


def _secondary_indexes(conn: Any) -> list[tuple[str, str]]:
    """(name, definition) of the loaded tables' indexes that back no constraint."""
    rows = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i"
        " JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_class AS t ON t.oid = i.indrelid"
        " WHERE t.relname = ANY(%s) AND NOT EXISTS"
        " (SELECT 1 FROM pg_constraint AS k WHERE k.conindid = i.indexrelid)",
        (list(LOADED),),
    ).fetchall()
    return [(str(name), str(definition)) for name, definition in rows]


def _migration(name: str) -> Any:
    return importlib.import_module(f"drip.store.migrations.versions.{name}")


def backfill_statements(low: int | None, high: int | None) -> list[str]:
    """What the triggers of migrations 0010 and 0018 would have counted, from the rows
    (the contacts' ids ``low`` to ``high``: the replies' marks are counted in ranges)."""
    m10, m18 = _migration("0010_send_tallies"), _migration("0018_queue_tallies")
    enrollments = m10._ENROLLMENTS.format(
        "SELECT campaign_id, status, 1 AS sign FROM enrollments WHERE campaign_id IS NOT NULL"
    )
    return [
        m10._BACKFILL_SENDS,
        m10._BACKFILL_DEFERRED,
        enrollments,
        m18.backfill("postgresql"),
        *(s for within in m18.contact_ranges(low, high) for s in m18.backfill_marks(within)),
        m18.tally_marks(),
    ]


def build(
    url: str,
    n: int,
    now: datetime,
    campaign_id: int,
    agent_id: int,
    *,
    fast: bool,
    counts: bool = True,
) -> dict[str, float]:
    """Load ``n`` leads; seconds per step. ``counts=False`` (fast): the running counts stay empty."""
    p = {"n": n, "now": now, "c": campaign_id, "a": agent_id}
    took: dict[str, float] = {}
    with connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET jit = off")  # as migration 0018's backfill: it costs more than it saves
        # A statement that spills more than this fails rather than fills a shared disk.
        conn.execute("SET temp_file_limit = '15GB'")
        indexes: list[tuple[str, str]] = []
        if fast:
            conn.execute("SET session_replication_role = replica")
            indexes = _secondary_indexes(conn)
            for name, _definition in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            for table in ("send_tallies", "send_tally_deltas", "queue_tallies",
                          "queue_tally_deltas", "reply_marks"):  # fmt: skip
                conn.execute(f"DELETE FROM {table}")
        for what, statement in _statements(fast):
            t0 = time.perf_counter()
            with conn.transaction():
                conn.execute(statement, p)
            took[what] = time.perf_counter() - t0
            say(f"capacity: {n:,} leads: {what} in {took[what]:.0f} s")
        for table in ("contacts", "enrollments", "scheduled_sends", "messages", "send_decisions"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        if fast:
            t0 = time.perf_counter()
            for name, definition in indexes:
                t1 = time.perf_counter()
                conn.execute(definition)
                say(f"capacity: {n:,} leads: index {name} in {time.perf_counter() - t1:.0f} s")
            took["indexes"] = time.perf_counter() - t0
            conn.execute("ANALYZE")
            t0 = time.perf_counter()
            low, high = conn.execute("SELECT MIN(id), MAX(id) FROM contacts").fetchone() or (0, 0)
            for statement in backfill_statements(low, high) if counts else []:
                conn.execute(statement)
            took["counts"] = time.perf_counter() - t0
            say(f"capacity: {n:,} leads: counts in {took['counts']:.0f} s")
            conn.execute("SET session_replication_role = origin")
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        took["vacuum analyze"] = time.perf_counter() - t0
    return took


def summaries(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The trigger-kept counts of ``url``, deltas added, in a comparable order."""
    keys = ", ".join(_migration("0018_queue_tallies").KEYS)
    with connect(url) as conn:
        return {
            "send_tallies": conn.execute(
                "SELECT campaign_id, bucket, metric, code, SUM(n) FROM (SELECT campaign_id,"
                " bucket, metric, code, n FROM send_tallies UNION ALL SELECT campaign_id, bucket,"
                " metric, code, n FROM send_tally_deltas) AS u GROUP BY 1, 2, 3, 4"
                " HAVING SUM(n) <> 0 ORDER BY 1, 2, 3, 4"
            ).fetchall(),
            "queue_tallies": conn.execute(
                f"SELECT {keys}, SUM(n), MAX(last_due), MIN(rep) FROM (SELECT {keys}, n,"
                f" last_due, rep FROM queue_tallies UNION ALL SELECT {keys}, n, last_due, rep"
                f" FROM queue_tally_deltas) AS u GROUP BY {keys} HAVING SUM(n) <> 0"
                f" ORDER BY {keys}"
            ).fetchall(),
            "reply_marks": conn.execute(
                "SELECT scope, send_id, metric, contact_id FROM reply_marks ORDER BY 1, 2, 3"
            ).fetchall(),
        }


def sizes(url: str) -> list[tuple[str, int, int, int]]:
    """(table, rows estimated, table bytes, index bytes) of the tables worth a line."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid)"
            " FROM pg_class AS c WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
            (list(SIZED),),
        ).fetchall()
    order = {name: i for i, name in enumerate(SIZED)}
    return sorted(
        ((str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows), key=lambda r: order[r[0]]
    )


def database_bytes(url: str) -> int:
    with connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(row[0]) if row else 0
