"""The pure send decision against every rule of SPEC §1, §2 and §4, with a fixed ``now``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drip.domain.enums import Channel, MessageKind, OptOutMode, TextStatus
from drip.domain.policy import (
    ContactState,
    ConversationState,
    Defer,
    DeferCode,
    FooterRule,
    Outgoing,
    Send,
    Skip,
    SkipCode,
    decide,
    footer_due_again,
    next_window_opening,
)
from drip.domain.window import SendWindow, StateRule
from drip.errors import ValidationError
from drip.rules import bundled_state_rules

#: The rule pack bundled with drip (FL, OK, MD: 08:00-20:00 and 3 in 24 h; TX, ...).
RULES = bundled_state_rules()

NY = "America/New_York"
CONSENTED = datetime(2026, 1, 1, tzinfo=UTC)


def ny(*args: int) -> datetime:
    """A New York wall-clock time as an aware UTC datetime."""
    return pendulum.datetime(*args, tz=NY).in_timezone("UTC")


def contact(**kw: object) -> ContactState:
    base: dict[str, object] = {"timezone": NY, "sms_consent_at": CONSENTED}
    base.update(kw)
    return ContactState(**base)  # type: ignore[arg-type]


def step(due: datetime, **kw: object) -> Outgoing:
    return Outgoing(kind=MessageKind.CAMPAIGN, due_at=due, **kw)  # type: ignore[arg-type]


def sent(decision: object) -> Send:
    assert isinstance(decision, Send), decision
    return decision


# --- SPEC §2: the seed example --------------------------------------------------


def test_seed_example_never_replies() -> None:
    """Intro on day 0 carries the footer; then day 15 no, days 45, 180, 270, 360 yes."""
    start = ny(2026, 3, 2, 10, 0)
    conv = ConversationState()
    intro = decide(contact(), conv, Outgoing(kind=MessageKind.MANUAL, due_at=start), start)
    assert sent(intro).footer and sent(intro).rule is FooterRule.F1_INITIAL
    conv = replace(conv, footer_last_sent_at=start)
    got = {}
    for day in (15, 45, 180, 270, 360):
        at = pendulum.instance(start).add(days=day)
        decision = sent(decide(contact(), conv, step(at), at))
        got[day] = decision.footer
        if decision.footer:
            conv = replace(conv, footer_last_sent_at=at)
    assert got == {15: False, 45: True, 180: True, 270: True, 360: True}


def test_seed_example_reply_on_day_20_stops_the_footer() -> None:
    """A reply on day 20 establishes two-way: no later text carries the footer."""
    start = ny(2026, 3, 2, 10, 0)
    conv = ConversationState(footer_last_sent_at=start)
    assert not sent(
        decide(contact(), conv, step(start + timedelta(days=15)), start + timedelta(days=15))
    ).footer
    conv = replace(conv, two_way_at=start + timedelta(days=20))
    for day in (45, 180, 270, 360):
        at = start + timedelta(days=day)
        decision = sent(decide(contact(), conv, step(at), at))
        assert not decision.footer
        assert decision.rule is FooterRule.F2_TWO_WAY


def test_thirty_day_boundary_exactly_thirty_days_carries_footer() -> None:
    """Exactly 30 x 24 h after the last footer counts as 'at least 30 days' (F3)."""
    last = ny(2026, 1, 5, 9, 0)
    conv = ConversationState(footer_last_sent_at=last)
    at = last + timedelta(days=30)
    decision = sent(decide(contact(), conv, step(at), at))
    assert decision.footer and decision.rule is FooterRule.F3_RECURRING
    assert "30 days since the last footer on 2026-01-05" in decision.reason


def test_thirty_day_boundary_one_second_short_has_no_footer() -> None:
    """One second short of 30 x 24 h is 'recent' (F4): no footer."""
    last = ny(2026, 1, 5, 9, 0)
    conv = ConversationState(footer_last_sent_at=last)
    at = last + timedelta(days=30) - timedelta(seconds=1)
    decision = sent(decide(contact(), conv, step(at, window=SendWindow(time(0), time(23, 59))), at))
    assert not decision.footer and decision.rule is FooterRule.F4_RECENT


@pytest.mark.parametrize(
    ("last", "due", "hours"),
    [
        # spring forward (2026-03-08) in between: 30 calendar days are 719 hours
        ((2026, 3, 1, 12, 0), (2026, 3, 31, 12, 0), 719),
        # fall back (2026-11-01) in between: 30 calendar days are 721 hours
        ((2026, 10, 20, 12, 0), (2026, 11, 19, 12, 0), 721),
    ],
)
def test_thirty_days_are_calendar_days_across_dst(
    last: tuple[int, ...], due: tuple[int, ...], hours: int
) -> None:
    """SPEC §2: the footer is due again at the same local time 30 days later, whatever DST did."""
    last_at, due_at = ny(*last), ny(*due)
    assert due_at - last_at == timedelta(hours=hours)
    assert footer_due_again(last_at, timedelta(days=30), NY) == due_at
    conv = ConversationState(footer_last_sent_at=last_at)
    on_time = sent(decide(contact(), conv, step(due_at), due_at))
    assert on_time.footer and on_time.rule is FooterRule.F3_RECURRING
    assert "30 days since the last footer" in on_time.reason
    early = due_at - timedelta(minutes=1)
    assert not sent(decide(contact(), conv, step(early), early)).footer


def test_interval_is_configurable() -> None:
    """A campaign's opt_out.interval_days changes the recurring interval."""
    last = ny(2026, 1, 5, 9, 0)
    conv = ConversationState(footer_last_sent_at=last)
    at = last + timedelta(days=10)
    assert sent(decide(contact(), conv, step(at, footer_interval=timedelta(days=7)), at)).footer
    assert not sent(decide(contact(), conv, step(at), at)).footer


def test_two_way_before_first_footer_still_gets_f1() -> None:
    """Two-way before any footer was sent: the next text still carries it once (F1)."""
    at = ny(2026, 2, 1, 12, 0)
    conv = ConversationState(two_way_at=at - timedelta(days=3))
    decision = sent(decide(contact(), conv, step(at), at))
    assert decision.footer and decision.rule is FooterRule.F1_INITIAL


def test_two_way_after_footer_means_no_footer_even_after_interval() -> None:
    """Two-way after the footer: never again, however long it has been (F2)."""
    last = ny(2026, 1, 1, 12, 0)
    conv = ConversationState(footer_last_sent_at=last, two_way_at=last + timedelta(days=1))
    at = last + timedelta(days=400)
    assert not sent(decide(contact(), conv, step(at), at)).footer


def test_opt_out_always_forces_footer_despite_two_way() -> None:
    """opt_out: always puts the footer on the text whatever the state (F5)."""
    at = ny(2026, 2, 1, 12, 0)
    conv = ConversationState(footer_last_sent_at=at - timedelta(hours=1), two_way_at=at)
    decision = sent(decide(contact(), conv, step(at, opt_out=OptOutMode.ALWAYS), at))
    assert decision.footer and decision.rule is FooterRule.F5_ALWAYS


@pytest.mark.parametrize(
    "kind",
    [
        MessageKind.OPT_IN_CONFIRMATION,
        MessageKind.OPT_OUT_CONFIRMATION,
        MessageKind.HELP,
        MessageKind.RESUBSCRIBE_CONFIRMATION,
    ],
)
def test_compliance_replies_never_carry_footer_and_ignore_gate(kind: MessageKind) -> None:
    """Compliance replies go at once without footer, even to an opted-out contact at 3 am."""
    at = ny(2026, 2, 1, 3, 0)
    opted_out = contact(sms_opted_out_at=at - timedelta(minutes=1))
    decision = sent(decide(opted_out, ConversationState(), Outgoing(kind=kind, due_at=at), at))
    assert not decision.footer and decision.rule is FooterRule.COMPLIANCE


def test_manual_text_first_ever_gets_footer_and_is_not_deferred() -> None:
    """A manual text at 23:00 is sent now (no window) and carries the initial footer."""
    at = ny(2026, 2, 1, 23, 0)
    decision = sent(decide(contact(), ConversationState(), Outgoing(MessageKind.MANUAL, at), at))
    assert decision.footer


# --- SPEC §1: consent gate -------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ({"sms_consent_at": None}, SkipCode.NO_CONSENT),
        ({"sms_opted_out_at": CONSENTED + timedelta(days=2)}, SkipCode.OPTED_OUT),
        ({"text_status": TextStatus.CANNOT_BE_TEXTED}, SkipCode.CANNOT_BE_TEXTED),
        ({"text_status": TextStatus.UNDELIVERABLE}, SkipCode.UNDELIVERABLE),
        ({"has_phone": False}, SkipCode.NO_PHONE),
    ],
)
def test_sms_gate_skips(state: dict[str, object], code: SkipCode) -> None:
    """No consent, opted out, cannot be texted, undeliverable or no phone: the text is skipped."""
    at = ny(2026, 2, 1, 12, 0)
    for kind in (MessageKind.CAMPAIGN, MessageKind.BULK, MessageKind.MANUAL):
        decision = decide(contact(**state), ConversationState(), Outgoing(kind, at), at)
        assert isinstance(decision, Skip)
        assert decision.code is code


def test_imported_without_evidence_gets_email_but_not_sms() -> None:
    """An imported contact without consent evidence can still be emailed (C2, C5)."""
    at = ny(2026, 2, 1, 12, 0)
    imported = contact(sms_consent_at=None, has_email=True)
    assert isinstance(decide(imported, ConversationState(), step(at), at), Skip)
    email = decide(imported, ConversationState(), step(at, channel=Channel.EMAIL), at)
    assert isinstance(email, Send) and not email.footer


def test_email_gate() -> None:
    """Email steps skip contacts without an address or unsubscribed from email."""
    at = ny(2026, 2, 1, 12, 0)
    out = step(at, channel=Channel.EMAIL)
    no_email = decide(contact(), ConversationState(), out, at)
    assert isinstance(no_email, Skip) and no_email.code is SkipCode.NO_EMAIL
    unsub = decide(contact(has_email=True, email_opted_out=True), ConversationState(), out, at)
    assert isinstance(unsub, Skip) and unsub.code is SkipCode.EMAIL_OPTED_OUT


def test_sms_opt_out_does_not_govern_email() -> None:
    """An SMS opt-out leaves email steps alone (C5)."""
    at = ny(2026, 2, 1, 12, 0)
    c = contact(has_email=True, sms_opted_out_at=at - timedelta(days=1))
    assert isinstance(decide(c, ConversationState(), step(at, channel=Channel.EMAIL), at), Send)


def test_email_is_not_held_by_the_text_window() -> None:
    """The send window is for texts: an email step at 23:00 goes out."""
    at = ny(2026, 2, 1, 23, 0)
    c = contact(has_email=True)
    assert isinstance(decide(c, ConversationState(), step(at, channel=Channel.EMAIL), at), Send)


# --- SPEC §4: window, state rules, catch-up --------------------------------------


def test_window_defers_late_evening_to_next_morning() -> None:
    """A campaign text due at 22:15 local waits until 08:00 the next day."""
    at = ny(2026, 2, 1, 22, 15)
    decision = decide(contact(), ConversationState(), step(at), at)
    assert isinstance(decision, Defer)
    assert decision.until == ny(2026, 2, 2, 8, 0)
    assert decision.code is DeferCode.WINDOW
    assert "08:00-21:00" in decision.reason


def test_window_defers_early_morning_to_same_day() -> None:
    """A text due at 06:30 local waits until 08:00 the same day."""
    at = ny(2026, 2, 1, 6, 30)
    decision = decide(contact(), ConversationState(), step(at), at)
    assert isinstance(decision, Defer) and decision.until == ny(2026, 2, 1, 8, 0)


def test_window_end_is_exclusive() -> None:
    """21:00 sharp is already outside 08:00-21:00; 20:59 is inside."""
    assert isinstance(
        decide(contact(), ConversationState(), step(ny(2026, 2, 1, 21)), ny(2026, 2, 1, 21)), Defer
    )
    inside = ny(2026, 2, 1, 20, 59)
    assert isinstance(decide(contact(), ConversationState(), step(inside), inside), Send)


def test_window_after_midnight_utc_uses_local_date() -> None:
    """At 02:00 UTC it is still Feb 1 in New York: the text waits for 08:00 local on Feb 2."""
    at = datetime(2026, 2, 2, 2, 0, tzinfo=UTC)  # 21:00 EST on Feb 1
    decision = decide(contact(), ConversationState(), step(at), at)
    assert isinstance(decision, Defer) and decision.until == ny(2026, 2, 2, 8, 0)


def test_window_across_spring_forward() -> None:
    """Deferred over the DST change, the text opens at 08:00 EDT, which is 12:00 UTC."""
    at = ny(2026, 3, 7, 22, 0)  # Saturday before the change
    decision = decide(contact(), ConversationState(), step(at), at)
    assert isinstance(decision, Defer)
    assert decision.until == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def test_window_across_fall_back() -> None:
    """Deferred over the fall-back change, the text opens at 08:00 EST, which is 13:00 UTC."""
    at = ny(2026, 10, 31, 23, 30)
    decision = decide(contact(), ConversationState(), step(at), at)
    assert isinstance(decision, Defer)
    assert decision.until == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


def test_campaign_window_is_configurable() -> None:
    """A campaign's send_window replaces the default."""
    at = ny(2026, 2, 1, 9, 30)
    out = step(at, window=SendWindow(time(10, 0), time(18, 0)))
    decision = decide(contact(), ConversationState(), out, at)
    assert isinstance(decision, Defer) and decision.until == ny(2026, 2, 1, 10, 0)


def test_florida_window_closes_at_eight_pm() -> None:
    """In Florida a text due at 20:30 waits for 08:00 next day; elsewhere it goes."""
    at = ny(2026, 2, 1, 20, 30)
    fl = decide(contact(state="FL"), ConversationState(), step(at), at, state_rules=RULES)
    assert isinstance(fl, Defer) and fl.until == ny(2026, 2, 2, 8, 0)
    assert "FL rule" in fl.reason and "501.616" in fl.reason
    ma = decide(contact(state="MA"), ConversationState(), step(at), at, state_rules=RULES)
    assert isinstance(ma, Send)


def test_florida_cap_of_three_per_24h() -> None:
    """A fourth campaign text within 24 h in Florida waits until the oldest ages out."""
    at = ny(2026, 2, 1, 15, 0)
    history = (at - timedelta(hours=20), at - timedelta(hours=5), at - timedelta(hours=1))
    fl = contact(state="FL", marketing_sent=history)
    decision = decide(fl, ConversationState(), step(at), at, state_rules=RULES)
    assert isinstance(decision, Defer)
    assert decision.code is DeferCode.STATE_CAP
    assert decision.until == history[0] + timedelta(hours=24)
    two = contact(state="FL", marketing_sent=history[1:])
    assert isinstance(decide(two, ConversationState(), step(at), at, state_rules=RULES), Send)


def test_cap_release_after_close_moves_to_next_opening() -> None:
    """When the cap frees up at night, the text goes at the next window opening."""
    at = ny(2026, 2, 1, 19, 0)
    history = (ny(2026, 1, 31, 21, 30), ny(2026, 2, 1, 11), ny(2026, 2, 1, 12))
    ok = contact(state="OK", marketing_sent=history)
    decision = decide(ok, ConversationState(), step(at), at, state_rules=RULES)
    assert isinstance(decision, Defer)
    # the oldest ages out at 21:30, after Oklahoma's 20:00 close: next opening 08:00
    assert decision.until == ny(2026, 2, 2, 8, 0)


def test_manual_and_compliance_do_not_count_against_cap_or_window() -> None:
    """Manual texts are neither capped nor deferred, even in Maryland at night."""
    at = ny(2026, 2, 1, 22, 0)
    md = contact(state="MD", marketing_sent=(at - timedelta(hours=1),) * 3)
    manual = Outgoing(MessageKind.MANUAL, at)
    decision = decide(md, ConversationState(), manual, at, state_rules=RULES)
    assert isinstance(decision, Send) and decision.window_closes_at is None


def test_state_rules_are_data() -> None:
    """A new state rule passed as data applies without code changes."""
    at = ny(2026, 2, 1, 19, 30)
    rules = (StateRule("TX", SendWindow(time(9), time(19)), max_per_24h=None),)
    decision = decide(contact(state="TX"), ConversationState(), step(at), at, state_rules=rules)
    assert isinstance(decision, Defer) and decision.until == ny(2026, 2, 2, 9, 0)


def test_catch_up_first_overdue_goes_then_next_waits_a_day() -> None:
    """After downtime the first overdue step goes now; the next overdue one waits a day."""
    now = ny(2026, 5, 1, 12, 0)
    first = step(now - timedelta(days=3), enrollment_last_sent_at=now - timedelta(days=10))
    assert isinstance(decide(contact(), ConversationState(), first, now), Send)
    second = step(now - timedelta(days=2), enrollment_last_sent_at=now)
    decision = decide(contact(), ConversationState(), second, now)
    assert isinstance(decision, Defer)
    assert decision.code is DeferCode.CATCH_UP
    assert decision.catching_up
    assert decision.until == now + timedelta(days=1)


def test_catch_up_keeps_one_a_day_when_deferred_steps_come_due_together() -> None:
    """Two caught-up steps due at the same moment go out on consecutive days, not in a burst."""
    now = ny(2026, 5, 2, 12, 0)
    a = step(now, catching_up=True, enrollment_last_sent_at=now - timedelta(days=1))
    assert isinstance(decide(contact(), ConversationState(), a, now), Send)
    b = step(now, catching_up=True, enrollment_last_sent_at=now)
    decision = decide(contact(), ConversationState(), b, now)
    assert isinstance(decision, Defer) and decision.until == now + timedelta(days=1)


def test_slightly_late_step_is_not_catch_up() -> None:
    """A step under an hour late is not overdue: it goes even right after another send."""
    now = ny(2026, 5, 1, 12, 0)
    out = step(now - timedelta(minutes=59), enrollment_last_sent_at=now - timedelta(minutes=1))
    assert isinstance(decide(contact(), ConversationState(), out, now), Send)


def test_naive_datetimes_are_refused() -> None:
    """Every datetime must be timezone-aware."""
    with pytest.raises(ValidationError):
        decide(contact(), ConversationState(), step(ny(2026, 1, 1, 9)), datetime(2026, 1, 1, 9))


# --- properties ------------------------------------------------------------------

zones = st.sampled_from(
    [
        "America/New_York",
        "America/Chicago",
        "America/Phoenix",
        "America/Los_Angeles",
        "Pacific/Honolulu",
        "Europe/London",
    ]
)
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
windows = (
    st.tuples(st.integers(0, 22), st.integers(1, 23))
    .filter(lambda t: t[0] < t[1])
    .map(lambda t: SendWindow(time(t[0]), time(t[1])))
)


@settings(max_examples=300, deadline=None)
@given(
    now=instants,
    lateness=st.integers(0, 3600),
    tz=zones,
    window=windows,
    state=st.sampled_from([None, "FL", "MA"]),
)
def test_deferral_lands_inside_window_and_not_before_due(
    now: datetime, lateness: int, tz: str, window: SendWindow, state: str | None
) -> None:
    """A deferred text always lands inside its (narrowed) window, never before it was due."""
    due = now - timedelta(seconds=lateness)
    c = ContactState(timezone=tz, sms_consent_at=CONSENTED, state=state)
    decision = decide(c, ConversationState(), step(due, window=window), now, state_rules=RULES)
    effective = window.narrowed(SendWindow(time(8), time(20))) if state == "FL" else window
    if isinstance(decision, Defer):
        assert decision.until > now >= due
        local = pendulum.instance(decision.until).in_timezone(tz)
        assert effective.start <= time(local.hour, local.minute) < effective.end
        assert next_window_opening(decision.until, effective, tz) == decision.until
    else:
        local = pendulum.instance(now).in_timezone(tz)
        assert effective.start <= time(local.hour, local.minute, local.second) < effective.end


@settings(max_examples=200, deadline=None)
@given(
    now=instants,
    last=st.none() | st.integers(0, 400 * 86400),
    two_way=st.none() | st.integers(-400 * 86400, 400 * 86400),
    always=st.booleans(),
    interval=st.integers(1, 90),
)
def test_footer_depends_only_on_its_inputs(
    now: datetime, last: int | None, two_way: int | None, always: bool, interval: int
) -> None:
    """The footer decision is a function of its inputs alone, and it matches F1-F5."""
    conv = ConversationState(
        footer_last_sent_at=None if last is None else now - timedelta(seconds=last),
        two_way_at=None if two_way is None else now - timedelta(seconds=two_way),
    )
    mode = OptOutMode.ALWAYS if always else OptOutMode.RULES
    out = step(
        now,
        opt_out=mode,
        footer_interval=timedelta(days=interval),
        window=SendWindow(time(0), time(23, 59, 59)),
    )
    local = pendulum.instance(now).in_timezone(NY)
    if local.hour == 23 and local.minute == 59 and local.second == 59:
        return
    first = decide(contact(), conv, out, now)
    assert first == decide(contact(), conv, out, now)
    assert isinstance(first, Send)
    due_again = (
        None
        if last is None
        else footer_due_again(now - timedelta(seconds=last), timedelta(days=interval), NY)
    )
    expected = always or due_again is None or (two_way is None and now >= due_again)
    assert first.footer is expected


def test_disjoint_campaign_window_yields_to_state_hours() -> None:
    """A campaign window outside Florida's legal hours falls back to the legal hours."""
    at = ny(2026, 2, 1, 0, 30)
    out = step(at, window=SendWindow(time(0), time(1)))
    decision = decide(contact(state="FL"), ConversationState(), out, at, state_rules=RULES)
    assert isinstance(decision, Defer)
    assert decision.until == ny(2026, 2, 1, 8, 0)
