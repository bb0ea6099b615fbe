"""The send decision: a pure function of contact, conversation, message and ``now``.

``decide`` is the one place the compliance rules live (consent, the
opt-out footer, the send window: docs/compliance.md).
Workers, the CLI, the webhook app and replay all gather the inputs, call it,
and apply the ``Decision`` it returns; none of them re-implements a rule.

The checks go in this order: the consent gate (skip), then the
send window, state caps and catch-up (defer), then the footer (send).

Where a contact may be in several zones (an area code that spans two) and
several states (the address state and the area code's state), every window
-- the campaign's or account's, and every enabled rule of every state, with
its per-weekday hours, closed days, holidays and blackouts -- is applied in
every zone, and a deferred text goes at the earliest instant that is open in
all of them. The rules arrive as values (``state_rules``,
``blackouts``); this module reads no file and no clock.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta

from drip.domain.decision_codes import DeferCode, FooterRule, SkipCode
from drip.domain.enums import Channel, MessageKind, OptOutMode, TextStatus
from drip.domain.frequency import FrequencyCap, cap_release
from drip.domain.schedule import at_local
from drip.domain.window import (
    WEEKDAY_WORDS,
    Blackout,
    SendWindow,
    StateRule,
    rules_for,
    state_holiday,
)
from drip.errors import ValidationError

DAY = timedelta(hours=24)
#: A step more than this late is "overdue": it is caught up at most one a day.
OVERDUE_AFTER = timedelta(hours=1)
#: Deferral constraints are re-applied until none moves the time; each only
#: moves forward, so this bound is never reached in practice.
_MAX_ROUNDS = 32
#: How far ahead the next opening is looked for; rules that close every day
#: for longer than this (a blackout of years) are a configuration error.
_MAX_CLOSED_DAYS = 800


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone named ``name``, loaded once (pendulum reads the tz file on every lookup)."""
    return zoneinfo.ZoneInfo(name)


def _in_zone(dt: datetime, tz: str) -> datetime:
    """The aware instant ``dt`` as wall-clock time in zone ``tz``."""
    return dt.astimezone(_zone(tz))


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class ContactState:
    """What the decision needs to know about the recipient, read at fire time.

    ``marketing_sent`` holds the send times of campaign and bulk texts to this
    contact in (at least) the 24 h, and the frequency cap's span, before
    ``now``; the state caps and the frequency cap count them.
    ``timezone`` is the zone dates and due times are read in; ``zones`` every
    zone the contact may be in (empty: just ``timezone``); ``state`` and
    ``states`` every state whose rules apply.
    """

    timezone: str
    has_phone: bool = True
    sms_consent_at: datetime | None = None
    sms_opted_out_at: datetime | None = None
    text_status: TextStatus = TextStatus.TEXTABLE
    #: Who set ``text_status`` by hand (an operator's name), named in the skip's reason.
    text_status_by: str | None = None
    has_email: bool = False
    email_opted_out: bool = False
    state: str | None = None
    marketing_sent: tuple[datetime, ...] = ()
    zones: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    zone_detail: str = ""

    def __post_init__(self) -> None:
        _aware("sms_consent_at", self.sms_consent_at)
        _aware("sms_opted_out_at", self.sms_opted_out_at)
        for sent in self.marketing_sent:
            _aware("marketing_sent", sent)
        for name in (self.timezone, *self.zones):
            try:
                _zone(name)
            except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
                raise ValidationError(f"unknown time zone {name!r}") from exc

    @property
    def all_zones(self) -> tuple[str, ...]:
        """Every zone the windows are applied in, ``timezone`` first."""
        return tuple(dict.fromkeys((self.timezone, *self.zones)))

    @property
    def all_states(self) -> tuple[str, ...]:
        """Every state whose rules apply, without repeats."""
        found = (self.state, *self.states)
        return tuple(dict.fromkeys(s for s in found if s is not None))


@dataclass(frozen=True, slots=True)
class ConversationState:
    """Footer state of one (sender, contact) pair."""

    footer_last_sent_at: datetime | None = None
    two_way_at: datetime | None = None

    def __post_init__(self) -> None:
        _aware("footer_last_sent_at", self.footer_last_sent_at)
        _aware("two_way_at", self.two_way_at)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The message being decided: a campaign step, a bulk, manual or compliance text.

    ``catching_up`` is set once a step was found overdue, so that the deferral
    it gets keeps it in the one-a-day catch-up lane when it comes due again.
    """

    kind: MessageKind
    due_at: datetime
    channel: Channel = Channel.SMS
    opt_out: OptOutMode = OptOutMode.RULES
    footer_interval: timedelta = timedelta(days=30)
    window: SendWindow = field(default_factory=SendWindow)
    catching_up: bool = False
    enrollment_last_sent_at: datetime | None = None
    #: A compliance text held to the window and state rules like a campaign text:
    #: the confirmation of consent brought in by an import.
    held_to_window: bool = False
    #: A campaign or bulk text that cannot go by then is skipped, never sent late.
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        _aware("due_at", self.due_at)
        _aware("expires_at", self.expires_at)
        _aware("enrollment_last_sent_at", self.enrollment_last_sent_at)
        if self.footer_interval <= timedelta(0):
            raise ValidationError("footer interval must be positive")


@dataclass(frozen=True, slots=True)
class Send:
    """Send now; ``footer`` says whether to append the opt-out footer, ``rule`` why.

    ``window_closes_at`` (UTC, aware): for a campaign or bulk text, the
    earliest instant after ``now`` at which the send window closes in any
    zone or state rule that applies, or the text's expiry when that comes
    first, so the carrier can be told not to deliver it later (Twilio
    ``ValidityPeriod``); None for manual, compliance and email messages,
    which have no window.
    """

    footer: bool
    rule: FooterRule
    reason: str
    window_closes_at: datetime | None = None

    outcome = "send"


@dataclass(frozen=True, slots=True)
class Skip:
    """Do not send, ever, for this scheduled send."""

    code: SkipCode
    reason: str

    outcome = "skip"


@dataclass(frozen=True, slots=True)
class Defer:
    """Not now: try again at ``until`` (UTC)."""

    until: datetime
    code: DeferCode
    reason: str
    catching_up: bool = False

    outcome = "defer"


Decision = Send | Skip | Defer


def decide(
    contact: ContactState,
    conversation: ConversationState,
    outgoing: Outgoing,
    now: datetime,
    *,
    state_rules: tuple[StateRule, ...] = (),
    blackouts: tuple[Blackout, ...] = (),
    frequency_cap: FrequencyCap | None = None,
) -> Decision:
    """The decision for one message at ``now``, from the state at that moment.

    ``state_rules`` are the rule rows in force (the bundled pack as the
    account extends it); the rows of the contact's states apply. ``blackouts``
    are operations' closed date ranges per state. ``frequency_cap`` limits
    campaign and bulk texts per contact across campaigns; a campaign or bulk
    text whose ``expires_at`` comes before it may go is skipped (``expired``).
    """
    _aware("now", now)
    if outgoing.kind.is_compliance and not outgoing.held_to_window:
        # Compliance replies answer the contact: they bypass the consent gate
        # (a STOP confirmation goes to someone just opted out) and the window.
        return Send(
            False,
            FooterRule.COMPLIANCE,
            f"no footer: {_kind_words(outgoing.kind)} never carries it",
        )

    skip = _gate(contact, outgoing.channel)
    if skip is not None:
        return skip

    law = _law_for(contact, outgoing, state_rules, blackouts)
    defer = _deferral(contact, outgoing, now, law, frequency_cap)
    expires = outgoing.expires_at if outgoing.kind.is_marketing else None
    if expires is not None and (now >= expires or (defer is not None and defer.until >= expires)):
        why = "" if defer is None else f" ({defer.reason})"
        return Skip(
            SkipCode.EXPIRED,
            f"skipped: expired at {_local(expires, contact.timezone)}, never sent late{why}",
        )
    if defer is not None:
        return defer

    if outgoing.channel is Channel.EMAIL:
        return Send(
            False, FooterRule.NOT_SMS, "email: opt-out is the unsubscribe link, not the footer"
        )
    decision = footer_decision(
        conversation, outgoing.opt_out, outgoing.footer_interval, now, tz=contact.timezone
    )
    if outgoing.kind.is_compliance:  # held to the window: imported consent's confirmation
        decision = Send(
            False,
            FooterRule.COMPLIANCE,
            f"no footer: {_kind_words(outgoing.kind)} never carries it",
        )
    if law.is_text:
        # An expiry before the window closes is the carrier's deadline too (ValidityPeriod).
        closes = _closes_at(now, law) if expires is None else min(_closes_at(now, law), expires)
        return replace(decision, window_closes_at=closes)
    return decision


def window_closes_at(
    contact: ContactState,
    outgoing: Outgoing,
    now: datetime,
    state_rules: tuple[StateRule, ...] = (),
    blackouts: tuple[Blackout, ...] = (),
) -> datetime | None:
    """When the window holding this message closes after ``now`` (UTC); None if none holds it.

    The same value ``decide`` puts on a ``Send`` (``now`` is taken to be open).
    """
    law = _law_for(contact, outgoing, state_rules, blackouts)
    return _closes_at(now, law) if law.is_text else None


def footer_decision(
    conversation: ConversationState,
    opt_out: OptOutMode,
    interval: timedelta,
    now: datetime,
    *,
    tz: str = "UTC",
) -> Send:
    """Footer rules F1-F5 for a text going out at ``now``; dates in reasons are in ``tz``.

    "30 days" are calendar days in ``tz``: the footer is due again from the
    same local wall-clock time ``interval.days`` days after the last one (a
    DST change in between, a 719 h or 721 h span, changes nothing); a part of
    ``interval`` below a day is added as elapsed time.
    """
    last = conversation.footer_last_sent_at
    two_way = conversation.two_way_at
    if opt_out is OptOutMode.ALWAYS:
        return Send(True, FooterRule.F5_ALWAYS, "footer: the step says opt_out: always")
    if last is None:
        return Send(
            True,
            FooterRule.F1_INITIAL,
            "footer: no opt-out instructions sent from this sender to this contact yet",
        )
    if two_way is not None:
        return Send(
            False,
            FooterRule.F2_TWO_WAY,
            f"no footer: two-way conversation since {_date(two_way, tz)} "
            f"and the footer was sent on {_date(last, tz)}",
        )
    elapsed = now - last
    if now >= footer_due_again(last, interval, tz):
        days = (_local_date(now, tz) - _local_date(last, tz)).days
        return Send(
            True,
            FooterRule.F3_RECURRING,
            f"footer: {days} days since the last footer on {_date(last, tz)} and no reply yet",
        )
    return Send(
        False,
        FooterRule.F4_RECENT,
        f"no footer: only {_days(elapsed)} since the last footer on {_date(last, tz)} "
        f"(interval {_interval_words(interval)}), no reply yet",
    )


def footer_due_again(last: datetime, interval: timedelta, tz: str) -> datetime:
    """When the recurring footer (F3) is due again: ``interval`` calendar days after ``last`` in ``tz``."""
    local = _in_zone(last, tz)
    wall = time(local.hour, local.minute, local.second, local.microsecond)
    whole = timedelta(days=interval.days)
    return at_local(local.date() + whole, wall, tz) + (interval - whole)


def _local_date(dt: datetime, tz: str) -> date:
    local = _in_zone(dt, tz)
    return date(local.year, local.month, local.day)


def _interval_words(interval: timedelta) -> str:
    if interval == timedelta(days=interval.days):
        return f"{interval.days} calendar day" + ("" if interval.days == 1 else "s")
    return _days(interval)


def _gate(contact: ContactState, channel: Channel) -> Skip | None:
    tz = contact.timezone
    if channel is Channel.EMAIL:
        if not contact.has_email:
            return Skip(SkipCode.NO_EMAIL, "skipped: the contact has no email address")
        if contact.email_opted_out:
            return Skip(SkipCode.EMAIL_OPTED_OUT, "skipped: the contact unsubscribed from email")
        return None
    if not contact.has_phone:
        return Skip(SkipCode.NO_PHONE, "skipped: the contact has no phone number")
    if contact.sms_opted_out_at is not None:
        return Skip(
            SkipCode.OPTED_OUT,
            f"skipped: the contact opted out of texts on {_date(contact.sms_opted_out_at, tz)}",
        )
    if contact.text_status is TextStatus.CANNOT_BE_TEXTED:
        by = f" by {contact.text_status_by}" if contact.text_status_by else ""
        return Skip(
            SkipCode.CANNOT_BE_TEXTED, f"skipped: the contact is marked cannot be texted{by}"
        )
    if contact.text_status is TextStatus.UNDELIVERABLE:
        return Skip(
            SkipCode.UNDELIVERABLE,
            "skipped: the phone number was reported undeliverable by the carrier",
        )
    if contact.sms_consent_at is None:
        return Skip(SkipCode.NO_CONSENT, "skipped: no recorded SMS consent")
    return None


@dataclass(frozen=True, slots=True)
class _Law:
    """Everything that limits when this message may go out, for this contact."""

    is_text: bool
    window: SendWindow
    rules: tuple[StateRule, ...]
    blackouts: tuple[Blackout, ...]
    states: tuple[str, ...]
    zones: tuple[str, ...]


def _law_for(
    contact: ContactState,
    outgoing: Outgoing,
    state_rules: tuple[StateRule, ...],
    blackouts: tuple[Blackout, ...],
) -> _Law:
    # campaign and bulk texts, and compliance texts held to the window (imported consent)
    is_text = outgoing.channel is Channel.SMS and (
        outgoing.kind.is_marketing or outgoing.held_to_window
    )
    states = contact.all_states
    return _Law(
        is_text=is_text,
        window=outgoing.window,
        rules=rules_for(states, state_rules) if is_text else (),
        blackouts=tuple(b for b in blackouts if b.states & set(states)) if is_text else (),
        states=states,
        zones=contact.all_zones,
    )


@dataclass(frozen=True, slots=True)
class _Closed:
    """Why a local day, or an hour of it, is closed; ``where`` is the local time and zone."""

    code: DeferCode
    reason: str
    where: str = ""


def _closed_words(closed: list[_Closed]) -> list[tuple[DeferCode, str]]:
    """One phrase per distinct reason, the local times of every zone it held in joined."""
    grouped: dict[tuple[DeferCode, str], list[str]] = {}
    for item in closed:
        wheres = grouped.setdefault((item.code, item.reason), [])
        if item.where and item.where not in wheres:
            wheres.append(item.where)
    return [
        (code, f"{reason} at {', '.join(wheres)}" if wheres else reason)
        for (code, reason), wheres in grouped.items()
    ]


def _day_hours(law: _Law, day: date) -> SendWindow | _Closed:
    """The hours open on local date ``day`` in one zone, or why the whole day is closed."""
    weekday = day.weekday()
    for blackout in law.blackouts:
        for state in law.states:
            if blackout.covers(state, day):
                return _Closed(
                    DeferCode.BLACKOUT,
                    f"{state} blackout {blackout.start} to {blackout.until}: {blackout.reason}",
                )
    legal: SendWindow | None = None
    for rule in law.rules:
        if rule.holidays:
            holiday = state_holiday(rule.state, day)
            if holiday is not None:
                return _Closed(
                    DeferCode.HOLIDAY,
                    f"{rule.state} rule: no texts on state holidays ({holiday}, {day}; "
                    f"{rule.cited})",
                )
        hours = rule.window_on(weekday)
        if hours is None:
            return _Closed(
                DeferCode.CLOSED_DAY,
                f"{rule.state} rule: no texts on {WEEKDAY_WORDS[weekday]} ({rule.cited})",
            )
        if legal is None:
            legal = hours
        else:
            start, end = max(legal.start, hours.start), min(legal.end, hours.end)
            if start >= end:
                return _Closed(
                    DeferCode.CLOSED_DAY,
                    f"the rules of {', '.join(law.states)} leave no common hours on "
                    f"{WEEKDAY_WORDS[weekday]}",
                )
            legal = SendWindow(start, end)
    return law.window if legal is None else law.window.narrowed(legal)


def _hours_closed(law: _Law, hours: SendWindow, local: datetime, zone: str) -> _Closed:
    wall = time(local.hour, local.minute, local.second, local.microsecond)
    weekday = local.weekday()
    binding = []
    for rule in law.rules:
        day_hours = rule.window_on(weekday)
        if day_hours is not None and not day_hours.contains(wall):
            special = any(d == weekday for d, _ in rule.days)
            when = f", {WEEKDAY_WORDS[weekday]} {day_hours}" if special else ""
            binding.append(f"{rule.state} rule{when}: {rule.cited}")
    why = f" ({'; '.join(binding)})" if binding else ""
    return _Closed(
        DeferCode.WINDOW, f"outside the send window {hours}{why}", f"{local:%H:%M} local ({zone})"
    )


def _zone_opening(at: datetime, zone: str, law: _Law) -> tuple[datetime, list[_Closed]]:
    """The first instant >= ``at`` open in ``zone``, and why the time in between was closed."""
    local = _in_zone(at, zone)
    day = date(local.year, local.month, local.day)
    why: list[_Closed] = []
    for _ in range(_MAX_CLOSED_DAYS):
        hours = _day_hours(law, day)
        if isinstance(hours, _Closed):
            why.append(hours)
        else:
            start = at_local(day, hours.start, zone)
            end = at_local(day, hours.end, zone)
            if at < end:
                if at < start and not why:
                    why.append(_hours_closed(law, hours, local, zone))
                return max(at, start), why
            if not why:
                why.append(_hours_closed(law, hours, local, zone))
        day += timedelta(days=1)
    raise ValidationError(
        f"no send window opens within {_MAX_CLOSED_DAYS} days in {zone}: "
        + "; ".join(reason for _, reason in _closed_words(why))
    )


def _opening(at: datetime, law: _Law) -> tuple[datetime, list[_Closed]]:
    """The earliest instant >= ``at`` that is open in every zone, and why it was not before."""
    why: list[_Closed] = []
    for _ in range(_MAX_ROUNDS):
        latest = at
        for zone in law.zones:
            opened, closed = _zone_opening(at, zone, law)
            if opened > at:
                why.extend(closed)
                latest = max(latest, opened)
        if latest == at:
            return at, why
        at = latest
    return at, why


def _closes_at(now: datetime, law: _Law) -> datetime:
    """The earliest end of today's window over every zone (``now`` is open in all of them)."""
    ends = []
    for zone in law.zones:
        local = _in_zone(now, zone)
        day = date(local.year, local.month, local.day)
        hours = _day_hours(law, day)
        if isinstance(hours, SendWindow):
            ends.append(at_local(day, hours.end, zone))
    return min((e for e in ends if e > now), default=now)


def _deferral(
    contact: ContactState,
    outgoing: Outgoing,
    now: datetime,
    law: _Law,
    frequency_cap: FrequencyCap | None = None,
) -> Defer | None:
    """The earliest time at or after ``now`` that every constraint allows, or None for now."""
    if outgoing.kind is MessageKind.MANUAL:
        return None  # manual texts are not deferred
    catching_up = outgoing.catching_up or now - outgoing.due_at > OVERDUE_AFTER
    capped_by = min(
        (r for r in law.rules if r.max_per_24h is not None),
        key=lambda r: r.max_per_24h or 0,
        default=None,
    )

    moved: list[tuple[DeferCode, str]] = []
    at = now
    for _ in range(_MAX_ROUNDS):
        start = at
        last_step = outgoing.enrollment_last_sent_at
        if catching_up and last_step is not None:
            next_ok = last_step + DAY
            if at < next_ok:
                at = next_ok
                moved.append(
                    (
                        DeferCode.CATCH_UP,
                        "catching up after downtime: at most one overdue step a day, "
                        f"the last went out {_local(last_step, contact.timezone)}",
                    )
                )
        if capped_by is not None and capped_by.max_per_24h is not None:
            cap = capped_by.max_per_24h
            capped = cap_release(contact.marketing_sent, at, cap, DAY)
            if capped > at:
                at = capped
                moved.append(
                    (
                        DeferCode.STATE_CAP,
                        f"{capped_by.state} allows at most {cap} campaign or bulk texts in 24 h "
                        f"({capped_by.cited})",
                    )
                )
        if frequency_cap is not None and outgoing.kind.is_marketing:
            fits = cap_release(contact.marketing_sent, at, frequency_cap.texts, frequency_cap.span)
            if fits > at:
                at = fits
                moved.append(
                    (
                        DeferCode.FREQUENCY_CAP,
                        f"frequency cap: at most {frequency_cap.words()} to one contact",
                    )
                )
        if law.is_text:
            opened, closed = _opening(at, law)
            if opened > at:
                moved.extend(_closed_words(closed))
                at = opened
        if at == start:
            break
    if at == now:
        return None
    reasons = "; ".join(dict.fromkeys(reason for _, reason in moved))
    zones = " + ".join(law.zones)
    where = f" (zones {zones})" if len(law.zones) > 1 else ""
    return Defer(
        until=at,
        code=moved[0][0],
        reason=f"deferred to {_local(at, contact.timezone)}{where}: {reasons}",
        catching_up=catching_up,
    )


def next_window_opening(at: datetime, window: SendWindow, tz: str) -> datetime:
    """``at`` itself when it is inside the local window, else the next opening (UTC)."""
    local = _in_zone(at, tz)
    now_t = time(local.hour, local.minute, local.second, local.microsecond)
    if window.start <= now_t < window.end:
        return at
    day = local.date() if now_t < window.start else local.date() + timedelta(days=1)
    return at_local(day, window.start, tz)


_KIND_WORDS = {
    MessageKind.OPT_IN_CONFIRMATION: "an opt-in confirmation",
    MessageKind.OPT_OUT_CONFIRMATION: "an opt-out confirmation",
    MessageKind.HELP: "a HELP reply",
    MessageKind.RESUBSCRIBE_CONFIRMATION: "a resubscribe confirmation",
}


def _kind_words(kind: MessageKind) -> str:
    return _KIND_WORDS.get(kind, kind.value)


def _date(dt: datetime, tz: str) -> str:
    """The local calendar date: a STOP at 21:15 EDT was on that day, not the UTC next day."""
    return f"{_in_zone(dt, tz):%Y-%m-%d}"


def _local(dt: datetime, tz: str) -> str:
    return f"{_in_zone(dt, tz):%Y-%m-%d %H:%M} {tz}"


def _days(delta: timedelta) -> str:
    """An elapsed time as people say it: "45 days", "14 days 23 hours", "5 hours"."""
    hours = round(delta.total_seconds() / 3600)
    days, rest = divmod(hours, 24)
    parts = []
    if days:
        parts.append(f"{days} day" if days == 1 else f"{days} days")
    if rest or not days:
        parts.append(f"{rest} hour" if rest == 1 else f"{rest} hours")
    return " ".join(parts)
