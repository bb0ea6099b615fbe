"""Bulk texts (``drip bulk BODY``): pick contacts, say who is left out and why, schedule.

A bulk text is one scheduled send per contact (kind ``bulk``, no enrollment,
from the contact's agent, due now). It goes through dispatch and is fired
like any campaign step, so every rule is applied again at fire time: the
consent gate, the send window and state caps of the contact's zone and state
(a send due outside them is deferred, not dropped), and the footer rules
(docs/compliance.md#the-opt-out-footer).

Selection, in this order (each contact is counted under the first reason
that leaves it out):

1. filters the operator chose (reported as ``filtered: ...``):
   ``state`` (the contact's address state, else its area code's state, as
   the state rules use), ``campaign`` (active in that campaign),
   ``two_way_only`` (the conversation between the contact's agent number and
   the contact has two-way communication), ``not_contacted_since`` (no
   outbound message, text or email, sent in that many days), ``stage`` and
   ``tag`` (the contact's CRM stage is this one, its CRM tags hold this one: the
   filter of ``drip contacts list --stage/--tag``);
2. ``no_sender``: no agent number to text from;
3. the consent gate of :func:`drip.domain.policy.decide` (kind ``bulk``):
   ``no_phone``, ``opted_out``, ``cannot_be_texted``, ``undeliverable``,
   ``no_consent``. The plan does not re-implement these rules.

Contacts the policy would defer right now (outside their send window, state
cap reached, the frequency cap) are included and counted as ``deferred``:
they get the text when their window opens. Those the account's frequency
cap holds back are counted apart (``capped``), as ``drip bulk --dry-run``
shows them.

With an expiry (``--expires-at``, kept on each send) a contact whose text
could not go before it is left out as ``expired`` (the policy's own answer);
an expiry already past is refused, and so, by the command, is one before
any selected contact could get the text (:func:`expiry_problem`). At fire
time each send is decided again with its expiry: skipped ``expired``, never
sent late (docs/compliance.md#expiry).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import structlog

from drip.campaigns.links import find_links, shortener_of
from drip.domain.decision_codes import SkipCode
from drip.domain.enums import Channel, MessageKind, SenderRole, SendState
from drip.domain.frequency import lookback
from drip.domain.holdback import held_by_cap
from drip.domain.message import ACCOUNT_TEMPLATE_VARIABLES, template_problems
from drip.domain.policy import (
    DAY,
    ContactState,
    ConversationState,
    Decision,
    Defer,
    Outgoing,
    Skip,
    decide,
)
from drip.domain.schedule import local
from drip.domain.zones import normalize_state, resolve_state
from drip.errors import NotFoundError, ValidationError
from drip.services.deps import Deps
from drip.services.fire import contact_state
from drip.services.selection import REASON_WORDS as SELECTION_WORDS
from drip.services.selection import crm_reason
from drip.services.senders import resolve_sender
from drip.store import agents as store_agents
from drip.store import claims, sends
from drip.store import contacts as store_contacts
from drip.store import repository as repo
from drip.store.models import Bulk

log = structlog.get_logger("drip.bulk")

#: Sends inserted per statement batch (and per progress step).
BATCH: Final = claims.BATCH_SIZE
MAX_BODY: Final = 1600  # Twilio's limit for one message body
#: Ids per ``IN (...)`` query: SQLite allows 32,766 bind values, PostgreSQL 65,535.
IN_CHUNK = 5000
T = TypeVar("T")

REASON_WORDS: Final = {
    "filtered: state": "not in the chosen state",
    "filtered: campaign": "not active in the chosen campaign",
    "filtered: two_way": "no two-way conversation with their agent",
    "filtered: recently_contacted": "sent a message within the chosen days",
    "filtered: stage": SELECTION_WORDS["stage"],
    "filtered: tag": SELECTION_WORDS["tag"],
    "no_sender": "no agent number to text from",
    "no_phone": "no phone number",
    "no_consent": "no recorded SMS consent",
    "opted_out": "opted out of texts",
    "cannot_be_texted": "marked cannot be texted",
    "undeliverable": "number reported undeliverable",
    "expired": "cannot get it before the expiry (send window, state rules or frequency cap)",
}


@dataclass(frozen=True, slots=True)
class BulkFilters:
    """Which contacts a bulk text is for; every filter left at its default selects all."""

    two_way_only: bool = False
    campaign: str | None = None
    state: str | None = None
    not_contacted_since_days: int | None = None
    stage: str | None = None
    tag: str | None = None

    def __post_init__(self) -> None:
        if self.not_contacted_since_days is not None and self.not_contacted_since_days < 1:
            raise ValidationError("--not-contacted-since: give a number of days, at least 1")


@dataclass
class BulkPlan:
    """Who gets the text, who does not and why; ``recipients`` are contact ids."""

    body: str
    recipients: list[int] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)
    deferred: Counter[str] = field(default_factory=Counter)
    considered: int = 0
    #: ``--expires-at``: each send is skipped (``expired``) if it cannot go by then.
    expires_at: datetime | None = None
    #: The frequency cap holds back this many recipients (they wait) ...
    capped: int = 0
    #: ... and this many contacts left out as ``expired`` would have gone without it.
    capped_expired: int = 0
    #: The earliest instant a contact left out as ``expired`` could have got the text.
    earliest_expired: datetime | None = None
    cap_words: str = ""
    timezone: str = "UTC"

    @property
    def excluded_total(self) -> int:
        return sum(self.excluded.values())

    def local(self, at: datetime) -> str:
        return f"{local(at, self.timezone):%Y-%m-%d %H:%M} {self.timezone}"

    def lines(self) -> list[str]:
        """The plan in words, as the command prints it."""
        out = [
            f"{len(self.recipients)} of {self.considered} contacts will get this text; "
            f"{self.excluded_total} excluded"
        ]
        for reason, n in sorted(self.excluded.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"  excluded {n:>6}  {reason}: {REASON_WORDS.get(reason, reason)}")
        waiting = sum(self.deferred.values())
        if waiting:
            why = ", ".join(f"{n} {code}" for code, n in sorted(self.deferred.items()))
            out.append(
                f"  {waiting} of the recipients are outside their send window or state cap "
                f"right now ({why}): theirs go out when it allows"
            )
        if self.cap_words:  # the account has a frequency cap: say what it holds, even none
            held = f"{self.capped} wait until it allows" if self.capped else ""
            lost = f"{self.capped_expired} would expire first" if self.capped_expired else ""
            why = "; ".join(part for part in (held, lost) if part)
            out.append(
                f"  the frequency cap ({self.cap_words}) holds back "
                f"{self.capped + self.capped_expired} of these texts" + (f": {why}" if why else "")
            )
        if self.expires_at is not None:
            out.append(
                f"  expires at {self.local(self.expires_at)}: a text that cannot go by then "
                "is skipped (expired), never sent late"
            )
        return out


def expiry_problem(plan: BulkPlan) -> str | None:
    """Why the plan's expiry leaves nothing to send (every selected contact expires), or None."""
    expired = plan.excluded.get("expired", 0)
    if plan.expires_at is None or plan.recipients or not expired:
        return None
    opens = (
        f"; the earliest any of them could get it is {plan.local(plan.earliest_expired)}"
        if plan.earliest_expired is not None
        else ""
    )
    return (
        f"--expires-at {plan.local(plan.expires_at)} comes before the bulk could start: "
        f"none of the {expired} selected contact(s) could get the text by then{opens}; "
        "nothing scheduled"
    )


def _chunks(items: list[T]) -> Iterator[list[T]]:
    """``items`` in slices of :data:`IN_CHUNK`: an ``IN (...)`` list has one bind per value."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def check_body(body: str) -> str:
    """The body, stripped, or ValidationError: empty, too long, unknown variable, shortener."""
    text = body.strip()
    if not text:
        raise ValidationError("BODY: the text is empty")
    if len(text) > MAX_BODY:
        raise ValidationError(f"BODY: {len(text)} characters; at most {MAX_BODY}")
    problems = template_problems(text, ACCOUNT_TEMPLATE_VARIABLES)
    if problems:
        raise ValidationError(f"BODY: {problems[0].message}")
    for link in find_links(text):
        domain = shortener_of(link.host)
        if domain is not None:
            raise ValidationError(
                f"BODY: {link.text} goes through the link shortener {domain}; carriers filter "
                "shortened links, use the full address"
            )
    return text


def plan_bulk(
    deps: Deps,
    body: str,
    filters: BulkFilters,
    now: datetime,
    *,
    expires_at: datetime | None = None,
) -> BulkPlan:
    """Select the recipients of a bulk text (see the module docstring); changes nothing.

    An ``expires_at`` at or before ``now`` is a ValidationError.
    """
    plan = _new_plan(deps, body, now, expires_at)
    state = normalize_state(filters.state) if filters.state else None
    with deps.sessions() as session:
        campaign_members: set[int] | None = None
        if filters.campaign is not None:
            row = repo.campaign_by_name(session, filters.campaign)
            if row is None:
                raise NotFoundError(f"--campaign: no campaign named {filters.campaign!r}")
            campaign_members = {
                e.contact_id for e in repo.active_enrollments_of_campaign(session, row.id)
            }
        contacts = store_contacts.all_by_id(session)
        agents = {a.id: a for a in store_agents.all_agents(session)}
        plan.considered = len(contacts)
        ids = [c.id for c in contacts]
        senders = {
            c.id: resolve_sender(
                SenderRole.AGENT, agents.get(c.agent_id) if c.agent_id else None, deps.account
            )
            for c in contacts
        }
        last_out: dict[int, datetime] = {}
        since: datetime | None = None
        if filters.not_contacted_since_days is not None:
            since = now - timedelta(days=filters.not_contacted_since_days)
            for part in _chunks(ids):
                last_out.update(repo.last_outbound_at(session, part))
        two_way: set[tuple[str, int]] = set()
        if filters.two_way_only:
            pairs = [(s.phone, cid) for cid, s in senders.items() if s is not None]
            for part_pairs in _chunks(pairs):
                two_way.update(
                    key
                    for key, conv in repo.conversations_for(session, part_pairs).items()
                    if conv.two_way_at is not None
                )
        marketing: dict[int, list[datetime]] = {}
        counted_since = now - lookback(deps.account.frequency_cap, DAY)
        for part in _chunks(ids):
            marketing.update(repo.marketing_sent_since(session, part, counted_since))
        outgoing = Outgoing(
            kind=MessageKind.BULK,
            due_at=now,
            channel=Channel.SMS,
            window=deps.account.send_window,
            expires_at=expires_at,
        )
        for contact in contacts:
            sender = senders[contact.id]
            reason = _filtered(
                contact,
                filters,
                state=state,
                members=campaign_members,
                two_way=filters.two_way_only
                and (sender is None or (sender.phone, contact.id) not in two_way),
                recent=since is not None
                and contact.id in last_out
                and last_out[contact.id] >= since,
            )
            if reason is None and sender is None:
                reason = "no_sender"
            if reason is not None:
                plan.excluded[reason] += 1
                continue
            cstate = contact_state(contact, deps, marketing.get(contact.id, []))
            _judge(deps, plan, contact.id, cstate, outgoing=outgoing, now=now)
    return plan


def _new_plan(deps: Deps, body: str, now: datetime, expires_at: datetime | None) -> BulkPlan:
    """An empty plan for ``body``; an expiry at or before ``now`` is a ValidationError."""
    cap = deps.account.frequency_cap
    plan = BulkPlan(
        check_body(body),
        expires_at=expires_at,
        cap_words=cap.words() if cap is not None else "",
        timezone=deps.account.default_timezone,
    )
    if expires_at is not None and expires_at <= now:
        raise ValidationError(
            f"--expires-at {plan.local(expires_at)} is already past "
            f"(it is {plan.local(now)}); nothing scheduled"
        )
    return plan


def _judge(
    deps: Deps,
    plan: BulkPlan,
    contact_id: int,
    contact: ContactState,
    *,
    outgoing: Outgoing,
    now: datetime,
) -> None:
    """The consent gate, window, caps and expiry for one selected contact, counted in ``plan``."""
    decision = _decide(deps, contact, outgoing, now, cap=True)
    _count_cap(deps, plan, contact, outgoing, now=now, decision=decision)
    if isinstance(decision, Skip):
        plan.excluded[decision.code.value] += 1
        if decision.code is SkipCode.EXPIRED:
            _note_opening(deps, plan, contact, outgoing, now)
        return
    if isinstance(decision, Defer):
        plan.deferred[decision.code.value] += 1
    plan.recipients.append(contact_id)


def _decide(
    deps: Deps, contact: ContactState, outgoing: Outgoing, now: datetime, *, cap: bool
) -> Decision:
    """The policy's decision for one bulk text, with or without the frequency cap."""
    return decide(
        contact,
        ConversationState(),
        outgoing,
        now,
        state_rules=deps.account.state_rules,
        blackouts=deps.account.blackouts,
        frequency_cap=deps.account.frequency_cap if cap else None,
    )


def _count_cap(
    deps: Deps,
    plan: BulkPlan,
    contact: ContactState,
    outgoing: Outgoing,
    *,
    now: datetime,
    decision: Decision,
) -> None:
    """Count the text when the frequency cap is what holds it back (or makes it expire)."""
    if deps.account.frequency_cap is None or not isinstance(decision, Defer | Skip):
        return
    if held_by_cap(decision, _decide(deps, contact, outgoing, now, cap=False)):
        if isinstance(decision, Defer):
            plan.capped += 1
        else:
            plan.capped_expired += 1


def _note_opening(
    deps: Deps, plan: BulkPlan, contact: ContactState, outgoing: Outgoing, now: datetime
) -> None:
    """Keep the earliest instant an expired contact could have got the text, for the message."""
    unbound = _decide(deps, contact, replace(outgoing, expires_at=None), now, cap=True)
    at = unbound.until if isinstance(unbound, Defer) else now
    if plan.earliest_expired is None or at < plan.earliest_expired:
        plan.earliest_expired = at


def _filtered(
    contact: Any,
    filters: BulkFilters,
    *,
    state: str | None,
    members: set[int] | None,
    two_way: bool,
    recent: bool,
) -> str | None:
    """The first of the operator's filters that leaves ``contact`` out, or None."""
    if state is not None and resolve_state(contact.state, contact.phone) != state:
        return "filtered: state"
    if members is not None and contact.id not in members:
        return "filtered: campaign"
    if two_way:
        return "filtered: two_way"
    if recent:
        return "filtered: recently_contacted"
    crm = crm_reason(contact, filters.stage, filters.tag)
    return None if crm is None else f"filtered: {crm}"


@dataclass(frozen=True, slots=True)
class BulkScheduled:
    """A bulk that scheduled its sends: ``bulk_id`` is what ``drip bulk cancel`` takes."""

    bulk_id: int
    sends: int


def schedule_bulk(
    deps: Deps,
    plan: BulkPlan,
    now: datetime,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Create the plan's scheduled sends (all or none, one transaction); returns how many."""
    return start_bulk(deps, plan, now, on_batch=on_batch).sends


def start_bulk(
    deps: Deps,
    plan: BulkPlan,
    now: datetime,
    *,
    filters: str = "",
    on_batch: Callable[[int], None] | None = None,
) -> BulkScheduled:
    """Record the bulk (its id) and create its scheduled sends, all in one transaction."""
    with deps.sessions.begin() as session:
        bulk = Bulk(
            body=plan.body,
            filters=filters or "all contacts",
            recipients=len(plan.recipients),
            created_at=now,
        )
        session.add(bulk)
        session.flush()
        bulk_id = bulk.id
        rows: list[dict[str, Any]] = [
            {
                "contact_id": contact_id,
                "kind": MessageKind.BULK,
                "channel": Channel.SMS,
                "body": plan.body,
                "sender_role": SenderRole.AGENT,
                "due_at": now,
                "created_at": now,
                "bulk_id": bulk_id,
                "expires_at": plan.expires_at,
            }
            for contact_id in plan.recipients
        ]
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            claims.bulk_insert_sends(session, batch, now=now)
            if on_batch is not None:
                on_batch(len(batch))
    log.info(
        "bulk_scheduled",
        bulk_id=bulk_id,
        sends=len(rows),
        excluded=plan.excluded_total,
        expires_at=plan.expires_at.isoformat() if plan.expires_at else None,
    )
    return BulkScheduled(bulk_id, len(rows))


@dataclass(frozen=True, slots=True)
class BulkCancelled:
    bulk_id: int
    cancelled: int
    already_out: int
    message: str


def cancel_bulk(
    deps: Deps, bulk_id: int, now: datetime, *, by: str = "the operator"
) -> BulkCancelled:
    """Cancel the bulk's sends not sent yet (pending), each with a recorded decision."""
    from drip.store import lifecycle as store
    from drip.store.models import ScheduledSend

    with deps.sessions.begin() as session:
        bulk = session.get(Bulk, bulk_id)
        if bulk is None:
            raise NotFoundError(f"no bulk with id {bulk_id}")
        cancelled = store.cancel_pending(
            session,
            ScheduledSend.bulk_id == bulk_id,
            now,
            "bulk_cancelled",
            f"cancelled: bulk {bulk_id} was cancelled by {by}",
        )
        by_state = sends.count_by_state_of_bulk(session, bulk_id)
        if bulk.cancelled_at is None:
            bulk.cancelled_at = now
    out = sum(n for state, n in by_state.items() if state is not SendState.CANCELLED)
    before = by_state.get(SendState.CANCELLED, 0) - len(cancelled)
    log.info("bulk_cancelled", bulk_id=bulk_id, cancelled=len(cancelled), already_out=out)
    head = (
        f"bulk {bulk_id} was already cancelled: {before} send(s) cancelled before"
        if not cancelled and before
        else f"bulk {bulk_id}: {len(cancelled)} send(s) cancelled"
    )
    return BulkCancelled(
        bulk_id,
        len(cancelled),
        out,
        f"{head}; {out} already sent, skipped or in flight (not changed)",
    )
