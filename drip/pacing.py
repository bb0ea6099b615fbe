"""Pacing: each sender number's throughput, enforced across every worker (SPEC §4a).

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
or a lock in process). The brand's daily segment cap, a plain counter per
day, is ``limits``' fixed window on the same storage.
"""

from __future__ import annotations

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


class NullPacer:
    """Pacing off: every send may go now."""

    senders: Senders | None = None

    def reserve(self, sender: str, segments: int, *, max_wait: float) -> Slot | Busy:
        return Slot(0.0)

    def sleep(self, seconds: float) -> None:
        return None


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
        return max(1, segments) * (1.0 + MARGIN) / self._senders.rate_of(sender)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)

    def reserve(self, sender: str, segments: int, *, max_wait: float) -> Slot | Busy:
        granted, wait = self._slot(sender, self.interval(sender, segments), max_wait)
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

    def _slot(self, sender: str, interval: float, max_wait: float) -> tuple[bool, float]:
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

    def occupy(self, sender: str, segments: int) -> float:
        """``segments`` of other traffic are queued on ``sender`` now (replay's ``backlog``
        event): its next free slot moves that far on. Returns that instant (the clock's)."""
        with self._lock:
            start = max(self._next.get(sender, 0.0), self._clock())
            self._next[sender] = start + self.interval(sender, segments)
            return self._next[sender]

    def _slot(self, sender: str, interval: float, max_wait: float) -> tuple[bool, float]:
        with self._lock:
            now = self._clock()
            start = max(self._next.get(sender, 0.0), now)
            if start - now > max_wait:
                return False, start - now
            self._next[sender] = start + interval
            return True, start - now


#: Reserve a slot atomically on the Redis server's clock. KEYS[1]: the sender's
#: next free instant; ARGV: interval and max_wait in seconds. Returns
#: {granted (0/1), seconds until the slot} (as strings: Lua numbers become integers).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local free = tonumber(redis.call('GET', KEYS[1]) or '0')
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local start = math.max(free, now)
if start - now > max_wait then
  return {0, tostring(start - now), string.format('%.6f', start)}
end
local after = start + interval
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX',
           math.ceil((after - now) * 1000) + 60000)
return {1, tostring(start - now), string.format('%.6f', start)}
"""


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
        client: Any = storage.get_connection()
        self._script = client.register_script(_RESERVE)

    def reserve(self, sender: str, segments: int, *, max_wait: float) -> Slot | Busy:
        try:
            return super().reserve(sender, segments, max_wait=max_wait)
        except self._redis_error as exc:
            raise PacingError(
                f"pacing: Redis did not answer ({type(exc).__name__}: {exc})"
            ) from exc

    def _slot(self, sender: str, interval: float, max_wait: float) -> tuple[bool, float]:
        granted, wait, start = self._script(
            keys=[self._prefix + sender], args=[f"{interval:.6f}", f"{max_wait:.6f}"]
        )
        if int(granted) != 1:
            return False, float(wait)
        # Wait until the slot's instant, not for a duration from the reply: the reply's
        # own latency would otherwise shift this send against the others of the sender.
        # (Clamped: a clock skewed from the Redis server's never stretches the wait.)
        until_slot = float(start) - self._clock()
        return True, min(max(0.0, until_slot), float(wait) + 0.05)
