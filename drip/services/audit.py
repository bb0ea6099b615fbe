"""Why a send went out or did not, and a contact's whole timeline, in plain words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from drip.domain.enums import CampaignStatus
from drip.domain.zones import resolve_states, resolve_timezone
from drip.errors import NotFoundError
from drip.services.deps import Deps
from drip.services.events import describe_event
from drip.services.status import status_meaning
from drip.store import agents as agents_store
from drip.store import events as events_store
from drip.store import operators as operators_store
from drip.store import repository as repo
from drip.store.models import Campaign as CampaignRow
from drip.store.models import Contact, Enrollment, Message, ScheduledSend

#: Statuses that say what they mean; the others get their meaning in the timeline.
PLAIN_STATUSES = frozenset({"queued", "sent", "delivered", "undelivered", "failed", "received"})


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    what: str  # consent | message_in | message_out | decision | erased
    text: str


def _local(at: datetime, tz: str) -> str:
    # zoneinfo for the zone names drip stores (pendulum's Timezone is a ZoneInfo:
    # the same text); pendulum, about 12 ms to import, only for names it alone takes.
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        import pendulum

        return f"{pendulum.instance(at).in_timezone(tz):%Y-%m-%d %H:%M %Z}"
    return f"{at.astimezone(zone):%Y-%m-%d %H:%M %Z}"


def explain(deps: Deps, send_id: int) -> list[str]:
    """Every decision a scheduled send went through, each with time and reason."""
    with deps.sessions() as session:
        send = session.get(ScheduledSend, send_id)
        if send is None:
            raise NotFoundError(f"no scheduled send with id {send_id}")
        contact = session.get(Contact, send.contact_id)
        assert contact is not None  # a foreign key guarantees it
        zone = resolve_timezone(contact.timezone, contact.phone, deps.account.default_timezone)
        tz = zone.name
        what = f"{send.kind.value} {send.channel.value}"
        campaign = session.get(CampaignRow, send.campaign_id) if send.campaign_id else None
        if send.step_id is not None:
            what += f", step {send.step_id!r} of {campaign.name if campaign else '?'}"
        lines = [
            f"send {send.id}: {what} to contact {contact.id} ({contact.first_name} "
            f"{contact.last_name}), zone {tz}",
            f"  {where_words(contact, zone.describe(), deps)}",
            f"  due {_local(send.original_due_at, tz)}; now {send.state.value}"
            + (f", due {_local(send.due_at, tz)}" if send.state.value == "pending" else ""),
        ]
        if (
            campaign is not None
            and campaign.status is CampaignStatus.PAUSED
            and send.state.value == "pending"
        ):
            since = _local(campaign.status_changed_at, tz) if campaign.status_changed_at else "?"
            lines.append(
                f"  HELD: campaign {campaign.name} is paused (since {since}); "
                "`drip campaigns resume` releases it"
            )
        if send.enrollment_id is not None:
            enrollment = session.get(Enrollment, send.enrollment_id)
            if enrollment is not None:
                lines.extend(f"  {line}" for line in enrollment_words(session, enrollment, tz))
        decisions = repo.decisions_of(session, send_id)
        if not decisions and send.decision_reason:
            lines.append(f"  {send.decision_reason}")
        for d in decisions:
            lines.append(
                f"  {_local(d.at, tz)}  {d.outcome:<11} {reason_after_outcome(d.outcome, d.reason)}"
            )
        if send.message_id is not None:
            message = session.get(Message, send.message_id)
            if message is not None:
                lines.append(
                    f"  message {message.id}: {message.status}, provider id "
                    f"{message.provider_sid or 'none'}, "
                    f"{message.segments or '?'} segment(s), footer {'yes' if message.footer else 'no'}"
                )
                lines.append(f"  text: {message.body}")
        if send.state.value == "unknown":
            lines.append(
                "  UNKNOWN: the worker stopped between the provider call and the record; "
                "check the provider's log. drip never resends it."
            )
        return lines


def _body(body: str) -> str:
    """A message's text, or what removed it (an erasure, or ``drip purge``)."""
    return body if body else "(body removed)"


def history(deps: Deps, contact_id: int) -> tuple[Contact, str, list[TimelineEntry]]:
    """A contact's timeline: consent changes, messages in and out, decisions not to send."""
    with deps.sessions() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        zone = resolve_timezone(contact.timezone, contact.phone, deps.account.default_timezone)
        tz = zone.name
        entries: list[TimelineEntry] = [
            TimelineEntry(contact.created_at, "zone", where_words(contact, zone.describe(), deps))
        ]
        for event in repo.consent_events_of(session, contact_id):
            detail = f" ({event.detail})" if event.detail else ""
            by = f" [by {event.actor}]" if event.actor else ""
            entries.append(
                TimelineEntry(
                    event.at,
                    "consent",
                    f"consent {event.kind.value} via {event.source}{detail}: "
                    f"{event.evidence or ''}{by}",
                )
            )
        for action in operators_store.actions_of_contact(session, contact_id):
            entries.append(
                TimelineEntry(
                    action.at,
                    "action",
                    f"{action.action.replace('_', ' ')} by {action.actor} ({action.via}): "
                    f"{action.detail}",
                )
            )
        for m in repo.messages_of(session, contact_id):
            if m.direction == "inbound":
                entries.append(TimelineEntry(m.created_at, "message_in", f"<- {_body(m.body)}"))
            else:
                footer = " [footer]" if m.footer else ""
                kind = m.kind.value if m.kind else "?"
                status = m.status + (f" {m.error_code}" if m.error_code else "")
                if m.status not in PLAIN_STATUSES and (meaning := status_meaning(m.status)):
                    status += f": {meaning}"
                entries.append(
                    TimelineEntry(
                        m.sent_at or m.created_at,
                        "message_out",
                        f"-> {kind} {m.channel.value} from {m.from_addr} ({status}){footer}: "
                        f"{_body(m.body)}",
                    )
                )
        for enrollment, name in events_store.enrollments_of(session, contact_id):
            entries.extend(enrollment_entries(session, enrollment, name))
        moves = agents_store.moves_of(session, contact_id)
        names = agents_store.agent_names(
            session,
            [i for mv in moves for i in (mv.from_agent_id, mv.to_agent_id) if i is not None],
        )
        for mv in moves:
            before = names.get(mv.from_agent_id, "?") if mv.from_agent_id else "the concierge"
            after = names.get(mv.to_agent_id, "?") if mv.to_agent_id else "the concierge"
            because = describe_event(session, mv.event_id) if mv.event_id else None
            entries.append(
                TimelineEntry(
                    mv.at, "assigned", f"assigned {before} -> {after} ({because or mv.why})"
                )
            )
        if contact.erased_at is not None:
            entries.append(
                TimelineEntry(
                    contact.erased_at,
                    "erased",
                    f"erased by {contact.erased_by}: personal data removed, opt-outs kept",
                )
            )
        sends = repo.sends_of_contact(session, contact_id)
        for d in repo.decisions_of_sends(session, [s.id for s in sends]):
            if d.outcome in ("sent",):
                continue
            said = f"{d.outcome}: {reason_after_outcome(d.outcome, d.reason)}"
            entries.append(TimelineEntry(d.at, "decision", f"send {d.send_id} {said}"))
        for s in sends:
            if s.state.value == "pending":
                entries.append(
                    TimelineEntry(
                        s.due_at,
                        "scheduled",
                        f"send {s.id} scheduled: {s.kind.value} {s.channel.value} step {s.step_id}",
                    )
                )
        session.expunge(contact)
    entries.sort(key=lambda e: e.at)
    return contact, tz, entries


def enrollment_words(session: Session, enrollment: Enrollment, tz: str) -> list[str]:
    """How an enrollment began and ended, naming the lead events that did it."""
    campaign = session.get(CampaignRow, enrollment.campaign_id)
    name = campaign.name if campaign else "?"
    lines = [
        f"enrollment {enrollment.id} in {name}: {_began(session, enrollment)}, "
        f"{_local(enrollment.enrolled_at, tz)}"
    ]
    if enrollment.stopped_at is not None:
        lines.append(
            f"enrollment {enrollment.id} {_ended(session, enrollment)}, "
            f"{_local(enrollment.stopped_at, tz)}"
        )
    return lines


def enrollment_entries(session: Session, enrollment: Enrollment, name: str) -> list[TimelineEntry]:
    """An enrollment's start and end as timeline entries."""
    entries = [
        TimelineEntry(enrollment.enrolled_at, "enrolled", f"{name}: {_began(session, enrollment)}")
    ]
    if enrollment.stopped_at is not None:
        entries.append(
            TimelineEntry(enrollment.stopped_at, "ended", f"{name}: {_ended(session, enrollment)}")
        )
    return entries


def _began(session: Session, enrollment: Enrollment) -> str:
    if enrollment.event_id is None:
        return "enrolled"
    event = describe_event(session, enrollment.event_id) or f"event {enrollment.event_id}"
    return f"enrolled because {event}"


def _ended(session: Session, enrollment: Enrollment) -> str:
    status = enrollment.status.value
    if enrollment.stop_event_id is not None:
        event = describe_event(session, enrollment.stop_event_id)
        said = event or f"event {enrollment.stop_event_id}"
        if enrollment.stop_reason == "replaced":
            return f"{status}: replaced by a higher-priority campaign of its group after {said}"
        return f"{status}: ended by {said}"
    return f"{status}: {enrollment.stop_reason or 'no reason recorded'}"


def where_words(contact: Contact, zone: str, deps: Deps) -> str:
    """The contact's zone (or zone set) and states, and the state rules that apply, with sources."""
    states = resolve_states(contact.state, contact.phone)
    rules = [
        f"{r.describe()} ({r.cited})"
        for r in deps.account.state_rules
        if r.enabled and r.state in states
    ]
    text = f"time zone {zone}; states: {', '.join(states) or 'none known'}"
    return text + (f"; state rules: {' | '.join(rules)}" if rules else "")


def local_time(at: datetime, tz: str) -> str:
    return _local(at, tz)


def explain_data(deps: Deps, send_id: int) -> dict[str, object]:
    """The send, its decisions and its message as one JSON-ready document (``--json``)."""
    with deps.sessions() as session:
        send = session.get(ScheduledSend, send_id)
        if send is None:
            raise NotFoundError(f"no scheduled send with id {send_id}")
        campaign = session.get(CampaignRow, send.campaign_id) if send.campaign_id else None
        message = session.get(Message, send.message_id) if send.message_id else None
        return {
            "send_id": send.id,
            "contact_id": send.contact_id,
            "kind": send.kind.value,
            "channel": send.channel.value,
            "campaign": campaign.name if campaign else None,
            "campaign_status": campaign.status.value if campaign else None,
            "step": send.step_id,
            "state": send.state.value,
            "held": bool(
                campaign is not None
                and campaign.status is CampaignStatus.PAUSED
                and send.state.value == "pending"
            ),
            "original_due_at": send.original_due_at.isoformat(),
            "due_at": send.due_at.isoformat(),
            "decision_code": send.decision_code,
            "decision_reason": send.decision_reason,
            "decisions": [
                {
                    "at": d.at.isoformat(),
                    "outcome": d.outcome,
                    "code": d.code,
                    "reason": d.reason,
                    "footer": d.footer,
                    "deferred_until": d.deferred_until.isoformat() if d.deferred_until else None,
                }
                for d in repo.decisions_of(session, send_id)
            ],
            "message": None
            if message is None
            else {
                "id": message.id,
                "status": message.status,
                "provider_sid": message.provider_sid,
                "segments": message.segments,
                "footer": message.footer,
                "body": message.body,
                "sent_at": message.sent_at.isoformat() if message.sent_at else None,
            },
        }


def reason_after_outcome(outcome: str, reason: str) -> str:
    """``reason`` without the ``outcome:`` it often starts with, for a line that says the
    outcome already ("held  campaign ... was paused", not "held  held: campaign ...")."""
    head = f"{outcome}: "
    return reason[len(head) :] if reason.startswith(head) else reason
