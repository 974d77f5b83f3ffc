"""Time in tests: one bounded wait for what happens in real time, and a fake clock
for what a test steps forward itself (STYLE §7).

`wait_until` is the only way a test waits for something to happen: it polls, and on
timeout it fails naming what it waited for and the last value it saw (livekit's
`testutils.WithTimeout`). A bare `asyncio.sleep` is not a wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

#: Seconds between two reads: short next to any timeout, long next to a read.
POLL_INTERVAL = 0.05


@overload
async def wait_until(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool] = bool,
                     what: str = "the condition", timeout: float = 20.0) -> T: ...


@overload
async def wait_until(read: Callable[[], T], ok: Callable[[T], bool] = bool,
                     what: str = "the condition", timeout: float = 20.0) -> T: ...


async def wait_until(read: Callable[[], T | Awaitable[T]], ok: Callable[[T], bool] = bool,
                     what: str = "the condition", timeout: float = 20.0) -> T:
    """Call ``read`` (plain or async) until ``ok`` holds for what it returns, and return
    that value; after ``timeout`` seconds raise AssertionError naming ``what`` and the
    last value read. ``read`` runs once more after the deadline, so a slow loop does
    not fail a condition that holds by then.

    ``read`` returns the thing to look at (a count, a state, a set of what is still
    missing), not a bare bool, wherever that thing would explain a timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = read()
        value: T = await got if isinstance(got, Awaitable) else got
        if ok(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; last value: {value!r}")
        await asyncio.sleep(POLL_INTERVAL)


class FakeClock:
    """A wall clock (seconds) that moves only when the test sets ``now``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
