"""The recording statements of the fire path, built once and executed with parameters.

They run once per text sent (:mod:`drip.services.firing` records each send
that reached its provider right after its call), and building a SQLAlchemy
statement costs more CPU than executing it (every clause coerced, a cache key
computed): each statement here is built once (the send update once per set
of columns) and executed with bound values on the caller's connection, in
the caller's transaction.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, tuple_, update

from drip.domain.enums import SendState
from drip.store.models import Conversation, Message, ScheduledSend, SendDecision
from drip.store.types import UtcDateTime

__all__ = ["FOOTER_CHUNK", "insert_decisions", "insert_messages", "record_send", "set_footers"]

_SENDS = cast(Table, ScheduledSend.__table__)
_DECISIONS = cast(Table, SendDecision.__table__)
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
