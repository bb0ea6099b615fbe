"""Applying a stored batch of lead events in one transaction per run of ordinary events.

:func:`drip.services.events.ingest` hands each stored batch here, in
``occurred_at`` order. Events about a known contact (``lead.updated``,
``lead.activity``, ``lead.assigned``, ``contact.touched``, ``appointment.set``,
``deal.stage``) are applied together: the batch's contacts and their
enrollments are read with one query each, each event updates its contact and
is decided against the campaigns' triggers and exits (read once per batch),
exits end enrollments in place, and the enrollments the triggers ask for are
written set-based (one statement for every campaign on PostgreSQL) when the
run is flushed, with the events' ids, in the same transaction as the fields
and the inbox rows' outcomes.

An event that makes or finds a contact (``lead.created``) or moves many
(``agent.deactivated``) ends the run and is applied alone; an event for a
contact the run has just enrolled (so that its decision sees that
enrollment) has the run's enrollments written first, in the same
transaction. When a run fails, it is rolled back and its events are applied
one at a time, each failing alone, as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from drip.domain.campaign import Campaign
from drip.domain.enums import CampaignStatus, EnrollmentStatus
from drip.domain.triggers import (
    CampaignView,
    Catalog,
    Decision,
    Enroll,
    EnrollmentView,
    LeadEvent,
    decide,
)
from drip.errors import DripError
from drip.services.deps import Deps
from drip.services.event_apply import (
    CONTACT_ROW_COLUMNS,
    ContactRow,
    apply_actions,
    apply_fields,
    contact_view,
    end_enrollments,
)
from drip.services.event_input import ParsedEvent
from drip.store import events as store
from drip.store.models import Campaign as CampaignRow

log = structlog.get_logger("drip.events")

#: Event types applied alone (they make contacts, or move many).
ALONE = frozenset({"lead.created", "agent.deactivated"})

Apply = Callable[[ParsedEvent, int], str]
Told = Callable[[ParsedEvent, str, str], None]


@dataclass(slots=True)
class _Run:
    """The events applied in the open transaction, not yet committed.

    An enrollment a trigger asks for is written when the run is flushed; until
    then the contact's views hold it with a provisional (negative) id, so that
    the contact's later events in the run see it. A decision that would end a
    provisional enrollment has the run's enrollments written first, and is made
    again on their real ids.
    """

    events: list[tuple[ParsedEvent, int, ContactRow]] = field(default_factory=list)
    notes: dict[int, list[str]] = field(default_factory=dict)
    enroll: dict[str, list[tuple[ContactRow, ParsedEvent, Enroll, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    provisional: int = 0

    def next_id(self) -> int:
        self.provisional -= 1
        return self.provisional


class BatchApplier:
    """Applies one stored batch; ``alone`` applies one event by itself (the old path)."""

    def __init__(self, deps: Deps, now: datetime, alone: Apply, told: Told) -> None:
        self.deps, self.now, self.alone, self.told = deps, now, alone, told
        self.catalog = Catalog(())
        self.loaded: dict[str, tuple[CampaignRow, Campaign]] = {}

    def apply(self, events: Sequence[tuple[ParsedEvent, int]]) -> None:
        """Apply ``events`` ((event, inbox row id), in ``occurred_at`` order)."""
        pending: list[tuple[ParsedEvent, int]] = []
        for p, row_id in events:
            if p.type in ALONE:
                self._run(pending)
                pending = []
                self._alone(p, row_id)
            else:
                pending.append((p, row_id))
        self._run(pending)

    def _alone(self, p: ParsedEvent, row_id: int) -> None:
        try:
            self.told(p, "accepted", self.alone(p, row_id))
        except (DripError, IntegrityError) as exc:
            message = str(exc).splitlines()[0]
            with self.deps.sessions.begin() as session:
                store.mark_processed(session, row_id, None, f"failed: {message}", self.now)
            self.told(p, "failed", message)

    def _run(self, events: list[tuple[ParsedEvent, int]]) -> None:
        """Apply ``events`` in one transaction; one at a time when that fails."""
        if not events:
            return
        try:
            with self.deps.sessions.begin() as session:
                run, views = self._apply_run(session, events)
                self._write_enrollments(session, run, views)
                store.mark_processed_many(
                    session,
                    [
                        (row_id, contact.id, "; ".join(run.notes[p.index]) or "no change")
                        for p, row_id, contact in run.events
                    ],
                    self.now,
                )
        except (DripError, IntegrityError) as exc:
            log.warning("event_run_failed", events=len(events), error=str(exc)[:200])
            for p, row_id in events:
                self._alone(p, row_id)
            return
        for p, _, _ in run.events:
            self.told(p, "accepted", "; ".join(run.notes[p.index]) or "no change")

    def _apply_run(
        self, session: Session, events: list[tuple[ParsedEvent, int]]
    ) -> tuple[_Run, dict[int, list[EnrollmentView]]]:
        """Apply every event of the run in ``session``; the run and the contacts' views."""
        refs = [p.contact for p, _ in events]
        # Plain rows: their fields are written back for the whole run by one statement.
        contacts = [
            ContactRow(*row)
            for row in store.contact_rows_by_refs(
                session,
                CONTACT_ROW_COLUMNS,
                [r.external_id for r in refs if r.external_id],
                [r.phone for r in refs if r.phone],
                [r.email for r in refs if r.email],
            )
        ]
        before = {c.id: store.written_values(c) for c in contacts}
        by_ext = {c.external_id: c for c in contacts if c.external_id}
        by_phone = {c.phone: c for c in contacts if c.phone}
        by_email: dict[str, ContactRow] = {}
        for c in contacts:  # the lowest id first, as contact_by_ref
            if c.email:
                by_email.setdefault(c.email.lower(), c)
        history = store.enrollments_of_many(session, [c.id for c in contacts])
        views = {
            cid: [
                EnrollmentView(r.id, r.name, r.status is EnrollmentStatus.ACTIVE, r.enrolled_at)
                for r in rows
            ]
            for cid, rows in history.items()
        }
        campaigns, self.loaded = _campaigns(self.deps, session)
        self.catalog = Catalog(campaigns)
        run = _Run()
        for p, row_id in events:
            r = p.contact
            contact = (
                (by_ext.get(r.external_id) if r.external_id else None)
                or (by_phone.get(r.phone) if r.phone else None)
                or (by_email.get(r.email.lower()) if r.email else None)
            )
            if contact is None:
                raise DripError(f"event {p.id} names no contact")
            run.events.append((p, row_id, contact))
            run.notes[p.index] = self._apply_one(session, run, contact, p, views)
        store.write_contacts(session, list({c.id: c for _, _, c in run.events}.values()), before)
        return run, views

    def _apply_one(
        self,
        session: Session,
        run: _Run,
        contact: ContactRow,
        p: ParsedEvent,
        views: dict[int, list[EnrollmentView]],
    ) -> list[str]:
        notes = apply_fields(contact, p, self.now)
        notes.extend(apply_actions(self.deps, session, contact, p, self.now))
        mine = views.setdefault(contact.id, [])
        decision = self._decide(contact, p, mine)
        if any(e.enrollment_id < 0 for e in decision.end):
            # It ends an enrollment the run has asked for: write them, decide on real ids.
            self._write_enrollments(session, run, views)
            decision = self._decide(contact, p, mine)
        if decision.end:
            notes.extend(end_enrollments(session, decision, p, self.now))
            ended = {e.enrollment_id for e in decision.end}
            mine[:] = [
                EnrollmentView(v.id, v.campaign, False, v.enrolled_at) if v.id in ended else v
                for v in mine
            ]
        for wanted in decision.enroll:
            provisional = run.next_id()
            run.enroll[wanted.campaign].append((contact, p, wanted, provisional))
            mine.append(EnrollmentView(provisional, wanted.campaign, True, self.now))
        return notes

    def _decide(self, contact: ContactRow, p: ParsedEvent, mine: list[EnrollmentView]) -> Decision:
        if not self.catalog.campaigns:
            return Decision()
        return decide(
            LeadEvent(p.id, p.type, p.data), contact_view(contact), self.catalog, mine, self.now
        )

    def _write_enrollments(
        self, session: Session, run: _Run, views: dict[int, list[EnrollmentView]]
    ) -> None:
        """Write the enrollments the run's triggers asked for (set-based, every campaign at
        once), each with its event's id, and give them their real ids in ``views``."""
        from drip.services.enrollment import enroll_in_each

        real: dict[int, int | None] = {}
        made = enroll_in_each(
            self.deps,
            session,
            {name: [c for c, _, _, _ in wanted] for name, wanted in run.enroll.items()},
            self.now,
            loaded=self.loaded,
            events={
                name: {c.id: p.id for c, p, _, _ in reversed(wanted)}  # the first event wins
                for name, wanted in run.enroll.items()
            },
        )
        for name, wanted in run.enroll.items():
            new = made[name]
            for contact, p, e, provisional in wanted:
                enrollment_id = new.get(contact.id)
                real[provisional] = enrollment_id
                if enrollment_id is not None:
                    run.notes[p.index].append(f"enrolled in {name} ({e.rule.describe()})")
        for contact_id in {c.id for wanted in run.enroll.values() for c, _, _, _ in wanted}:
            mine = views.setdefault(contact_id, [])
            mine[:] = [_real(v, real) for v in mine if v.id >= 0 or real.get(v.id) is not None]
        run.enroll.clear()


def _real(view: EnrollmentView, real: dict[int, int | None]) -> EnrollmentView:
    """``view`` with its real id in place of a provisional one."""
    if view.id >= 0:
        return view
    enrollment_id = real[view.id]
    assert enrollment_id is not None
    return EnrollmentView(enrollment_id, view.campaign, view.active, view.enrolled_at)


def _campaigns(
    deps: Deps, session: Session
) -> tuple[list[CampaignView], dict[str, tuple[CampaignRow, Campaign]]]:
    """The campaigns with triggers or exits, as views for ``decide`` and loaded by name."""
    views: list[CampaignView] = []
    loaded: dict[str, tuple[CampaignRow, Campaign]] = {}
    for row in store.automated_campaigns(session):
        value = deps.campaigns.get(row.id, row.version, row.definition)
        views.append(
            CampaignView(row.name, value.automation, row.status is CampaignStatus.ARCHIVED)
        )
        loaded[row.name] = (row, value)
    return views, loaded
