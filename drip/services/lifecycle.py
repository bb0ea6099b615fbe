"""Campaign and enrollment lifecycle: list, pause, resume, archive, unenroll.

For operators: docs/campaigns.md#lifecycle.

- **pause**: the campaign's sends are held, not skipped: dispatch does not
  claim them (:func:`drip.store.claims.claim_due`), and new enrollments are
  scheduled but held too. Each pending send gets a ``held`` decision.
- **resume**: the sends are claimable again; those that became overdue meanwhile
  follow catch-up at fire time (at most one overdue step a day, in order).
  Each pending send gets a ``released`` decision.
- **archive**: no new enrollments; every pending send is cancelled and every
  active enrollment stopped, each with the reason. ``drip sync --prune``
  archives the campaigns whose file is gone.
- **unenroll**: one enrollment ends (``stopped``, reason ``operator``); its
  pending sends are cancelled with a decision.

Sends already claimed or in flight when a campaign is paused or archived are
left to finish: they were decided before the operator acted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.orm import Session

from drip.domain.enums import CampaignStatus
from drip.errors import NotFoundError, ValidationError
from drip.services.deps import Deps
from drip.store import lifecycle as store
from drip.store import repository as repo
from drip.store import sends
from drip.store.models import Campaign as CampaignRow
from drip.store.models import Contact, Enrollment, ScheduledSend

log = structlog.get_logger("drip.lifecycle")

#: ``send_decisions.code`` of the lifecycle decisions.
CODE_PAUSED = "campaign_paused"
CODE_RESUMED = "campaign_resumed"
CODE_ARCHIVED = "campaign_archived"
CODE_UNENROLLED = "unenrolled"
#: ``enrollments.stop_reason`` of an operator's unenroll.
STOP_OPERATOR = "operator"
STOP_ARCHIVED = "campaign archived"


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """One row of ``drip campaigns``."""

    name: str
    kind: str
    status: CampaignStatus
    active_enrollments: int
    pending_sends: int
    next_due_at: datetime | None
    source_path: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status.value,
            "active_enrollments": self.active_enrollments,
            "pending_sends": self.pending_sends,
            "next_due_at": self.next_due_at.isoformat() if self.next_due_at else None,
            "source_path": self.source_path,
        }


@dataclass(frozen=True, slots=True)
class LifecycleResult:
    """What one lifecycle action changed, with the sentence the command prints."""

    campaign: str
    status: CampaignStatus
    sends: int
    enrollments: int
    message: str


def list_campaigns(deps: Deps) -> tuple[CampaignSummary, ...]:
    """Every campaign in the database, by name, with its counts."""
    with deps.sessions() as session:
        counts = store.campaign_counts(session)
        rows = repo.all_campaigns(session)
        empty = store.CampaignCounts(0, 0, None)
        return tuple(
            CampaignSummary(
                name=row.name,
                kind=str(row.definition.get("kind", "?")),
                status=row.status,
                active_enrollments=counts.get(row.id, empty).active_enrollments,
                pending_sends=counts.get(row.id, empty).pending_sends,
                next_due_at=counts.get(row.id, empty).next_due_at,
                source_path=row.source_path,
            )
            for row in sorted(rows, key=lambda r: r.name)
        )


def _campaign(session: Session, name: str) -> CampaignRow:
    row = repo.campaign_by_name(session, name)
    if row is None:
        known = ", ".join(sorted(r.name for r in repo.all_campaigns(session))) or "none"
        raise NotFoundError(f"no campaign named {name!r} in the database (known: {known})")
    return row


@dataclass(frozen=True, slots=True)
class _Switch:
    """Pause or resume: the status moved to, what is said when it cannot or need not move,
    and the decision recorded on every pending send."""

    status: CampaignStatus
    when_archived: str
    already: str
    outcome: str
    code: str
    reason: str  # with {name} and {by}


_PAUSE = _Switch(
    CampaignStatus.PAUSED,
    "there is nothing to pause",
    "is already paused",
    "held",
    CODE_PAUSED,
    "held: campaign {name} was paused{by}; the send waits for `drip campaigns resume`",
)
_RESUME = _Switch(
    CampaignStatus.ACTIVE,
    "it cannot be resumed",
    "is not paused",
    "released",
    CODE_RESUMED,
    "released: campaign {name} was resumed{by}; a step that became overdue while it was paused "
    "follows catch-up (at most one a day, in order)",
)


def _switch(
    deps: Deps, name: str, now: datetime, how: _Switch, by: str | None = None
) -> LifecycleResult | tuple[int, bool]:
    """Move the campaign to ``how.status`` and note every pending send.

    The number of sends noted and whether one of them is overdue, or the
    result to report when nothing changed.
    """
    with deps.sessions.begin() as session:
        row = _campaign(session, name)
        if row.status is CampaignStatus.ARCHIVED:
            raise ValidationError(f"campaign {name!r} is archived: {how.when_archived}")
        if row.status is how.status:
            message = f"{row.name} {how.already}; nothing changed"
            return LifecycleResult(row.name, row.status, 0, 0, message)
        overdue = sends.has_overdue(session, row.id, now)
        store.set_status(session, row, how.status, now)
        noted = store.note_pending(
            session,
            row.id,
            now,
            outcome=how.outcome,
            code=how.code,
            reason=how.reason.format(name=row.name, by=f" by {by}" if by else ""),
        )
    return noted, overdue


def pause(deps: Deps, name: str, now: datetime, *, by: str | None = None) -> LifecycleResult:
    """Hold every send of the campaign until :func:`resume`; ``by`` names who, if a person."""
    done = _switch(deps, name, now, _PAUSE, by)
    if isinstance(done, LifecycleResult):
        return done
    held, _ = done
    log.info("campaign_paused", campaign=name, held=held)
    return LifecycleResult(
        name,
        CampaignStatus.PAUSED,
        held,
        0,
        f"{name} paused: {held} pending send(s) held; new enrollments are scheduled and held too",
    )


def resume(deps: Deps, name: str, now: datetime, *, by: str | None = None) -> LifecycleResult:
    """Release the campaign's held sends; overdue ones follow catch-up."""
    done = _switch(deps, name, now, _RESUME, by)
    if isinstance(done, LifecycleResult):
        return done
    released, overdue = done
    log.info("campaign_resumed", campaign=name, released=released)
    tail = "; overdue steps catch up at most one a day per contact, in order" if overdue else ""
    return LifecycleResult(
        name,
        CampaignStatus.ACTIVE,
        released,
        0,
        f"{name} resumed: {released} send(s) released{tail}",
    )


def archive(
    deps: Deps, name: str, now: datetime, *, why: str = "by the operator"
) -> LifecycleResult:
    """Retire the campaign: no new enrollments, pending sends cancelled."""
    with deps.sessions.begin() as session:
        row = _campaign(session, name)
        if row.status is CampaignStatus.ARCHIVED:
            return LifecycleResult(
                row.name, row.status, 0, 0, f"{row.name} is already archived; nothing changed"
            )
        result = _archive_row(session, row, now, why)
    log.info("campaign_archived", campaign=name, cancelled=result.sends)
    return result


def _archive_row(session: Session, row: CampaignRow, now: datetime, why: str) -> LifecycleResult:
    store.set_status(session, row, CampaignStatus.ARCHIVED, now)
    cancelled = store.cancel_pending(
        session,
        ScheduledSend.campaign_id == row.id,
        now,
        CODE_ARCHIVED,
        f"cancelled: campaign {row.name} was archived {why}",
    )
    stopped = store.stop_campaign_enrollments(
        session, Enrollment.campaign_id == row.id, now, STOP_ARCHIVED
    )
    return LifecycleResult(
        row.name,
        CampaignStatus.ARCHIVED,
        len(cancelled),
        stopped,
        f"{row.name} archived: {len(cancelled)} pending send(s) cancelled, "
        f"{stopped} enrollment(s) stopped",
    )


def unenroll(deps: Deps, contact_id: int, name: str, now: datetime) -> LifecycleResult:
    """End the contact's active enrollment in the campaign; its pending sends are cancelled."""
    with deps.sessions.begin() as session:
        row = _campaign(session, name)
        if session.get(Contact, contact_id) is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        enrollment = repo.active_enrollment(session, contact_id, row.id)
        if enrollment is None:
            return LifecycleResult(
                row.name,
                row.status,
                0,
                0,
                f"contact {contact_id} is not active in {row.name}; nothing changed",
            )
        cancelled = store.cancel_pending(
            session,
            ScheduledSend.enrollment_id == enrollment.id,
            now,
            CODE_UNENROLLED,
            f"cancelled: contact {contact_id} was unenrolled from {row.name} by the operator",
        )
        store.stop_campaign_enrollments(session, Enrollment.id == enrollment.id, now, STOP_OPERATOR)
    log.info("unenrolled", contact_id=contact_id, campaign=name, cancelled=len(cancelled))
    return LifecycleResult(
        name,
        row.status,
        len(cancelled),
        1,
        f"contact {contact_id} unenrolled from {name}: {len(cancelled)} pending send(s) cancelled",
    )


def orphaned(deps: Deps, loaded: set[str], base: Path | None = None) -> tuple[str, ...]:
    """Campaigns not archived whose file is gone (not among ``loaded`` and not on disk)."""
    with deps.sessions() as session:
        out = []
        for row in repo.all_campaigns(session):
            if row.status is CampaignStatus.ARCHIVED or row.name in loaded:
                continue
            if row.source_path is None:
                continue
            path = Path(row.source_path)
            if base is not None and not path.is_absolute():
                path = base / path
            if not path.exists():
                out.append(row.name)
        return tuple(sorted(out))


def prune(deps: Deps, names: tuple[str, ...], now: datetime) -> tuple[LifecycleResult, ...]:
    """Archive each named campaign because its file is gone (``drip sync --prune``)."""
    results = []
    for name in names:
        with deps.sessions.begin() as session:
            row = _campaign(session, name)
            if row.status is not CampaignStatus.ARCHIVED:
                results.append(
                    _archive_row(session, row, now, "by `drip sync --prune`: its file is gone")
                )
    return tuple(results)
