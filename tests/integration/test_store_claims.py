"""The dispatch SQL: claiming due sends, starting one, recovering lost ones, bulk inserts."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from drip.domain.enums import Channel, MessageKind, SenderRole, SendState
from drip.errors import StoreError, ValidationError
from drip.store import claims
from drip.store.claims import (
    CODE_CLAIM_EXPIRED,
    CODE_STALE_SENDING,
    bulk_insert_sends,
    claim_due,
    recover_stale,
    start_sending,
)
from drip.store.engine import make_engine, session_factory
from drip.store.models import Contact, ScheduledSend, SendDecision

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=10)


def _row(contact_id: int, due_at: datetime, label: str = "") -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "kind": MessageKind.CAMPAIGN,
        "channel": Channel.SMS,
        "sender_role": SenderRole.AGENT,
        "step_id": label,
        "due_at": due_at,
        "created_at": NOW - timedelta(days=30),
    }


def _insert(session: Session, contact_id: int, dues: Sequence[datetime]) -> list[int]:
    """Insert one pending send per due time; return their ids in the same order."""
    labels = [f"s{i}" for i in range(len(dues))]
    bulk_insert_sends(
        session, [_row(contact_id, d, lb) for d, lb in zip(dues, labels, strict=True)]
    )
    session.commit()
    by_label = dict(session.execute(select(ScheduledSend.step_id, ScheduledSend.id)).all())
    session.commit()
    return [by_label[lb] for lb in labels]


def _states(session: Session) -> dict[int, SendState]:
    rows = session.execute(select(ScheduledSend.id, ScheduledSend.state)).all()
    session.commit()
    return dict(rows)


def _set(session: Session, send_id: int, **values: Any) -> None:
    session.execute(update(ScheduledSend).where(ScheduledSend.id == send_id).values(**values))
    session.commit()


# --------------------------------------------------------------------------- claim_due


def test_claim_takes_only_due_pending_rows_oldest_first(session: Session, contact_id: int) -> None:
    """Only pending rows due at or before now are claimed, by due time then id, up to the limit."""
    dues = [
        NOW - timedelta(hours=1),
        NOW - timedelta(hours=3),
        NOW,  # due exactly now: included
        NOW + timedelta(seconds=1),  # not due yet
        NOW - timedelta(hours=2),
        NOW - timedelta(hours=2),  # same due time: the lower id first
        NOW - timedelta(days=1),  # already sent: never claimed
    ]
    ids = _insert(session, contact_id, dues)
    _set(session, ids[6], state=SendState.SENT)

    assert claim_due(session, NOW, 3) == [ids[1], ids[4], ids[5]]
    assert claim_due(session, NOW, 3) == [ids[0], ids[2]]
    assert claim_due(session, NOW, 3) == []

    states = _states(session)
    assert [states[i] for i in ids] == [
        SendState.QUEUED,
        SendState.QUEUED,
        SendState.QUEUED,
        SendState.PENDING,
        SendState.QUEUED,
        SendState.QUEUED,
        SendState.SENT,
    ]
    claimed = session.get(ScheduledSend, ids[1])
    assert claimed is not None
    assert claimed.claimed_at == NOW
    assert claimed.updated_at == NOW


def test_claim_commits_its_work(engine: Engine, session: Session, contact_id: int) -> None:
    """A claim is visible to another connection as soon as claim_due returns."""
    [send_id] = _insert(session, contact_id, [NOW])
    assert claim_due(session, NOW, 10) == [send_id]
    with session_factory(engine)() as other:
        assert other.get(ScheduledSend, send_id).state is SendState.QUEUED  # type: ignore[union-attr]


def test_loaded_objects_see_the_new_state(session: Session, contact_id: int) -> None:
    """An object loaded before a claim, start or recovery shows the state after it."""
    [send_id] = _insert(session, contact_id, [NOW])
    send = session.get(ScheduledSend, send_id)
    assert send is not None

    def state_now() -> SendState:
        state = send.state  # reloads if expired, which opens a transaction...
        session.commit()  # ...that must be closed before the next claims call
        return state

    assert state_now() is SendState.PENDING
    claim_due(session, NOW, 1)
    assert state_now() is SendState.QUEUED
    start_sending(session, send_id, NOW)
    assert state_now() is SendState.SENDING
    recover_stale(session, NOW + 2 * TIMEOUT, TIMEOUT)
    assert state_now() is SendState.UNKNOWN


def test_claim_refuses_a_session_with_an_open_transaction(
    session: Session, contact_id: int
) -> None:
    """claim_due will not commit someone else's pending work: it asks for a clean session."""
    _insert(session, contact_id, [NOW])
    session.get(Contact, contact_id)  # opens a transaction
    with pytest.raises(StoreError, match="commit or roll back"):
        claim_due(session, NOW, 10)
    session.rollback()
    assert len(claim_due(session, NOW, 10)) == 1


def test_claim_refuses_naive_now_and_bad_limit(session: Session) -> None:
    """A naive ``now`` or a limit below one is a caller error, raised before any SQL."""
    with pytest.raises(ValidationError):
        claim_due(session, datetime(2026, 3, 2, 15), 10)
    with pytest.raises(ValidationError):
        claim_due(session, NOW, 0)
    assert not session.in_transaction()


def test_concurrent_threads_never_claim_a_row_twice(
    engine: Engine, session: Session, contact_id: int
) -> None:
    """Four threads claiming 2,000 due rows at once claim every row exactly once."""
    ids = _insert(session, contact_id, [NOW - timedelta(seconds=i % 97) for i in range(2000)])
    factory = session_factory(engine)
    start = threading.Barrier(4)

    def worker() -> list[int]:
        claimed: list[int] = []
        start.wait(timeout=30)
        with factory() as own:
            while batch := claim_due(own, NOW, 25):
                assert len(batch) <= 25
                claimed.extend(batch)
        return claimed

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [f.result(timeout=120) for f in [pool.submit(worker) for _ in range(4)]]

    counts = Counter(i for claimed in results for i in claimed)
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}
    assert set(_states(session).values()) == {SendState.QUEUED}


def _claim_in_process(url: str, start: Any, out: Any) -> None:
    """Body of one claimer process: claim until nothing is left, report the ids."""
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        claimed: list[int] = []
        start.wait(60)
        with factory() as own:
            while batch := claim_due(own, NOW, 25):
                claimed.extend(batch)
        out.put(claimed)
    finally:
        engine.dispose()


def test_concurrent_processes_never_claim_a_row_twice(
    db_url: str, session: Session, contact_id: int
) -> None:
    """Two separate processes claiming 2,000 due rows at once claim every row exactly once."""
    ids = _insert(session, contact_id, [NOW - timedelta(seconds=i % 89) for i in range(2000)])
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_in_process, args=(db_url, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0]
    counts = Counter(i for claimed in results for i in claimed)
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}


# --------------------------------------------------------------------------- start_sending


def test_start_sending_wins_once(session: Session, contact_id: int) -> None:
    """Of two calls for the same queued send, only the first moves it to sending."""
    [send_id] = _insert(session, contact_id, [NOW])
    claim_due(session, NOW, 1)
    assert start_sending(session, send_id, NOW) is True
    assert start_sending(session, send_id, NOW + timedelta(seconds=1)) is False
    send = session.get(ScheduledSend, send_id)
    assert send is not None
    assert send.state is SendState.SENDING
    assert send.sending_started_at == NOW
    assert send.attempts == 1


def test_start_sending_races_have_one_winner(
    engine: Engine, session: Session, contact_id: int
) -> None:
    """Two threads racing through the same 50 queued sends win each send exactly once."""
    ids = _insert(session, contact_id, [NOW] * 50)
    assert len(claim_due(session, NOW, 50)) == 50
    factory = session_factory(engine)
    start = threading.Barrier(2)

    def racer() -> list[int]:
        won: list[int] = []
        start.wait(timeout=30)
        with factory() as own:
            won.extend(i for i in ids if start_sending(own, i, NOW))
        return won

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(racer) for _ in range(2)]]
    wins = Counter(i for won in results for i in won)
    assert sorted(wins) == sorted(ids)
    assert set(wins.values()) == {1}


@pytest.mark.parametrize("state", [SendState.PENDING, SendState.SENT, SendState.CANCELLED])
def test_start_sending_needs_a_queued_send(
    session: Session, contact_id: int, state: SendState
) -> None:
    """A send that is not queued (not claimed, done, or cancelled) is never started."""
    [send_id] = _insert(session, contact_id, [NOW])
    _set(session, send_id, state=state)
    assert start_sending(session, send_id, NOW) is False
    assert _states(session)[send_id] is state


def test_start_sending_unknown_id_is_false(session: Session) -> None:
    """An id that does not exist is simply not won."""
    assert start_sending(session, 10**9, NOW) is False


# --------------------------------------------------------------------------- recover_stale


def test_recover_stale(session: Session, contact_id: int) -> None:
    """Lost sendings become unknown (reported); lost claims go back to pending; others stay."""
    long_ago, recently = NOW - timedelta(minutes=20), NOW - timedelta(minutes=5)
    ids = _insert(session, contact_id, [NOW - timedelta(hours=1)] * 6)
    lost_sending, fresh_sending, lost_claim, fresh_claim, pending, sent = ids
    _set(session, lost_sending, state=SendState.SENDING, sending_started_at=long_ago)
    _set(session, fresh_sending, state=SendState.SENDING, sending_started_at=recently)
    _set(session, lost_claim, state=SendState.QUEUED, claimed_at=long_ago)
    _set(session, fresh_claim, state=SendState.QUEUED, claimed_at=recently)
    _set(session, sent, state=SendState.SENT, sending_started_at=long_ago)

    assert recover_stale(session, NOW, TIMEOUT) == [lost_sending]

    states = _states(session)
    assert [states[i] for i in ids] == [
        SendState.UNKNOWN,
        SendState.SENDING,
        SendState.PENDING,
        SendState.QUEUED,
        SendState.PENDING,
        SendState.SENT,
    ]
    lost = session.get(ScheduledSend, lost_sending)
    requeued = session.get(ScheduledSend, lost_claim)
    assert lost is not None
    assert requeued is not None
    assert lost.decision_code == CODE_STALE_SENDING
    assert "not retried" in (lost.decision_reason or "")
    assert requeued.claimed_at is None
    assert requeued.decision_code == CODE_CLAIM_EXPIRED
    decisions = session.execute(
        select(SendDecision.send_id, SendDecision.outcome, SendDecision.code, SendDecision.at)
    ).all()
    assert sorted(tuple(d) for d in decisions) == sorted(
        [
            (lost_sending, "unknown", CODE_STALE_SENDING, NOW),
            (lost_claim, "rescheduled", CODE_CLAIM_EXPIRED, NOW),
        ]
    )
    session.commit()
    # The requeued send is claimable again; the unknown one never is.
    assert claim_due(session, NOW, 10) == sorted([lost_claim, pending])
    assert recover_stale(session, NOW, TIMEOUT) == []


def test_recover_stale_refuses_a_non_positive_timeout(session: Session) -> None:
    """A zero timeout would declare every sending row lost: it is refused."""
    with pytest.raises(ValidationError):
        recover_stale(session, NOW, timedelta(0))


# --------------------------------------------------------------------------- bulk_insert_sends


@pytest.mark.parametrize("n", [1, 10, 1200])
def test_bulk_insert_sends_inserts_every_row(session: Session, contact_id: int, n: int) -> None:
    """N rows go in (several batches, and COPY on PostgreSQL, for 1,200) with defaults applied."""
    dues = [NOW + timedelta(minutes=i) for i in range(n)]
    bulk_insert_sends(session, [_row(contact_id, d, f"s{i}") for i, d in enumerate(dues)])
    session.commit()
    stored = session.scalars(select(ScheduledSend).order_by(ScheduledSend.due_at)).all()
    assert len(stored) == n
    assert [s.due_at for s in stored] == dues
    assert [s.step_id for s in stored] == [f"s{i}" for i in range(n)]
    first = stored[0]
    assert first.state is SendState.PENDING
    assert first.kind is MessageKind.CAMPAIGN
    assert first.original_due_at == first.due_at
    assert first.updated_at == first.created_at == NOW - timedelta(days=30)
    assert (first.attempts, first.catching_up) == (0, False)


def test_bulk_insert_paths_store_identical_rows(
    session: Session, contact_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The INSERT path and the COPY path (on PostgreSQL) give the same rows for the same input."""
    local = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    row = {
        **_row(contact_id, local),
        "kind": "bulk",
        "body": "Open house Saturday — café at 10",
        "enrollment_id": None,
        "catching_up": True,
        "created_at": NOW,
    }

    def stored() -> list[tuple[Any, ...]]:
        columns = [c for c in ScheduledSend.__table__.c if c.name != "id"]
        result = [tuple(r) for r in session.execute(select(*columns)).all()]
        session.rollback()
        return result

    monkeypatch.setattr(claims, "COPY_THRESHOLD", 10**9)
    bulk_insert_sends(session, [row, row])
    via_insert = stored()
    monkeypatch.setattr(claims, "COPY_THRESHOLD", 1)
    bulk_insert_sends(session, [row, row])
    via_copy = stored()
    assert via_insert == via_copy
    assert len(via_insert) == 2
    assert via_insert[0][1:3] == (contact_id, None)  # contact_id, campaign_id


def test_bulk_insert_does_not_commit(session: Session, contact_id: int) -> None:
    """The rows belong to the caller's transaction: a rollback removes them."""
    bulk_insert_sends(session, [_row(contact_id, NOW) for _ in range(3)])
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ScheduledSend)) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "blue"}, "no column"),
        ({"due_at": datetime(2026, 3, 2, 15)}, "naive"),
        ({"kind": "telegram"}, "MessageKind"),
        ({"contact_id": None}, "contact_id"),
    ],
)
def test_bulk_insert_refuses_bad_rows(
    session: Session, contact_id: int, change: dict[str, Any], message: str
) -> None:
    """A bad row (unknown column, naive time, bad enum, missing field) stops the whole insert."""
    rows = [_row(contact_id, NOW), {**_row(contact_id, NOW), **change}]
    with pytest.raises(ValidationError, match=message):
        bulk_insert_sends(session, rows)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(ScheduledSend)) == 0


def test_bulk_insert_takes_now_for_created_at(session: Session, contact_id: int) -> None:
    """Rows without created_at get the ``now`` passed in; without either, they are refused."""
    row = _row(contact_id, NOW)
    del row["created_at"]
    with pytest.raises(ValidationError, match="created_at"):
        bulk_insert_sends(session, [row])
    bulk_insert_sends(session, [row], now=NOW)
    session.commit()
    assert session.scalar(select(ScheduledSend.created_at)) == NOW
