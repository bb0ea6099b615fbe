"""The batch: run gather, decide, render, deliver, outcome and record for each send.

One send is in flight at a time. The clock is read again per send (the
batch's ``now`` plus the whole seconds it has taken), so a batch held up by a
slow provider or a paused worker has its window and deadline re-checked. A
batch that runs past its deadline stops and gives the rest back at once; a
bug in one send is recorded as that send's failure, never the batch's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic

import structlog

from drip.services.deps import Deps
from drip.services.fire import gather, record
from drip.services.fire.decide import Go, decide_send
from drip.services.fire.deliver import Lane, deliver
from drip.services.fire.gather import Prepared, States
from drip.services.fire.outcome import FireResult, NotOursError, Outcome, Unavailable, result_of
from drip.services.fire.reassigned import check_number
from drip.services.fire.render import render_send
from drip.store import claims
from drip.store.engine import begin_writing

log = structlog.get_logger("drip.fire")

#: A batch stops and gives back its untried sends after this share of
#: ``DRIP_SENDING_TIMEOUT_SECONDS`` (counted from when the worker started it),
#: well before ``recover`` would put them back to pending itself.
DEADLINE_SHARE = 0.5


@dataclass
class _Batch:
    """What one batch learns as it goes: its clock, its deadline, providers found unavailable."""

    read_clock: Callable[[], datetime]
    started: datetime  # the clock when the batch started
    now: datetime  # the batch's ``now``, as its caller read it
    deadline: datetime
    unavailable: Unavailable = field(default_factory=dict)

    def clock(self) -> datetime:
        """The clock, read per send: the batch's ``now`` plus the whole seconds it has taken.

        Whole seconds keep a fast batch on its caller's exact ``now`` (replays and
        reports stay deterministic); a batch held up by a slow provider or a
        paused worker sees time move, and its window and deadline re-checked.
        """
        elapsed = (self.read_clock() - self.started).total_seconds()
        return self.now + timedelta(seconds=max(int(elapsed), 0))


def fire_batch(deps: Deps, ids: list[int], now: datetime) -> list[FireResult]:
    """Fire the given queued sends; ids another worker already took are ignored.

    Each result says what was recorded (the message and the provider's id of a
    send that went out); status callbacks that arrived before those records are
    the caller's to apply (:func:`drip.services.dispatch.fire`).
    """
    with deps.sessions.begin() as session:
        # gather writes (conversations) after reading: two deliveries of one batch
        # would otherwise lose a read-to-write upgrade race on SQLite.
        begin_writing(session)
        prepared, states = gather.gather(deps, session, ids, now)
        session.expunge_all()
    if not prepared:
        return []
    timeout = timedelta(seconds=deps.settings.sending_timeout_seconds)
    batch = _Batch(deps.clock.now, deps.clock.now(), now, now + timeout * DEADLINE_SHARE)
    recorder = record.Recorder(deps)
    lane = Lane(recorder, batch.unavailable)
    settled: list[Outcome] = []  # skips and deferrals, recorded together at the end
    attempted: list[Outcome] = []  # sends that reached the provider, each recorded already
    read_at = monotonic()
    try:
        for index, p in enumerate(prepared):
            recorder.flush_if_kept_long()
            at = batch.clock()
            if at >= batch.deadline:
                recorder.flush()
                _give_back(deps, prepared[index:], at)
                break
            if monotonic() - read_at >= gather.REFRESH_AFTER_SECONDS:
                gather.refresh(deps, prepared[index:])
                read_at = monotonic()
            try:
                outcome = _fire_guarded(deps, p, states, lane, at)
            except NotOursError:
                continue
            if outcome.attempted:
                # Recorded with the next send's start, or by a flush: see Recorder.
                recorder.carry(outcome, at)
                attempted.append(outcome)
            else:
                settled.append(outcome)
    finally:
        recorder.flush()
        recorder.drop()
        if settled:
            record.record(deps, settled, batch.clock())
    return [o.result for o in attempted] + [o.result for o in settled]


def _fire_guarded(deps: Deps, p: Prepared, states: States, lane: Lane, now: datetime) -> Outcome:
    """:func:`_fire_one`, with a bug in one send recorded as that send's failure.

    Without this, one unexpected error would abort the batch and leave every
    send of it in ``sending``, to be reported ``unknown`` later although most
    were never tried. The failed send is recorded, not retried (at most once).
    """
    try:
        return _fire_one(deps, p, states, lane, now)
    except NotOursError:
        raise
    except Exception as exc:  # deliberately broad: any bug is contained to its send
        log.exception("send_crashed", send_id=p.send.id, contact_id=p.contact.id)
        reason = f"failed: internal error while firing ({type(exc).__name__}: {exc}); not retried"
        return result_of(p, None, "failed", "internal_error", reason)


def _fire_one(deps: Deps, p: Prepared, states: States, lane: Lane, now: datetime) -> Outcome:
    """Decide, render and deliver one send; what it changes for the sends after it."""
    go = decide_send(deps, p, states, now)
    if not isinstance(go, Go):
        return go
    checked = check_number(deps, p, go, states, now)  # reassigned numbers, when on
    if not isinstance(checked, Go):
        return checked
    go = checked
    rendered = render_send(deps, p, go.decision, go.template, now)
    if isinstance(rendered, Outcome):
        return rendered
    outcome = deliver(deps, p, go, rendered, lane=lane, now=now)
    if outcome.result.outcome == "sent":
        states.note_sent(p, go.decision.footer, now)
    return outcome


def _give_back(deps: Deps, rest: list[Prepared], at: datetime) -> None:
    reason = (
        "Given back untried: the batch passed its deadline (a slow provider or a paused "
        "worker), so this send went back to pending to be claimed again; nothing was sent."
    )
    with deps.sessions() as session:
        back = claims.give_back(session, [(p.send.id, p.send.claimed_at) for p in rest], at, reason)
    log.warning("batch_deadline", given_back=len(back), untried=len(rest))
