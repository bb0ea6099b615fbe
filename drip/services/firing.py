"""Fire due sends: re-check everything at fire time, send at most once, record why.

A batch goes through three short transactions so that no database lock is
held while a provider is called:

1. claim: ``queued -> sending`` with a conditional update; a second delivery
   of the same task wins nothing and does nothing;
2. gather: read contacts, agents, conversations, recent sends, campaigns;
3. record: after the provider calls, one transaction stores every outcome.

A crash between a provider call and step 3 leaves rows in ``sending``;
``dispatch.recover_stale`` later marks them ``unknown`` and reports them. They
are never resent: a send may be lost (and is then reported), never doubled.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from time import monotonic

import structlog
from sqlalchemy import tuple_, update
from sqlalchemy.orm import Session

from drip.domain.campaign import Campaign
from drip.domain.enums import (
    Channel,
    ConsentEventKind,
    OptOutMode,
    SendState,
    TextStatus,
)
from drip.domain.message import ACCOUNT_TEMPLATE_VARIABLES, render, sms_size, with_footer
from drip.domain.policy import (
    DAY,
    ContactState,
    ConversationState,
    Decision,
    Defer,
    Outgoing,
    Send,
    Skip,
    decide,
)
from drip.domain.zones import resolve_states, resolve_timezone
from drip.errors import TransportError
from drip.services import carrier, fire_checks, unsubscribe
from drip.services.deps import Deps
from drip.services.senders import Sender, missing_sender_reason, resolve_sender, template_values
from drip.store import claims
from drip.store import repository as repo
from drip.store.models import (
    Agent,
    ConsentEvent,
    Contact,
    Conversation,
    Message,
    ScheduledSend,
    SendDecision,
)
from drip.transports.base import ErrorClass, OutboundEmail, OutboundSms, SmsSendError

log = structlog.get_logger("drip.fire")


@dataclass(frozen=True, slots=True)
class FireResult:
    """What happened to one scheduled send in this fire."""

    send_id: int
    outcome: str  # sent | skipped | deferred | failed
    code: str
    reason: str
    footer: bool | None = None
    deferred_until: datetime | None = None
    message_id: int | None = None


@dataclass
class _Prepared:
    """One claimed send with everything needed to decide and send it."""

    send: ScheduledSend
    contact: Contact
    campaign: Campaign | None
    sender: Sender | None
    #: False once the enrollment ended (stop_on_reply, a reply between claim and fire).
    enrollment_active: bool = True
    #: Set when the send cannot even be prepared (e.g. a stored campaign that no
    #: longer validates): it fails alone instead of stranding its batch.
    problem: str | None = None


@dataclass
class _Outcome:
    prepared: _Prepared
    decision: Decision | None
    result: FireResult
    message: Message | None = None
    carrier_opt_out: bool = False
    undeliverable_code: int | None = None


def fire_batch(deps: Deps, ids: list[int], now: datetime) -> list[FireResult]:
    """Fire the given queued sends; ids another worker already took are ignored."""
    with deps.sessions() as session:
        won = claims.start_sending_many(session, ids, now)
    if not won:
        return []
    with deps.sessions.begin() as session:
        prepared, states = _gather(deps, session, won, now)
        session.expunge_all()
    outcomes: list[_Outcome] = []
    read_at = monotonic()
    for index, p in enumerate(prepared):
        if monotonic() - read_at >= REFRESH_AFTER_SECONDS:
            _refresh(deps, prepared[index:])
            read_at = monotonic()
        outcomes.append(_fire_guarded(deps, p, states, now))
    _record(deps, outcomes, now)
    return [o.result for o in outcomes]


#: A batch re-reads the rest of its contacts' right to be texted, and their
#: enrollments, once this many seconds have passed since it last did: a STOP
#: that arrives while a slow provider holds the batch is honoured for the
#: sends after it. In the normal fast path this costs one query a second.
REFRESH_AFTER_SECONDS = 1.0


def _refresh(deps: Deps, remaining: list[_Prepared]) -> None:
    with deps.sessions() as session:
        fresh = repo.contacts_by_id(session, {p.contact.id for p in remaining})
        active = repo.active_enrollment_ids(
            session, (p.send.enrollment_id for p in remaining if p.send.enrollment_id)
        )
        for p in remaining:
            row = fresh.get(p.contact.id)
            if row is not None:
                p.contact.sms_consent_at = row.sms_consent_at
                p.contact.sms_opted_out_at = row.sms_opted_out_at
                p.contact.text_status = row.text_status
                p.contact.email_opted_out = row.email_opted_out
            if p.send.enrollment_id is not None:
                p.enrollment_active = p.send.enrollment_id in active


@dataclass
class _States:
    """Fire-time state, updated in memory as the batch goes so later sends see earlier ones."""

    conversations: dict[tuple[str, int], ConversationState]
    marketing: dict[int, list[datetime]]
    last_sent: dict[int, datetime]


def _gather(
    deps: Deps, session: Session, ids: list[int], now: datetime
) -> tuple[list[_Prepared], _States]:
    sends = repo.sends_by_id(session, ids)
    contacts = repo.contacts_by_id(session, (s.contact_id for s in sends))
    agents = repo.agents_by_id(session, (c.agent_id for c in contacts.values() if c.agent_id))
    rows = repo.campaigns_by_id(session, (s.campaign_id for s in sends if s.campaign_id))
    campaigns: dict[int, Campaign] = {}
    broken: dict[int, str] = {}
    for cid, row in rows.items():
        try:
            campaigns[cid] = deps.campaigns.get(cid, row.version, row.definition)
        except Exception as exc:  # a stored definition current code rejects: fail its sends only
            broken[cid] = f"failed: stored campaign {row.name!r} is invalid ({exc}); run drip sync"
    active = repo.active_enrollment_ids(
        session, (s.enrollment_id for s in sends if s.enrollment_id is not None)
    )
    prepared: list[_Prepared] = []
    for send in sends:
        contact = contacts[send.contact_id]
        agent: Agent | None = agents.get(contact.agent_id) if contact.agent_id else None
        sender = resolve_sender(
            send.sender_role,
            agent,
            deps.account,
            send.sender_phone,
            compliance=send.kind.is_compliance,
        )
        campaign = campaigns.get(send.campaign_id) if send.campaign_id else None
        problem = broken.get(send.campaign_id) if send.campaign_id else None
        in_force = send.enrollment_id is None or send.enrollment_id in active
        prepared.append(_Prepared(send, contact, campaign, sender, in_force, problem))
    pairs = [
        (p.sender.phone, p.contact.id)
        for p in prepared
        if p.sender is not None and p.send.channel is Channel.SMS
    ]
    repo.ensure_conversations(session, pairs)
    conversations = {
        key: ConversationState(row.footer_last_sent_at, row.two_way_at)
        for key, row in repo.conversations_for(session, pairs).items()
    }
    marketing = repo.marketing_sent_since(session, contacts, now - DAY)
    last_sent = repo.enrollment_last_sent(
        session, (s.enrollment_id for s in sends if s.enrollment_id is not None)
    )
    return prepared, _States(conversations, dict(marketing), last_sent)


def contact_state(contact: Contact, deps: Deps, marketing: list[datetime]) -> ContactState:
    """The policy's view of a contact row: its zone set and every state that may apply."""
    zone = resolve_timezone(contact.timezone, contact.phone, deps.account.default_timezone)
    states = resolve_states(contact.state, contact.phone)
    return ContactState(
        timezone=zone.name,
        zones=zone.zones,
        zone_detail=zone.detail,
        has_phone=contact.phone is not None,
        sms_consent_at=contact.sms_consent_at,
        sms_opted_out_at=contact.sms_opted_out_at,
        text_status=contact.text_status,
        has_email=bool(contact.email),
        email_opted_out=contact.email_opted_out,
        state=states[0] if states else None,
        states=states,
        marketing_sent=tuple(marketing),
    )


def _outgoing(deps: Deps, p: _Prepared, last_sent: datetime | None) -> Outgoing:
    send, campaign = p.send, p.campaign
    opt_out = OptOutMode.RULES
    interval = timedelta(days=30)
    window = deps.account.send_window
    if campaign is not None:
        interval = timedelta(days=campaign.opt_out.interval_days)
        window = campaign.send_window or window
        if send.step_id is not None:
            with contextlib.suppress(KeyError):  # a removed step is skipped later
                opt_out = campaign.step(send.step_id).opt_out
    return Outgoing(
        kind=send.kind,
        due_at=send.due_at,
        channel=send.channel,
        opt_out=opt_out,
        footer_interval=interval,
        window=window,
        catching_up=send.catching_up,
        enrollment_last_sent_at=last_sent,
        held_to_window=send.held_to_window,
    )


def _fire_guarded(deps: Deps, p: _Prepared, states: _States, now: datetime) -> _Outcome:
    """``_fire_one``, with a bug in one send recorded as that send's failure.

    Without this, one unexpected error would abort the batch and leave every
    send of it in ``sending``, to be reported ``unknown`` later although most
    were never tried. The failed send is recorded, not retried (at most once).
    """
    try:
        return _fire_one(deps, p, states, now)
    except Exception as exc:  # deliberately broad: any bug is contained to its send
        log.exception("send_crashed", send_id=p.send.id, contact_id=p.contact.id)
        reason = f"failed: internal error while firing ({type(exc).__name__}: {exc}); not retried"
        return _Outcome(p, None, FireResult(p.send.id, "failed", "internal_error", reason))


def _fire_one(deps: Deps, p: _Prepared, states: _States, now: datetime) -> _Outcome:
    send, contact = p.send, p.contact
    if p.problem is not None:
        return _Outcome(p, None, FireResult(send.id, "failed", "internal_error", p.problem))
    if not p.enrollment_active:
        reason = "skipped: the enrollment ended before this step fired (stop_on_reply or stopped)"
        return _Outcome(p, None, FireResult(send.id, "skipped", "enrollment_stopped", reason))
    template = _template(p)
    if template is None:
        reason = f"skipped: step {send.step_id!r} is no longer in the campaign"
        return _Outcome(p, None, FireResult(send.id, "skipped", "step_removed", reason))
    if p.sender is None and send.channel is Channel.SMS:
        reason = missing_sender_reason(send.sender_role)
        return _Outcome(p, None, FireResult(send.id, "skipped", "no_sender", reason))

    key = (p.sender.phone, contact.id) if p.sender else ("", contact.id)
    conversation = states.conversations.get(key, ConversationState())
    last_sent = states.last_sent.get(send.enrollment_id) if send.enrollment_id else None
    cstate = contact_state(contact, deps, states.marketing.get(contact.id, []))
    outgoing = _outgoing(deps, p, last_sent)
    decision = decide(
        cstate,
        conversation,
        outgoing,
        now,
        state_rules=deps.account.state_rules,
        blackouts=deps.account.blackouts,
    )
    if isinstance(decision, Skip):
        result = FireResult(send.id, "skipped", decision.code.value, decision.reason)
        return _Outcome(p, decision, result)
    if isinstance(decision, Defer):
        result = FireResult(
            send.id, "deferred", decision.code.value, decision.reason, deferred_until=decision.until
        )
        return _Outcome(p, decision, result)

    def reopen(at: datetime) -> Decision:  # the policy at another instant (SPEC §4a)
        return decide(cstate, conversation, outgoing, at, state_rules=deps.account.state_rules)

    outcome = _deliver(deps, p, decision, template, now, reopen=reopen)
    if outcome.result.outcome == "sent":
        if decision.footer and send.channel is Channel.SMS:
            states.conversations[key] = replace(conversation, footer_last_sent_at=now)
        if send.kind.is_marketing and send.channel is Channel.SMS:
            states.marketing.setdefault(contact.id, []).append(now)
        if send.enrollment_id is not None and fire_checks.counts_for_catch_up(
            send.due_at, send.catching_up, now
        ):
            states.last_sent[send.enrollment_id] = now
    return outcome


@dataclass(frozen=True, slots=True)
class _Template:
    body: str
    subject: str | None
    footer: str


def _template(p: _Prepared) -> _Template | None:
    """The raw text to render: the campaign step's current text, or the send's own body."""
    send, campaign = p.send, p.campaign
    footer_override = campaign.opt_out.footer if campaign else None
    if send.body is not None:
        return _Template(send.body, None, footer_override or "")
    if campaign is None or send.step_id is None:
        return None
    try:
        step = campaign.step(send.step_id)
    except KeyError:
        return None
    return _Template(step.body, step.subject, footer_override or "")


def _deliver(
    deps: Deps,
    p: _Prepared,
    decision: Send,
    template: _Template,
    now: datetime,
    *,
    reopen: Callable[[datetime], Decision],
) -> _Outcome:
    send, contact, sender = p.send, p.contact, p.sender
    values = template_values(contact, sender, deps.account)
    # --- issue 11: no empty variable, no text Twilio refuses (fire_checks) ---
    missing = fire_checks.missing_values(
        (template.body, template.subject), values, ACCOUNT_TEMPLATE_VARIABLES
    )
    if missing:
        reason = fire_checks.missing_reason(missing)
        return _Outcome(p, decision, FireResult(send.id, "skipped", "empty_variable", reason))
    body = render(template.body, values, allowed=ACCOUNT_TEMPLATE_VARIABLES)
    footer_text = template.footer or deps.account.footer
    if send.channel is Channel.EMAIL:
        subject = render(template.subject or deps.account.company, values)
        return _deliver_email(deps, p, decision, subject=subject, body=body, now=now)
    assert sender is not None and contact.phone is not None  # the gate and _fire_one ensure it
    text = with_footer(body, footer_text) if decision.footer else body
    refusal = fire_checks.sms_refusal(text)
    if refusal is not None:
        return _Outcome(p, decision, FireResult(send.id, "skipped", "too_long", refusal))
    size = sms_size(text)
    message = Message(
        direction="outbound",
        channel=Channel.SMS,
        kind=send.kind,
        sender_phone=sender.phone,
        contact_id=contact.id,
        from_addr=sender.phone,
        to_addr=contact.phone,
        body=text,
        footer=decision.footer,
        segments=size.segments,
        encoding=size.encoding,
        status="queued",
        send_id=send.id,
        created_at=now,
    )
    callback = deps.settings.status_callback_url if deps.settings.twilio_enabled else None
    # --- the carrier's clock (SPEC §4a): pace the sender, set the validity, or defer ---
    cleared = carrier.clear_to_send(
        deps,
        sender.phone,
        size.segments,
        decision,
        now,
        catching_up=send.catching_up,
        reopen=reopen,
    )
    if isinstance(cleared, Defer):
        result = FireResult(
            send.id, "deferred", cleared.code.value, cleared.reason, deferred_until=cleared.until
        )
        return _Outcome(p, cleared, result)
    outbound = OutboundSms(sender.phone, contact.phone, text, callback, cleared.validity_seconds)
    try:
        receipt = deps.sms.send_sms(outbound)
    except TransportError as exc:  # SmsSendError included: the provider refused it
        return _failed(p, decision, message, exc, now)
    except Exception as exc:  # not a refusal: the text may have gone out
        return _unknown(p, decision, message, exc, now)
    message.provider_sid = receipt.sid
    message.status = receipt.status
    message.sent_at = now
    log.info(
        "send_decided",
        send_id=send.id,
        contact_id=contact.id,
        kind=send.kind.value,
        decision="sent",
        footer=decision.footer,
        rule=decision.rule.value,
        reason=decision.reason,
        to=contact.phone,
    )
    result = FireResult(send.id, "sent", decision.rule.value, decision.reason, decision.footer)
    return _Outcome(p, decision, result, message)


def _deliver_email(
    deps: Deps, p: _Prepared, decision: Send, *, subject: str, body: str, now: datetime
) -> _Outcome:
    send, contact = p.send, p.contact
    assert contact.email is not None  # the email gate ensures it
    link = unsubscribe.url_for(deps.settings, contact.id)
    text = fire_checks.email_text(body, link, deps.account)
    if text is None:
        result = FireResult(send.id, "skipped", "no_postal_address", fire_checks.NO_POSTAL_ADDRESS)
        return _Outcome(p, decision, result)
    message = Message(
        direction="outbound",
        channel=Channel.EMAIL,
        kind=send.kind,
        contact_id=contact.id,
        from_addr=deps.settings.email_from,
        to_addr=contact.email,
        subject=subject,
        body=text,
        status="queued",
        send_id=send.id,
        created_at=now,
    )
    headers = fire_checks.unsubscribe_headers(link)
    try:
        receipt = deps.email.send_email(
            OutboundEmail(deps.settings.email_from, contact.email, subject, text, headers)
        )
    except TransportError as exc:
        return _failed(p, decision, message, exc, now)
    except Exception as exc:  # not a refusal: the email may have gone out
        return _unknown(p, decision, message, exc, now)
    message.provider_sid = receipt.message_id
    message.status = "sent"
    message.sent_at = now
    log.info(
        "send_decided", send_id=send.id, contact_id=contact.id, decision="sent", channel="email"
    )
    return _Outcome(
        p, decision, FireResult(send.id, "sent", "email", decision.reason, False), message
    )


def _unknown(
    p: _Prepared, decision: Send, message: Message, exc: Exception, now: datetime
) -> _Outcome:
    """An unexpected error from the transport call: maybe sent, so recorded unknown, not retried."""
    message.status = "unknown"
    message.error_message = f"{type(exc).__name__}: {exc}"
    message.updated_at = now
    reason = (
        f"UNKNOWN: the transport raised {type(exc).__name__} ({exc}) during the provider "
        "call; the message may or may not have gone out, so it is not retried"
    )
    log.error("send_unknown", send_id=p.send.id, contact_id=p.contact.id, reason=reason)
    return _Outcome(
        p, decision, FireResult(p.send.id, "unknown", "transport_error", reason), message
    )


def _failed(
    p: _Prepared, decision: Send, message: Message, exc: TransportError, now: datetime
) -> _Outcome:
    error_class = exc.error_class if isinstance(exc, SmsSendError) else ErrorClass.FAILED
    message.status = "failed"
    message.error_code = exc.code
    message.error_message = str(exc)
    message.updated_at = now
    code = f"provider_{error_class.value}"
    reason = f"failed: the provider refused the message ({exc.code or 'no code'}: {exc})"
    outcome = _Outcome(p, decision, FireResult(p.send.id, "failed", code, reason), message)
    confirmed = fire_checks.confirmed_by_carrier(p.send.kind, exc.code)
    if confirmed is not None:  # issue 11: Twilio answered the STOP itself
        outcome.result = FireResult(p.send.id, "skipped", "confirmed_by_carrier", confirmed)
        log.info("opt_out_confirmed_by_carrier", send_id=p.send.id, contact_id=p.contact.id)
        return outcome
    if error_class is ErrorClass.OPTED_OUT:
        outcome.carrier_opt_out = True
        outcome.result = replace(
            outcome.result,
            reason=f"failed: the carrier says the recipient unsubscribed ({exc.code}); "
            "the contact is now opted out of texts",
        )
    elif error_class is ErrorClass.UNDELIVERABLE:
        outcome.undeliverable_code = exc.code
        outcome.result = replace(
            outcome.result,
            reason=f"failed: the number cannot receive texts ({exc.code}); no further texts",
        )
    log.warning(
        "send_failed",
        send_id=p.send.id,
        contact_id=p.contact.id,
        code=exc.code,
        error_class=error_class.value,
        reason=outcome.result.reason,
    )
    return outcome


_STATE_OF = {
    "sent": SendState.SENT,
    "skipped": SendState.SKIPPED,
    "failed": SendState.FAILED,
    "unknown": SendState.UNKNOWN,
    "deferred": SendState.PENDING,
}


def _record(deps: Deps, outcomes: list[_Outcome], now: datetime) -> None:
    """Store every outcome in one transaction: state, message, decision, conversation."""
    if not outcomes:
        return
    with deps.sessions.begin() as session:
        rows = {s.id: s for s in repo.sends_by_id(session, [o.result.send_id for o in outcomes])}
        footers: dict[tuple[str, int], datetime] = {}
        finished: set[int] = set()
        session.add_all(o.message for o in outcomes if o.message is not None)
        session.flush()
        for o in outcomes:
            send = rows[o.result.send_id]
            result = o.result
            send.state = _STATE_OF[result.outcome]
            send.decision_code = result.code
            send.decision_reason = result.reason
            send.updated_at = now
            if o.message is not None:
                send.message_id = o.message.id
                result = replace(result, message_id=o.message.id)
                o.result = result
            if result.outcome == "sent" and fire_checks.counts_for_catch_up(
                send.due_at, send.catching_up, now
            ):
                send.catching_up = True  # an overdue step went out: catch-up counts it
            if isinstance(o.decision, Defer):
                send.due_at = o.decision.until
                send.catching_up = o.decision.catching_up
                send.claimed_at = None
                send.sending_started_at = None
            session.add(
                SendDecision(
                    send_id=send.id,
                    at=now,
                    outcome=result.outcome,
                    code=result.code,
                    reason=result.reason,
                    footer=result.footer,
                    footer_rule=o.decision.rule.value if isinstance(o.decision, Send) else None,
                    deferred_until=result.deferred_until,
                )
            )
            if (
                result.outcome == "sent"
                and result.footer
                and o.message is not None
                and o.message.sender_phone
            ):
                footers[(o.message.sender_phone, send.contact_id)] = now
            if result.outcome != "deferred" and send.enrollment_id is not None:
                finished.add(send.enrollment_id)
            if o.carrier_opt_out:
                _carrier_opt_out(session, send.contact_id, o, now)
            elif o.undeliverable_code is not None:
                _undeliverable(session, send.contact_id, o.undeliverable_code, now)
            if result.outcome != "sent":
                log.info(
                    "send_decided",
                    send_id=send.id,
                    contact_id=send.contact_id,
                    kind=send.kind.value,
                    decision=result.outcome,
                    code=result.code,
                    reason=result.reason,
                )
        _record_footers(session, footers)
        repo.finish_enrollments(session, finished, now)


#: Conversations per UPDATE in :func:`_record_footers` (two bound parameters each).
_FOOTER_CHUNK = 500


def _record_footers(session: Session, footers: dict[tuple[str, int], datetime]) -> None:
    """Set ``footer_last_sent_at`` of each (sender, contact) conversation, never moving it back.

    One UPDATE per send time and chunk of conversations, not one per
    conversation: in a batch every footer was sent at the same ``now``, and a
    round trip per text was most of the cost of recording a batch. No
    ``Conversation`` is loaded in the recording session, so nothing in memory
    needs synchronising.
    """
    by_time: dict[datetime, list[tuple[str, int]]] = defaultdict(list)
    for pair, at in footers.items():
        by_time[at].append(pair)
    for at, pairs in by_time.items():
        for start in range(0, len(pairs), _FOOTER_CHUNK):
            session.execute(
                update(Conversation)
                .where(
                    tuple_(Conversation.sender_phone, Conversation.contact_id).in_(
                        pairs[start : start + _FOOTER_CHUNK]
                    ),
                    (Conversation.footer_last_sent_at.is_(None))
                    | (Conversation.footer_last_sent_at < at),
                )
                .values(footer_last_sent_at=at)
                .execution_options(synchronize_session=False)
            )


def _carrier_opt_out(session: Session, contact_id: int, o: _Outcome, now: datetime) -> None:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.sms_opted_out_at is not None:
        return
    contact.sms_opted_out_at = now
    contact.sms_opted_out_how = "carrier"
    contact.updated_at = now
    session.add(
        ConsentEvent(
            contact_id=contact_id,
            kind=ConsentEventKind.REVOKED_CARRIER,
            at=now,
            source="carrier",
            evidence=o.result.reason,
            detail=str(o.message.error_code) if o.message else None,
        )
    )


def _undeliverable(session: Session, contact_id: int, code: int, now: datetime) -> None:
    contact = session.get(Contact, contact_id)
    if contact is None:
        return
    contact.text_status = TextStatus.UNDELIVERABLE
    contact.undeliverable_code = code
    contact.updated_at = now


def count_outcomes(results: list[FireResult]) -> dict[str, int]:
    """Counts of outcomes, for summaries."""
    counts: dict[str, int] = defaultdict(int)
    for r in results:
        counts[r.outcome] += 1
    return dict(counts)
