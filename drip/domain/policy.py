"""The send decision: a pure function of contact, conversation, message and ``now``.

``decide`` is the one place the compliance rules of SPEC §1, §2 and §4 live.
Workers, the CLI, the webhook app and replay all gather the inputs, call it,
and apply the ``Decision`` it returns; none of them re-implements a rule.

The order of the checks is the SPEC's: the consent gate (skip), then the
send window, state caps and catch-up (defer), then the footer (send).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum

import pendulum

from drip.domain.enums import Channel, MessageKind, OptOutMode, TextStatus
from drip.domain.schedule import at_local
from drip.domain.window import DEFAULT_STATE_RULES, SendWindow, StateRule, rule_for
from drip.errors import ValidationError

DAY = timedelta(hours=24)
#: A step more than this late is "overdue": it is caught up at most one a day.
OVERDUE_AFTER = timedelta(hours=1)
#: Deferral constraints are re-applied until none moves the time; each only
#: moves forward, so this bound is never reached in practice.
_MAX_ROUNDS = 32


class FooterRule(StrEnum):
    """Why a text did or did not carry the opt-out footer (SPEC §2)."""

    F1_INITIAL = "F1"
    F2_TWO_WAY = "F2"
    F3_RECURRING = "F3"
    F4_RECENT = "F4"
    F5_ALWAYS = "F5"
    COMPLIANCE = "compliance"
    NOT_SMS = "not_sms"


class SkipCode(StrEnum):
    NO_PHONE = "no_phone"
    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    CANNOT_BE_TEXTED = "cannot_be_texted"
    UNDELIVERABLE = "undeliverable"
    NO_EMAIL = "no_email"
    EMAIL_OPTED_OUT = "email_opted_out"


class DeferCode(StrEnum):
    WINDOW = "window"
    STATE_CAP = "state_cap"
    CATCH_UP = "catch_up"
    #: The sender has no capacity now (SPEC §4a pacing).
    PACING = "pacing"
    #: Too little of the window is left for the text to leave the carrier's queue (SPEC §4a).
    CARRIER_CLOCK = "carrier_clock"


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class ContactState:
    """What the decision needs to know about the recipient, read at fire time.

    ``marketing_sent`` holds the send times of campaign and bulk texts to this
    contact in (at least) the 24 h before ``now``; the state caps count them.
    """

    timezone: str
    has_phone: bool = True
    sms_consent_at: datetime | None = None
    sms_opted_out_at: datetime | None = None
    text_status: TextStatus = TextStatus.TEXTABLE
    has_email: bool = False
    email_opted_out: bool = False
    state: str | None = None
    marketing_sent: tuple[datetime, ...] = ()

    def __post_init__(self) -> None:
        _aware("sms_consent_at", self.sms_consent_at)
        _aware("sms_opted_out_at", self.sms_opted_out_at)
        for sent in self.marketing_sent:
            _aware("marketing_sent", sent)
        try:
            pendulum.timezone(self.timezone)
        except Exception as exc:  # pendulum raises several types for bad names
            raise ValidationError(f"unknown time zone {self.timezone!r}") from exc


@dataclass(frozen=True, slots=True)
class ConversationState:
    """Footer state of one (sender, contact) pair (SPEC §2)."""

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
    #: the confirmation of consent brought in by an import (SPEC C3).
    held_to_window: bool = False

    def __post_init__(self) -> None:
        _aware("due_at", self.due_at)
        _aware("enrollment_last_sent_at", self.enrollment_last_sent_at)
        if self.footer_interval <= timedelta(0):
            raise ValidationError("footer interval must be positive")


@dataclass(frozen=True, slots=True)
class Send:
    """Send now; ``footer`` says whether to append the opt-out footer, ``rule`` why.

    ``window_closes_at`` (UTC) is the earliest instant after now at which the
    send window closes for this contact, None for texts the window does not
    hold (manual, compliance, email): the carrier's clock (SPEC §4a) hands it
    to the provider as the message's validity.
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
    state_rules: tuple[StateRule, ...] = DEFAULT_STATE_RULES,
) -> Decision:
    """The decision for one message at ``now``, from the state at that moment."""
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

    defer = _deferral(contact, outgoing, now, state_rules)
    if defer is not None:
        return defer

    if outgoing.channel is Channel.EMAIL:
        return Send(
            False, FooterRule.NOT_SMS, "email: opt-out is the unsubscribe link, not the footer"
        )
    closes = window_closes_at(contact, outgoing, now, state_rules)
    if outgoing.kind.is_compliance:
        return Send(
            False,
            FooterRule.COMPLIANCE,
            f"no footer: {_kind_words(outgoing.kind)} never carries it",
            closes,
        )
    decision = footer_decision(
        conversation, outgoing.opt_out, outgoing.footer_interval, now, tz=contact.timezone
    )
    return replace(decision, window_closes_at=closes) if closes is not None else decision


def window_closes_at(
    contact: ContactState,
    outgoing: Outgoing,
    now: datetime,
    state_rules: tuple[StateRule, ...] = DEFAULT_STATE_RULES,
) -> datetime | None:
    """When the window that holds this text closes after ``now`` (UTC); None if none holds it.

    The window is the campaign's or account's, narrowed by the contact's state
    rule, in the contact's zone.
    """
    if not _held(outgoing):
        return None
    rule = rule_for(contact.state, state_rules)
    window = outgoing.window.narrowed(rule.window) if rule is not None else outgoing.window
    local = pendulum.instance(now).in_timezone(_zone(contact.timezone))
    day = local.date()
    closes = at_local(day, window.end, contact.timezone)
    if closes <= now:
        closes = at_local(day + timedelta(days=1), window.end, contact.timezone)
    return closes


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> pendulum.Timezone | pendulum.FixedTimezone:
    """``pendulum.timezone``, which reads the zone file on every call, once per name."""
    return pendulum.timezone(name)


def _held(outgoing: Outgoing) -> bool:
    """Whether the send window and state rules hold this message."""
    return outgoing.channel is Channel.SMS and (
        outgoing.kind.is_marketing or outgoing.held_to_window
    )


def footer_decision(
    conversation: ConversationState,
    opt_out: OptOutMode,
    interval: timedelta,
    now: datetime,
    *,
    tz: str = "UTC",
) -> Send:
    """SPEC §2 F1-F5 for a text that is going out at ``now``; dates in reasons are in ``tz``."""
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
    if elapsed >= interval:
        return Send(
            True,
            FooterRule.F3_RECURRING,
            f"footer: {_days(elapsed)} since the last footer on {_date(last, tz)} and no reply yet",
        )
    return Send(
        False,
        FooterRule.F4_RECENT,
        f"no footer: only {_days(elapsed)} since the last footer on {_date(last, tz)} "
        f"(interval {_days(interval)}), no reply yet",
    )


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
        return Skip(SkipCode.CANNOT_BE_TEXTED, "skipped: the contact is marked cannot be texted")
    if contact.text_status is TextStatus.UNDELIVERABLE:
        return Skip(
            SkipCode.UNDELIVERABLE,
            "skipped: the phone number was reported undeliverable by the carrier",
        )
    if contact.sms_consent_at is None:
        return Skip(SkipCode.NO_CONSENT, "skipped: no recorded SMS consent")
    return None


def _deferral(
    contact: ContactState,
    outgoing: Outgoing,
    now: datetime,
    state_rules: tuple[StateRule, ...],
) -> Defer | None:
    """The earliest time at or after ``now`` that every constraint allows, or None for now."""
    if outgoing.kind is MessageKind.MANUAL:
        return None  # SPEC §4: manual texts are not deferred
    catching_up = outgoing.catching_up or now - outgoing.due_at > OVERDUE_AFTER
    is_text = _held(outgoing)
    rule = rule_for(contact.state, state_rules) if is_text else None
    window = outgoing.window.narrowed(rule.window) if rule is not None else outgoing.window
    cap = rule.max_per_24h if rule is not None else None

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
        if cap is not None:
            capped = _cap_release(contact.marketing_sent, at, cap)
            if capped > at:
                at = capped
                moved.append(
                    (
                        DeferCode.STATE_CAP,
                        f"{contact.state} allows at most {cap} campaign or bulk texts in 24 h",
                    )
                )
        if is_text:
            opened = next_window_opening(at, window, contact.timezone)
            if opened > at:
                local_at = pendulum.instance(at).in_timezone(contact.timezone)
                where = f" ({contact.state} rule)" if rule is not None else ""
                moved.append(
                    (
                        DeferCode.WINDOW,
                        f"outside the send window {window}{where} "
                        f"at {local_at:%H:%M} local ({contact.timezone})",
                    )
                )
                at = opened
        if at == start:
            break
    if at == now:
        return None
    reasons = "; ".join(dict.fromkeys(reason for _, reason in moved))
    return Defer(
        until=at,
        code=moved[0][0],
        reason=f"deferred to {_local(at, contact.timezone)}: {reasons}",
        catching_up=catching_up,
    )


def _cap_release(sent: tuple[datetime, ...], at: datetime, cap: int) -> datetime:
    """The earliest time >= ``at`` when fewer than ``cap`` sends lie in the 24 h before it."""
    recent = sorted(s for s in sent if at - DAY < s <= at)
    if len(recent) < cap:
        return at
    # The window slides forward; once the oldest ones age out, one more fits.
    return recent[len(recent) - cap] + DAY


def next_window_opening(at: datetime, window: SendWindow, tz: str) -> datetime:
    """``at`` itself when it is inside the local window, else the next opening (UTC)."""
    local = pendulum.instance(at).in_timezone(tz)
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
    return f"{pendulum.instance(dt).in_timezone(tz):%Y-%m-%d}"


def _local(dt: datetime, tz: str) -> str:
    return f"{pendulum.instance(dt).in_timezone(tz):%Y-%m-%d %H:%M} {tz}"


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
