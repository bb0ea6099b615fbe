"""Thin Celery tasks: ``dispatch_due`` claims what is due, ``fire_sends`` fires a batch.

The work is in :mod:`drip.services`; these functions read the clock once,
take the process's ``Deps`` and call the services.

- :func:`dispatch_due` (queue ``dispatch``, run by beat every tick):
  :func:`drip.services.dispatch.recover` settles abandoned sends (``sending``
  too long becomes ``unknown``, never resent; ``queued`` too long, a task lost
  with the broker, goes back to ``pending``), then due sends are claimed
  (``pending -> queued``) ``DRIP_DISPATCH_BATCH`` at a time and handed out as
  one :func:`fire_sends` task per ``DRIP_SEND_BATCH`` ids, on the ``send``
  queue. It claims again while a full batch came back, at most
  :data:`MAX_DISPATCH_ROUNDS` times a tick, so one tick stays short; the next
  tick continues. Any number of dispatchers may run at once: the claim skips
  rows another one holds.
- :func:`fire_sends` (queue ``send``): :func:`drip.services.dispatch.fire`
  at ``now``. Ids another delivery already took are ignored, so a task
  delivered twice sends nothing twice. A fire task that waited in the queue
  longer than ``DRIP_SENDING_TIMEOUT_SECONDS`` expires: by then its sends were
  put back to ``pending`` and handed to a newer task.

Dependencies: each process builds its ``Deps`` once, on first use, with
:func:`drip.bootstrap.build` from the settings the Celery app was configured
with (:func:`workers.celery_app.current_settings`): never at import, and again
in each forked pool process. Tests and embedded callers inject their own with
:func:`use_deps` (their database, a fake Twilio transport, a virtual clock);
``use_deps(None)`` goes back to building them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import structlog
from celery.signals import worker_process_init, worker_process_shutdown
from kombu.exceptions import KombuError

from drip import bootstrap, metrics
from drip.errors import DripError, ValidationError
from drip.services import dispatch
from drip.services.deps import Deps
from drip.services.fire import count_outcomes
from drip.services.worker_deps import ProcessDeps
from workers.celery_app import (
    DISPATCH_TASK,
    EVENTS_SWEEP_TASK,
    FIRE_TASK,
    WEBHOOKS_TASK,
    app,
    current_settings,
)

__all__ = [
    "MAX_DISPATCH_ROUNDS",
    "BrokerError",
    "DispatchSummary",
    "deliver_webhooks",
    "dispatch_due",
    "dispatch_once",
    "fire",
    "fire_sends",
    "get_deps",
    "use_deps",
]

log = structlog.get_logger("drip.workers")

#: Most claims one dispatch makes (``DRIP_DISPATCH_BATCH`` each); the next tick goes on.
MAX_DISPATCH_ROUNDS: Final = 20


class BrokerError(DripError):
    """The broker could not take a task; the claimed sends go back to pending after the timeout."""


# --------------------------------------------------------------------------- dependencies


def _build() -> Deps:
    return bootstrap.build(current_settings())


_process = ProcessDeps(_build)


def use_deps(deps: Deps | None) -> None:
    """Run the tasks of this process with ``deps`` (tests, embedded); None: build from settings."""
    _process.use(deps)


def get_deps() -> Deps:
    """The ``Deps`` tasks in this process use: injected, or built once from settings."""
    return _process.get()


def _forked(**_: Any) -> None:
    """A new pool process: do not reuse connections the parent may have opened."""
    _process.after_fork()


def _shutdown(**_: Any) -> None:
    """The pool process stops: close the database connections it opened, drop its live gauges."""
    _process.close()
    metrics.mark_process_dead(os.getpid())


# Celery's signals are untyped, hence the call form rather than the decorator.
worker_process_init.connect(_forked)
worker_process_shutdown.connect(_shutdown)


# --------------------------------------------------------------------------- the work


@dataclass(frozen=True, slots=True)
class DispatchSummary:
    """What one dispatch did."""

    unknown: tuple[int, ...]  # sends found stuck in ``sending``, now ``unknown``
    claimed: int  # sends claimed and handed to fire tasks
    tasks: int  # fire tasks published
    rounds: int  # claims made
    more: bool  # stopped at MAX_DISPATCH_ROUNDS with a full last batch: more may be due

    def as_dict(self) -> dict[str, int]:
        return {
            "unknown": len(self.unknown),
            "claimed": self.claimed,
            "tasks": self.tasks,
            "rounds": self.rounds,
            "more": int(self.more),
        }


def dispatch_once(
    deps: Deps,
    now: datetime,
    publish: Callable[[list[int]], None],
    *,
    max_rounds: int = MAX_DISPATCH_ROUNDS,
) -> DispatchSummary:
    """Recover stale sends, then claim due ones and ``publish`` them in send batches.

    ``publish`` gets lists of at most ``DRIP_SEND_BATCH`` ids. If it raises,
    the ids claimed but not yet published stay ``queued`` and go back to
    ``pending`` once ``DRIP_SENDING_TIMEOUT_SECONDS`` have passed.
    """
    if max_rounds < 1:
        raise ValidationError(f"max_rounds must be at least 1, not {max_rounds}")
    unknown = dispatch.recover(deps, now)
    claimed = tasks = rounds = 0
    full = False
    while rounds < max_rounds:
        ids = dispatch.claim(deps, now, deps.settings.dispatch_batch)
        rounds += 1
        for batch in dispatch.chunks(ids, deps.settings.send_batch):
            publish(batch)
            tasks += 1
        claimed += len(ids)
        full = len(ids) >= deps.settings.dispatch_batch
        if not full:
            break
    summary = DispatchSummary(tuple(unknown), claimed, tasks, rounds, more=full)
    dispatch.heartbeat(deps, now)
    if claimed or unknown:
        log.info("dispatched", **summary.as_dict())
    return summary


def fire(deps: Deps, ids: Sequence[int]) -> dict[str, int]:
    """Fire the given queued sends now (the clock is read once); counts of outcomes."""
    send_ids = [_send_id(i) for i in ids]
    now = deps.clock.now()
    results = dispatch.fire(deps, send_ids, now)
    counts = count_outcomes(results)
    ignored = len(send_ids) - len(results)
    if ignored:
        counts["ignored"] = ignored  # taken by another delivery, cancelled or recovered
    return counts


def _send_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"a send id is a whole number, not {value!r}")
    return value


def _publisher(deps: Deps) -> Callable[[list[int]], None]:
    expires = float(deps.settings.sending_timeout_seconds)

    def publish(ids: list[int]) -> None:
        try:
            fire_sends.apply_async((ids,), expires=expires)
        except KombuError as exc:
            raise BrokerError(
                f"could not hand {len(ids)} sends to the broker ({type(exc).__name__}: {exc}); "
                f"they go back to pending after {deps.settings.sending_timeout_seconds} s"
            ) from exc

    return publish


# --------------------------------------------------------------------------- the tasks


def _dispatch_due() -> dict[str, int]:
    """Beat's tick: recover stale sends, claim what is due, publish fire tasks."""
    deps = get_deps()
    return dispatch_once(deps, deps.clock.now(), _publisher(deps)).as_dict()


def _fire_sends(ids: list[int]) -> dict[str, int]:
    """Fire one batch of claimed sends; a second delivery of the same ids does nothing."""
    return fire(get_deps(), ids)


# ``app.task`` is untyped (Celery ships no type hints), hence the call form.
dispatch_due: Any = app.task(name=DISPATCH_TASK, ignore_result=True)(_dispatch_due)
fire_sends: Any = app.task(
    name=FIRE_TASK,
    ignore_result=True,
    acks_late=False,  # acknowledged when it starts: a lost worker loses the task, never doubles it
    reject_on_worker_lost=False,
    max_retries=0,  # never retried by Celery; the transport retries only what Twilio refused
)(_fire_sends)


def _ingest_events(events: list[Any]) -> dict[str, int]:
    """Lead events a producer published to the broker: the path ``POST /events`` takes."""
    from drip.services.events import ingest

    deps = get_deps()
    return dict(ingest(deps, events, deps.clock.now()).counts())


def _apply_stored_events() -> dict[str, int]:
    """Beat's sweep: apply the lead events a stopped process left stored and never applied."""
    from drip.services.events import apply_unapplied

    deps = get_deps()
    return dict(apply_unapplied(deps, deps.clock.now()).counts())


#: The sweep task, run by beat every few minutes (several workers share it: SKIP LOCKED).
apply_stored_events: Any = app.task(name=EVENTS_SWEEP_TASK, ignore_result=True)(
    _apply_stored_events
)


#: The task producers publish lead events to (a list of event objects, up to 500).
INGEST_TASK = "drip.ingest_events"
ingest_events: Any = app.task(name=INGEST_TASK, ignore_result=True)(_ingest_events)


def _deliver_webhooks() -> dict[str, int]:
    """Beat's webhook tick: deliver the outbox events that are due (scaled-out mode)."""
    from drip.services import webhooks

    deps = get_deps()
    done = webhooks.deliver_due(deps, deps.clock.now(), embedded=False)
    return {"claimed": done.claimed, "delivered": done.delivered, "failed": done.failed}


#: The outbox delivery task, run by beat every tick; several workers share it (SKIP LOCKED).
deliver_webhooks: Any = app.task(name=WEBHOOKS_TASK, ignore_result=True)(_deliver_webhooks)
