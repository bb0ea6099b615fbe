"""Pacing: each sender number's throughput, enforced across every worker (docs/operations.md).

Built in :mod:`drip.bootstrap` like the transports:

- :class:`RedisPacer` when drip is scaled out (a broker is configured): every
  worker and dispatcher shares the sender's schedule in Redis;
- :class:`LocalPacer` when embedded (one process, its threads);
- :class:`NullPacer` nowhere in production (pacing is always on; without a
  ``senders:`` section every number sends at a US long code's 1 segment/s):
  only benchmarks that measure pacing's overhead and unit tests of pure logic.
  Replay paces with a :class:`LocalPacer` on its virtual clock.

The fire path calls :meth:`Pacer.reserve` right before the provider call. A
sender sends one segment every ``1 / rate`` seconds, evenly spaced, the way
Twilio releases its per-sender queue: a reservation gets the next free slot
of the sender; when that slot is at most ``max_wait`` seconds away the worker
sleeps until it and sends, otherwise the send is deferred (reason
``pacing``) to when the slot comes.

Why the per-sender slots are not a ``limits`` moving window: ``limits``
windows are whole seconds, and a window of exactly one second that is full
all the time (a bulk send) lets the *arrival* times at the carrier, which
jitter by milliseconds (on a loaded machine, a hundred or more) after the
limiter's decision, put one segment too many into some one-second span. The slots here are spaced by
``(1 + margin) / rate`` (:data:`MARGIN`, 20 %), which absorbs that jitter
(measured up to ~150 ms on a loaded 2-core machine), and a
slot is reserved atomically (a Lua script on the Redis server's own clock,
or a lock in process).

The slots are a schedule; a text can still leave late (the commit before it
took long, the worker waited for the CPU), and its successor, on time,
would then reach the carrier right behind it. So a text also passes a
departure gate right before the provider call (:meth:`Pacer.depart`): it
leaves only once the sender's previous text left at least ``(1 +
GATE_MARGIN) / rate`` seconds per segment before (:data:`GATE_MARGIN`, 15 %,
less than the slots' margin, so texts that are on time never wait at the
gate), else it waits the difference. The gate bounds the spacing at the
carrier whatever happened before the call; the slots keep the average rate
and say how long a text will wait.

A fast sender (100 segments/s and more) would cost a Redis round trip per
text for nothing: :class:`RedisPacer` then leases, in that same one call, the
slots the sender left unused in the last :data:`LEASE_SECONDS`, and spends
them on its next texts of the sender in process, each at most that late
(the lease adds that much to the jitter the margin absorbs), and passes no
departure gate (its spacing is milliseconds; a gate would cost the round
trip the lease saves). A slot is
handed out once; a lease's slots this process does not use in time are
wasted, never given to anyone else. A slower sender reserves each text's
slot on its own. The brand's daily segment cap, a plain counter per
day, is ``limits``' fixed window on the same storage.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from drip.domain.pacing import Senders
from drip.errors import ConfigError, DripError

if TYPE_CHECKING:
    # ``limits`` and ``redis`` are imported by the pacers that use them: a
    # command that never paces (most of the CLI) does not pay for them.
    from limits import RateLimitItem
    from limits.storage import Storage
    from limits.strategies import FixedWindowRateLimiter

__all__ = [
    "GATE_MARGIN",
    "MARGIN",
    "Busy",
    "LocalPacer",
    "NullPacer",
    "Pacer",
    "PacingError",
    "RedisPacer",
    "Slot",
]

#: Slots are this much wider than ``1 / rate``: network jitter between the
#: reservation and the request's arrival must not push a sender over its rate.
MARGIN: Final = 0.2
#: The departure gate's spacing is this much wider than ``1 / rate``: less than
#: :data:`MARGIN`, so a text on its slot never waits at the gate, and more than
#: the jitter between the gate and the carrier (the provider call itself).
GATE_MARGIN: Final = 0.15


class PacingError(DripError):
    """The shared sender schedule (Redis) could not be read or written."""


@dataclass(frozen=True, slots=True)
class Slot:
    """The sender may send after ``wait`` seconds (0: now)."""

    wait: float


@dataclass(frozen=True, slots=True)
class Busy:
    """No capacity soon: try again in ``retry_after`` seconds; ``reason`` in words."""

    retry_after: float
    reason: str


class Pacer(Protocol):
    """Capacity per sender number; ``senders`` is None when pacing is off."""

    @property
    def senders(self) -> Senders | None: ...

    def reserve(self, sender: str, segments: int, *, max_wait: float) -> Slot | Busy:
        """Reserve the sender's next slot for ``segments`` if it is at most ``max_wait`` s away."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait for a reserved slot."""
        ...

    def depart(self, sender: str, segments: int) -> float:
        """Pass the departure gate: 0 when the text may leave now (recorded as leaving),
        else the seconds to wait before asking again (nothing recorded)."""
        ...


class NullPacer:
    """Pacing off: every send may go now."""

    senders: Senders | None = None

    def reserve(self, sender: str, segments: int, *, max_wait: float) -> Slot | Busy:
        return Slot(0.0)

    def sleep(self, seconds: float) -> None:
        return None

    def depart(self, sender: str, segments: int) -> float:
        return 0.0


class _Base:
    """Slot arithmetic shared by both pacers, and the brand's daily cap through ``limits``."""

    def __init__(
        self,
        senders: Senders,
        storage: Callable[[], Storage],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.senders: Senders | None = senders
        self._senders = senders
        self._sleep = sleep
        self._daily: FixedWindowRateLimiter | None = None
        self._daily_item: RateLimitItem | None = None
        if senders.daily_segments is not None:
            # ``limits`` only when there is a cap to keep: a command that merely
            # builds its dependencies (``drip history``) does not pay for it.
            from limits import RateLimitItemPerDay
            from limits.strategies import FixedWindowRateLimiter

            self._daily = FixedWindowRateLimiter(storage())
            self._daily_item = RateLimitItemPerDay(senders.daily_segments, namespace="drip-brand")

    def interval(self, sender: str, segments: int) -> float:
        """Seconds one text of ``segments`` occupies the sender."""
        return max(1, segments) * self.unit(sender)

    def unit(self, sender: str) -> float:
        """Seconds one segment occupies the sender: its slot spacing."""
        return (1.0 + MARGIN) / self._senders.rate_of(sender)

    def gate_unit(self, sender: str) -> float:
        """Seconds per segment the departure gate keeps between the sender's texts."""
        return (1.0 + GATE_MARGIN) / self._senders.rate_of(sender)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)

    def reserve(self, sender: str, segments: int, *, max_wait: float) -> Slot | Busy:
        granted, wait = self._slot(sender, max(1, segments), max_wait)
        if not granted:
            return Busy(wait, f"{sender} has no capacity for {wait:.0f} s")
        item, daily = self._daily_item, self._daily
        if (
            item is not None
            and daily is not None
            and not daily.hit(item, "brand", cost=max(1, segments))
        ):
            reset = daily.get_window_stats(item, "brand").reset_time
            left = max(1.0, reset - time.time())
            return Busy(left, f"the brand's daily cap of {item.amount} segments is reached")
        return Slot(wait)

    def _slot(self, sender: str, segments: int, max_wait: float) -> tuple[bool, float]:
        raise NotImplementedError


class LocalPacer(_Base):
    """In-process pacing (embedded): the slots live in this process, behind a lock."""

    def __init__(
        self,
        senders: Senders,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        def memory() -> Storage:
            from limits.storage import MemoryStorage

            return MemoryStorage()

        super().__init__(senders, memory, sleep=sleep)
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._gate: dict[str, float] = {}

    def occupy(self, sender: str, segments: int) -> float:
        """``segments`` of other traffic are queued on ``sender`` now (replay's ``backlog``
        event): its next free slot moves that far on. Returns that instant (the clock's)."""
        with self._lock:
            start = max(self._next.get(sender, 0.0), self._clock())
            self._next[sender] = start + self.interval(sender, segments)
            return self._next[sender]

    def _slot(self, sender: str, segments: int, max_wait: float) -> tuple[bool, float]:
        with self._lock:
            now = self._clock()
            start = max(self._next.get(sender, 0.0), now)
            if start - now > max_wait:
                return False, start - now
            self._next[sender] = start + self.interval(sender, segments)
            return True, start - now

    def depart(self, sender: str, segments: int) -> float:
        with self._lock:
            now = self._clock()
            free = self._gate.get(sender, 0.0)
            if free > now:
                return free - now
            self._gate[sender] = now + max(1, segments) * self.gate_unit(sender)
            return 0.0


#: Reserve a slot atomically on the Redis server's clock. KEYS[1]: the sender's
#: next free instant; ARGV: the seconds one segment occupies the sender, the
#: segments of this text, max_wait and the lease in seconds (0: no lease).
#: Returns {granted (0/1), seconds until the slot, the slot's instant, the
#: server's now, the segments reserved} (strings: Lua numbers become integers).
#:
#: A lease: when the sender has been idle (its next free instant is past), the
#: reservation takes every slot of the last ``lease`` seconds it left unused,
#: not just this text's, and the worker spends them on its next texts of the
#: sender (:class:`RedisPacer`) without asking again. Those slots are in the
#: past, so the lease holds back no other worker: the sender's next free
#: instant moves to about now, as a single reservation would move it.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local unit = tonumber(ARGV[1])
local segments = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local start = math.max(free, now)
if start - now > max_wait then
  return {0, tostring(start - now), string.format('%.6f', start), string.format('%.6f', now), 0}
end
local count = segments
if lease > 0 and free < now then
  start = math.max(free, now - lease)
  count = math.max(segments, math.floor((now - start) / unit))
end
local after = start + count * unit
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX',
           math.ceil((math.max(after, now) - now) * 1000) + 60000)
return {1, tostring(start - now), string.format('%.6f', start), string.format('%.6f', now),
        count}
"""

#: The departure gate on the Redis server's clock. KEYS[1]: the instant the sender's
#: last text stops occupying it; ARGV: seconds per segment, this text's segments.
#: Returns "0" (leave now, recorded) or the seconds to wait (a string).
_DEPART = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
if free > now then
  return string.format('%.6f', free - now)
end
local after = now + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX',
           math.ceil((after - now) * 1000) + 60000)
return '0'
"""

#: How late a leased slot may still be used, in seconds, and how far back a lease
#: reaches: the lease adds at most this to the jitter :data:`MARGIN` absorbs
#: (measured up to ~150 ms on a loaded machine, so 25 ms keeps both under 200 ms).
#: Only a sender with at least two slots in it leases (100 segments/s and more);
#: a slower one reserves each text's slot on its own, as before.
LEASE_SECONDS: Final = 0.025
#: A lease is kept only while this process's clock and the Redis server's agree
#: to within this many seconds: its slots are compared with the local clock.
LEASE_CLOCK_SKEW: Final = 0.01


@dataclass(slots=True)
class _Lease:
    """A sender's slots this process holds: ``count`` segments of ``unit`` s from ``start``
    (the Redis server's clock); ``used`` of them are spent or skipped, never handed out again."""

    start: float
    unit: float
    count: int
    used: int

    def take(self, segments: int, now: float, *, fresh: bool) -> float | None:
        """The instant of the next slot for ``segments`` at most :data:`LEASE_SECONDS` late,
        marked spent; None when the lease has none left. A ``fresh`` lease gives its last
        slot rather than none (a lone reservation's slot is used however late its reply)."""
        late = math.ceil((now - LEASE_SECONDS - self.start) / self.unit - 1e-9)
        first = max(self.used, late)
        if first + segments > self.count:
            if not fresh:
                return None
            first = self.count - segments
        self.used = first + segments
        return self.start + first * self.unit


class RedisPacer(_Base):
    """Pacing shared by every worker and dispatcher through Redis (scaled out)."""

    def __init__(
        self,
        senders: Senders,
        url: str,
        *,
        prefix: str = "drip:pacing:",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not url.startswith(("redis://", "rediss://")):
            raise ConfigError(f"pacing needs Redis; the broker URL is not redis:// ({url[:8]}...)")
        from limits.storage import RedisStorage
        from redis.exceptions import RedisError

        self._redis_error: type[Exception] = RedisError
        storage = RedisStorage(url)
        super().__init__(senders, lambda: storage, sleep=sleep)
        self._prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}
        client: Any = storage.get_connection()
        self._script = client.register_script(_RESERVE)
        self._depart = client.register_script(_DEPART)

    def depart(self, sender: str, segments: int) -> float:
        unit = self.unit(sender)
        if 2 * unit <= LEASE_SECONDS:
            return 0.0  # a leasing sender: see the module's doc
        try:
            wait = self._depart(
                keys=[self._prefix + "departed:" + sender],
                args=[f"{self.gate_unit(sender):.9f}", str(max(1, segments))],
            )
        except self._redis_error as exc:
            raise PacingError(
                f"pacing: Redis did not answer ({type(exc).__name__}: {exc})"
            ) from exc
        return float(wait)

    def reserve(self, sender: str, segments: int, *, max_wait: float) -> Slot | Busy:
        try:
            return super().reserve(sender, segments, max_wait=max_wait)
        except self._redis_error as exc:
            raise PacingError(
                f"pacing: Redis did not answer ({type(exc).__name__}: {exc})"
            ) from exc

    def _slot(self, sender: str, segments: int, max_wait: float) -> tuple[bool, float]:
        unit = self.unit(sender)
        with self._lock:
            lease = self._leases.get(sender)
            if lease is not None:
                now = self._clock()
                at = lease.take(segments, now, fresh=False)
                if at is not None and at - now <= max_wait:
                    return True, max(0.0, at - now)
                del self._leases[sender]  # spent: what is left of it is wasted, never reused
        lease_seconds = LEASE_SECONDS if 2 * unit <= LEASE_SECONDS else 0.0
        granted, wait, start, server_now, count = self._script(
            keys=[self._prefix + sender],
            args=[f"{unit:.9f}", str(segments), f"{max_wait:.6f}", f"{lease_seconds:.6f}"],
        )
        if int(granted) != 1:
            return False, float(wait)
        lease = _Lease(float(start), unit, int(count), 0)
        now = self._clock()
        at = lease.take(segments, now, fresh=True)
        assert at is not None  # a fresh lease always has this text's slot
        if lease.used < lease.count and abs(now - float(server_now)) <= LEASE_CLOCK_SKEW:
            with self._lock:
                self._leases[sender] = lease
        # Wait until the slot's instant, not for a duration from the reply: the reply's
        # own latency would otherwise shift this send against the others of the sender.
        # (Clamped: a clock skewed from the Redis server's never stretches the wait.)
        return True, max(0.0, min(at - now, at - float(server_now) + 0.05))
