"""Status callbacks that arrive before their message: kept in a table, applied when it appears.

Twilio may call back within milliseconds of accepting a text, before the
worker has committed the message row carrying the ``MessageSid``, or while the
send is ``unknown`` and only ``drip reconcile`` will record it. Such a
callback is stored in ``pending_callbacks`` (:func:`keep`) and applied, in
arrival order, as soon as its message is recorded (:func:`apply_early` after a
batch is recorded, :func:`apply_pending` by reconcile and the recovery tick).
Applying a status twice changes nothing (a status never moves backwards), so
a crash between applying and deleting the row is harmless.

A callback whose message never appears (a message sent by another system on
the same account) is dropped after :data:`KEEP_FOR`, with a log line.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

import structlog
from sqlalchemy.exc import DBAPIError

from drip.errors import StoreError
from drip.services.deps import Deps
from drip.services.status import handle_status
from drip.store import pending_callbacks as store

log = structlog.get_logger("drip.callbacks")

#: How long a callback waits for its message before it is dropped.
KEEP_FOR: Final = timedelta(days=3)


def keep(
    deps: Deps,
    *,
    message_sid: str,
    status: str,
    error_code: int | None,
    error_message: str | None,
    now: datetime,
) -> None:
    """Store a callback whose message is not recorded yet."""
    with deps.sessions.begin() as session:
        store.keep(
            session,
            message_sid=message_sid,
            status=status,
            error_code=error_code,
            error_message=error_message,
            received_at=now,
        )
    log.info("status_callback_kept", message_sid=message_sid, status=status)


def apply_early(deps: Deps, provider_ids: Iterable[str | None], now: datetime) -> int:
    """Callbacks that arrived before these just-recorded messages (a fired batch's); how many.

    Once per batch, after its sends are recorded (one query for the batch, not
    one per send: a callback this early is rare, about 2 % of batches). A
    callback that arrives later finds its message and applies at once; one
    this misses (a worker killed mid-batch) is applied by the recovery tick.
    """
    wanted = [sid for sid in provider_ids if sid is not None]
    if not wanted:
        return 0
    try:
        with deps.engine.connect() as conn:
            found = store.sids_with_pending(conn, wanted)
        return apply_pending(deps, now, found) if found else 0
    except (DBAPIError, StoreError) as exc:  # the recovery tick applies them later
        log.warning("early_callbacks_not_applied", sends=len(wanted), error=str(exc))
        return 0


def apply_pending(deps: Deps, now: datetime, sids: Iterable[str] | None = None) -> int:
    """Apply kept callbacks whose message now exists (only ``sids`` when given); how many.

    Oldest first, so a message's statuses are applied in the order Twilio sent them.
    """
    wanted = None if sids is None else sorted(set(sids))
    if wanted is not None and not wanted:
        return 0
    with deps.sessions() as session:
        rows = store.applicable(session, wanted)
    for row_id, sid, status, code, text in rows:
        result = handle_status(
            deps,
            message_sid=sid,
            status=status,
            error_code=code,
            error_message=text,
            now=now,
        )
        with deps.sessions.begin() as session:
            store.forget(session, row_id)
        log.info("status_callback_applied", message_sid=sid, status=status, action=result.action)
    return len(rows)


def drop_expired(deps: Deps, now: datetime) -> int:
    """Forget callbacks that waited longer than :data:`KEEP_FOR`; how many."""
    with deps.sessions.begin() as session:
        gone = store.drop_older_than(session, now - KEEP_FOR)
    for sid in gone:
        log.info("status_callback_dropped", message_sid=sid, why="no such message")
    return len(gone)


def pending_count(deps: Deps) -> int:
    """How many callbacks wait for their message."""
    with deps.sessions() as session:
        return store.count(session)
