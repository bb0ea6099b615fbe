"""The carrier's clock as values: sender rates, the forecast, validity, in-process pacing."""

from __future__ import annotations

import re
import textwrap
import time as time_module
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drip.bootstrap import build_pacer
from drip.campaigns.account_file import load_account
from drip.config import Settings
from drip.domain.enums import Channel, MessageKind, TextStatus
from drip.domain.pacing import (
    MAX_VALIDITY_SECONDS,
    QueuedText,
    Senders,
    forecast,
    validity_seconds,
)
from drip.domain.policy import (
    ContactState,
    ConversationState,
    Defer,
    DeferCode,
    Outgoing,
    Send,
    decide,
    window_closes_at,
)
from drip.domain.window import SendWindow
from drip.errors import CampaignError, ValidationError
from drip.facts import provider_facts
from drip.rules import bundled_state_rules
from drip.services.carrier import MAX_WAIT_SECONDS, Cleared, depart
from drip.transports.pacing import (
    GATE_MARGIN,
    LEASE_SECONDS,
    MARGIN,
    Busy,
    LocalPacer,
    NullPacer,
    Slot,
    _Lease,
)

#: Monday 2 March 2026, 10:00 in New York (EST, UTC-5).
TEN_AM = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
NINE_PM = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
AGENT = "+16175550100"


class FakeTime:
    """A settable wall clock for the in-process pacer; ``sleep`` advances it."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# --------------------------------------------------------------------------- forecast


def test_a_20000_contact_bulk_of_one_agent_at_the_default_rate() -> None:
    """20,000 two-segment texts from one long code at 10:00 leave until 20:59:58; 200 slip."""
    texts = [QueuedText(AGENT, 2, TEN_AM, NINE_PM) for _ in range(20_000)]

    result = forecast(texts, Senders(), TEN_AM)

    # 11 hours of window = 39,600 s = 19,800 two-segment texts at 1 segment/s.
    assert result.texts == 20_000
    assert result.slipping == 200
    assert result.last_at == TEN_AM + timedelta(seconds=2 * 19_799)
    (sender,) = result.senders
    assert (sender.sender, sender.rate, sender.segments) == (AGENT, 1.0, 39_600)


def test_the_forecast_follows_each_senders_rate_and_each_texts_opening() -> None:
    """A faster number finishes sooner; a text deferred to its opening starts no earlier."""
    fast = "+16175550199"
    later = TEN_AM + timedelta(hours=2)
    texts = [QueuedText(AGENT, 1, TEN_AM) for _ in range(10)]
    texts += [QueuedText(fast, 1, TEN_AM) for _ in range(10)]
    texts.append(QueuedText(fast, 1, later))

    result = forecast(texts, Senders(rates={fast: 5}), TEN_AM)

    by_sender = {s.sender: s for s in result.senders}
    assert by_sender[AGENT].last_at == TEN_AM + timedelta(seconds=9)
    assert by_sender[fast].last_at == later
    assert by_sender[fast].first_at == TEN_AM
    assert result.last_at == later
    assert result.slipping == 0


@given(
    count=st.integers(min_value=0, max_value=300),
    segments=st.integers(min_value=1, max_value=4),
    rate=st.sampled_from([0.5, 1.0, 4.0, 5.0]),  # whole microseconds per segment
    window_s=st.integers(min_value=1, max_value=600),
)
def test_no_forecast_departure_lies_after_its_window(
    count: int, segments: int, rate: float, window_s: int
) -> None:
    """Every text that is forecast to leave finishes inside its window; the rest slip."""
    closes = TEN_AM + timedelta(seconds=window_s)
    texts = [QueuedText(AGENT, segments, TEN_AM, closes) for _ in range(count)]

    result = forecast(texts, Senders(default_rate=rate), TEN_AM)

    fits = min(count, int(window_s * rate) // segments)
    assert result.slipping == count - fits
    if fits:
        assert result.last_at is not None
        assert result.last_at + timedelta(seconds=segments / rate) <= closes


def test_texts_already_queued_go_first_and_are_counted_apart() -> None:
    """ahead: 3,600 queued one-segment texts push a bulk an hour later; other numbers' are ignored."""
    window_end = TEN_AM + timedelta(hours=11)
    queued = [QueuedText(AGENT, 1, TEN_AM, window_end) for _ in range(3600)]
    other = [QueuedText("+16175550111", 1, TEN_AM, window_end) for _ in range(50)]
    bulk = [QueuedText(AGENT, 1, TEN_AM, window_end) for _ in range(10)]
    result = forecast(bulk, Senders(1.0), TEN_AM, ahead=[(t, 1) for t in queued + other])
    (only,) = result.senders
    assert (only.texts, only.ahead, only.segments) == (10, 3600, 10)
    assert only.first_at == TEN_AM + timedelta(hours=1)
    assert result.last_at == TEN_AM + timedelta(hours=1, seconds=9)
    grouped = forecast(bulk, Senders(1.0), TEN_AM, ahead=[(queued[0], 3600), (other[0], 50)])
    assert grouped == result


def test_a_group_queued_ahead_takes_only_the_slots_its_window_leaves() -> None:
    """ahead: of 5,000 queued texts whose window closes in an hour, 3,600 take slots before the bulk's."""
    hour = TEN_AM + timedelta(hours=1)
    late = TEN_AM + timedelta(hours=11)
    bulk = [QueuedText(AGENT, 1, TEN_AM, late) for _ in range(2)]
    result = forecast(
        bulk, Senders(1.0), TEN_AM, ahead=[(QueuedText(AGENT, 1, TEN_AM, hour), 5000)]
    )
    (only,) = result.senders
    assert (only.ahead, only.first_at, only.slipping) == (5000, hour, 0)


def test_validity_is_the_seconds_left_capped_at_twilios_maximum() -> None:
    """ValidityPeriod: whole seconds to the close, at most 36,000, at least 1."""
    assert validity_seconds(NINE_PM, NINE_PM - timedelta(seconds=90.7)) == 90
    assert validity_seconds(NINE_PM, NINE_PM - timedelta(hours=11)) == MAX_VALIDITY_SECONDS
    assert validity_seconds(NINE_PM, NINE_PM + timedelta(seconds=5)) == 1


def test_sender_rates_are_validated() -> None:
    """A rate of zero or a cap below one is refused with the field named."""
    with pytest.raises(ValidationError, match="default rate"):
        Senders(default_rate=0)
    with pytest.raises(ValidationError, match=r"\+1617"):
        Senders(rates={AGENT: -1})
    with pytest.raises(ValidationError, match="daily_segments"):
        Senders(daily_segments=0)
    assert Senders(rates={AGENT: 5}).rate_of(AGENT) == 5
    assert Senders().rate_of(AGENT) == 1.0


# --------------------------------------------------------------------------- account.yaml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "account.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_senders_section_is_read(tmp_path: Path) -> None:
    """senders: default, per-number rates and the brand's daily cap become frozen values."""
    path = write(
        tmp_path,
        """\
        senders:
          default: 1
          numbers:
            "+16175550100": 5
            "+18885550100": 3.5
          daily_segments: 200000
        """,
    )
    senders = load_account(path).senders
    assert senders == Senders(1.0, {"+16175550100": 5.0, "+18885550100": 3.5}, 200_000)
    # No section: pacing is still on, every number at a US long code's 1 segment/s.
    assert load_account(write(tmp_path, "company: Acme\n")).senders == Senders(1.0)


def test_the_default_rate_is_a_carrier_fact_with_its_source() -> None:
    """1 segment/s and 36,000 s come from provider_facts.json, which cites Twilio and a date."""
    facts = provider_facts()["carrier"]
    assert Senders().default_rate == facts["us_long_code_segments_per_second"] == 1
    assert MAX_VALIDITY_SECONDS == facts["max_validity_seconds"] == 36_000
    assert "twilio.com/docs/api/errors/30001" in facts["source_rate"]
    assert "twilio.com/docs/api/errors/90007" in facts["source_validity"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", facts["checked"])


def test_every_built_drip_paces_even_without_a_senders_section(tmp_path: Path) -> None:
    """bootstrap.build_pacer: embedded, a local pacer at 1 segment/s; never pacing off."""
    account = load_account(write(tmp_path, "company: Acme\n"))
    pacer = build_pacer(Settings(home=tmp_path), account)
    assert isinstance(pacer, LocalPacer)
    assert pacer.senders == Senders(1.0)
    assert pacer.interval(AGENT, 2) == pytest.approx(2 * (1 + MARGIN))


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("senders: {default: 0}\n", (1, 20), "senders: default must be segments per second"),
        ('senders: {numbers: {"617": 1}}\n', (1, 28), "senders: '617' is not an E.164 number"),
        ("senders: {daily_segments: -5}\n", (1, 27), "senders: daily_segments must not be"),
        ("senders: {rate: 5}\n", (1, 11), "unknown field 'rate'"),
    ],
)
def test_bad_senders_are_located(
    tmp_path: Path, text: str, where: tuple[int, int], message: str
) -> None:
    """Each mistake in senders: is reported at its line and column."""
    path = write(tmp_path, text)
    with pytest.raises(CampaignError) as info:
        load_account(path)
    (problem,) = info.value.problems
    m = re.match(r"^.+:(\d+):(\d+): error: (.*)$", problem)
    assert m is not None, problem
    assert (int(m.group(1)), int(m.group(2))) == where, problem
    assert m.group(3).startswith(message), problem


# --------------------------------------------------------------------------- the policy's close


def contact(tz: str = "America/New_York", state: str | None = "MA") -> ContactState:
    return ContactState(timezone=tz, sms_consent_at=TEN_AM - timedelta(days=1), state=state)


def test_a_campaign_text_knows_when_its_window_closes() -> None:
    """Send.window_closes_at is 21:00 local; 20:00 under Florida's rule; None for manual texts."""
    out = Outgoing(kind=MessageKind.CAMPAIGN, due_at=TEN_AM)
    decision = decide(contact(), ConversationState(), out, TEN_AM)
    assert isinstance(decision, Send)
    assert decision.window_closes_at == NINE_PM
    florida = decide(
        contact(state="FL"), ConversationState(), out, TEN_AM, state_rules=bundled_state_rules()
    )
    assert isinstance(florida, Send)
    assert florida.window_closes_at == NINE_PM - timedelta(hours=1)
    manual = Outgoing(kind=MessageKind.MANUAL, due_at=TEN_AM)
    sent = decide(contact(), ConversationState(), manual, TEN_AM)
    assert isinstance(sent, Send)
    assert sent.window_closes_at is None
    email = Outgoing(kind=MessageKind.CAMPAIGN, due_at=TEN_AM, channel=Channel.EMAIL)
    assert window_closes_at(contact(), email, TEN_AM) is None


def test_at_the_closing_instant_the_policy_defers_to_the_next_opening() -> None:
    """decide(now = window_closes_at) is a Defer to 08:00 the next day (the carrier clock's reopen)."""
    out = Outgoing(kind=MessageKind.BULK, due_at=TEN_AM, window=SendWindow(time(8), time(21)))
    later = decide(contact(), ConversationState(), out, NINE_PM)
    assert isinstance(later, Defer)
    assert later.code is DeferCode.WINDOW
    assert later.until == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)


def test_an_imported_confirmation_is_held_to_the_window_a_live_one_is_not() -> None:
    """held_to_window: an opt-in confirmation at 23:00 waits for 08:00; a live one goes at once."""
    night = TEN_AM + timedelta(hours=13)
    held = Outgoing(kind=MessageKind.OPT_IN_CONFIRMATION, due_at=night, held_to_window=True)
    live = Outgoing(kind=MessageKind.OPT_IN_CONFIRMATION, due_at=night)
    deferred = decide(contact(), ConversationState(), held, night)
    assert isinstance(deferred, Defer)
    assert deferred.until == datetime(2026, 3, 3, 13, 0, tzinfo=UTC)
    now = decide(contact(), ConversationState(), live, night)
    assert isinstance(now, Send)
    assert now.footer is False
    opted_out = ContactState(
        timezone="America/New_York",
        sms_consent_at=TEN_AM,
        sms_opted_out_at=TEN_AM,
        text_status=TextStatus.TEXTABLE,
    )
    assert decide(opted_out, ConversationState(), held, TEN_AM).outcome == "skip"


# --------------------------------------------------------------------------- in-process pacer


def test_the_local_pacer_spaces_a_senders_slots_by_its_rate_with_margin() -> None:
    """Five reservations at 5 segments/s are (1 + MARGIN) / 5 s apart; other numbers are free."""
    clock = FakeTime()
    pacer = LocalPacer(Senders(rates={AGENT: 5}), clock=clock, sleep=clock.sleep)
    waits = [pacer.reserve(AGENT, 1, max_wait=10) for _ in range(5)]
    step = (1 + MARGIN) / 5
    assert waits == [Slot(pytest.approx(i * step)) for i in range(5)]  # type: ignore[arg-type]
    assert pacer.reserve("+16175550111", 1, max_wait=0) == Slot(0.0)
    two = pacer.reserve(AGENT, 2, max_wait=10)
    assert isinstance(two, Slot)
    following = pacer.reserve(AGENT, 1, max_wait=10)
    assert isinstance(following, Slot)
    assert following.wait == pytest.approx(two.wait + 2 * step)


def test_the_departure_gate_keeps_a_late_texts_successor_behind_it() -> None:
    """At 5/s a text leaving 0.1 s after the last waits 0.12 s more; two segments keep it twice as long."""
    clock = FakeTime()
    pacer = LocalPacer(Senders(rates={AGENT: 5}), clock=clock, sleep=clock.sleep)
    gap = (1 + GATE_MARGIN) / 5
    assert pacer.depart(AGENT, 2) == 0.0
    clock.now += 0.1
    assert pacer.depart(AGENT, 1) == pytest.approx(2 * gap - 0.1)
    assert pacer.depart("+16175550111", 1) == 0.0  # another number has its own gate
    clock.now += 2 * gap - 0.1
    assert pacer.depart(AGENT, 1) == 0.0
    clock.now += gap - 0.01
    assert pacer.depart(AGENT, 1) == pytest.approx(0.01)


def test_texts_on_their_slots_never_wait_at_the_gate() -> None:
    """Texts leaving on their reserved slots (MARGIN apart) all pass the gate at once."""
    clock = FakeTime()
    pacer = LocalPacer(Senders(rates={AGENT: 5}), clock=clock, sleep=clock.sleep)
    start = clock.now
    slots = [pacer.reserve(AGENT, 1, max_wait=30) for _ in range(20)]
    for slot in slots:
        assert isinstance(slot, Slot)
        clock.now = start + slot.wait
        assert pacer.depart(AGENT, 1) == 0.0


def test_a_reservation_too_far_away_is_refused_with_when_to_come_back() -> None:
    """Past max_wait the pacer answers Busy with the seconds until the slot, and books nothing."""
    clock = FakeTime()
    pacer = LocalPacer(Senders(), clock=clock, sleep=clock.sleep)
    assert pacer.reserve(AGENT, 3, max_wait=0) == Slot(0.0)
    busy = pacer.reserve(AGENT, 1, max_wait=1)
    assert isinstance(busy, Busy)
    assert busy.retry_after == pytest.approx(3 * (1 + MARGIN))
    clock.now += busy.retry_after
    assert pacer.reserve(AGENT, 1, max_wait=0) == Slot(0.0)


def test_the_brands_daily_cap_comes_from_limits() -> None:
    """With daily_segments 3, a fourth segment the same day is Busy naming the cap."""
    clock = FakeTime()
    pacer = LocalPacer(Senders(default_rate=1000, daily_segments=3), clock=clock)
    assert isinstance(pacer.reserve(AGENT, 2, max_wait=10), Slot)
    assert isinstance(pacer.reserve("+16175550111", 1, max_wait=10), Slot)
    refused = pacer.reserve(AGENT, 1, max_wait=10)
    assert isinstance(refused, Busy)
    assert "daily cap of 3 segments" in refused.reason
    assert 0 < refused.retry_after <= 86_400


def test_the_null_pacer_never_waits() -> None:
    """Pacing off: every reservation is a slot now."""
    pacer = NullPacer()
    assert pacer.senders is None
    assert all(pacer.reserve(AGENT, 4, max_wait=0) == Slot(0.0) for _ in range(100))


@given(
    rate=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
    requests=st.lists(
        st.tuples(st.floats(min_value=0, max_value=0.5), st.integers(min_value=1, max_value=3)),
        min_size=1,
        max_size=60,
    ),
)
def test_granted_slots_never_put_more_than_the_rate_in_any_second(
    rate: float, requests: list[tuple[float, int]]
) -> None:
    """However reservations arrive, the segments of granted slots in any 1 s span stay <= rate."""
    clock = FakeTime()
    pacer = LocalPacer(Senders(default_rate=rate), clock=clock, sleep=lambda _s: None)
    starts: list[tuple[float, int]] = []
    for gap, segments in requests:
        clock.now += gap
        slot = pacer.reserve(AGENT, segments, max_wait=3.0)
        if isinstance(slot, Slot):
            # A text of n segments occupies n consecutive segment slots at the carrier.
            step = (1 + MARGIN) / rate
            starts.extend((clock.now + slot.wait + k * step, 1) for k in range(segments))
    times = sorted(t for t, _ in starts)
    for i, t in enumerate(times):
        in_span = sum(1 for u in times[i:] if u - t < 1.0)
        assert in_span <= max(1, rate)


@given(
    count=st.integers(min_value=1, max_value=40),
    steps=st.lists(
        st.tuples(st.floats(min_value=0, max_value=0.02), st.integers(min_value=1, max_value=3)),
        min_size=1,
        max_size=40,
    ),
)
def test_a_lease_hands_each_slot_out_once_never_early_and_never_too_late(
    count: int, steps: list[tuple[float, int]]
) -> None:
    """A lease's slots go in order, each once, at most LEASE_SECONDS late, until it is spent."""
    unit = 0.001
    lease = _Lease(start=100.0, unit=unit, count=count, used=0)
    now = 100.0 + count * unit  # leased from the idle past: its slots lie behind "now"
    taken: list[tuple[float, int]] = []
    for gap, segments in steps:
        now += gap
        at = lease.take(segments, now, fresh=False)
        if at is None:
            # nothing fits: too few slots left, or the last that would fit is too late
            last_fit = 100.0 + (count - segments) * unit
            assert lease.used + segments > count or last_fit < now - LEASE_SECONDS + 1e-9
            continue
        assert now - LEASE_SECONDS <= at + 1e-9  # not later than the lease allows
        taken.append((at, segments))
    ends = [at + segments * unit for at, segments in taken]
    assert all(nxt >= end - 1e-9 for (nxt, _), end in zip(taken[1:], ends, strict=False))
    assert all(end <= 100.0 + count * unit + 1e-9 for end in ends)  # inside the lease


def test_a_fresh_lease_gives_its_own_texts_slot_however_late_the_reply() -> None:
    """A reply that came back after the lease's slots are all too late still has its text's slot."""
    lease = _Lease(start=100.0, unit=0.01, count=3, used=0)
    assert lease.take(1, 101.0, fresh=False) is None
    fresh = _Lease(start=100.0, unit=0.01, count=3, used=0)
    assert fresh.take(1, 101.0, fresh=True) == pytest.approx(100.02)
    assert fresh.take(1, 101.0, fresh=False) is None


def test_a_gate_that_never_opens_is_passed_after_ten_seconds_of_waits_asked() -> None:
    """The gate counts the waits it asks of the pacer: on a clock that stands still it gives
    up after MAX_WAIT_SECONDS of them, at once, instead of spinning for ten real seconds."""
    clock = FakeTime()
    asked: list[float] = []
    pacer = LocalPacer(Senders(rates={AGENT: 1}), clock=clock, sleep=asked.append)
    assert pacer.depart(AGENT, 2) == 0.0  # the gate is now shut for two segments' time
    started = time_module.monotonic()
    depart(pacer, Cleared(None, sender=AGENT, segments=1))
    assert time_module.monotonic() - started < 1.0
    gap = asked[0]
    assert gap > 0
    assert len(asked) == int(MAX_WAIT_SECONDS // gap)
    assert sum(asked) <= MAX_WAIT_SECONDS < sum(asked) + gap
