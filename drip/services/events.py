"""Lead events in: one path behind ``POST /events``, ``drip events ingest`` and the Celery task.

:func:`ingest` checks each event (:mod:`drip.services.event_input`), then,
in one transaction, refuses those that name nobody or an unknown agent and
stores the others in the inbox (unique on the producer's id: a repeated id
with the same body is a ``duplicate`` and changes nothing, with another body
a ``conflict``; a repeat of an event stored more than :data:`RETAKE_AFTER`
ago and never applied applies it). Then each stored event is applied, in
``occurred_at`` order: the contact's fields are updated (a field set by a
newer event is not moved back), an assignment is made, and the campaigns'
triggers and exits are asked what this event does (:func:`drip.domain.triggers.decide`); an
enrollment or an exit records the event's id. See docs/campaigns.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from drip.domain.enums import CampaignStatus, ConsentSource
from drip.domain.triggers import (
    CampaignView,
    Decision,
    EnrollmentView,
    LeadEvent,
    decide,
)
from drip.errors import DripError
from drip.services import assignment
from drip.services.deps import Deps
from drip.services.event_apply import (
    CRM_FIELDS,
    PROFILE_FIELDS,
    apply_actions,
    apply_fields,
    contact_view,
    end_enrollments,
)
from drip.services.event_input import ContactRef, Invalid, ParsedEvent, parse_event, raw_phones
from drip.services.event_timing import RETAKE_AFTER
from drip.services.events_batch import BatchApplier
from drip.store import events as store
from drip.store.models import Contact, Enrollment

log = structlog.get_logger("drip.events")

MAX_BATCH = 500
#: Events :func:`apply_unapplied` takes at a time.
MAX_SWEEP = 5000
#: Outcomes of one event, as counted by ``drip events ingest``.
ACCEPTED, DUPLICATE, CONFLICT, INVALID, FAILED = (
    "accepted",
    "duplicate",
    "conflict",
    "invalid",
    "failed",
)
DEFAULT_CONSENT_TEXT = "consent collected by the CRM (lead.created sms_consent: true)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of the event at ``index`` of the batch."""

    index: int
    id: str | None
    status: str
    message: str = ""
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.message:
            out["message"] = self.message
        if self.field:
            out["field"] = self.field
        return out


@dataclass(slots=True)
class IngestResult:
    outcomes: list[Outcome] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(o.status for o in self.outcomes)

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]


@dataclass(slots=True)
class StoredBatch:
    """A batch checked and stored, not yet applied: the outcomes of the events refused
    (by index in the batch) and the stored events with their inbox rows' ids, in
    ``occurred_at`` order."""

    outcomes: dict[int, Outcome]
    events: list[tuple[ParsedEvent, int]]
    #: The names of contacts its events make or give (as :class:`_Known` keys): a batch
    #: stored before this one is applied may name them (``store_batch(earlier=...)``).
    made: frozenset[str] = frozenset()


def ingest(
    deps: Deps,
    events: Sequence[object],
    now: datetime,
    *,
    on_applied: Callable[[int], None] | None = None,
) -> IngestResult:
    """Check, store and apply ``events``; one :class:`Outcome` per event, in input order."""
    return apply_stored(deps, store_batch(deps, events, now), now, on_applied=on_applied)


def store_batch(
    deps: Deps, events: Sequence[object], now: datetime, *, earlier: AbstractSet[str] = frozenset()
) -> StoredBatch:
    """Check ``events`` and store the good ones in the inbox, in one transaction.

    ``earlier``: the contacts (:attr:`StoredBatch.made`) that a batch stored and not
    yet applied will make, so that this batch may name them.
    """
    outcomes: dict[int, Outcome] = {}
    stored: list[ParsedEvent] = []
    retaken_ids: dict[str, int] = {}
    with deps.sessions.begin() as session:
        # The numbers already on contacts are not validated again (they were when stored).
        phones = store.contact_keys(session, [], sorted(raw_phones(events)), [])
        parsed = [parse_event(i, raw, phones) for i, raw in enumerate(events)]
        for p in parsed:
            if isinstance(p, Invalid):
                outcomes[p.index] = Outcome(p.index, p.id, INVALID, p.message, p.field)
        good = [p for p in parsed if isinstance(p, ParsedEvent)]
        digests = store.existing_digests(session, (p.id for p in good))
        retaken = store.retake_unapplied(
            session, [p.id for p in good if digests.get(p.id) == p.digest], now, now - RETAKE_AFTER
        )
        rows: list[dict[str, Any]] = []
        names = _Known(session, good, phones, earlier)
        for p in good:
            if p.id in retaken:
                # Stored once and never applied: this repeat applies it (a first time).
                log.warning("inbox_event_retaken", event_id=p.id, type=p.type)
                if p.type == "lead.created":
                    names.created(p.contact)  # the batch's later events may name its lead
                stored.append(p)
                retaken_ids[p.id] = retaken.pop(p.id)
                continue
            known = digests.get(p.id)
            if known is not None:
                status = DUPLICATE if known == p.digest else CONFLICT
                why = "already received" if status == DUPLICATE else "id reused with another body"
                outcomes[p.index] = Outcome(p.index, p.id, status, why, "id")
                continue
            problem = _reference_problem(names, p)
            if problem is not None:
                outcomes[p.index] = Outcome(p.index, p.id, INVALID, problem[1], problem[0])
                continue
            digests[p.id] = p.digest
            stored.append(p)
            rows.append(
                {
                    "event_id": p.id,
                    "type": p.type,
                    "occurred_at": p.stamp,
                    "contact_ref": p.contact.as_dict(),
                    "data": p.data,
                    "digest": p.digest,
                    "received_at": now,
                }
            )
        row_ids = store.add_events(session, rows) | retaken_ids
    for p in stored:
        names.named_after(p)
    ordered = sorted(stored, key=lambda e: (e.occurred_at, e.index))
    return StoredBatch(outcomes, [(p, row_ids[p.id]) for p in ordered], frozenset(names.made))


def apply_stored(
    deps: Deps,
    batch: StoredBatch,
    now: datetime,
    *,
    on_applied: Callable[[int], None] | None = None,
) -> IngestResult:
    """Apply a stored batch's events, in order; one :class:`Outcome` per event of the
    batch (the refused ones' too), in input order."""
    outcomes = dict(batch.outcomes)

    def told(p: ParsedEvent, status: str, said: str) -> None:
        outcomes[p.index] = Outcome(p.index, p.id, status, said)
        if on_applied is not None:
            on_applied(1)

    BatchApplier(deps, now, lambda p, row_id: apply_event(deps, p, row_id, now), told).apply(
        batch.events
    )
    result = IngestResult([outcomes[i] for i in sorted(outcomes)])
    log.info("events_ingested", **dict(result.counts()))
    return result


def apply_unapplied(deps: Deps, now: datetime, *, limit: int = MAX_SWEEP) -> IngestResult:
    """Apply up to ``limit`` events stored more than :data:`RETAKE_AFTER` ago and never
    applied (a process stopped between storing and applying them), in ``occurred_at``
    order, as the producer's repeat of each would; an :class:`Outcome` each, in that
    order. Younger ones may still be in the hands of the process that stored them."""
    with deps.sessions.begin() as session:
        taken = [
            (
                ParsedEvent(
                    i,
                    row.event_id,
                    row.type,
                    row.occurred_at,
                    ContactRef(**row.contact_ref),
                    dict(row.data),
                    row.digest,
                ),
                row.id,
            )
            for i, row in enumerate(store.take_unapplied(session, now, now - RETAKE_AFTER, limit))
        ]
    for p, _ in taken:
        log.warning("inbox_event_retaken", event_id=p.id, type=p.type, by="sweep")
    return apply_stored(deps, StoredBatch({}, taken), now)


class _Known:
    """The contacts and agents a batch names, read with one query per kind of identity."""

    def __init__(
        self,
        session: Session,
        events: Sequence[ParsedEvent],
        phones: set[str],
        earlier: AbstractSet[str],
    ) -> None:
        """``phones``: numbers already known to be on contacts (not asked again);
        ``earlier``: keys of contacts that stored, unapplied events will make."""
        refs = [p.contact for p in events]
        self.session = session
        self.made: set[str] = set()  # keys of the contacts this batch's events make
        self.keys = (
            phones
            | earlier
            | store.contact_keys(
                session,
                [r.external_id for r in refs if r.external_id],
                [r.phone for r in refs if r.phone and r.phone not in phones],
                [r.email for r in refs if r.email],
            )
        )
        self.agents: dict[str, bool] = {}

    def names_someone(self, c: ContactRef) -> bool:
        return bool(
            (c.external_id and c.external_id in self.keys)
            or (c.phone and c.phone in self.keys)
            or (c.email and "@" + c.email.lower() in self.keys)
        )

    def created(self, c: ContactRef) -> None:
        keys = {k for k in (c.external_id, c.phone) if k}
        if c.email:
            keys.add("@" + c.email.lower())
        self.keys |= keys
        self.made |= keys

    def named_after(self, p: ParsedEvent) -> None:
        """Add to :attr:`made` the names applying ``p`` may give its contact: an external id
        it gives (set on a contact without one), an email it sets. A batch stored before
        this one is applied may name the contact by them, as it could once it is applied."""
        if p.contact.external_id:
            self.made.add(p.contact.external_id)
        email = p.data.get("email") if p.type in ("lead.created", "lead.updated") else None
        if isinstance(email, str):
            self.made.add("@" + email.lower())

    def agent(self, ref: str) -> bool:
        if ref not in self.agents:
            self.agents[ref] = store.agent_by_ref(self.session, ref) is not None
        return self.agents[ref]


def _reference_problem(known: _Known, p: ParsedEvent) -> tuple[str, str] | None:
    """(field, message) when the event names nobody, or an agent that does not exist."""
    if p.type not in {"agent.deactivated", "lead.created"} and not known.names_someone(p.contact):
        return "contact", "names no contact (only lead.created makes one)"
    for name in ("agent", "to"):
        ref = p.data.get(name)
        spread = ref in assignment.SPREADS_AND_CONCIERGE
        if isinstance(ref, str) and not spread and not known.agent(ref):
            return f"data.{name}", f"no agent {ref!r}"
    if p.type == "lead.created" and p.data.get("sms_consent") and not p.contact.phone:
        return "data.phone", "sms_consent needs a phone"
    if p.type == "lead.created":
        known.created(p.contact)
    return None


def apply_event(deps: Deps, p: ParsedEvent, row_id: int, now: datetime) -> str:
    """Apply one stored event; what it did, in words (also kept on its inbox row)."""
    if p.type == "agent.deactivated":
        done = assignment.deactivate(
            deps,
            str(p.data["agent"]),
            str(p.data["to"]),
            now,
            why=f"{p.type} {p.id}",
            event_id=p.id,
        )
        with deps.sessions.begin() as session:
            store.mark_processed(session, row_id, None, done.message, now)
        return done.message
    notes: list[str] = []
    contact_id = _contact_for(deps, p, now, notes)
    with deps.sessions.begin() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        notes.extend(apply_fields(contact, p, now))
        notes.extend(apply_actions(deps, session, contact, p, now))
        decision = _decide(deps, session, contact, p, now)
        notes.extend(end_enrollments(session, decision, p, now))
    notes.extend(_enroll(deps, contact_id, decision, p, now))
    said = "; ".join(notes) or "no change"
    with deps.sessions.begin() as session:
        store.mark_processed(session, row_id, contact_id, said, now)
    return said


def _contact_for(deps: Deps, p: ParsedEvent, now: datetime, notes: list[str]) -> int:
    c = p.contact
    with deps.sessions() as session:
        found = store.contact_by_ref(session, c.external_id, c.phone, c.email)
        found_id = found.id if found is not None else None
    if found_id is not None and not (p.type == "lead.created" and p.data.get("sms_consent")):
        return found_id
    if found_id is None and p.type != "lead.created":
        # Checked when stored; gone since, or the lead.created that was to make it failed.
        raise DripError(f"event {p.id} names no contact")
    from drip.services.consent import ConsentEvidence
    from drip.services.contacts import ContactInput, add_contact

    data = p.data
    source = ConsentSource.API if found_id is not None else ConsentSource.REGISTRATION
    evidence = (
        ConsentEvidence(
            p.occurred_at, source, str(data.get("consent_text") or DEFAULT_CONSENT_TEXT)
        )
        if data.get("sms_consent")
        else None
    )
    agent = data.get("agent")
    added = add_contact(
        deps,
        ContactInput(
            first_name=str(data.get("first_name") or ""),
            last_name=str(data.get("last_name") or ""),
            phone=c.phone,
            email=c.email,
            state=data.get("state"),
            timezone=data.get("timezone"),
            agent_phone=agent if isinstance(agent, str) and agent.startswith("+") else None,
            source=source,
        ),
        evidence,
        now,
    )
    notes.append("contact created" if added.created else "contact found")
    if added.consent_recorded:
        notes.append("sms consent recorded")
    return added.contact_id


def _decide(
    deps: Deps, session: Session, contact: Contact, p: ParsedEvent, now: datetime
) -> Decision:
    campaigns: list[CampaignView] = []
    for row in store.automated_campaigns(session):
        value = deps.campaigns.get(row.id, row.version, row.definition)
        campaigns.append(
            CampaignView(row.name, value.automation, row.status is CampaignStatus.ARCHIVED)
        )
    if not campaigns:
        return Decision()
    enrollments = [
        EnrollmentView(e.id, name, e.status.value == "active", e.enrolled_at)
        for e, name in store.enrollments_of(session, contact.id)
    ]
    return decide(
        LeadEvent(p.id, p.type, p.data), contact_view(contact), campaigns, enrollments, now
    )


def _enroll(
    deps: Deps, contact_id: int, decision: Decision, p: ParsedEvent, now: datetime
) -> list[str]:
    from drip.services.enrollment import enroll

    notes: list[str] = []
    for wanted in decision.enroll:
        result = enroll(deps, contact_id, wanted.campaign, now)
        if result.created and result.enrollment_id is not None:
            with deps.sessions.begin() as session:
                row = session.get(Enrollment, result.enrollment_id)
                if row is not None:
                    row.event_id = p.id
            notes.append(f"enrolled in {wanted.campaign} ({wanted.rule.describe()})")
    return notes


def describe_event(session: Session, event_id: str) -> str | None:
    """``lead.updated 9f3… set stage archive``: an inbox event in words, for explain."""
    row = store.event_by_id(session, event_id)
    if row is None:
        return None
    short = event_id if len(event_id) <= 8 else event_id[:6] + "…"
    sets = row.type in ("lead.created", "lead.updated")
    what = ", ".join(
        f"set {k} {' '.join(v) if isinstance(v, list) else v}"
        for k, v in sorted(row.data.items())
        if sets and k in (*PROFILE_FIELDS, *CRM_FIELDS)
    ) or ", ".join(f"{k} {v}" for k, v in sorted(row.data.items()))
    return f"{row.type} {short}" + (f" {what}" if what else "")
