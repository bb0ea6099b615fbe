"""Record: store what happened to each send, durably and at most once (step 6).

A send that reached its provider is recorded on its own, right after its
call, so the provider's id is durable before anything else can fail. To keep
that at one commit per send, its record rides on the next send's ``queued ->
sending`` commit (:meth:`Recorder.start`), or is committed alone
(:meth:`Recorder.flush`) before anything that may take time. A lost database
connection is retried (:func:`record_durably`), first looking for the
message by the provider's id so a commit whose answer was lost is not
recorded twice. Skips and deferrals (nothing left drip) are recorded together
at the end of the batch (:func:`record`).

Each state change is conditional on the state the worker left the send in,
so a second delivery of the same task, or a send given back and claimed
again, is never overwritten; a message that went out is stored regardless.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime
from time import monotonic, sleep

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from drip import metrics
from drip.domain.enums import ConsentEventKind, SendState
from drip.domain.policy import Defer, Send
from drip.errors import StoreError
from drip.services import consent, fire_checks
from drip.services.deps import Deps
from drip.services.fire.gather import Prepared
from drip.services.fire.outcome import Outcome
from drip.store import claims, fire_record, outbox
from drip.store import repository as repo
from drip.store.models import Contact, Message

log = structlog.get_logger("drip.fire")

#: A send's record waits for the next send's ``sending`` commit at most this
#: long (seconds of deciding, rendering and skipping in between); past it, it
#: is committed on its own. Anything that may take longer (a pacing wait, a
#: deadline, the end of the batch) commits it first.
CARRY_MAX_SECONDS = 0.05

#: Tries of the transaction recording a send that reached its provider, and
#: the pause before each retry: a lost connection (a restarted database, a
#: killed backend) must not lose the provider's id.
RECORD_RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)

_STATE_OF = {
    "sent": SendState.SENT,
    "skipped": SendState.SKIPPED,
    "failed": SendState.FAILED,
    "unknown": SendState.UNKNOWN,
    "deferred": SendState.PENDING,
}

#: The states a send may be recorded from: one the provider saw was ``sending``
#: (or already declared ``unknown`` by ``recover`` while its worker was slow);
#: one that never left drip is still ``queued``.
_FROM_ATTEMPTED = (SendState.SENDING, SendState.UNKNOWN)
_FROM_UNTRIED = (SendState.QUEUED,)


@dataclass(frozen=True, slots=True)
class _Unrecorded:
    outcome: Outcome
    at: datetime  # the send's clock, recorded as the time of its decision
    since: float  # monotonic time its provider call returned


@dataclass
class Recorder:
    """A batch's records of sends that reached their provider, and its starts of the next.

    It holds the send that reached its provider last and is not recorded yet
    (committed with the next send's ``sending``, or alone by :meth:`flush`),
    and on PostgreSQL the batch's own autocommit connection for its
    one-statement records and starts (:meth:`held`).
    """

    deps: Deps
    unrecorded: _Unrecorded | None = None
    conn: Connection | None = None

    def carry(self, outcome: Outcome, at: datetime) -> None:
        """Keep a sent send's record for the next start's commit (after recording any before it)."""
        self.flush()
        self.unrecorded = _Unrecorded(outcome, at, monotonic())

    def flush_if_kept_long(self) -> None:
        """Commit the carried record alone once it waited :data:`CARRY_MAX_SECONDS`."""
        if self.unrecorded is not None and (
            monotonic() - self.unrecorded.since >= CARRY_MAX_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Record the carried send now, on its own."""
        carry, self.unrecorded = self.unrecorded, None
        if carry is None:
            return
        if _one_statement(self.deps, carry.outcome):
            try:
                _record_one(self.held(), carry.outcome, carry.at, None)
                return
            except (DBAPIError, StoreError) as exc:
                self.drop()
                log.warning("send_record_retry", send_id=carry.outcome.result.send_id, attempt=1,
                            error=type(exc).__name__)  # fmt: skip
            record_durably(self.deps, carry.outcome, carry.at, look_first=True)
            return
        record_durably(self.deps, carry.outcome, carry.at)

    def held(self) -> Connection:
        """The batch's autocommit connection (PostgreSQL), opened on first use.

        One checkout, so one pre-ping, per batch instead of one per statement. A
        statement on it that fails drops it (:meth:`drop`); the retry goes through
        the pool, which pings and reconnects, and the next statement opens a new one.
        """
        if self.conn is None:
            engine = self.deps.engine
            self.conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self.conn

    def drop(self) -> None:
        """Give the batch's connection back, discarding it if a statement on it failed."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(DBAPIError, StoreError):
                conn.close()

    def start(self, p: Prepared, now: datetime) -> bool:
        """``queued -> sending`` for this send, committed; with the record of the send before it.

        The previous send's record (message with the provider's id, state,
        decision) and this send's ``sending`` go in one transaction: each is
        committed before this send's provider call, with one commit (a disk
        flush) instead of two. If that transaction fails, the record is retried
        on its own (first looking for it by the provider's id, in case the commit
        went through) and then this send is started on its own.
        """
        deps = self.deps
        carry, self.unrecorded = self.unrecorded, None
        if deps.engine.dialect.name == "postgresql" and (
            carry is None or _one_statement(deps, carry.outcome)
        ):
            try:  # one round trip, one commit: the record and this start together
                conn = self.held()
                if carry is None:
                    stmt, params = claims.start_statement(p.send.id, p.send.claimed_at, now)
                    return conn.execute(stmt, params).first() is not None
                start = (p.send.id, p.send.claimed_at, now)
                return _record_one(conn, carry.outcome, carry.at, start)
            except (DBAPIError, StoreError) as exc:
                self.drop()
                log.warning(
                    "send_start_retry",
                    send_id=p.send.id,
                    error=type(exc).__name__,
                    detail=str(exc)[:600],
                )
            if carry is not None:
                record_durably(deps, carry.outcome, carry.at, look_first=True)
            return _start_alone(deps, p, now)
        if carry is None:
            return _start_alone(deps, p, now)
        try:
            with deps.sessions.begin() as session:
                _record_in(session, [carry.outcome], carry.at, deps.account.webhook_events)
                return claims.start_one_in(session, p.send.id, p.send.claimed_at, now)
        except (DBAPIError, StoreError) as exc:
            log.warning("send_record_retry", send_id=carry.outcome.result.send_id, attempt=1,
                        error=type(exc).__name__)  # fmt: skip
        record_durably(deps, carry.outcome, carry.at, look_first=True)
        return _start_alone(deps, p, now)


def _start_alone(deps: Deps, p: Prepared, now: datetime) -> bool:
    """``queued -> sending`` for this send, retried on a lost database connection.

    A retry after a commit whose answer was lost finds the send already
    ``sending`` and returns False: the send is then not called, and recovery
    settles it (``unknown``, then reconcile finds it absent and it goes out
    again). It is never made twice and never failed for a database blip.
    """
    delays = RECORD_RETRY_DELAYS[:5]
    for attempt in range(len(delays) + 1):
        try:
            with deps.sessions() as session:
                return claims.start_one(session, p.send.id, p.send.claimed_at, now)
        except (DBAPIError, StoreError) as exc:
            if attempt >= len(delays):
                log.warning("send_not_started", send_id=p.send.id, error=type(exc).__name__)
                return False
            sleep(delays[attempt])
    return False


def _one_statement(deps: Deps, outcome: Outcome) -> bool:
    """A sent send with nothing more to record than its message (the common case), on PostgreSQL.

    A carrier opt-out or an undeliverable number also changes the contact
    (ORM, :func:`_record_in`); those, and SQLite, take the transaction path.
    """
    return (
        outcome.attempted
        and outcome.result.outcome == "sent"
        and outcome.message is not None
        and not outcome.carrier_opt_out
        and outcome.undeliverable_code is None
        and deps.engine.dialect.name == "postgresql"
        and "send.sent" not in deps.account.webhook_events  # its event rides the transaction
    )


def _record_one(
    conn: Connection,
    o: Outcome,
    now: datetime,
    start: tuple[int, datetime | None, datetime] | None,
) -> bool:
    """:func:`_record_in` of one sent send as one statement in autocommit, with the next start.

    Returns whether the next send (``start``) became ``sending``.
    """
    assert o.message is not None  # _one_statement ensures it
    result = o.result
    recorded = fire_record.record_sent(
        conn,
        o.message,
        result.send_id,
        send_values=_send_values(o, now),
        decision=_decision_row(o, now),
        footer_phone=o.message.sender_phone if result.footer and o.message.sender_phone else None,
        at=now,
        start=start,
    )
    o.result = replace(result, message_id=recorded.message_id, provider_id=o.message.provider_sid)
    if recorded.send is None:
        log.warning(
            "send_record_skipped",
            send_id=result.send_id,
            outcome=result.outcome,
            why="the send changed state meanwhile (taken by another delivery)",
        )
    else:
        _count(o, now)
    return recorded.started


def record_durably(
    deps: Deps, outcome: Outcome, now: datetime, *, look_first: bool = False
) -> None:
    """Record one send right after its provider call, retried on a lost database connection.

    A retry first looks for the message by the provider's id, so a commit
    whose acknowledgement was lost is not recorded twice. If every try fails
    the send stays ``sending``; ``recover`` then makes it ``unknown`` and
    ``reconcile`` finds it at the provider.
    """
    for attempt in range(len(RECORD_RETRY_DELAYS) + 1):
        try:
            if (attempt or look_first) and _already_recorded(deps, outcome):
                return
            record(deps, [outcome], now)
            return
        except (DBAPIError, StoreError) as exc:
            if attempt >= len(RECORD_RETRY_DELAYS):
                log.critical(
                    "send_record_failed",
                    send_id=outcome.result.send_id,
                    provider_id=outcome.message.provider_sid if outcome.message else None,
                    outcome=outcome.result.outcome,
                    error=type(exc).__name__,
                )
                return
            log.warning(
                "send_record_retry",
                send_id=outcome.result.send_id,
                attempt=attempt + 1,
                error=type(exc).__name__,
            )
            if outcome.message is not None:
                outcome.message = _fresh_copy(outcome.message)
            sleep(RECORD_RETRY_DELAYS[attempt])


def _already_recorded(deps: Deps, outcome: Outcome) -> bool:
    sid = outcome.message.provider_sid if outcome.message is not None else None
    if sid is None:
        return False
    with deps.sessions() as session:
        found = repo.message_by_sid(session, sid)
        if found is not None:
            outcome.result = replace(outcome.result, message_id=found.id, provider_id=sid)
        return found is not None


def _fresh_copy(message: Message) -> Message:
    """A new, unsaved ``Message`` with the same values (the old one belonged to a failed session)."""
    values = {
        c.key: getattr(message, c.key) for c in Message.__mapper__.column_attrs if c.key != "id"
    }
    return Message(**values)


def record(deps: Deps, outcomes: list[Outcome], now: datetime) -> None:
    """Store outcomes in one transaction: state, message, decision, conversation."""
    if not outcomes:
        return
    with deps.sessions.begin() as session:
        _record_in(session, outcomes, now, deps.account.webhook_events)


def _record_in(
    session: Session,
    outcomes: list[Outcome],
    now: datetime,
    events: frozenset[str] = frozenset(),
) -> None:
    """:func:`record`'s statements, in the caller's transaction.

    ``events``: the webhook event types wanted; ``send.sent``, ``send.failed`` and
    ``send.skipped`` go to the outbox in this same transaction.
    """
    footers: dict[tuple[str, int], datetime] = {}
    finished: set[int] = set()
    decisions: list[dict[str, object]] = []
    conn = session.connection()
    fire_record.insert_messages(conn, [o.message for o in outcomes if o.message is not None])
    for o in outcomes:
        result = o.result
        if o.message is not None:
            result = replace(result, message_id=o.message.id, provider_id=o.message.provider_sid)
            o.result = result
        values = _send_values(o, now)
        if o.message is not None:
            values["message_id"] = o.message.id
        expected = _FROM_ATTEMPTED if o.attempted else _FROM_UNTRIED
        changed = fire_record.record_send(conn, result.send_id, expected, values)
        if changed is None:
            log.warning(
                "send_record_skipped",
                send_id=result.send_id,
                outcome=result.outcome,
                why="the send changed state meanwhile (taken by another delivery)",
            )
            continue
        contact_id, enrollment_id = changed
        _count(o, now)
        decisions.append({"send_id": result.send_id, **_decision_row(o, now)})
        if f"send.{result.outcome}" in events:
            _send_event(session, o, contact_id, enrollment_id, now)
        if (
            result.outcome == "sent"
            and result.footer
            and o.message is not None
            and o.message.sender_phone
        ):
            footers[(o.message.sender_phone, contact_id)] = now
        if result.outcome != "deferred" and enrollment_id is not None:
            finished.add(enrollment_id)
        if o.carrier_opt_out or o.undeliverable_code is not None:
            _contact_change(session, contact_id, o, now)
        if result.outcome != "sent":
            log.info(
                "send_decided",
                send_id=result.send_id,
                contact_id=contact_id,
                kind=o.prepared.send.kind.value,
                decision=result.outcome,
                code=result.code,
                reason=result.reason,
            )
    fire_record.insert_decisions(conn, decisions)  # one statement for the transaction
    fire_record.set_footers(conn, footers)
    repo.finish_enrollments(session, finished, now)


def _count(o: Outcome, now: datetime) -> None:
    """The metrics of one recorded decision (a counter per outcome and reason, the latency)."""
    send = o.prepared.send
    metrics.send_outcome(
        o.result.outcome,
        o.result.code,
        sender_class=send.sender_role.value,
        latency_seconds=(now - send.due_at).total_seconds(),
    )


def _send_event(
    session: Session, o: Outcome, contact_id: int, enrollment_id: int | None, now: datetime
) -> None:
    result = o.result
    doc = {
        "send_id": result.send_id,
        "contact_id": contact_id,
        "enrollment_id": enrollment_id,
        "kind": o.prepared.send.kind.value,
        "channel": o.prepared.send.channel.value,
        "code": result.code,
        "reason": result.reason,
        "message_id": result.message_id,
        "provider_id": result.provider_id,
    }
    outbox.append(session, f"send.{result.outcome}", contact_id, doc, now)


def _contact_change(session: Session, contact_id: int, o: Outcome, now: datetime) -> None:
    """A carrier opt-out opts the contact out of texts; an undeliverable number marks it."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        return
    if o.carrier_opt_out:
        consent.opt_out(
            session,
            contact,
            "carrier",
            ConsentEventKind.REVOKED_CARRIER,
            now,
            evidence=o.result.reason,
            detail=str(o.message.error_code) if o.message else None,
        )
    elif o.undeliverable_code is not None:
        consent.mark_undeliverable(contact, o.undeliverable_code, now)


def _send_values(o: Outcome, now: datetime) -> dict[str, object]:
    """The columns of the send that recording ``o`` sets (besides its message's id)."""
    result = o.result
    values: dict[str, object] = {
        "state": _STATE_OF[result.outcome],
        "decision_code": result.code,
        "decision_reason": result.reason,
        "updated_at": now,
    }
    sent = o.prepared.send
    if result.outcome == "sent" and fire_checks.counts_for_catch_up(
        sent.due_at, sent.catching_up, now
    ):
        values["catching_up"] = True  # an overdue step went out: catch-up counts it
    if result.outcome == "deferred" and result.deferred_until is not None:
        values["due_at"] = result.deferred_until
        if isinstance(o.decision, Defer):
            values["catching_up"] = o.decision.catching_up
        values["claimed_at"] = None
        values["sending_started_at"] = None
    return values


def _decision_row(o: Outcome, now: datetime) -> dict[str, object]:
    """The ``send_decisions`` columns of ``o`` but its ``send_id``."""
    result = o.result
    return {
        "at": now,
        "outcome": result.outcome,
        "code": result.code,
        "reason": result.reason,
        "footer": result.footer,
        "footer_rule": o.decision.rule.value if isinstance(o.decision, Send) else None,
        "deferred_until": result.deferred_until,
    }
