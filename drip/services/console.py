"""What the console's contact, send and audit pages show, as frozen values (read-only).

The campaign and queue pages reuse :func:`drip.services.stats.campaign_stats`
and :func:`drip.services.queue.queue_view`; the send page reuses
:func:`drip.services.audit.explain_data`; the contact's timeline is drawn by
:mod:`drip.replay.lanes`, the replay report's renderer. Times are UTC
values; pages format them in the zone they state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pendulum

from drip.domain.enums import ConsentEventKind
from drip.domain.window import rule_for
from drip.domain.zones import area_code_state, resolve_state, resolve_timezone
from drip.errors import NotFoundError
from drip.replay.lanes import FOOTER_RULES, Lane, Mark
from drip.services.audit import explain_data, reason_after_outcome
from drip.services.deps import Deps
from drip.services.enrollment_reasons import EnrollmentReason, enrollment_reasons
from drip.store import console as store
from drip.store import operators as operators_store
from drip.store import outbox
from drip.store import repository as repo
from drip.store.models import ConsentEvent, Contact, Message, ScheduledSend, SendDecision

__all__ = [
    "ContactPage",
    "ContactSummary",
    "SendPage",
    "WebhookBacklog",
    "WebhooksPanel",
    "contact_page",
    "local",
    "search",
    "send_page",
    "webhooks_panel",
]

RULE_WORDS = dict(FOOTER_RULES) | {
    "compliance": "compliance reply (opt-in, STOP, HELP, START confirmation): never a footer",
    "not_sms": "email: no text footer (the email carries its unsubscribe link)",
}
REVOKED = frozenset(
    {
        ConsentEventKind.REVOKED_KEYWORD,
        ConsentEventKind.REVOKED_PHRASE,
        ConsentEventKind.REVOKED_OPERATOR,
        ConsentEventKind.REVOKED_CARRIER,
    }
)
_COMPLIANCE_KINDS = frozenset(
    {"opt_in_confirmation", "opt_out_confirmation", "help", "resubscribe_confirmation"}
)


def local(at: datetime | None, zone: str) -> str:
    """``2026-03-02 10:00 EST`` in ``zone``; empty for None."""
    if at is None:
        return ""
    return f"{pendulum.instance(at).in_timezone(zone):%Y-%m-%d %H:%M %Z}"


@dataclass(frozen=True, slots=True)
class ContactSummary:
    id: int
    name: str
    phone: str | None
    email: str | None
    sms: str  # consent | opted_out | no_consent
    text_status: str


def sms_status(c: Contact) -> str:
    if c.sms_opted_out_at is not None:
        return "opted_out"
    return "consent" if c.sms_consent_at is not None else "no_consent"


def _summary(c: Contact) -> ContactSummary:
    return ContactSummary(
        c.id,
        f"{c.first_name} {c.last_name}".strip(),
        c.phone,
        c.email,
        sms_status(c),
        c.text_status.value,
    )


def search(
    deps: Deps, query: str, *, after: int | None = None, limit: int = 100
) -> tuple[ContactSummary, ...]:
    """Contacts matching ``query`` by name, phone or email: a page of ``limit``, by name.

    ``after``: the next page, the contacts sorting after that contact id's.
    """
    if not query.strip():
        return ()
    with deps.sessions() as session:
        found = store.search_contacts(session, query.strip(), limit, after)
        return tuple(_summary(c) for c in found)


@dataclass(frozen=True, slots=True)
class ConsentRow:
    at: datetime
    kind: str
    source: str
    evidence: str
    detail: str
    actor: str = ""


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One action a person took on the contact (console or CLI)."""

    at: datetime
    actor: str
    via: str
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class StateRow:
    state: str
    why: str  # "address" | "phone area code"
    window: str
    max_per_24h: int | None
    source: str


@dataclass(frozen=True, slots=True)
class TimelineRow:
    at: datetime
    what: str
    text: str
    send_id: int | None
    footer_rule: str | None


@dataclass(frozen=True, slots=True)
class ContactPage:
    contact: ContactSummary
    zone: str
    zone_source: str
    zones: tuple[str, ...]
    consent: tuple[ConsentRow, ...]
    consent_at: datetime | None
    consent_source: str | None
    consent_text: str | None
    opted_out_at: datetime | None
    opted_out_how: str | None
    email_opted_out: bool
    states: tuple[StateRow, ...]
    conversations: tuple[tuple[str, datetime | None, datetime | None], ...]
    #: Each enrollment with the lead event and rule that began and ended it.
    enrollments: tuple[EnrollmentReason, ...]
    timeline: tuple[TimelineRow, ...]
    lane: Lane
    actions: tuple[ActionRow, ...] = ()
    text_status_by: str | None = None


def _states(deps: Deps, c: Contact) -> tuple[StateRow, ...]:
    found: list[tuple[str, str]] = []
    address = resolve_state(c.state, None) if c.state else None
    if address:
        found.append((address, "address"))
    by_phone = area_code_state(c.phone)
    if by_phone and by_phone != address:
        found.append((by_phone, "phone area code"))
    elif by_phone:
        found[0] = (address or by_phone, "address and phone area code")
    rows = []
    for state, why in found:
        rule = rule_for(state, deps.account.state_rules)
        if rule is None:
            rows.append(StateRow(state, why, "no state rule: federal 08:00-21:00", None, ""))
            continue
        rows.append(
            StateRow(
                state,
                why,
                str(rule.window),
                rule.max_per_24h,
                # The rule pack gives each row its citation; older rules have none.
                str(getattr(rule, "source", "") or ""),
            )
        )
    return tuple(rows)


def contact_page(deps: Deps, contact_id: int, *, link: str = "/console/sends/{}") -> ContactPage:
    """Everything the contact page shows; ``link`` formats a send id into its page's URL."""
    with deps.sessions() as session:
        c = session.get(Contact, contact_id)
        if c is None:
            raise NotFoundError(f"no contact with id {contact_id}")
        zone = resolve_timezone(c.timezone, c.phone, deps.account.default_timezone)
        events = repo.consent_events_of(session, contact_id)
        messages = repo.messages_of(session, contact_id)
        sends = repo.sends_of_contact(session, contact_id)
        decisions = repo.decisions_of_sends(session, [s.id for s in sends])
        rules = store.footer_rules_of_contact(session, contact_id)
        conversations = tuple(
            (v.sender_phone, v.footer_last_sent_at, v.two_way_at)
            for v in store.conversations_of(session, contact_id)
        )
        enrollments = tuple(enrollment_reasons(deps, session, c))
        page_states = _states(deps, c)
        summary = _summary(c)
        consent = tuple(
            ConsentRow(
                e.at, e.kind.value, e.source, e.evidence or "", e.detail or "", e.actor or ""
            )
            for e in events
        )
        actions = tuple(
            ActionRow(a.at, a.actor, a.via, a.action, a.detail)
            for a in operators_store.actions_of_contact(session, contact_id)
        )
        concierge = deps.account.concierge_phone
        marks, rows = _timeline(
            zone.name,
            events=events,
            messages=messages,
            decisions=decisions,
            rules=rules,
            concierge=concierge,
            link=link,
        )
        start = min([c.created_at, *(m.at for m in marks)])
        end = max(
            [
                start + timedelta(days=1),
                *(m.at for m in marks),
                *(m.until for m in marks if m.until),
            ]
        )
        end += max(timedelta(days=1), (end - start) * 0.04)  # room for the last mark's label
        lane = Lane(
            key=str(c.id),
            name=summary.name,
            lines=(", ".join(x for x in (c.phone, c.email) if x),),
            zone=zone.name,
            start=start,
            end=end,
            marks=tuple(marks),
        )
        return ContactPage(
            contact=summary,
            zone=zone.name,
            zone_source=zone.source,
            # --- zones: the "rules" branch resolves a set of zones per area code; show it here ---
            zones=(zone.name,),
            consent=consent,
            consent_at=c.sms_consent_at,
            consent_source=c.sms_consent_source.value if c.sms_consent_source else None,
            consent_text=c.sms_consent_text,
            opted_out_at=c.sms_opted_out_at,
            opted_out_how=c.sms_opted_out_how,
            email_opted_out=c.email_opted_out,
            states=page_states,
            conversations=conversations,
            enrollments=enrollments,
            timeline=tuple(
                sorted(
                    [
                        *rows,
                        *(
                            TimelineRow(a.at, "action", _action_text(a), None, None)
                            for a in actions
                        ),
                    ],
                    key=lambda r: r.at,
                )
            ),
            lane=lane,
            actions=actions,
            text_status_by=c.text_status_by,
        )


def _action_text(a: ActionRow) -> str:
    return f"{a.action.replace('_', ' ')} by {a.actor} ({a.via}): {a.detail}"


def _timeline(
    zone: str,
    *,
    events: list[ConsentEvent],
    messages: list[Message],
    decisions: list[SendDecision],
    rules: dict[int, str],
    concierge: str | None,
    link: str,
) -> tuple[list[Mark], list[TimelineRow]]:
    marks: list[Mark] = []
    rows: list[TimelineRow] = []
    for e in events:
        text = f"consent {e.kind.value} via {e.source}" + (f" ({e.detail})" if e.detail else "")
        text += f": {e.evidence}" if e.evidence else ""
        text += f" [by {e.actor}]" if e.actor else ""
        marks.append(
            Mark(e.at, "event", "event", "muted", "consent", "", e.kind.value,
                 f"{local(e.at, zone)}\n{text}")
        )  # fmt: skip
        rows.append(TimelineRow(e.at, "consent", text, None, None))
    for m in messages:
        if m.direction == "inbound":
            marks.append(
                Mark(m.created_at, "event", "event", "muted", "reply", m.channel.value, "inbound",
                     f"{local(m.created_at, zone)}\nfrom the contact: {m.body}")
            )  # fmt: skip
            rows.append(TimelineRow(m.created_at, "inbound", m.body, None, None))
            continue
        at = m.sent_at or m.created_at
        kind = m.kind.value if m.kind else "manual"
        rule = rules.get(m.send_id) if m.send_id else None
        if m.channel.value == "email":
            shape, color = "email", "email"
        elif kind in _COMPLIANCE_KINDS:
            shape, color = "compliance", "compliance"
        else:
            shape = "footer" if m.footer else "nofooter"
            color = "concierge" if concierge and m.sender_phone == concierge else "agent"
        footer = "footer" if m.footer else "no footer"
        why = f"{footer} {rule}: {RULE_WORDS.get(rule, '')}" if rule else footer
        status = m.status + (f" {m.error_code}" if m.error_code else "")
        marks.append(
            Mark(at, "message", shape, color, kind, m.channel.value, "sent",
                 f"{local(at, zone)}  {kind} {m.channel.value} from {m.from_addr} ({status})\n"
                 f"{why}\n\u201c{m.body[:160]}\u201d",
                 href=link.format(m.send_id) if m.send_id else None,
                 label=rule if rule and rule.startswith("F") else "")
        )  # fmt: skip
        rows.append(
            TimelineRow(at, f"sent {kind} {m.channel.value} ({status})", m.body, m.send_id, rule)
        )
    for d in decisions:
        if d.outcome == "sent":
            continue
        until = f" until {local(d.deferred_until, zone)}" if d.deferred_until else ""
        marks.append(
            Mark(d.at, "decision", d.outcome, "skip", "decision", "", d.outcome,
                 f"{local(d.at, zone)}  send {d.send_id} {d.outcome.upper()}{until}\n"
                 f"{reason_after_outcome(d.outcome, d.reason)}",
                 href=link.format(d.send_id), until=d.deferred_until)
        )  # fmt: skip
        rows.append(
            TimelineRow(d.at, d.outcome, reason_after_outcome(d.outcome, d.reason), d.send_id, None)
        )
    return marks, rows


@dataclass(frozen=True, slots=True)
class DecisionRow:
    at: datetime
    outcome: str
    code: str
    reason: str
    footer: bool | None
    footer_rule: str | None
    rule_words: str
    deferred_until: datetime | None


@dataclass(frozen=True, slots=True)
class SendPage:
    send: dict[str, Any]
    contact: ContactSummary
    zone: str
    decisions: tuple[DecisionRow, ...]
    consent_then: ConsentRow | None
    conversation: tuple[str, datetime | None, datetime | None] | None
    interval_days: int


def send_page(deps: Deps, send_id: int) -> SendPage:
    """The ``drip explain`` story of one send, with the rule, its source and the state it used."""
    data = explain_data(deps, send_id)
    with deps.sessions() as session:
        contact_id = data["contact_id"]
        assert isinstance(contact_id, int)
        c = session.get(Contact, contact_id)
        assert c is not None  # a foreign key guarantees it
        zone = resolve_timezone(c.timezone, c.phone, deps.account.default_timezone).name
        trail = repo.decisions_of(session, send_id)
        events = repo.consent_events_of(session, contact_id)
        send_row = session.get(ScheduledSend, send_id)
        message_id = send_row.message_id if send_row is not None else None
        message = session.get(Message, message_id) if message_id is not None else None
        sender = message.sender_phone if message is not None else None
        conversation = None
        for v in store.conversations_of(session, contact_id):
            if sender is None or v.sender_phone == sender:
                conversation = (v.sender_phone, v.footer_last_sent_at, v.two_way_at)
                break
        decided = trail[-1].at if trail else None
        then = [e for e in events if decided is None or e.at <= decided]
        consent_then = (
            ConsentRow(then[-1].at, then[-1].kind.value, then[-1].source,
                       then[-1].evidence or "", then[-1].detail or "")
            if then
            else None
        )  # fmt: skip
        summary = _summary(c)
    campaign_name = data.get("campaign")
    interval = 30
    if isinstance(campaign_name, str):
        with deps.sessions() as session:
            row = repo.campaign_by_name(session, campaign_name)
            definition = row.definition if row is not None else {}
        interval = int((definition.get("opt_out") or {}).get("interval_days", 30))
    rows = tuple(
        DecisionRow(
            d.at,
            d.outcome,
            d.code,
            reason_after_outcome(d.outcome, d.reason),
            d.footer,
            d.footer_rule,
            RULE_WORDS.get(d.footer_rule or "", ""),
            d.deferred_until,
        )
        for d in trail
    )
    return SendPage(data, summary, zone, rows, consent_then, conversation, interval)


@dataclass(frozen=True, slots=True)
class WebhookBacklog:
    """One webhook's share of the outbox (or the whole outbox, named ``all``)."""

    name: str
    events: tuple[str, ...]
    pending: int
    retrying: int
    dead: int
    oldest_pending_at: datetime | None
    oldest_pending_age: str


@dataclass(frozen=True, slots=True)
class WebhooksPanel:
    """The front page's webhooks panel: backlog per webhook and overall, the newest dead events."""

    configured: bool
    targets: tuple[WebhookBacklog, ...]
    overall: WebhookBacklog
    dead: tuple[outbox.DeadEvent, ...]


def age(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``: how long something has waited."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _backlog(
    name: str, events: tuple[str, ...], groups: list[outbox.BacklogGroup], now: datetime
) -> WebhookBacklog:
    pending = [g for g in groups if g.state == "pending"]
    oldest = min((g.oldest_at for g in pending if g.oldest_at is not None), default=None)
    return WebhookBacklog(
        name=name,
        events=events,
        pending=sum(g.events for g in pending),
        retrying=sum(g.retrying for g in pending),
        dead=sum(g.events for g in groups if g.state == "dead"),
        oldest_pending_at=oldest,
        oldest_pending_age=age((now - oldest).total_seconds()) if oldest is not None else "",
    )


def webhooks_panel(deps: Deps, now: datetime, dead_shown: int = 10) -> WebhooksPanel:
    """The outbox per configured webhook and overall, and the ``dead_shown`` newest dead events.

    An event counts for a webhook when its type is one the webhook takes and
    that webhook has not answered it yet; ``overall`` counts each event once.
    """
    with deps.sessions() as session:
        found = outbox.backlog(session, dead_shown)
    groups = list(found.groups)
    targets = tuple(
        _backlog(
            w.name,
            tuple(sorted(w.events)),
            [g for g in groups if g.type in w.events and w.name not in g.delivered_to],
            now,
        )
        for w in deps.account.webhooks
    )
    return WebhooksPanel(
        configured=bool(deps.account.webhooks),
        targets=targets,
        overall=_backlog("all", (), groups, now),
        dead=found.dead,
    )
