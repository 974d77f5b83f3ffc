"""Limits that keep one client from flooding the signaling socket and the room.

Pure and clock-injected: every method takes ``now`` (seconds, any monotonic clock)
and nothing here sleeps, so the tests step time by hand. The web edge stamps
``loop.time()`` and acts on the verdicts; the day host coalesces page turns with
`Coalescer`.

Theory of operation: each socket has a `TokenBucket` for all its messages and a
stricter one for page turns. A message that finds its bucket empty is dropped (the
client gets ``rate_limited``); a socket that keeps sending into an empty bucket, so
that ``close_after_drops`` messages are dropped within ``drop_window_s``, is closed.
A page turns at once, but the journal takes at most one turn per interval: the
latest page of a burst is written when the interval ends, never lost.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate_per_s``; one per message."""

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs a positive rate and burst, "
                             f"not {rate_per_s} per s and {burst}")
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (a clock that went back adds none)."""
        return min(self._burst, self._tokens + max(0.0, now - self._at) * self._rate)

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self._tokens = self.tokens(now)
        self._at = max(self._at, now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class Verdict(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"  # answer rate_limited, keep the socket
    CLOSE = "close"  # sustained flooding: close the socket


@dataclass(frozen=True, slots=True)
class FloodLimits:
    """What one socket may send; `server.config.SignalingConfig` fills it."""

    messages_per_s: float
    message_burst: int
    pages_per_s: float
    page_burst: int
    close_after_drops: int
    drop_window_s: float


class SocketLimiter:
    """The verdict on each message of one socket; see the module doc."""

    def __init__(self, limits: FloodLimits, now: float) -> None:
        self._messages = TokenBucket(limits.messages_per_s, limits.message_burst, now)
        self._pages = TokenBucket(limits.pages_per_s, limits.page_burst, now)
        self._window = limits.drop_window_s
        self._drops: collections.deque[float] = collections.deque(
            maxlen=limits.close_after_drops)
        self._closed = False

    @property
    def dropped(self) -> int:
        """Drops still inside the window, as last counted."""
        return len(self._drops)

    def message(self, now: float) -> Verdict:
        """Any message, before it is parsed."""
        return self._judge(self._messages, now)

    def page(self, now: float) -> Verdict:
        """A page turn, after it passed `message`."""
        return self._judge(self._pages, now)

    def _judge(self, bucket: TokenBucket, now: float) -> Verdict:
        if self._closed:
            return Verdict.CLOSE
        if bucket.take(now):
            return Verdict.ACCEPT
        self._drops.append(now)
        while self._drops and now - self._drops[0] > self._window:
            self._drops.popleft()
        if len(self._drops) == self._drops.maxlen:
            self._closed = True
            return Verdict.CLOSE
        return Verdict.DROP


class Coalescer(Generic[T]):
    """At most one write per ``interval_s``; the latest value of a burst wins and is
    written when its interval ends (`due_at`, then `take_due`)."""

    def __init__(self, interval_s: float) -> None:
        self._interval = interval_s
        self._last: float | None = None
        self._pending: T | None = None

    @property
    def due_at(self) -> float | None:
        """When the held value is to be written; None if nothing is held."""
        if self._pending is None or self._last is None:
            return None
        return self._last + self._interval

    def offer(self, value: T, now: float) -> T | None:
        """The value to write now, or None if it is held (replacing any held one)."""
        if self._last is None or now >= self._last + self._interval:
            self._last = now
            self._pending = None
            return value
        self._pending = value
        return None

    def take_due(self, now: float) -> T | None:
        """The held value if its time has come (it then counts as written at ``now``)."""
        due = self.due_at
        if due is None or now < due:
            return None
        value, self._pending = self._pending, None
        self._last = now
        return value

    def flush(self) -> T | None:
        """The held value regardless of time (on stop: the last turn is never lost)."""
        value, self._pending = self._pending, None
        return value


class WaitingSockets:
    """Sockets open but not joined yet, per client address, capped at ``limit``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._count: dict[str, int] = {}

    def count(self, address: str) -> int:
        return self._count.get(address, 0)

    def enter(self, address: str) -> bool:
        """Count one more waiting socket from ``address``; False (uncounted) at the cap."""
        count = self._count.get(address, 0)
        if count >= self._limit:
            return False
        self._count[address] = count + 1
        return True

    def leave(self, address: str) -> None:
        count = self._count.get(address, 0) - 1
        if count > 0:
            self._count[address] = count
        else:
            self._count.pop(address, None)
