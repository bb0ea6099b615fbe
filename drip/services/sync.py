"""Sync campaign files into the database; edits reach contacts already enrolled.

What an edit does to enrolled contacts: docs/campaigns.md#load-it-drip-sync.

Steps are matched by ``id`` (which defaults to the step's position). For
every active enrollment of an edited campaign: a removed step's pending send
is cancelled, a step whose ``day`` or ``at`` changed is rescheduled from the
enrollment time, and a new step is scheduled when its time is still ahead.
Text edits need nothing: campaign steps are rendered at fire time.
One transaction per campaign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from drip.domain.campaign import Campaign
from drip.domain.enums import MessageKind, SendState
from drip.domain.schedule import step_due_at
from drip.domain.zones import resolve_timezone
from drip.services.deps import Deps
from drip.store import claims
from drip.store import repository as repo
from drip.store.models import Campaign as CampaignRow
from drip.store.models import SendDecision

log = structlog.get_logger("drip.sync")


@dataclass
class SyncChange:
    """What syncing one campaign changed."""

    name: str
    status: str  # added | updated | unchanged
    rescheduled: int = 0
    cancelled: int = 0
    added: int = 0

    def describe(self) -> str:
        if self.status != "updated":
            return f"{self.name}: {self.status}"
        return (
            f"{self.name}: updated ({self.rescheduled} rescheduled, "
            f"{self.cancelled} cancelled, {self.added} added for enrolled contacts)"
        )


@dataclass
class SyncSummary:
    changes: list[SyncChange] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [c.describe() for c in self.changes]


def sync_campaigns(deps: Deps, campaigns: list[Campaign], now: datetime) -> SyncSummary:
    """Store each campaign (versioned) and apply edits to its active enrollments."""
    summary = SyncSummary()
    for campaign in campaigns:
        with deps.sessions.begin() as session:
            summary.changes.append(_sync_one(deps, session, campaign, now))
    for change in summary.changes:
        log.info("campaign_synced", **change.__dict__)
    return summary


def _sync_one(deps: Deps, session: Session, campaign: Campaign, now: datetime) -> SyncChange:
    row = repo.campaign_by_name(session, campaign.name)
    if row is None:
        session.add(
            CampaignRow(
                name=campaign.name,
                version=campaign.version,
                definition=campaign.as_dict(),
                source_path=campaign.source,
                updated_at=now,
            )
        )
        return SyncChange(campaign.name, "added")
    if row.version == campaign.version:
        return SyncChange(campaign.name, "unchanged")
    old = deps.campaigns.get(row.id, row.version, row.definition)
    row.version = campaign.version
    row.definition = campaign.as_dict()
    row.source_path = campaign.source
    row.updated_at = now
    change = SyncChange(campaign.name, "updated")
    _apply_edit(deps, session, campaign_id=row.id, old=old, new=campaign, now=now, change=change)
    return change


def _apply_edit(
    deps: Deps,
    session: Session,
    *,
    campaign_id: int,
    old: Campaign,
    new: Campaign,
    now: datetime,
    change: SyncChange,
) -> None:
    enrollments = repo.active_enrollments_of_campaign(session, campaign_id)
    if not enrollments:
        return
    old_steps = {s.id: s for s in old.steps}
    new_steps = {s.id: s for s in new.steps}
    sends = repo.sends_of_campaign(session, campaign_id)
    by_enrollment: dict[int, dict[str, Any]] = {}
    for send in sends:
        if send.enrollment_id is not None and send.step_id is not None:
            by_enrollment.setdefault(send.enrollment_id, {})[send.step_id] = send
    contacts = repo.contacts_by_id(session, (e.contact_id for e in enrollments))
    new_rows: list[dict[str, Any]] = []
    for enrollment in enrollments:
        contact = contacts[enrollment.contact_id]
        zone = resolve_timezone(contact.timezone, contact.phone, deps.account.default_timezone).name
        existing = by_enrollment.get(enrollment.id, {})
        for step_id, send in existing.items():
            if send.state is not SendState.PENDING:
                continue
            step = new_steps.get(step_id)
            if step is None:
                _settle(
                    session,
                    send,
                    now,
                    outcome="cancelled",
                    code="step_removed",
                    reason=f"cancelled: step {step_id!r} was removed from {new.name}",
                )
                change.cancelled += 1
                continue
            if (send.channel, send.sender_role) != (step.channel, new.sender):
                # Channel and sender live on the row (the fire path reads them there).
                send.channel = step.channel
                send.sender_role = new.sender
                _settle(
                    session,
                    send,
                    now,
                    outcome="rescheduled",
                    code="step_edited",
                    reason=f"edited: step {step_id!r} now goes by {step.channel.value} "
                    f"from the {new.sender.value}",
                    keep_state=True,
                )
                change.rescheduled += 1
            before = old_steps.get(step_id)
            if before is not None and (before.day, before.at) == (step.day, step.at):
                continue
            due = step_due_at(enrollment.enrolled_at, step.day, step.at, zone)
            if due != send.original_due_at:
                reason = f"rescheduled: step {step_id!r} moved to day {step.day}" + (
                    f" at {step.at:%H:%M}" if step.at else ""
                )
                send.due_at = due
                send.original_due_at = due
                send.catching_up = False
                _settle(
                    session,
                    send,
                    now,
                    outcome="rescheduled",
                    code="step_edited",
                    reason=reason,
                    keep_state=True,
                )
                change.rescheduled += 1
        for step in new.steps:
            if step.id in existing:
                continue
            due = step_due_at(enrollment.enrolled_at, step.day, step.at, zone)
            if due <= now:
                continue  # a new step is scheduled only when its time is still ahead
            new_rows.append(
                {
                    "enrollment_id": enrollment.id,
                    "contact_id": contact.id,
                    "campaign_id": campaign_id,
                    "step_id": step.id,
                    "kind": MessageKind.CAMPAIGN,
                    "channel": step.channel,
                    "sender_role": new.sender,
                    "due_at": due,
                    "created_at": now,
                }
            )
    claims.bulk_insert_sends(session, new_rows, now=now)
    change.added += len(new_rows)


def _settle(
    session: Session,
    send: Any,
    now: datetime,
    *,
    outcome: str,
    code: str,
    reason: str,
    keep_state: bool = False,
) -> None:
    if not keep_state:
        send.state = SendState.CANCELLED
    send.decision_code = code
    send.decision_reason = reason
    send.updated_at = now
    session.add(SendDecision(send_id=send.id, at=now, outcome=outcome, code=code, reason=reason))
