"""The recording statements of the fire path, built once and executed with parameters.

They run once per text sent (:mod:`drip.services.fire.record` records each send
that reached its provider right after its call), and building a SQLAlchemy
statement costs more CPU than executing it (every clause coerced, a cache key
computed): each statement here is built once (the send update once per set
of columns) and executed with bound values on the caller's connection, in
the caller's transaction. Executed through ``Connection.execute``, each hits
SQLAlchemy's compiled cache; on PostgreSQL psycopg prepares it on the server
after a few executions (the engine's ``prepare_threshold``, off behind
PgBouncer: :mod:`drip.store.engine`).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, or_, select, tuple_, update

from drip.domain.enums import EnrollmentStatus, SendState
from drip.store import claims
from drip.store.models import (
    Conversation,
    Enrollment,
    Message,
)
from drip.store.types import UtcDateTime

__all__ = [
    "FOOTER_CHUNK",
    "Recorded",
    "insert_decisions",
    "insert_messages",
    "new_message",
    "record_send",
    "record_sent",
    "set_footers",
]

_SENDS = claims.SENDS
_DECISIONS = claims.DECISIONS
_MESSAGES = cast(Table, Message.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
_MESSAGE_COLUMNS = tuple(c.key for c in Message.__mapper__.column_attrs if c.key != "id")
_INSERT_DECISIONS = insert(_DECISIONS)
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id)


@functools.cache
def _send_update(keys: frozenset[str]) -> Any:
    """``UPDATE scheduled_sends SET <keys> WHERE id = :b_id AND state IN :b_states RETURNING``."""
    return (
        update(_SENDS)
        .where(
            _SENDS.c.id == bindparam("b_id"),
            _SENDS.c.state.in_(bindparam("b_states", expanding=True)),
        )
        .values({key: bindparam(f"v_{key}", type_=_SENDS.c[key].type) for key in sorted(keys)})
        .returning(_SENDS.c.contact_id, _SENDS.c.enrollment_id)
    )


def record_send(
    conn: Connection, send_id: int, expected: Collection[SendState], values: Mapping[str, object]
) -> tuple[int, int | None] | None:
    """Set ``values`` on the send if it is in one of the ``expected`` states.

    Returns its (contact_id, enrollment_id), or None when it was in another state.
    """
    params = {f"v_{key}": value for key, value in values.items()}
    params.update(b_id=send_id, b_states=list(expected))
    row = conn.execute(_send_update(frozenset(values)), params).first()
    if row is None:
        return None
    return int(row[0]), None if row[1] is None else int(row[1])


_MESSAGE_MANAGER = Message.__mapper__.class_manager
_MESSAGE_KEYS = frozenset(_MESSAGE_COLUMNS)


def new_message(**values: Any) -> Message:
    """A transient ``Message`` holding ``values``, built without the ORM's per-attribute events.

    ``Message(**values)`` sends every value through an instrumented attribute
    (history, events): that took about 5% of the CPU of sending a text (profiled),
    for values this module then reads back from its ``__dict__``. The instance is
    a normal transient one (later changes go through the attributes as usual; a
    session that adds it inserts these values). Unknown names are refused, as the
    constructor refuses them.
    """
    unknown = values.keys() - _MESSAGE_KEYS
    if unknown:
        raise TypeError(f"Message has no column(s) {', '.join(sorted(unknown))}")
    message: Message = _MESSAGE_MANAGER.new_instance()
    message.__dict__.update(values)
    return message


def insert_messages(conn: Connection, messages: Sequence[Message]) -> None:
    """INSERT the (transient) messages with Core and set each one's ``id``.

    The ``Message`` objects only carry the values: a Core INSERT costs a
    fraction of an ORM flush. Attributes never set are left out, so column
    defaults apply as in a flush.
    """
    for message in messages:
        state = message.__dict__
        values = {key: state[key] for key in _MESSAGE_COLUMNS if key in state}
        message.id = int(conn.execute(_INSERT_MESSAGE, values).scalar_one())


def insert_decisions(conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """The decision rows (``send_decisions`` columns) in one statement."""
    if rows:
        conn.execute(_INSERT_DECISIONS, list(rows))


#: Conversations per UPDATE in :func:`set_footers` (two bound parameters each).
FOOTER_CHUNK = 500

_FOOTER_AT = bindparam("at_", type_=UtcDateTime())
_FOOTER_UPDATE = (
    update(_CONVERSATIONS)
    .where(
        tuple_(_CONVERSATIONS.c.sender_phone, _CONVERSATIONS.c.contact_id).in_(
            bindparam("pairs", expanding=True)
        ),
        (_CONVERSATIONS.c.footer_last_sent_at.is_(None))
        | (_CONVERSATIONS.c.footer_last_sent_at < _FOOTER_AT),
    )
    .values(footer_last_sent_at=_FOOTER_AT)
)


def set_footers(conn: Connection, footers: Mapping[tuple[str, int], datetime]) -> None:
    """Set ``footer_last_sent_at`` of each (sender, contact) conversation, never moving it back.

    One UPDATE per send time and chunk of conversations, not one per
    conversation: in a batch every footer was sent at the same ``now``, and a
    round trip per text was most of the cost of recording a batch. No
    ``Conversation`` is loaded, so nothing in memory needs synchronising.
    """
    by_time: dict[datetime, list[tuple[str, int]]] = defaultdict(list)
    for pair, at in footers.items():
        by_time[at].append(pair)
    for at, pairs in by_time.items():
        for start in range(0, len(pairs), FOOTER_CHUNK):
            conn.execute(_FOOTER_UPDATE, {"pairs": pairs[start : start + FOOTER_CHUNK], "at_": at})


# --- PostgreSQL: a sent send's whole record, and the next send's start, in one statement ---

_ENROLLMENTS = cast(Table, Enrollment.__table__)


def _constant(value: object, _values: Mapping[str, object]) -> object:
    return value


def _message_defaults() -> dict[str, Any]:
    """The Python-side defaults of ``messages``, as functions of the other values."""
    defaults: dict[str, Any] = {}
    for column in _MESSAGES.columns:
        default = column.default
        if default is None or column.key == "id":
            continue
        if getattr(default, "is_scalar", False):
            defaults[column.key] = functools.partial(_constant, getattr(default, "arg", None))
        elif column.key == "updated_at":  # models._default_from("created_at")
            defaults[column.key] = lambda values: values.get("created_at")
        else:
            raise TypeError(f"messages.{column.key}: a default record_sent does not know")
    return defaults


_MESSAGE_DEFAULTS = _message_defaults()
_OPEN_STATES = (SendState.PENDING, SendState.QUEUED, SendState.SENDING)
_ATTEMPTED = (SendState.SENDING, SendState.UNKNOWN)


def _any_state(states: Sequence[SendState]) -> Any:
    """``state = a OR state = b ...``: an ``IN`` list is expanded anew at every execution."""
    return or_(*(_SENDS.c.state == state for state in states))


@functools.cache
def _record_statement(
    message_keys: frozenset[str], send_keys: frozenset[str], footer: bool, start: str | None
) -> Any:
    """One statement of data-modifying CTEs: message, send, decision, footer, enrollment, start.

    Executed on its own in autocommit, it is one round trip and one commit where
    the same work as separate statements took BEGIN, six statements and COMMIT.
    Every part sees the snapshot taken before the statement: the enrollment's
    "nothing left open" test therefore leaves out the send recorded here (still
    ``sending`` in that snapshot). The send being recorded and the one being
    started are different rows, so no row is updated twice.
    """
    m = (
        insert(_MESSAGES)
        .values({k: bindparam(f"m_{k}", type_=_MESSAGES.c[k].type) for k in sorted(message_keys)})
        .returning(_MESSAGES.c.id)
        .cte("m")
    )
    values: dict[str, Any] = {
        k: bindparam(f"v_{k}", type_=_SENDS.c[k].type) for k in sorted(send_keys)
    }
    values["message_id"] = select(m.c.id).scalar_subquery()
    s = (
        update(_SENDS)
        .where(_SENDS.c.id == bindparam("r_id"), _any_state(_ATTEMPTED))
        .values(values)
        .returning(_SENDS.c.id, _SENDS.c.contact_id, _SENDS.c.enrollment_id)
        .cte("s")
    )
    decision_cols = ("at", "outcome", "code", "reason", "footer", "footer_rule", "deferred_until")
    d = (
        insert(_DECISIONS)
        .from_select(
            ["send_id", *decision_cols],
            select(
                s.c.id,
                *(bindparam(f"d_{k}", type_=_DECISIONS.c[k].type) for k in decision_cols),
            ),
        )
        .cte("d")
    )
    at = bindparam("r_at", type_=UtcDateTime())
    still_open = select(_SENDS.c.id).where(
        _SENDS.c.enrollment_id == _ENROLLMENTS.c.id,
        _any_state(_OPEN_STATES),
        _SENDS.c.id != bindparam("r_id"),
    )
    # "= (SELECT ... FROM s)", not "IN (SELECT ...)": s has at most one row (its id is
    # given), and a scalar subquery is a parameter the index scans take as their key.
    # With IN, the footer's update became a semi-join that read every conversation of
    # the sender phone (its index gave only the phone) to keep the contact's one.
    e = (
        update(_ENROLLMENTS)
        .where(
            _ENROLLMENTS.c.id == select(s.c.enrollment_id).scalar_subquery(),
            _ENROLLMENTS.c.status == EnrollmentStatus.ACTIVE,
            ~still_open.exists(),
        )
        .values(status=EnrollmentStatus.COMPLETED, stopped_at=at, stop_reason="all steps done")
        .cte("e")
    )
    ctes = [d, e]
    if footer:
        ctes.append(
            update(_CONVERSATIONS)
            .where(
                _CONVERSATIONS.c.sender_phone == bindparam("f_phone"),
                _CONVERSATIONS.c.contact_id == select(s.c.contact_id).scalar_subquery(),
                (_CONVERSATIONS.c.footer_last_sent_at.is_(None))
                | (_CONVERSATIONS.c.footer_last_sent_at < at),
            )
            .values(footer_last_sent_at=at)
            .cte("f")
        )
    columns: list[Any] = [
        select(m.c.id).scalar_subquery(),
        select(s.c.contact_id).scalar_subquery(),
        select(s.c.enrollment_id).scalar_subquery(),
    ]
    if start is not None:
        n = claims.start_update_named("n", held=start == "held").cte("n")
        columns.append(select(n.c.id).scalar_subquery())
    return select(*columns).add_cte(*ctes)


#: The parameter names of :func:`_record_statement`, made once: names built per call
#: are new strings, hashed again at every dict insertion and lookup.
_M_NAME = {k: f"m_{k}" for k in _MESSAGE_COLUMNS}
_V_NAME = {c.key: f"v_{c.key}" for c in _SENDS.columns}
_D_NAME = {c.key: f"d_{c.key}" for c in _DECISIONS.columns}


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :func:`record_sent` did: the message's id, the send's row (None if it had moved on)."""

    message_id: int
    send: tuple[int, int | None] | None
    started: bool


def record_sent(
    conn: Connection,
    message: Message,
    send_id: int,
    *,
    send_values: Mapping[str, object],
    decision: Mapping[str, object],
    footer_phone: str | None,
    at: datetime,
    start: tuple[int, datetime | None, datetime] | None,
) -> Recorded:
    """Record one sent send (and start the next: ``(send_id, claimed_at, now)``) in one statement.

    PostgreSQL only, on a connection in autocommit: the statement is its own
    transaction, so the record and the next ``sending`` are committed together
    before this returns. The send's state changes only from ``sending`` or
    ``unknown``; the message is stored regardless.
    """
    state = message.__dict__
    message_values = {k: state[k] for k in _MESSAGE_COLUMNS if k in state}
    # The INSERT is inside a CTE, where SQLAlchemy applies no Python-side column default.
    for key, default in _MESSAGE_DEFAULTS.items():
        if key not in message_values:
            message_values[key] = default(message_values)
    params: dict[str, Any] = {_M_NAME[k]: v for k, v in message_values.items()}
    params.update({_V_NAME[k]: v for k, v in send_values.items()})
    params.update({_D_NAME[k]: v for k, v in decision.items()})
    params.update(r_id=send_id, r_at=at)
    if footer_phone is not None:
        params["f_phone"] = footer_phone
    variant = None
    if start is not None:
        start_id, claimed_at, now = start
        variant = "unclaimed" if claimed_at is None else "held"
        params.update(claims.start_params("n", start_id, claimed_at, now))
    statement = _record_statement(
        frozenset(message_values), frozenset(send_values), footer_phone is not None, variant
    )
    row = conn.execute(statement, params).one()
    message.id = int(row[0])
    send = None if row[1] is None else (int(row[1]), None if row[2] is None else int(row[2]))
    return Recorded(message.id, send, start is not None and row[3] is not None)
