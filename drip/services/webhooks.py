"""Webhooks out: deliver the outbox to the account's receivers, signed, in order, with retries.

Each event goes out as JSON ``{"id", "type", "created_at", "data"}`` in a
POST with ``Drip-Signature: t=UNIX,v1=HEX``, where HEX is the HMAC-SHA256
of ``t + "." + body`` under the webhook's secret (read from the environment
variable its ``secret_env`` names). A receiver checks the signature, refuses
an old ``t``, and deduplicates on ``id``: delivery is at least once (a
receiver that took an event but whose answer was lost gets it again).

A 2xx answer delivers the event to that webhook; anything else (another
status, a timeout, a reset connection, a refused one) is retried with
exponential backoff for 24 hours after the first attempt, then the event is
``dead`` until ``drip webhooks retry``. Redirects are not followed. Events of
one contact go out in order: one is not posted while an earlier one of that
contact is still pending. A webhook that fails in a round is not tried again
in that round (its other events wait for their next turn without an attempt
counted). See docs/operations.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from sqlalchemy.exc import SQLAlchemyError

from drip.domain.account import WebhookTarget
from drip.errors import ConfigError, DripError
from drip.services.deps import Deps
from drip.store import outbox
from drip.store.engine import begin_writing
from drip.store.models import OutboxEvent

log = structlog.get_logger("drip.webhooks")


def _seconds(name: str, default: float) -> float:
    """A tuning knob from the environment (the fault suite shortens them), else ``default``."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


#: Seconds to connect and to wait for an answer (``DRIP_WEBHOOK_TIMEOUT_SECONDS``).
TIMEOUT = (3.05, _seconds("DRIP_WEBHOOK_TIMEOUT_SECONDS", 10.0))
#: Backoff: 10 s (``DRIP_WEBHOOK_BACKOFF_SECONDS``), doubling, at most an hour between
#: tries; dead after a day of trying.
BACKOFF_FIRST = timedelta(seconds=_seconds("DRIP_WEBHOOK_BACKOFF_SECONDS", 10.0))
BACKOFF_MAX = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)
#: Events claimed per round.
ROUND = 200
#: The longest one post may take (connect, then wait for the answer).
POST_MAX = timedelta(seconds=TIMEOUT[0] + TIMEOUT[1])
#: How long a round's claim keeps its events from other loops while they are posted: a
#: round starts no post after ``LEASE - 2 * POST_MAX``, so its last one ends, and is
#: recorded, in time. Events of a loop that died are posted again when it ends.
LEASE = max(timedelta(seconds=30), 3 * POST_MAX)


@dataclass(frozen=True, slots=True)
class Receiver:
    """A webhook ready to post to: its secret read from the environment."""

    target: WebhookTarget
    secret: bytes


def receivers(deps: Deps, *, embedded: bool) -> tuple[Receiver, ...]:
    """The account's webhooks, checked: https outside embedded mode, a secret in the environment.

    A problem is a ConfigError naming the webhook.
    """
    out = []
    for w in deps.account.webhooks:
        scheme = urlsplit(w.url).scheme
        if scheme != "https" and not embedded:
            raise ConfigError(
                f"webhook {w.name!r}: url {w.url} must be https outside embedded mode (drip run)"
            )
        secret = os.environ.get(w.secret_env, "")
        if not secret:
            raise ConfigError(
                f"webhook {w.name!r}: the environment variable {w.secret_env} (its secret_env) "
                "is not set"
            )
        out.append(Receiver(w, secret.encode()))
    return tuple(out)


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Drip-Signature`` header of ``body`` sent at ``timestamp`` (UNIX seconds)."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def body_of(row: OutboxEvent) -> bytes:
    """The JSON posted for one event."""
    doc = {
        "id": row.event_id,
        "type": row.type,
        "created_at": row.created_at.isoformat(),
        "data": row.payload,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def backoff(attempts: int) -> timedelta:
    """The wait before try ``attempts + 1`` (``attempts`` tries failed so far)."""
    return min(BACKOFF_FIRST * (1 << min(attempts, 20)), BACKOFF_MAX)


@dataclass
class Round:
    """What one delivery round did."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def _post(http: requests.Session, r: Receiver, body: bytes, now: datetime) -> str | None:
    """Post one body; None when the receiver answered 2xx, else what went wrong."""
    stamp = int(now.timestamp())
    try:
        answer = http.post(
            r.target.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "Drip-Signature": signature(r.secret, stamp, body),
                "User-Agent": "drip-webhooks/1",
            },
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    with answer:
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"


def deliver_round(
    deps: Deps,
    found: Sequence[Receiver],
    http: requests.Session,
    now: datetime,
    limit: int = ROUND,
) -> Round:
    """Lease one round of due events, post them with no transaction open, then settle them.

    The posts stop once ``LEASE - 2 * POST_MAX`` has passed; what was not
    tried is released, due again at once with no attempt counted.
    """
    done = Round()
    down: set[str] = set()
    delivered: dict[tuple[str, ...], list[int]] = {}
    failed: list[tuple[int, list[str], str]] = []
    untried: list[int] = []
    with deps.sessions.begin() as session:
        begin_writing(session)  # the lease writes after reading
        rows = outbox.claim(session, now, limit, now + LEASE)
    done.claimed = len(rows)
    stop_posting = time.monotonic() + (LEASE - 2 * POST_MAX).total_seconds()
    for row in rows:
        wanted = [r for r in found if row.type in r.target.events]
        already = set(row.delivered_to or ())
        todo = [r for r in wanted if r.target.name not in already]
        if todo and (any(r.target.name in down for r in todo) or time.monotonic() > stop_posting):
            # that receiver failed this round, or the lease is running out: no attempt counted
            untried.append(row.id)
            continue
        errors = []
        for r in todo:
            error = _post(http, r, body_of(row), now)
            if error is None:
                already.add(r.target.name)
            else:
                errors.append(f"{r.target.name}: {error}")
                down.add(r.target.name)
        if errors:
            failed.append((row.id, sorted(already), "; ".join(errors)))
        else:
            delivered.setdefault(tuple(sorted(already)), []).append(row.id)
            done.delivered += 1
    with deps.sessions.begin() as session:
        begin_writing(session)
        for names, ids in delivered.items():
            outbox.mark_delivered(session, ids, names, now)
        outbox.release(session, untried, now)
        for row_id, delivered_to, error in failed:
            row = session.get_one(OutboxEvent, row_id)
            first = row.first_attempt_at or now
            dead = now - first >= GIVE_UP_AFTER
            outbox.settle(
                session,
                row,
                now,
                delivered_to=delivered_to,
                done=False,
                error=error,
                next_attempt_at=now + backoff(row.attempts),
                dead=dead,
            )
            done.failed += 1
            done.dead += int(dead)
            log.warning(
                "webhook_failed",
                event_id=row.event_id,
                type=row.type,
                attempts=row.attempts,
                dead=dead,
                error=error,
            )
    return done


def deliver_due(deps: Deps, now: datetime, *, embedded: bool, rounds: int = 50) -> Round:
    """Deliver what is due at ``now``, round after round, until nothing more goes out."""
    found = receivers(deps, embedded=embedded)
    total = Round()
    with requests.Session() as http:
        for _ in range(rounds):
            one = deliver_round(deps, found, http, now)
            total.claimed += one.claimed
            total.delivered += one.delivered
            total.failed += one.failed
            total.dead += one.dead
            if one.delivered == 0:
                break
    return total


def run_loop(deps: Deps, stop: threading.Event, *, interval: float = 1.0) -> None:
    """Embedded mode's delivery thread: deliver what is due, then wait ``interval`` seconds."""
    found = receivers(deps, embedded=True)
    with requests.Session() as http:
        while not stop.is_set():
            try:
                one = deliver_round(deps, found, http, deps.clock.now())
            except (DripError, SQLAlchemyError) as exc:  # the loop outlives a database blip
                log.warning("webhook_round_failed", error=f"{type(exc).__name__}: {exc}")
                one = Round()
            if one.delivered == 0:
                stop.wait(interval)


def start_thread(deps: Deps, stop: threading.Event) -> threading.Thread | None:
    """The delivery thread of ``drip run`` (None when the account has no webhooks)."""
    receivers(deps, embedded=True)  # a configuration error stops `drip run` before it starts
    if not deps.account.webhooks:
        return None
    thread = threading.Thread(target=run_loop, args=(deps, stop), name="drip-webhooks", daemon=True)
    thread.start()
    return thread


@dataclass(frozen=True, slots=True)
class Status:
    """``drip webhooks status``: the backlog and the dead events."""

    counts: outbox.OutboxCounts
    dead: tuple[dict[str, Any], ...]


def status(deps: Deps) -> Status:
    with deps.sessions() as session:
        rows = outbox.dead(session)
        return Status(
            outbox.counts(session),
            tuple(
                {
                    "id": r.event_id,
                    "type": r.type,
                    "contact_id": r.contact_id,
                    "created_at": r.created_at.isoformat(),
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                }
                for r in rows
            ),
        )


def retry(deps: Deps, now: datetime, event_ids: Sequence[str] = ()) -> int:
    """Send dead events again (all, or those named); returns how many."""
    with deps.sessions.begin() as session:
        n = outbox.retry_dead(session, now, event_ids)
    log.info("webhooks_retry", events=n)
    return n
