"""The carrier's clock as values: sender throughput, and when queued texts leave.

A sender number has a throughput in message segments per second; the
carrier (through Twilio's per-sender queue) releases one segment every
``1 / rate`` seconds and drops a text that waited longer than its validity.
This module is pure: the rates are values parsed from ``account.yaml``
(:class:`Senders`), and :func:`forecast` says, for texts waiting to go, when
each sender's last one leaves and how many cannot leave before their window
closes (they slip to the next opening).

The two carrier numbers (1 segment/s, 36,000 s) are data, the ``carrier``
section of ``drip/data/provider_facts.json`` (read by :mod:`drip.facts`),
with these sources (checked 2026-11-30):

- Twilio, "Understanding Twilio Rate Limits and Message Queues" and error
  30001 ("a US long code number can send one message segment per second"):
  https://www.twilio.com/docs/api/errors/30001 and
  https://support.twilio.com/hc/en-us/articles/115002943027 ;
- Twilio, ValidityPeriod "between 1 and 36,000 seconds (10 hours max)":
  https://www.twilio.com/docs/api/errors/90007 ; expiry is error 30036
  https://www.twilio.com/docs/api/errors/30036 .
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from drip.errors import ValidationError
from drip.facts import max_validity_seconds, us_long_code_rate

#: A US long code: one segment per second, as carriers count (Twilio error 30001).
#: Data with its source: ``carrier`` in ``drip/data/provider_facts.json``.
US_LONG_CODE_SEGMENTS_PER_SECOND = us_long_code_rate()
#: Twilio's largest ValidityPeriod, in seconds (Twilio error 90007: 1 to 36,000); same file.
MAX_VALIDITY_SECONDS = max_validity_seconds()


@dataclass(frozen=True, slots=True)
class Senders:
    """``senders:`` of ``account.yaml``: segments per second per number, and a brand daily cap.

    ``rates`` maps E.164 numbers to their throughput; any other number sends
    at ``default_rate``. ``daily_segments`` caps the segments all numbers of
    the brand send in a (UTC) day; None: no cap.
    """

    default_rate: float = US_LONG_CODE_SEGMENTS_PER_SECOND
    rates: Mapping[str, float] = field(default_factory=dict)
    daily_segments: int | None = None

    def __post_init__(self) -> None:
        if not (0 < self.default_rate <= 10_000):
            raise ValidationError(f"senders: default rate {self.default_rate} is not in (0, 10000]")
        for phone, rate in self.rates.items():
            if not (0 < rate <= 10_000):
                raise ValidationError(f"senders: {phone} rate {rate} is not in (0, 10000]")
        if self.daily_segments is not None and self.daily_segments < 1:
            raise ValidationError("senders: daily_segments must be at least 1")
        object.__setattr__(self, "rates", dict(self.rates))

    def rate_of(self, phone: str) -> float:
        """Segments per second of ``phone``."""
        return self.rates.get(phone, self.default_rate)

    def __hash__(self) -> int:
        return hash((self.default_rate, tuple(sorted(self.rates.items())), self.daily_segments))


@dataclass(frozen=True, slots=True)
class QueuedText:
    """A text waiting to go: its sender, its segments, when it may go and when its window closes.

    ``not_before`` is its due time or the next opening of its window;
    ``closes_at`` the end of that window, or the text's expiry when that
    comes first (None: nothing holds it). ``expires_at``: a text that cannot
    leave by then is skipped, never sent late; ``lost_if_slipping``: the next
    opening of its window comes after its expiry, so slipping means expiring.
    """

    sender: str
    segments: int
    not_before: datetime
    closes_at: datetime | None = None
    expires_at: datetime | None = None
    lost_if_slipping: bool = False

    @property
    def expires_first(self) -> bool:
        """A text that misses ``closes_at`` expires rather than waits for the next opening."""
        return self.lost_if_slipping or (
            self.expires_at is not None
            and self.closes_at is not None
            and self.expires_at <= self.closes_at
        )


@dataclass(frozen=True, slots=True)
class SenderForecast:
    """One sender's queue: how many texts and segments, when the last one leaves, how many slip."""

    sender: str
    rate: float
    texts: int
    segments: int
    first_at: datetime | None
    last_at: datetime | None
    slipping: int
    #: Texts already queued on the number that go before these (``ahead`` of :func:`forecast`).
    ahead: int = 0
    #: Texts that cannot leave before their expiry: skipped (``expired``), never sent late.
    expiring: int = 0


@dataclass(frozen=True, slots=True)
class Forecast:
    """Every sender's queue; ``last_at`` the latest departure, ``slipping`` the total that slip."""

    senders: tuple[SenderForecast, ...]

    @property
    def last_at(self) -> datetime | None:
        times = [s.last_at for s in self.senders if s.last_at is not None]
        return max(times) if times else None

    @property
    def slipping(self) -> int:
        return sum(s.slipping for s in self.senders)

    @property
    def expiring(self) -> int:
        return sum(s.expiring for s in self.senders)

    @property
    def texts(self) -> int:
        return sum(s.texts for s in self.senders)

    @property
    def ahead(self) -> int:
        return sum(s.ahead for s in self.senders)


def forecast(
    texts: Iterable[QueuedText],
    senders: Senders,
    now: datetime,
    *,
    ahead: Iterable[tuple[QueuedText, int]] = (),
) -> Forecast:
    """When each sender's texts leave at its rate, from ``now``, in ``not_before`` order.

    Each sender releases one segment every ``1 / rate`` seconds, as the
    carrier does. A text whose last segment would leave at or after its
    window closes does not go today: it is counted in ``slipping`` (it goes
    at the next opening) and takes no slot; one that would leave at or after
    its expiry, or slip past it, is counted in ``expiring`` instead. ``ahead`` are texts already
    queued on the same numbers (pending sends), each a representative text and
    how many like it: they go first at equal times, take their slots (as many
    as fit before their window closes) but are counted only in ``ahead``, and
    only for the senders of ``texts``.
    """
    return forecast_groups(((text, 1) for text in texts), senders, now, ahead=ahead)


def forecast_groups(
    groups: Iterable[tuple[QueuedText, int]],
    senders: Senders,
    now: datetime,
    *,
    ahead: Iterable[tuple[QueuedText, int]] = (),
) -> Forecast:
    """:func:`forecast` of texts given as a representative and how many like it (``drip
    queue`` reads its pending sends as such groups); as many of a group leave as fit
    before its window closes, the rest slip (or expire)."""
    if now.utcoffset() is None:
        raise ValidationError("forecast: now must be timezone-aware")
    queues: dict[str, list[tuple[QueuedText, bool, int]]] = defaultdict(list)
    for text, n in groups:
        queues[text.sender].append((text, True, n))
    for text, n in ahead:
        if text.sender in queues and n > 0:
            queues[text.sender].append((text, False, n))
    out: list[SenderForecast] = []
    for sender in sorted(queues):
        rate = senders.rate_of(sender)
        # Already queued texts first at equal times (they were there before).
        queue = sorted(queues[sender], key=lambda item: (item[0].not_before, item[1]))
        free = now
        first: datetime | None = None
        last: datetime | None = None
        slipping = 0
        expiring = 0
        segments = 0
        mine = already = 0
        for text, counted, n in queue:
            start = max(free, text.not_before)
            takes = timedelta(seconds=text.segments / rate)
            fit = n
            if text.closes_at is not None and takes > timedelta(0):
                room = (text.closes_at - start).total_seconds() / takes.total_seconds()
                fit = max(0, min(n, math.floor(room + 1e-9)))
            if not counted:
                already += n
                if fit:
                    free = start + takes * fit
                continue
            mine += n
            if text.expires_first:
                expiring += n - fit
            else:
                slipping += n - fit
            if fit == 0:
                continue
            free = start + takes * fit
            first = first or start
            last = start + takes * (fit - 1)
            segments += text.segments * fit
        out.append(
            SenderForecast(
                sender,
                rate,
                mine,
                segments,
                first,
                last,
                slipping,
                ahead=already,
                expiring=expiring,
            )
        )
    return Forecast(tuple(out))


def validity_seconds(closes_at: datetime, sends_at: datetime) -> int:
    """Twilio's ValidityPeriod for a text handed over at ``sends_at``: the whole seconds
    left before ``closes_at``, at most :data:`MAX_VALIDITY_SECONDS`, at least 1."""
    left = math.floor((closes_at - sends_at).total_seconds())
    return max(1, min(MAX_VALIDITY_SECONDS, left))
