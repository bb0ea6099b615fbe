"""One send in flight: a crash leaves one unknown, a late batch gives the rest back, the clock moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from drip.domain.enums import SendState
from drip.services import dispatch
from drip.services.fire import fire_batch
from drip.transports.base import OutboundSms, SmsReceipt, SmsTransport

if TYPE_CHECKING:
    from conftest import Rig, RigFactory

    from drip.clock import VirtualClock


class WorkerKilled(BaseException):
    """Stands for kill -9 during the provider call: nothing in drip catches it."""


class KilledOnCall:
    """The real transport; the ``n``-th call reaches Twilio and then the worker dies."""

    def __init__(self, inner: SmsTransport, n: int) -> None:
        self.inner, self.n, self.calls = inner, n, 0

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        self.calls += 1
        receipt = self.inner.send_sms(msg)
        if self.calls == self.n:
            raise WorkerKilled(msg.to)
        return receipt


class SlowProvider:
    """The real transport, with each call taking ``seconds`` on the virtual clock."""

    def __init__(self, inner: SmsTransport, clock: VirtualClock, seconds: float) -> None:
        self.inner, self.clock, self.seconds = inner, clock, seconds

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        receipt = self.inner.send_sms(msg)
        self.clock.set(self.clock.now() + timedelta(seconds=self.seconds))
        return receipt


def _batch(rig: Rig, n: int) -> list[int]:
    """``n`` contacts with one step due now, claimed; the claimed send ids."""
    rig.add_campaign("one-step", [0])
    rig.enroll(rig.add_contacts(n), "one-step")
    rig.at(rig.start + timedelta(minutes=1))
    return dispatch.claim(rig.deps, rig.now)


def _codes(rig: Rig, state: SendState) -> set[str | None]:
    """The decision codes of the sends in ``state``."""
    with rig.deps.sessions() as session:
        from sqlalchemy import select

        from drip.store.models import ScheduledSend

        rows = session.scalars(select(ScheduledSend).where(ScheduledSend.state == state))
        return {row.decision_code for row in rows}


def test_a_worker_killed_mid_batch_leaves_only_its_in_flight_send_unknown(rig: Rig) -> None:
    """Killed during the third call of ten: two sent, one unknown, seven back to pending."""
    ids = _batch(rig, 10)
    killing = replace(rig.deps, sms=KilledOnCall(rig.deps.sms, 3))
    with pytest.raises(WorkerKilled):
        fire_batch(killing, ids, rig.now)
    assert rig.states() == {"sent": 2, "sending": 1, "queued": 7}

    rig.at(rig.now + timedelta(seconds=rig.deps.settings.sending_timeout_seconds + 1))
    unknown = dispatch.recover(rig.deps, rig.now)
    assert len(unknown) == 1
    # The same tick found the in-flight one in Twilio's list (it was accepted) and
    # put the untried ones back to pending; they now go out, once each.
    assert rig.states() == {"sent": 3, "pending": 7}
    rig.fire_due()
    assert rig.states() == {"sent": 10}
    assert rig.twilio.accepted == 10


def test_a_batch_past_its_deadline_stops_and_gives_the_rest_back(make_rig: RigFactory) -> None:
    """Each call takes 100 s of a 300 s timeout: two go, the rest are pending again, untried."""
    rig = make_rig(sending_timeout_seconds=300)
    ids = _batch(rig, 6)
    slow = replace(rig.deps, sms=SlowProvider(rig.deps.sms, rig.clock, 100))

    results = fire_batch(slow, ids, rig.now)

    assert [r.outcome for r in results] == ["sent", "sent"]
    assert rig.states() == {"sent": 2, "pending": 4}
    assert _codes(rig, SendState.PENDING) == {"batch_deadline"}
    assert rig.twilio.accepted == 2


def test_the_window_is_rechecked_with_the_clock_read_per_send(make_rig: RigFactory) -> None:
    """A provider call that lasts 12 hours: the sends after it are deferred, not sent at night."""
    rig = make_rig(sending_timeout_seconds=200_000)
    ids = _batch(rig, 3)
    slow = replace(rig.deps, sms=SlowProvider(rig.deps.sms, rig.clock, 12 * 3600))

    results = fire_batch(slow, ids, rig.now)

    assert [(r.outcome, r.code) for r in results] == [
        ("sent", results[0].code),
        ("deferred", "window"),
        ("deferred", "window"),
    ]
    assert rig.twilio.accepted == 1


class Watching:
    """The real transport; before each call it reads, on a connection of its own, what is committed."""

    def __init__(self, inner: SmsTransport, rig: Rig) -> None:
        self.inner, self.rig = inner, rig
        self.seen: list[tuple[dict[str, int], int]] = []

    def send_sms(self, msg: OutboundSms) -> SmsReceipt:
        from sqlalchemy import func, select

        from drip.store.models import Message

        with self.rig.deps.sessions() as session:
            sids = session.scalar(
                select(func.count()).select_from(Message).where(Message.provider_sid.is_not(None))
            )
        self.seen.append((self.rig.states(), int(sids or 0)))
        return self.inner.send_sms(msg)


def test_each_call_finds_the_sends_before_it_recorded_and_itself_sending(rig: Rig) -> None:
    """At every provider call the earlier sends are committed sent with their sid, this one sending."""
    ids = _batch(rig, 6)
    watching = Watching(rig.deps.sms, rig)
    results = fire_batch(replace(rig.deps, sms=watching), ids, rig.now)
    assert [r.outcome for r in results] == ["sent"] * 6
    assert all(r.message_id is not None for r in results)
    for k, (states, sids) in enumerate(watching.seen):
        expected = {"sent": k, "sending": 1, "queued": 5 - k}
        assert states == {state: n for state, n in expected.items() if n}
        assert sids == k
    assert rig.states() == {"sent": 6}


def test_a_batch_commits_once_per_send_not_twice(rig: Rig) -> None:
    """Each send's record shares its commit with the next send's start: about one commit per send."""
    from sqlalchemy import event

    ids = _batch(rig, 8)
    commits: list[object] = []

    def count(conn: Any) -> None:
        commits.append(conn)

    def count_autocommit(conn: Any, *_args: object) -> None:
        # a statement on a connection in autocommit is a transaction, and a commit, of its own
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            commits.append(conn)

    event.listen(rig.deps.engine, "commit", count)
    event.listen(rig.deps.engine, "before_cursor_execute", count_autocommit)
    try:
        fire_batch(rig.deps, ids, rig.now)
    finally:
        event.remove(rig.deps.engine, "commit", count)
        event.remove(rig.deps.engine, "before_cursor_execute", count_autocommit)
    assert rig.states() == {"sent": 8}
    # the gather, 8 starts (7 carrying the record before them), the last record,
    # and the early-callback check: 11, where a commit per start and per record made 18.
    assert len(commits) <= 8 + 3


def test_a_send_is_one_statement_on_postgres(rig: Rig) -> None:
    """On PostgreSQL a send's record and the next send's start are one statement (SQLite: several)."""
    from sqlalchemy import event

    ids = _batch(rig, 8)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    event.listen(rig.deps.engine, "before_cursor_execute", count)
    try:
        results = fire_batch(rig.deps, ids, rig.now)
    finally:
        event.remove(rig.deps.engine, "before_cursor_execute", count)
    assert rig.states() == {"sent": 8}
    assert all(r.message_id is not None for r in results)
    fire = [sql for sql in statements if "UPDATE scheduled_sends" in sql]
    if rig.deps.engine.dialect.name == "postgresql":
        # the first start alone, 7 records each carrying the next start, the last record alone
        assert len(fire) == 1 + 7 + 1
    else:  # a transaction of separate statements: 8 starts and 8 records
        assert len(fire) == 8 + 8
    assert sum("INSERT INTO messages" in sql for sql in statements) == 8
    assert rig.states() == {"sent": 8}
