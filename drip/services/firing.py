"""Fire due sends: re-check everything at fire time, send at most once, record why.

The shape of a batch is gather -> decide -> deliver -> record, one send in
flight at a time:

1. gather (one read transaction): the batch's sends still ``queued``, their
   contacts, agents, conversations, recent sends and campaigns;
2. for each send, with the clock read again (``now`` plus the time the batch
   has taken so far): decide (the window and every rule re-checked); if it is
   to go out, :func:`_call_provider` is the one place where the pre-send
   checks and the provider call happen: ``queued -> sending`` for this send
   only (:func:`claims.start_one`, committed), then the call;
3. record: a send that reached the provider is recorded on its own, right
   after its call, in a transaction retried on a lost connection
   (:func:`_record_durably`), so the provider's id is durable before anything
   else can fail. Skips and deferrals (nothing left drip) are recorded
   together at the end of the batch.

A worker killed mid-batch therefore leaves at most its one in-flight send in
``sending`` (``dispatch.recover`` makes it ``unknown``; ``reconcile`` then
asks the provider); the sends it had not tried are still ``queued`` and go
back to pending. A batch that runs past its deadline (a frozen worker, a slow
provider) stops and gives the rest back at once.

Provider errors (SPEC §4, :class:`ErrorClass`): a refusal of the message is
``failed``; "not accepted, try later" (429 after the transport's retries, a
connection refused) defers the send with a backoff (``provider_unavailable``)
and the rest of the batch on that channel with it; a 5xx or a timeout after
the request left is ``unknown`` (never retried); an authentication failure
opens the transport's circuit (:mod:`drip.services.circuit`) and the sends
stay pending until it works again.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from time import monotonic, sleep
from typing import TypeVar

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
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
from drip.errors import StoreError, TransportError
from drip.services import carrier, fire_checks, unsubscribe
from drip.services.circuit import Circuit, circuit_for
from drip.services.deps import Deps
from drip.services.senders import Sender, missing_sender_reason, resolve_sender, template_values
from drip.store import claims, fire_gather, fire_record
from drip.store import repository as repo
from drip.store.engine import SQLITE_BEGIN_OPTION
from drip.store.fire_gather import FireContact, FireSend
from drip.store.models import (
    ConsentEvent,
    Contact,
    Message,
)
from drip.transports.base import ErrorClass, OutboundEmail, OutboundSms, error_class_of

log = structlog.get_logger("drip.fire")

R = TypeVar("R")


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

    send: FireSend
    contact: FireContact
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
    #: The send reached ``sending`` (its provider call was made or started).
    attempted: bool = False


class _NotOursError(Exception):
    """The send was not ours to start (another delivery took it, or it was given back)."""


@dataclass(frozen=True, slots=True)
class _Unrecorded:
    outcome: _Outcome
    at: datetime  # the send's clock, recorded as the time of its decision
    since: float  # monotonic time its provider call returned


#: A send's record waits for the next send's ``sending`` commit at most this
#: long (seconds of deciding, rendering and skipping in between); past it, it
#: is committed on its own. Anything that may take longer (a pacing wait, a
#: deadline, the end of the batch) commits it first.
CARRY_MAX_SECONDS = 0.05


@dataclass
class _Batch:
    """What one batch learns as it goes: providers found unavailable, the deadline."""

    read_clock: Callable[[], datetime]
    started: datetime  # the clock when the batch started
    now: datetime  # the batch's ``now``, as its caller read it
    deadline: datetime
    unavailable: dict[Channel, tuple[datetime, str]] = field(default_factory=dict)
    #: The send that reached its provider last and is not recorded yet: its record
    #: is committed with the next send's ``sending`` (one commit per send, not
    #: two), or on its own before anything that may take time (:func:`_flush`).
    unrecorded: _Unrecorded | None = None
    #: PostgreSQL: the batch's own connection, in autocommit, for its one-statement
    #: records and starts (:func:`_held`); checked out (and pinged) once per batch.
    conn: Connection | None = None

    def clock(self) -> datetime:
        """The clock, read per send: the batch's ``now`` plus the whole seconds it has taken.

        Whole seconds keep a fast batch on its caller's exact ``now`` (replays and
        reports stay deterministic); a batch held up by a slow provider or a
        paused worker sees time move, and its window and deadline re-checked.
        """
        elapsed = (self.read_clock() - self.started).total_seconds()
        return self.now + timedelta(seconds=max(int(elapsed), 0))


#: A batch stops and gives back its untried sends after this share of
#: ``DRIP_SENDING_TIMEOUT_SECONDS`` (counted from when the worker started it),
#: well before ``recover`` would put them back to pending itself.
DEADLINE_SHARE = 0.5
#: Backoff of a send the provider did not accept (429 after retries, a
#: refused connection): this, doubled per attempt, capped at :data:`BACKOFF_CAP`.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(minutes=30)


def fire_batch(deps: Deps, ids: list[int], now: datetime) -> list[FireResult]:
    """Fire the given queued sends; ids another worker already took are ignored."""
    with deps.sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            # gather writes (conversations) after reading: take the write lock up front,
            # or two deliveries of one batch lose a read-to-write upgrade race.
            session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        prepared, states = _gather(deps, session, ids, now)
        session.expunge_all()
    if not prepared:
        return []
    timeout = timedelta(seconds=deps.settings.sending_timeout_seconds)
    batch = _Batch(deps.clock.now, deps.clock.now(), now, now + timeout * DEADLINE_SHARE)
    results: list[FireResult] = []
    settled: list[_Outcome] = []  # skips and deferrals, recorded together at the end
    recorded: list[_Outcome] = []  # sends that reached the provider, each recorded already
    read_at = monotonic()
    try:
        for index, p in enumerate(prepared):
            if batch.unrecorded is not None and (
                monotonic() - batch.unrecorded.since >= CARRY_MAX_SECONDS
            ):
                _flush(deps, batch)
            at = batch.clock()
            if at >= batch.deadline:
                _flush(deps, batch)
                _give_back(deps, prepared[index:], at)
                break
            if monotonic() - read_at >= REFRESH_AFTER_SECONDS:
                _refresh(deps, prepared[index:])
                read_at = monotonic()
            try:
                outcome = _fire_guarded(deps, p, states, batch, at)
            except _NotOursError:
                continue
            if outcome.attempted:
                # Recorded with the next send's start, or by _flush: see _Batch.unrecorded.
                _flush(deps, batch)
                batch.unrecorded = _Unrecorded(outcome, at, monotonic())
                recorded.append(outcome)
            else:
                settled.append(outcome)
    finally:
        _flush(deps, batch)
        _drop(batch)
        if settled:
            _record(deps, settled, batch.clock())
        results.extend(o.result for o in recorded)
        results.extend(o.result for o in settled)
        _apply_early_callbacks(deps, recorded, batch.clock())
    return results


def _flush(deps: Deps, batch: _Batch) -> None:
    """Record the batch's last sent send now, on its own (see :attr:`_Batch.unrecorded`)."""
    carry, batch.unrecorded = batch.unrecorded, None
    if carry is None:
        return
    if _one_statement(deps, carry.outcome):
        try:
            _record_one(_held(deps, batch), carry.outcome, carry.at, None)
            return
        except (DBAPIError, StoreError) as exc:
            _drop(batch)
            log.warning("send_record_retry", send_id=carry.outcome.result.send_id, attempt=1,
                        error=type(exc).__name__)  # fmt: skip
        _record_durably(deps, carry.outcome, carry.at, look_first=True)
        return
    _record_durably(deps, carry.outcome, carry.at)


def _held(deps: Deps, batch: _Batch) -> Connection:
    """The batch's autocommit connection (PostgreSQL), opened on first use.

    One checkout, so one pre-ping, per batch instead of one per statement. A
    statement on it that fails drops it (:func:`_drop`); the retry goes through
    the pool, which pings and reconnects, and the next statement opens a new one.
    """
    if batch.conn is None:
        batch.conn = deps.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    return batch.conn


def _drop(batch: _Batch) -> None:
    """Give the batch's connection back, discarding it if a statement on it failed."""
    conn, batch.conn = batch.conn, None
    if conn is not None:
        with contextlib.suppress(DBAPIError, StoreError):
            conn.close()


def _one_statement(deps: Deps, outcome: _Outcome) -> bool:
    """A sent send with nothing more to record than its message (the common case), on PostgreSQL.

    A carrier opt-out or an undeliverable number also changes the contact
    (ORM, :func:`_record_in`); those, and SQLite, take the transaction path.
    """
    return (
        outcome.attempted
        and outcome.result.outcome == "sent"
        and outcome.message is not None
        and not outcome.carrier_opt_out
        and outcome.undeliverable_code is None
        and deps.engine.dialect.name == "postgresql"
    )


def _record_one(
    conn: Connection,
    o: _Outcome,
    now: datetime,
    start: tuple[int, datetime | None, datetime] | None,
) -> bool:
    """:func:`_record_in` of one sent send as one statement in autocommit, with the next start.

    Returns whether the next send (``start``) became ``sending``.
    """
    assert o.message is not None  # _one_statement ensures it
    result = o.result
    recorded = fire_record.record_sent(
        conn,
        o.message,
        result.send_id,
        send_values=_send_values(o, now),
        decision=_decision_row(o, now),
        footer_phone=o.message.sender_phone if result.footer and o.message.sender_phone else None,
        at=now,
        start=start,
    )
    o.result = replace(result, message_id=recorded.message_id)
    if recorded.send is None:
        log.warning(
            "send_record_skipped",
            send_id=result.send_id,
            outcome=result.outcome,
            why="the send changed state meanwhile (taken by another delivery)",
        )
    return recorded.started


def _apply_early_callbacks(deps: Deps, outcomes: list[_Outcome], at: datetime) -> None:
    """Status callbacks that arrived before these sends were recorded (kept in a table).

    Once per batch, after its sends are recorded (one query for the batch, not
    one per send: a callback this early is rare). A callback that arrives
    later finds its message and applies at once; one this misses (a worker
    killed mid-batch) is applied by the recovery tick.
    """
    from drip.services import callbacks  # status -> contacts -> firing: imported when used

    sids = [o.message.provider_sid for o in outcomes if o.message is not None]
    wanted = [sid for sid in sids if sid is not None]
    if not wanted:
        return
    try:
        # One prebuilt statement finds whether any of them has a kept callback (rarely:
        # about 2 % of batches); only then the callbacks are read and applied.
        with deps.engine.connect() as conn:
            found = fire_gather.sids_with_pending_callbacks(conn, wanted)
        if found:
            callbacks.apply_pending(deps, at, found)
    except (DBAPIError, StoreError) as exc:  # the recovery tick applies them later
        log.warning("early_callbacks_not_applied", sends=len(wanted), error=str(exc))


def _give_back(deps: Deps, rest: list[_Prepared], at: datetime) -> None:
    reason = (
        "Given back untried: the batch passed its deadline (a slow provider or a paused "
        "worker), so this send went back to pending to be claimed again; nothing was sent."
    )
    with deps.sessions() as session:
        back = claims.give_back(session, [(p.send.id, p.send.claimed_at) for p in rest], at, reason)
    log.warning("batch_deadline", given_back=len(back), untried=len(rest))


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
                p.contact = replace(
                    p.contact,
                    sms_consent_at=row.sms_consent_at,
                    sms_opted_out_at=row.sms_opted_out_at,
                    text_status=row.text_status,
                    email_opted_out=row.email_opted_out,
                )
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
    # Plain rows, not ORM entities: nothing gathered is written back through the ORM
    # (drip.store.fire_gather); only sends still queued are the batch's.
    gathered = fire_gather.queued_sends(session, ids)
    if not gathered:
        return [], _States({}, {}, {})
    campaigns: dict[int, Campaign] = {}
    broken: dict[int, str] = {}
    wanted = {g.send.campaign_id for g in gathered if g.send.campaign_id}
    for cid, name, version, definition in fire_gather.campaign_rows(session, wanted):
        try:
            campaigns[cid] = deps.campaigns.get(cid, version, definition)
        except Exception as exc:  # a stored definition current code rejects: fail its sends only
            broken[cid] = f"failed: stored campaign {name!r} is invalid ({exc}); run drip sync"
    prepared: list[_Prepared] = []
    for g in gathered:
        send = g.send
        sender = resolve_sender(
            send.sender_role,
            g.agent,
            deps.account,
            send.sender_phone,
            compliance=send.kind.is_compliance,
        )
        campaign = campaigns.get(send.campaign_id) if send.campaign_id else None
        problem = broken.get(send.campaign_id) if send.campaign_id else None
        prepared.append(_Prepared(send, g.contact, campaign, sender, g.enrollment_active, problem))
    pairs = [
        (p.sender.phone, p.contact.id)
        for p in prepared
        if p.sender is not None and p.send.channel is Channel.SMS
    ]
    repo.ensure_conversations(session, pairs)
    conversations = {
        key: ConversationState(footer, two_way)
        for key, (footer, two_way) in fire_gather.conversation_times(session, pairs).items()
    }
    marketing = repo.marketing_sent_since(session, {g.contact.id for g in gathered}, now - DAY)
    last_sent = repo.enrollment_last_sent(
        session, (g.send.enrollment_id for g in gathered if g.send.enrollment_id is not None)
    )
    return prepared, _States(conversations, dict(marketing), last_sent)


def contact_state(
    contact: Contact | FireContact, deps: Deps, marketing: list[datetime]
) -> ContactState:
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


def _fire_guarded(
    deps: Deps, p: _Prepared, states: _States, batch: _Batch, now: datetime
) -> _Outcome:
    """``_fire_one``, with a bug in one send recorded as that send's failure.

    Without this, one unexpected error would abort the batch and leave every
    send of it in ``sending``, to be reported ``unknown`` later although most
    were never tried. The failed send is recorded, not retried (at most once).
    """
    try:
        return _fire_one(deps, p, states, batch, now)
    except _NotOursError:
        raise
    except Exception as exc:  # deliberately broad: any bug is contained to its send
        log.exception("send_crashed", send_id=p.send.id, contact_id=p.contact.id)
        reason = f"failed: internal error while firing ({type(exc).__name__}: {exc}); not retried"
        return _Outcome(p, None, FireResult(p.send.id, "failed", "internal_error", reason))


def _fire_one(deps: Deps, p: _Prepared, states: _States, batch: _Batch, now: datetime) -> _Outcome:
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

    def decide_at(at: datetime) -> Decision:
        return decide(
            cstate,
            conversation,
            outgoing,
            at,
            state_rules=deps.account.state_rules,
            blackouts=deps.account.blackouts,
        )

    decision = decide_at(now)
    if isinstance(decision, Skip):
        result = FireResult(send.id, "skipped", decision.code.value, decision.reason)
        return _Outcome(p, decision, result)
    if isinstance(decision, Defer):
        result = FireResult(
            send.id, "deferred", decision.code.value, decision.reason, deferred_until=decision.until
        )
        return _Outcome(p, decision, result)

    # reopen: the policy at another instant, for the carrier's clock (SPEC §4a)
    outcome = _deliver(deps, p, decision, template, batch=batch, now=now, reopen=decide_at)
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
    *,
    batch: _Batch,
    now: datetime,
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
        return _deliver_email(deps, p, decision, subject=subject, body=body, batch=batch, now=now)
    assert sender is not None and contact.phone is not None  # the gate and _fire_one ensure it
    text = with_footer(body, footer_text) if decision.footer else body
    refusal = fire_checks.sms_refusal(text)
    if refusal is not None:
        return _Outcome(p, decision, FireResult(send.id, "skipped", "too_long", refusal))
    size = sms_size(text)
    message = fire_record.new_message(
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

    def before_wait(seconds: float) -> None:
        # A wait for the sender's slot as short as the work between two sends may
        # keep the record for the next start's commit; a longer one commits it first.
        if seconds >= CARRY_MAX_SECONDS:
            _flush(deps, batch)

    # --- the carrier's clock (SPEC §4a): pace the sender, set the validity, or defer ---
    cleared = carrier.clear_to_send(
        deps,
        sender.phone,
        size.segments,
        decision,
        now,
        catching_up=send.catching_up,
        reopen=reopen,
        before_wait=before_wait,
    )
    if isinstance(cleared, Defer):
        result = FireResult(
            send.id, "deferred", cleared.code.value, cleared.reason, deferred_until=cleared.until
        )
        return _Outcome(p, cleared, result)
    outgoing = OutboundSms(sender.phone, contact.phone, text, callback, cleared.validity_seconds)
    attempt = _Attempt(deps, p, decision, message, batch, now)
    called = _call_provider(attempt, deps.sms, "twilio", lambda: deps.sms.send_sms(outgoing))
    if isinstance(called, _Outcome):
        return called
    receipt = called
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
    return _Outcome(p, decision, result, message, attempted=True)


def _deliver_email(
    deps: Deps,
    p: _Prepared,
    decision: Send,
    *,
    subject: str,
    body: str,
    batch: _Batch,
    now: datetime,
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
    outgoing = OutboundEmail(deps.settings.email_from, contact.email, subject, text, headers)
    attempt = _Attempt(deps, p, decision, message, batch, now)
    called = _call_provider(attempt, deps.email, "smtp", lambda: deps.email.send_email(outgoing))
    if isinstance(called, _Outcome):
        return called
    receipt = called
    message.provider_sid = receipt.message_id
    message.status = "sent"
    message.sent_at = now
    log.info(
        "send_decided", send_id=send.id, contact_id=contact.id, decision="sent", channel="email"
    )
    return _Outcome(
        p,
        decision,
        FireResult(send.id, "sent", "email", decision.reason, False),
        message,
        attempted=True,
    )


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One send about to meet its provider, with what deciding it produced."""

    deps: Deps
    p: _Prepared
    decision: Send
    message: Message
    batch: _Batch
    now: datetime


def _call_provider(
    attempt: _Attempt, transport: object, provider: str, call: Callable[[], R]
) -> R | _Outcome:
    """The one place a send meets its provider: pre-send checks, ``sending``, the call.

    Returns the provider's receipt, or the outcome when the send did not go
    (deferred, failed, unknown). Raises :class:`_NotOursError` when the send is no
    longer this worker's to start.
    """
    deps, p, decision, message, batch, now = (
        attempt.deps,
        attempt.p,
        attempt.decision,
        attempt.message,
        attempt.batch,
        attempt.now,
    )
    channel = p.send.channel
    down = batch.unavailable.get(channel)
    if down is not None:  # the provider just said "not now" to this batch: do not ask again
        until, why = down
        return _deferred(p, decision, "provider_unavailable", why, until)
    circuit = circuit_for(transport, provider)
    blocked = circuit.blocked_until(now)
    if blocked is not None:
        why = f"deferred: sending through {provider} is stopped ({circuit.reason})"
        return _deferred(p, decision, "provider_auth_failed", why, blocked)
    # -- pre-send checks go here (pacing); then the send becomes ``sending``, alone.
    try:
        won = _start(deps, p, now, batch)
    except BaseException:
        circuit.cancel_probe()
        raise
    if not won:
        circuit.cancel_probe()
        log.info("send_not_ours", send_id=p.send.id)
        raise _NotOursError
    try:
        receipt = call()
    except TransportError as exc:
        outcome = _provider_error(attempt, exc, circuit, provider)
        outcome.attempted = True
        return outcome
    except Exception as exc:  # not a refusal: the message may have gone out
        outcome = _unknown(p, decision, message, exc, now)
        outcome.attempted = True
        return outcome
    circuit.succeeded()
    return receipt


def _start(deps: Deps, p: _Prepared, now: datetime, batch: _Batch) -> bool:
    """``queued -> sending`` for this send, committed; with the record of the send before it.

    The previous send's record (message with the provider's id, state,
    decision) and this send's ``sending`` go in one transaction: each is
    committed before this send's provider call, with one commit (a disk
    flush) instead of two. If that transaction fails, the record is retried
    on its own (first looking for it by the provider's id, in case the commit
    went through) and then this send is started on its own.
    """
    carry, batch.unrecorded = batch.unrecorded, None
    if deps.engine.dialect.name == "postgresql" and (
        carry is None or _one_statement(deps, carry.outcome)
    ):
        try:  # one round trip, one commit: the record and this start together
            conn = _held(deps, batch)
            if carry is None:
                stmt, params = claims.start_statement(p.send.id, p.send.claimed_at, now)
                return conn.execute(stmt, params).first() is not None
            return _record_one(conn, carry.outcome, carry.at, (p.send.id, p.send.claimed_at, now))
        except (DBAPIError, StoreError) as exc:
            _drop(batch)
            log.warning(
                "send_start_retry",
                send_id=p.send.id,
                error=type(exc).__name__,
                detail=str(exc)[:600],
            )
        if carry is not None:
            _record_durably(deps, carry.outcome, carry.at, look_first=True)
        return _start_alone(deps, p, now)
    if carry is None:
        return _start_alone(deps, p, now)
    try:
        with deps.sessions.begin() as session:
            _record_in(session, [carry.outcome], carry.at)
            return claims.start_one_in(session, p.send.id, p.send.claimed_at, now)
    except (DBAPIError, StoreError) as exc:
        log.warning("send_record_retry", send_id=carry.outcome.result.send_id, attempt=1,
                    error=type(exc).__name__)  # fmt: skip
    _record_durably(deps, carry.outcome, carry.at, look_first=True)
    return _start_alone(deps, p, now)


def _start_alone(deps: Deps, p: _Prepared, now: datetime) -> bool:
    """``queued -> sending`` for this send, retried on a lost database connection.

    A retry after a commit whose answer was lost finds the send already
    ``sending`` and returns False: the send is then not called, and recovery
    settles it (``unknown``, then reconcile finds it absent and it goes out
    again). It is never made twice and never failed for a database blip.
    """
    delays = RECORD_RETRY_DELAYS[:5]
    for attempt in range(len(delays) + 1):
        try:
            with deps.sessions() as session:
                return claims.start_one(session, p.send.id, p.send.claimed_at, now)
        except (DBAPIError, StoreError) as exc:
            if attempt >= len(delays):
                log.warning("send_not_started", send_id=p.send.id, error=type(exc).__name__)
                return False
            sleep(delays[attempt])
    return False


def _provider_error(
    attempt: _Attempt, exc: TransportError, circuit: Circuit, provider: str
) -> _Outcome:
    p, decision, message, batch, now = (
        attempt.p,
        attempt.decision,
        attempt.message,
        attempt.batch,
        attempt.now,
    )
    error_class = error_class_of(exc)
    if error_class is ErrorClass.UNKNOWN:
        circuit.succeeded()  # it answered: the credentials are fine
        return _unknown(p, decision, message, exc, now)
    if error_class is ErrorClass.AUTH:
        until = circuit.failed(now, f"{provider} refused drip's credentials: {exc}")
        why = f"deferred: {provider} refused drip's credentials ({exc.code or 'no code'}); " + (
            "nothing is sent through it until it accepts them again"
        )
        return _deferred(p, decision, "provider_auth_failed", why, until)
    if error_class is ErrorClass.RETRYABLE:
        attempts = max(p.send.attempts, 0) + 1
        wait = min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_CAP)
        until = now + wait
        why = (
            f"deferred: {provider} did not accept the message ({exc}); "
            f"tried again after {int(wait.total_seconds())} s"
        )
        batch.unavailable[p.send.channel] = (until, why)
        log.warning(
            "provider_unavailable", provider=provider, send_id=p.send.id, retry_at=until.isoformat()
        )
        return _deferred(p, decision, "provider_unavailable", why, until)
    return _failed(p, decision, message, exc, now)


def _deferred(p: _Prepared, decision: Send, code: str, reason: str, until: datetime) -> _Outcome:
    result = FireResult(p.send.id, "deferred", code, reason, deferred_until=until)
    return _Outcome(p, decision, result)


def _unknown(
    p: _Prepared, decision: Send, message: Message, exc: Exception, now: datetime
) -> _Outcome:
    """An unexpected error from the transport call: maybe sent, so recorded unknown, not retried."""
    message.status = "unknown"
    message.error_message = f"{type(exc).__name__}: {exc}"
    message.updated_at = now
    if isinstance(exc, TransportError):
        message.error_code = exc.code
        code = "provider_unknown"
        reason = (
            f"UNKNOWN: no clear answer from the provider after the request left ({exc}); "
            "it may have been accepted, so it is not retried; drip reconcile settles it"
        )
    else:
        code = "transport_error"
        reason = (
            f"UNKNOWN: the transport raised {type(exc).__name__} ({exc}) during the provider "
            "call; the message may or may not have gone out, so it is not retried"
        )
    log.error("send_unknown", send_id=p.send.id, contact_id=p.contact.id, reason=reason)
    return _Outcome(p, decision, FireResult(p.send.id, "unknown", code, reason), message)


def _failed(
    p: _Prepared, decision: Send, message: Message, exc: TransportError, now: datetime
) -> _Outcome:
    error_class = error_class_of(exc)
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


#: Tries of the transaction recording a send that reached its provider, and
#: the pause before each retry: a lost connection (a restarted database, a
#: killed backend) must not lose the provider's id.
RECORD_RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def _record_durably(
    deps: Deps, outcome: _Outcome, now: datetime, *, look_first: bool = False
) -> None:
    """Record one send right after its provider call, retried on a lost database connection.

    A retry first looks for the message by the provider's id, so a commit
    whose acknowledgement was lost is not recorded twice. If every try fails
    the send stays ``sending``; ``recover`` then makes it ``unknown`` and
    ``reconcile`` finds it at the provider.
    """
    for attempt in range(len(RECORD_RETRY_DELAYS) + 1):
        try:
            if (attempt or look_first) and _already_recorded(deps, outcome):
                return
            _record(deps, [outcome], now)
            return
        except (DBAPIError, StoreError) as exc:
            if attempt >= len(RECORD_RETRY_DELAYS):
                log.critical(
                    "send_record_failed",
                    send_id=outcome.result.send_id,
                    provider_id=outcome.message.provider_sid if outcome.message else None,
                    outcome=outcome.result.outcome,
                    error=type(exc).__name__,
                )
                return
            log.warning(
                "send_record_retry",
                send_id=outcome.result.send_id,
                attempt=attempt + 1,
                error=type(exc).__name__,
            )
            if outcome.message is not None:
                outcome.message = _fresh_copy(outcome.message)
            sleep(RECORD_RETRY_DELAYS[attempt])


def _already_recorded(deps: Deps, outcome: _Outcome) -> bool:
    sid = outcome.message.provider_sid if outcome.message is not None else None
    if sid is None:
        return False
    with deps.sessions() as session:
        return repo.message_by_sid(session, sid) is not None


def _fresh_copy(message: Message) -> Message:
    """A new, unsaved ``Message`` with the same values (the old one belonged to a failed session)."""
    values = {
        c.key: getattr(message, c.key) for c in Message.__mapper__.column_attrs if c.key != "id"
    }
    return Message(**values)


#: The states a send may be recorded from: one the provider saw was ``sending``
#: (or already declared ``unknown`` by ``recover`` while its worker was slow);
#: one that never left drip is still ``queued``.
_FROM_ATTEMPTED = (SendState.SENDING, SendState.UNKNOWN)
_FROM_UNTRIED = (SendState.QUEUED,)


def _record(deps: Deps, outcomes: list[_Outcome], now: datetime) -> None:
    """Store outcomes in one transaction: state, message, decision, conversation.

    Each state change is conditional on the state the worker left the send in,
    so a second delivery of the same task, or a send given back and claimed
    again, is never overwritten; a message that went out is stored regardless.
    """
    if not outcomes:
        return
    with deps.sessions.begin() as session:
        _record_in(session, outcomes, now)


def _record_in(session: Session, outcomes: list[_Outcome], now: datetime) -> None:
    """:func:`_record`'s statements, in the caller's transaction."""
    footers: dict[tuple[str, int], datetime] = {}
    finished: set[int] = set()
    decisions: list[dict[str, object]] = []
    conn = session.connection()
    fire_record.insert_messages(conn, [o.message for o in outcomes if o.message is not None])
    for o in outcomes:
        result = o.result
        if o.message is not None:
            result = replace(result, message_id=o.message.id)
            o.result = result
        values = _send_values(o, now)
        if o.message is not None:
            values["message_id"] = o.message.id
        expected = _FROM_ATTEMPTED if o.attempted else _FROM_UNTRIED
        changed = fire_record.record_send(conn, result.send_id, expected, values)
        if changed is None:
            log.warning(
                "send_record_skipped",
                send_id=result.send_id,
                outcome=result.outcome,
                why="the send changed state meanwhile (taken by another delivery)",
            )
            continue
        contact_id, enrollment_id = changed
        decisions.append({"send_id": result.send_id, **_decision_row(o, now)})
        if (
            result.outcome == "sent"
            and result.footer
            and o.message is not None
            and o.message.sender_phone
        ):
            footers[(o.message.sender_phone, contact_id)] = now
        if result.outcome != "deferred" and enrollment_id is not None:
            finished.add(enrollment_id)
        if o.carrier_opt_out:
            _carrier_opt_out(session, contact_id, o, now)
        elif o.undeliverable_code is not None:
            _undeliverable(session, contact_id, o.undeliverable_code, now)
        if result.outcome != "sent":
            log.info(
                "send_decided",
                send_id=result.send_id,
                contact_id=contact_id,
                kind=o.prepared.send.kind.value,
                decision=result.outcome,
                code=result.code,
                reason=result.reason,
            )
    fire_record.insert_decisions(conn, decisions)  # one statement for the transaction
    fire_record.set_footers(conn, footers)
    repo.finish_enrollments(session, finished, now)


def _send_values(o: _Outcome, now: datetime) -> dict[str, object]:
    """The columns of the send that recording ``o`` sets (besides its message's id)."""
    result = o.result
    values: dict[str, object] = {
        "state": _STATE_OF[result.outcome],
        "decision_code": result.code,
        "decision_reason": result.reason,
        "updated_at": now,
    }
    sent = o.prepared.send
    if result.outcome == "sent" and fire_checks.counts_for_catch_up(
        sent.due_at, sent.catching_up, now
    ):
        values["catching_up"] = True  # an overdue step went out: catch-up counts it
    if result.outcome == "deferred" and result.deferred_until is not None:
        values["due_at"] = result.deferred_until
        if isinstance(o.decision, Defer):
            values["catching_up"] = o.decision.catching_up
        values["claimed_at"] = None
        values["sending_started_at"] = None
    return values


def _decision_row(o: _Outcome, now: datetime) -> dict[str, object]:
    """The ``send_decisions`` columns of ``o`` but its ``send_id``."""
    result = o.result
    return {
        "at": now,
        "outcome": result.outcome,
        "code": result.code,
        "reason": result.reason,
        "footer": result.footer,
        "footer_rule": o.decision.rule.value if isinstance(o.decision, Send) else None,
        "deferred_until": result.deferred_until,
    }


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
