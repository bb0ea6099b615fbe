"""Dispatch: claim what is due, fire it, and settle what was abandoned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic

import structlog
from sqlalchemy.exc import SQLAlchemyError

from drip.errors import DripError
from drip.services import callbacks, carrier, pausing, reconcile
from drip.services.deps import Deps
from drip.services.fire import FireResult, count_outcomes, fire_batch
from drip.store import claims, heartbeats
from drip.store.gauges import DISPATCH
from drip.store.queue import fold as fold_queue
from drip.store.summary import fold as fold_tallies

log = structlog.get_logger("drip.dispatch")


def claim(deps: Deps, now: datetime, limit: int | None = None) -> list[int]:
    """Claim up to ``limit`` due sends (``pending -> queued``); safe with many dispatchers."""
    wanted = carrier.claim_limit(deps, now, limit or deps.settings.dispatch_batch)
    if wanted < 1:
        return []  # every sender of the due texts is at capacity (pacing)
    with deps.sessions() as session:
        return claims.claim_due(session, now, wanted)


#: Unknown sends the recovery tick reconciles at most, per tick (one list request each).
RECONCILE_PER_TICK = 20
#: An unknown send is reconciled by the tick once it is this old (its worker may still record it).
RECONCILE_MIN_AGE = timedelta(seconds=30)


def recover(deps: Deps, now: datetime) -> list[int]:
    """Settle what lost workers left: ``sending`` too long becomes ``unknown`` (never resent),
    then unknown sends are reconciled with the provider and kept callbacks applied, and
    paused enrollments whose quiet period ran out are resumed (time-driven work).

    Returns the ids that became ``unknown`` in this call.
    """
    timeout = timedelta(seconds=deps.settings.sending_timeout_seconds)
    with deps.sessions() as session:
        unknown = claims.recover_stale(session, now, timeout)
    for send_id in unknown:
        log.error(
            "send_unknown",
            send_id=send_id,
            reason="sending started but no result was recorded; not resent (at most once)",
        )
    _settle(deps, now)
    _fold(deps)
    pausing.resume_due(deps, now)
    return unknown


def _fold(deps: Deps) -> None:
    """Fold the running counts' deltas into ``send_tallies`` and ``queue_tallies``.

    (See :mod:`drip.store.summary` and :mod:`drip.store.queue`.)

    Every tick, so the deltas stay few; a failure waits for the next tick (reads
    stay exact: they add the deltas not folded yet).
    """
    try:
        with deps.sessions() as session:
            fold_tallies(session)
        with deps.sessions() as session:
            fold_queue(session)
    except SQLAlchemyError as exc:
        log.warning("tally_fold_failed", error=f"{type(exc).__name__}: {exc}")


def _settle(deps: Deps, now: datetime) -> None:
    """The recovery tick's own reconcile and callback pass; a failure waits for the next tick."""
    try:
        settled = reconcile.reconcile(
            deps, now, limit=RECONCILE_PER_TICK, min_age=RECONCILE_MIN_AGE
        )
        callbacks.apply_pending(deps, now)
        callbacks.drop_expired(deps, now)
    except (DripError, SQLAlchemyError) as exc:
        log.warning("recovery_settle_failed", error=f"{type(exc).__name__}: {exc}")
        return
    done = [s for s in settled if s.outcome != "unknown"]
    if done:
        log.info("reconciled", settled=len(done), sent=sum(s.outcome == "sent" for s in done))


def fire(deps: Deps, ids: list[int], now: datetime) -> list[FireResult]:
    """Fire one batch, then apply the status callbacks that arrived before its records.

    Twilio may call back before the worker has recorded the message; such a
    callback is kept (:mod:`drip.services.callbacks`) and applied here, from the
    provider ids the batch's results carry.
    """
    results = fire_batch(deps, ids, now)
    callbacks.apply_early(deps, (r.provider_id for r in results), now)
    return results


def heartbeat(deps: Deps, now: datetime) -> None:
    """Record that a dispatch tick finished at ``now`` (``drip_last_tick_timestamp_seconds``).

    A failure is logged and left for the next tick: the tick's work is done.
    """
    try:
        with deps.sessions.begin() as session:
            heartbeats.beat(session, DISPATCH, now)
    except SQLAlchemyError as exc:
        log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")


def chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@dataclass
class TickSummary:
    """What one embedded tick did."""

    claimed: int = 0
    unknown: list[int] = field(default_factory=list)
    results: list[FireResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return count_outcomes(self.results)


def tick(
    deps: Deps,
    now: datetime,
    *,
    max_rounds: int = 1000,
    on_result: Callable[[FireResult], None] | None = None,
) -> TickSummary:
    """Embedded mode: recover, then claim and fire in-process until nothing is due at ``now``."""
    summary = TickSummary(unknown=recover(deps, now))
    began = monotonic()
    for _ in range(max_rounds):
        if carrier.tick_spent(deps, began):
            break  # pacing: a tick's worth of sending; the next tick goes on
        ids = claim(deps, now)
        if not ids:
            break
        summary.claimed += len(ids)
        for batch in chunks(ids, deps.settings.send_batch):
            for result in fire(deps, batch, now):
                summary.results.append(result)
                if on_result is not None:
                    on_result(result)
    heartbeat(deps, now)
    return summary
