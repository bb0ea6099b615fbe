"""On reply and per-contact pause: what a reply or a CRM touch does to enrollments.

A campaign's ``on_reply`` says what happens when the contact writes back
(an inbound text that is not a keyword) or the CRM logs a call or email
(``contact.touched``):

- ``stop`` ends the enrollment, its pending sends cancelled;
- ``pause`` holds its sends until ``resume_after`` passes with no further
  reply or touch (each one extends the pause), or an operator resumes it;
- ``continue`` changes nothing.

An operator may hold or release one contact's enrollments
(``drip enrollments pause|resume``); an operator's hold lasts until an
operator releases it. On release the remaining steps keep their spacing from
the resume: every pending send moves later by the paused span. Every hold and
release is a decision on each pending send, shown by ``drip explain``. See
docs/campaigns.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from drip.domain.campaign import OnReply
from drip.errors import NotFoundError
from drip.services.deps import Deps
from drip.store import pausing as store
from drip.store import repository as repo
from drip.store.models import Contact, Enrollment

log = structlog.get_logger("drip.pausing")

#: ``send_decisions.code`` of the holds and releases.
CODE_REPLY_PAUSE = "reply_paused"
CODE_QUIET_RESUME = "quiet_resumed"
CODE_OPERATOR_PAUSE = "contact_paused"
CODE_OPERATOR_RESUME = "contact_resumed"


@dataclass(frozen=True, slots=True)
class ReplyEffect:
    """What one reply or touch did: the sends cancelled (stop) and enrollments held (pause)."""

    cancelled: tuple[int, ...] = ()
    paused: int = 0


def on_reply(
    deps: Deps, session: Session, contact_id: int, now: datetime, *, what: str
) -> ReplyEffect:
    """Apply each active enrollment's ``on_reply`` to a reply or touch (``what`` says which).

    Runs in the caller's transaction, beside the change that records the reply.
    """
    enrollments = repo.active_enrollments_of(session, contact_id)
    rows = repo.campaigns_by_id(session, (e.campaign_id for e in enrollments))
    to_stop: list[int] = []
    paused = 0
    for e in enrollments:
        row = rows.get(e.campaign_id)
        if row is None:
            continue
        campaign = deps.campaigns.get(row.id, row.version, row.definition)
        if campaign.on_reply is OnReply.STOP:
            to_stop.append(e.id)
        elif campaign.on_reply is OnReply.PAUSE:
            until = now + campaign.resume_after
            if store.hold(
                session,
                e,
                now,
                until=until,
                by=what,
                code=CODE_REPLY_PAUSE,
                reason=f"held: {what} and {campaign.name} says on_reply: pause; resumes "
                f"{until:%Y-%m-%d %H:%M} UTC if the contact stays quiet, spacing kept",
            ):
                paused += 1
    why = "the contact replied (stop_on_reply)" if what == "reply" else f"{what} (on_reply: stop)"
    cancelled = repo.stop_enrollments(session, to_stop, now, why)
    if to_stop or paused:
        log.info("on_reply", contact_id=contact_id, what=what, stopped=len(to_stop), paused=paused)
    return ReplyEffect(tuple(cancelled), paused)


def resume_due(deps: Deps, now: datetime) -> int:
    """Release every enrollment whose quiet period ran out by ``now``; returns how many.

    The dispatch tick's time-driven work calls this, embedded and Celery alike.
    """
    released = 0
    with deps.sessions.begin() as session:
        for e in store.due_resumes(session, now):
            quiet = e.paused_until
            store.release(
                session,
                e,
                now,
                code=CODE_QUIET_RESUME,
                reason=f"released: no reply or touch since the pause "
                f"(quiet until {quiet:%Y-%m-%d %H:%M} UTC); the remaining steps keep "
                "their spacing from now",
            )
            released += 1
    if released:
        log.info("enrollments_resumed", released=released)
    return released


@dataclass(frozen=True, slots=True)
class PauseResult:
    """What an operator's pause or resume changed, with the sentence the command prints."""

    contact_id: int
    enrollments: int
    sends: int
    message: str


def _targets(session: Session, contact_id: int, campaign: str | None) -> list[Enrollment]:
    if session.get(Contact, contact_id) is None:
        raise NotFoundError(f"no contact with id {contact_id}")
    enrollments = repo.active_enrollments_of(session, contact_id)
    if campaign is None:
        return enrollments
    row = repo.campaign_by_name(session, campaign)
    if row is None:
        raise NotFoundError(f"no campaign named {campaign!r} in the database")
    return [e for e in enrollments if e.campaign_id == row.id]


def pause_contact(
    deps: Deps, contact_id: int, campaign: str | None, now: datetime, *, operator: str
) -> PauseResult:
    """Hold the contact's active enrollments (or the one in ``campaign``) until resumed."""
    with deps.sessions.begin() as session:
        changed = 0
        for e in _targets(session, contact_id, campaign):
            # An operator's hold outlasts a reply's: a timed pause becomes an open one.
            if store.hold(
                session,
                e,
                now,
                until=None,
                by=operator,
                code=CODE_OPERATOR_PAUSE,
                reason=f"held: paused by {operator}; waits for `drip enrollments resume`",
            ):
                changed += 1
    log.info("contact_paused", contact_id=contact_id, operator=operator, enrollments=changed)
    where = f" in {campaign}" if campaign else ""
    return PauseResult(
        contact_id, changed, 0, f"contact {contact_id}{where}: {changed} enrollment(s) paused"
    )


def resume_contact(
    deps: Deps, contact_id: int, campaign: str | None, now: datetime, *, operator: str
) -> PauseResult:
    """Release the contact's paused enrollments; the remaining steps keep their spacing."""
    with deps.sessions.begin() as session:
        changed = moved = 0
        for e in _targets(session, contact_id, campaign):
            if e.paused_at is None:
                continue
            moved += store.release(
                session,
                e,
                now,
                code=CODE_OPERATOR_RESUME,
                reason=f"released: resumed by {operator}; the remaining steps keep their "
                "spacing from now",
            )
            changed += 1
    log.info("contact_resumed", contact_id=contact_id, operator=operator, enrollments=changed)
    where = f" in {campaign}" if campaign else ""
    return PauseResult(
        contact_id,
        changed,
        moved,
        f"contact {contact_id}{where}: {changed} enrollment(s) resumed, {moved} send(s) moved",
    )


def touched(deps: Deps, session: Session, contact_id: int, now: datetime) -> list[str]:
    """A ``contact.touched`` lead event (a call or email logged by the CRM), as ``on_reply``.

    The footer's two-way state is not touched: it comes from texts only.
    """
    effect = on_reply(deps, session, contact_id, now, what="contact.touched")
    notes = []
    if effect.cancelled:
        notes.append(f"{len(effect.cancelled)} pending step(s) cancelled by on_reply: stop")
    if effect.paused:
        notes.append(f"{effect.paused} enrollment(s) paused by on_reply: pause")
    return notes
