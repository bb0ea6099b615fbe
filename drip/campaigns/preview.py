"""``drip preview``: what a campaign would send to one contact, when, and with which footer.

The preview runs the campaign for a sample contact the way the worker would,
with the worker's own pure functions: ``schedule.step_due_at`` for due times,
``policy.decide`` for the send window, the state rules and the footer, and
``message.render`` / ``with_footer`` / ``sms_size`` for the text. Sends go out
in due order (ties in campaign order, an introduction first), each one decided
from the conversation state that the sends before it left behind:

- a text that carried the footer sets that conversation's
  ``footer_last_sent_at`` to its send time;
- with ``two_way_day`` the contact replies to the campaign's sender on that
  day, at the start's local time (before a step due at the same instant):
  that conversation becomes two-way, and a ``stop_on_reply`` campaign stops;
- campaign texts count toward the state cap (24 h sliding window) and the
  account's frequency cap, which the preview counts the texts it holds back
  of (:func:`drip.domain.holdback.held_by_cap`; the contact's texts of other
  campaigns and bulks are not known here, so real contacts may be held more);
- a step's ``expires_after`` is counted from its due time: a text that
  cannot go by then is skipped (expired), as the worker does;
- a deferred send comes back at the time ``decide`` named and is decided again.

Choices the rules leave open:

- The sample contact has SMS consent, an email address, no earlier texts
  (unless ``intro`` is given) and lives in ``timezone``, else the zone set of
  ``phone``'s area code, else the account's default zone; its
  states are ``state`` and the state of ``phone``'s area code (default:
  none, so no state rule applies).
- The introduction is a manual text from the agent at ``start``, so it is not
  held by the send window; the plan is enrolled at the same instant.
- Agent names come from the account's ``default_agent``, else "Sam Lee" at
  +1 617-555-0100; the contact defaults to "Dana Ruiz".
- Without ``start``, the plan starts at the first Monday 10:00 local time
  strictly after ``now``.
- Email steps are shown without the unsubscribe line the worker appends;
  they have no encoding or segments.

Pure: no clock, no I/O; ``now`` is passed in.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

import phonenumbers

from drip.campaigns.preview_totals import PreviewTotals
from drip.domain.account import AccountSettings, AgentProfile
from drip.domain.campaign import Campaign, Step
from drip.domain.enums import Channel, MessageKind, OptOutMode, SenderRole
from drip.domain.frequency import FrequencyCap
from drip.domain.holdback import held_by_cap
from drip.domain.message import (
    ACCOUNT_TEMPLATE_VARIABLES,
    missing_reason,
    missing_values,
    render,
    sms_size,
    template_variables,
    with_footer,
)
from drip.domain.policy import (
    ContactState,
    ConversationState,
    Decision,
    Defer,
    Outgoing,
    Send,
    Skip,
    decide,
)
from drip.domain.schedule import at_local, local, step_due_at
from drip.domain.zones import (
    normalize_phone,
    normalize_state,
    resolve_states,
    resolve_timezone,
    validate_timezone,
)
from drip.errors import ValidationError

#: The agent named in previews when the account sets no ``default_agent``.
SAMPLE_AGENT = AgentProfile("Sam", "Lee", "+16175550100")
#: The sample contact's names when none are given.
SAMPLE_CONTACT = ("Dana", "Ruiz")
#: The local time a preview starts at when no start is given (next Monday).
DEFAULT_START_TIME = time(10, 0)
_MONDAY = 0
#: A send deferred this many times is reported as stuck rather than looped on.
_MAX_DECISIONS = 10_000
_START_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One message of the preview: when it goes out, what it says, what it costs.

    ``send_at`` is None for a step that never goes out (skipped, or stopped by
    a reply). ``day`` is the local date difference between ``send_at`` and the
    start; ``step_day`` is the step's own ``day`` (0 for the introduction).
    """

    label: str
    kind: MessageKind
    channel: Channel
    sender: SenderRole
    step_day: int
    due_at: datetime
    send_at: datetime | None
    day: int | None
    local_time: str | None
    outcome: str  # sent | skipped | stopped
    footer: bool
    footer_rule: str | None
    reason: str
    deferrals: tuple[str, ...]
    text: str
    subject: str | None
    characters: int
    units: int | None
    encoding: str | None
    segments: int | None
    #: The account's frequency cap deferred it (or made it expire).
    capped: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "step": self.label,
            "kind": self.kind.value,
            "channel": self.channel.value,
            "from": self.sender.value,
            "step_day": self.step_day,
            "due_at": self.due_at.isoformat(),
            "send_at": self.send_at.isoformat() if self.send_at else None,
            "day": self.day,
            "local_time": self.local_time,
            "outcome": self.outcome,
            "footer": self.footer,
            "footer_rule": self.footer_rule,
            "reason": self.reason,
            "deferrals": list(self.deferrals),
            "text": self.text,
            "subject": self.subject,
            "characters": self.characters,
            "units": self.units,
            "encoding": self.encoding,
            "segments": self.segments,
            "held_by_frequency_cap": self.capped,
        }


@dataclass(frozen=True, slots=True)
class Preview:
    """The whole preview of one campaign for one sample contact."""

    campaign: str
    timezone: str
    state: str | None
    start: datetime
    zones: tuple[str, ...]
    zone_detail: str
    states: tuple[str, ...]
    contact: tuple[str, str]
    agent: AgentProfile
    window: str
    two_way_at: datetime | None
    rows: tuple[PreviewRow, ...] = field(default_factory=tuple)
    frequency_cap: FrequencyCap | None = None
    #: (row, variable, who lacks it) for variables real contacts may lack.
    _optional_uses: tuple[tuple[PreviewRow, str, str], ...] = field(default_factory=tuple)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Steps that some contacts will not get: a variable that can be empty."""
        return tuple(
            f"{row.label}: uses {{{name}}}, which is empty for {who}; "
            "such contacts get no message from this step (it is skipped, never sent blank)"
            for row, name, who in self._optional_uses
        )

    @property
    def totals(self) -> PreviewTotals:
        sent = [r for r in self.rows if r.outcome == "sent"]
        texts = [r for r in sent if r.channel is Channel.SMS]
        return PreviewTotals(
            texts=len(texts),
            emails=sum(1 for r in sent if r.channel is Channel.EMAIL),
            footers=sum(1 for r in texts if r.footer),
            segments=sum(r.segments or 0 for r in texts),
            not_sent=len(self.rows) - len(sent),
        )

    def local(self, at: datetime) -> str:
        return _local(at, self.timezone)

    @property
    def capped(self) -> int:
        """How many of the contact's texts the frequency cap holds back (deferred or expired)."""
        return sum(1 for r in self.rows if r.capped)

    def cap_line(self) -> str | None:
        """The frequency cap's effect in words, or None without a cap."""
        if self.frequency_cap is None:
            return None
        return (
            f"frequency cap ({self.frequency_cap.words()}): holds back {self.capped} of "
            "these texts for this contact; texts of other campaigns and bulks count too"
        )

    @property
    def zone_text(self) -> str:
        """The zone or the zone set, and why."""
        names = " + ".join(self.zones)
        return f"{names}: {self.zone_detail}" if self.zone_detail else names

    def as_dict(self) -> dict[str, object]:
        return {
            "campaign": self.campaign,
            "timezone": self.timezone,
            "zones": list(self.zones),
            "zone_detail": self.zone_detail,
            "state": self.state,
            "states": list(self.states),
            "start": self.start.isoformat(),
            "start_local": self.local(self.start),
            "contact": {"first_name": self.contact[0], "last_name": self.contact[1]},
            "agent": {
                "first_name": self.agent.first_name,
                "last_name": self.agent.last_name,
                "phone": self.agent.phone,
            },
            "send_window": self.window,
            "two_way_at": self.two_way_at.isoformat() if self.two_way_at else None,
            "rows": [r.as_dict() for r in self.rows],
            "totals": self.totals.as_dict(),
            "warnings": list(self.warnings),
            "frequency_cap": None
            if self.frequency_cap is None
            else {
                "texts": self.frequency_cap.texts,
                "days": self.frequency_cap.days,
                "held_back": self.capped,
            },
        }


def next_monday_morning(now: datetime, tz: str) -> datetime:
    """The first Monday 10:00 in zone ``tz`` strictly after ``now`` (UTC)."""
    if now.utcoffset() is None:
        raise ValidationError("now must be timezone-aware")
    today = local(now, tz).date()
    ahead = (_MONDAY - today.weekday()) % 7
    candidate = at_local(today + timedelta(days=ahead), DEFAULT_START_TIME, tz)
    if candidate <= now:
        candidate = at_local(today + timedelta(days=ahead + 7), DEFAULT_START_TIME, tz)
    return candidate


def parse_start(text: str, tz: str) -> datetime:
    """``"YYYY-MM-DD HH:MM"``, a local time in zone ``tz``, as a UTC instant."""
    cleaned = " ".join(text.split())
    for fmt in _START_FORMATS:
        try:
            parsed = datetime.strptime(cleaned, fmt)  # noqa: DTZ007 - a local wall time, placed in tz below
        except ValueError:
            continue
        return at_local(parsed.date(), parsed.time(), validate_timezone(tz))
    raise ValidationError(f"start {text!r} is not a local time like 2026-03-02 10:00")


def parse_contact(text: str) -> tuple[str, str]:
    """``"First Last"`` as (first, last); everything after the first word is the last name."""
    parts = text.split(maxsplit=1)
    if not parts:
        raise ValidationError("contact name is empty")
    return parts[0], parts[1] if len(parts) > 1 else ""


@dataclass(slots=True)
class _Item:
    """A message waiting to be decided, as a scheduled send waits in the database."""

    seq: int
    label: str
    kind: MessageKind
    channel: Channel
    sender: SenderRole
    step_day: int
    body: str
    subject: str | None
    opt_out: OptOutMode
    due_at: datetime
    original_due_at: datetime
    in_plan: bool
    catching_up: bool = False
    deferrals: list[str] = field(default_factory=list)
    expires_at: datetime | None = None
    capped: bool = False


def preview(
    campaign: Campaign,
    account: AccountSettings,
    *,
    now: datetime,
    start: datetime | None = None,
    timezone: str | None = None,
    state: str | None = None,
    intro: str | None = None,
    two_way_day: int | None = None,
    contact: tuple[str, str] = SAMPLE_CONTACT,
    phone: str | None = None,
) -> Preview:
    """Run ``campaign`` for one sample contact starting at ``start`` (see the module docstring)."""
    number = normalize_phone(phone) if phone else None
    zone = resolve_timezone(timezone, number, account.default_timezone)
    tz = zone.name
    state_code = normalize_state(state) if state else None
    states = resolve_states(state_code, number)
    if two_way_day is not None and two_way_day < 0:
        raise ValidationError(f"two-way day must not be negative, got {two_way_day}")
    begin = start if start is not None else next_monday_morning(now, tz)
    if begin.utcoffset() is None:
        raise ValidationError("start must be timezone-aware")
    agent = account.default_agent or SAMPLE_AGENT
    values = _values(contact, agent, account)
    window = campaign.send_window or account.send_window

    items = _items(campaign, begin, tz, intro)
    reply_at = step_due_at(begin, two_way_day, None, tz) if two_way_day is not None else None
    rows = _simulate(
        campaign,
        account,
        items,
        ContactState(
            timezone=tz,
            zones=zone.zones,
            zone_detail=zone.detail,
            sms_consent_at=begin,
            has_email=True,
            state=states[0] if states else None,
            states=states,
        ),
        values=values,
        reply_at=reply_at,
        begin=begin,
    )
    return Preview(
        campaign=campaign.name,
        timezone=tz,
        state=state_code,
        start=begin,
        zones=zone.zones,
        zone_detail=zone.detail,
        states=states,
        contact=contact,
        agent=agent,
        window=str(window),
        two_way_at=reply_at,
        rows=tuple(rows),
        frequency_cap=account.frequency_cap,
        _optional_uses=_optional_uses(campaign, account, rows),
    )


#: Variables some real contacts have no value for, and who they are.
OPTIONAL_VARIABLES = {
    "VisitorLastName": "contacts registered without a last name",
    "AgentFirstName": "contacts with no agent when the account has no default_agent",
    "AgentLastName": "contacts with no agent when the account has no default_agent",
    "AgentPhone": "contacts with no agent when the account has no default_agent",
}


def _optional_uses(
    campaign: Campaign, account: AccountSettings, rows: list[PreviewRow]
) -> tuple[tuple[PreviewRow, str, str], ...]:
    optional = {
        k: v
        for k, v in OPTIONAL_VARIABLES.items()
        if account.default_agent is None or not k.startswith("Agent")
    }
    by_label = {r.label: r for r in rows}
    found: list[tuple[PreviewRow, str, str]] = []
    for step in campaign.steps:
        row = by_label.get(step.id)
        if row is None:
            continue
        names = dict.fromkeys(
            n for text in (step.body, step.subject or "") for n, _ in template_variables(text)
        )
        found.extend((row, n, optional[n]) for n in names if n in optional)
    return tuple(found)


def _items(campaign: Campaign, begin: datetime, tz: str, intro: str | None) -> list[_Item]:
    items: list[_Item] = []
    if intro is not None:
        if not intro.strip():
            raise ValidationError("the introduction text is empty")
        items.append(
            _Item(
                seq=0,
                label="intro",
                kind=MessageKind.MANUAL,
                channel=Channel.SMS,
                sender=SenderRole.AGENT,
                step_day=0,
                body=intro,
                subject=None,
                opt_out=OptOutMode.RULES,
                due_at=begin,
                original_due_at=begin,
                in_plan=False,
            )
        )
    for step in campaign.steps:
        due = step_due_at(begin, step.day, step.at, tz)
        items.append(_step_item(campaign, step, due))
    return items


def _step_item(campaign: Campaign, step: Step, due: datetime) -> _Item:
    return _Item(
        seq=step.position,
        label=step.id,
        kind=MessageKind.CAMPAIGN,
        channel=step.channel,
        sender=campaign.sender,
        step_day=step.day,
        body=step.body,
        subject=step.subject,
        opt_out=step.opt_out,
        due_at=due,
        original_due_at=due,
        in_plan=True,
        expires_at=due + step.expires_after if step.expires_after is not None else None,
    )


def _simulate(
    campaign: Campaign,
    account: AccountSettings,
    items: list[_Item],
    contact: ContactState,
    *,
    values: dict[str, str],
    reply_at: datetime | None,
    begin: datetime,
) -> list[PreviewRow]:
    conversations: dict[SenderRole, ConversationState] = {}
    marketing: list[datetime] = []
    last_sent: datetime | None = None
    stopped = False
    queue = [(item.due_at, item.seq, item) for item in items]
    heapq.heapify(queue)
    rows: list[PreviewRow] = []
    replied = reply_at is None
    for _ in range(_MAX_DECISIONS):
        if not queue:
            break
        due, _seq, item = heapq.heappop(queue)
        if not replied and reply_at is not None and reply_at <= due:
            replied = True
            role = campaign.sender
            before = conversations.get(role, ConversationState())
            if before.two_way_at is None:
                conversations[role] = replace(before, two_way_at=reply_at)
            stopped = campaign.stop_on_reply
        if stopped and item.in_plan:
            rows.append(
                _unsent(
                    item,
                    "stopped",
                    f"not sent: the contact replied on {_local(reply_at or due, contact.timezone)} "
                    "and the campaign says stop_on_reply",
                )
            )
            continue
        conversation = conversations.get(item.sender, ConversationState())
        outgoing = Outgoing(
            kind=item.kind,
            due_at=item.due_at,
            channel=item.channel,
            opt_out=item.opt_out,
            footer_interval=timedelta(days=campaign.opt_out.interval_days if item.in_plan else 30),
            window=(campaign.send_window or account.send_window)
            if item.in_plan
            else account.send_window,
            catching_up=item.catching_up,
            enrollment_last_sent_at=last_sent if item.in_plan else None,
            expires_at=item.expires_at,
        )
        state = replace(contact, marketing_sent=tuple(marketing))
        decision = _decide(account, state, conversation, outgoing, item)
        if isinstance(decision, Defer):
            item.due_at = decision.until
            item.catching_up = decision.catching_up
            item.deferrals.append(decision.reason)
            heapq.heappush(queue, (item.due_at, item.seq, item))
            continue
        if isinstance(decision, Skip):
            rows.append(_unsent(item, "skipped", decision.reason))
            continue
        missing = missing_values((item.body, item.subject), values, ACCOUNT_TEMPLATE_VARIABLES)
        if missing:  # the worker skips it too (never an empty variable)
            rows.append(_unsent(item, "skipped", missing_reason(missing)))
            continue
        footer_text = (campaign.opt_out.footer if item.in_plan else None) or account.footer
        rows.append(
            _sent(
                item,
                decision,
                at=due,
                begin=begin,
                tz=contact.timezone,
                values=values,
                footer_text=footer_text,
            )
        )
        if item.channel is Channel.SMS:
            if decision.footer:
                conversations[item.sender] = replace(conversation, footer_last_sent_at=due)
            if item.kind.is_marketing:
                marketing.append(due)
        if item.in_plan:
            last_sent = due
    else:
        raise ValidationError(
            f"preview of {campaign.name}: sends kept being deferred; check the send window "
            "and the state rules"
        )
    return rows


def _decide(
    account: AccountSettings,
    state: ContactState,
    conversation: ConversationState,
    outgoing: Outgoing,
    item: _Item,
) -> Decision:
    """The worker's decision at the item's due time; notes whether the frequency cap held it."""

    def at_due(cap: FrequencyCap | None) -> Decision:
        return decide(
            state,
            conversation,
            outgoing,
            item.due_at,
            state_rules=account.state_rules,
            blackouts=account.blackouts,
            frequency_cap=cap,
        )

    decision = at_due(account.frequency_cap)
    if account.frequency_cap is not None and held_by_cap(decision, at_due(None)):
        item.capped = True
    return decision


def _sent(
    item: _Item,
    decision: Send,
    *,
    at: datetime,
    begin: datetime,
    tz: str,
    values: dict[str, str],
    footer_text: str,
) -> PreviewRow:
    body = render(item.body, values, allowed=ACCOUNT_TEMPLATE_VARIABLES)
    subject = None
    units: int | None = None
    encoding: str | None = None
    segments: int | None = None
    if item.channel is Channel.SMS:
        text = with_footer(body, footer_text) if decision.footer else body
        size = sms_size(text)
        units, encoding, segments = size.units, size.encoding, size.segments
    else:
        text = body
        subject = render(item.subject or "", values)
    return PreviewRow(
        label=item.label,
        kind=item.kind,
        channel=item.channel,
        sender=item.sender,
        step_day=item.step_day,
        due_at=item.original_due_at,
        send_at=at,
        day=_day(begin, at, tz),
        local_time=_local(at, tz),
        outcome="sent",
        footer=decision.footer,
        footer_rule=decision.rule.value,
        reason=decision.reason,
        deferrals=tuple(item.deferrals),
        text=text,
        subject=subject,
        characters=len(text),
        units=units,
        encoding=encoding,
        segments=segments,
        capped=item.capped,
    )


def _unsent(item: _Item, outcome: str, reason: str) -> PreviewRow:
    return PreviewRow(
        label=item.label,
        kind=item.kind,
        channel=item.channel,
        sender=item.sender,
        step_day=item.step_day,
        due_at=item.original_due_at,
        send_at=None,
        day=None,
        local_time=None,
        outcome=outcome,
        footer=False,
        footer_rule=None,
        reason=reason,
        deferrals=tuple(item.deferrals),
        text="",
        subject=None,
        characters=0,
        units=None,
        encoding=None,
        segments=None,
        capped=item.capped,
    )


def _values(
    contact: tuple[str, str], agent: AgentProfile, account: AccountSettings
) -> dict[str, str]:
    """The template values the worker would use (``services.senders.template_values``)."""
    return {
        "VisitorFirstName": contact[0],
        "VisitorLastName": contact[1],
        "AgentFirstName": agent.first_name,
        "AgentLastName": agent.last_name,
        "AgentPhone": _display_phone(agent.phone),
        "CompanyName": account.company,
        "SupportPhone": _display_phone(account.support_phone),
        "SupportEmail": account.support_email,
    }


def _display_phone(e164: str) -> str:
    """``(617) 555-0100`` for US numbers, as ``services.senders.display_phone`` shows them."""
    try:
        parsed = phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def _day(begin: datetime, at: datetime, tz: str) -> int:
    first = date.fromordinal(local(begin, tz).date().toordinal())
    last = date.fromordinal(local(at, tz).date().toordinal())
    return (last - first).days


def _local(at: datetime, tz: str) -> str:
    return f"{local(at, tz):%Y-%m-%d %a %H:%M}"
