"""The event loop the server runs on.

uvloop (libuv) runs the same asyncio code with a much cheaper loop: the forwarder
wakes once per media packet, so the loop's own cost per wake-up is a large part of
forwarding a stream (see bench/README.md). The standard loop is the fallback where
uvloop is not installed; tests run on both (in-process servers on pytest's standard
loop, ``defense-room serve`` subprocesses on uvloop).
"""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop if installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
