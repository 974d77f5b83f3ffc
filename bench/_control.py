"""What both bench servers share: the encoder spy, the stats endpoint, the lifecycle.

A bench server is a process of its own (so its CPU time can be read from
/proc/<pid>/stat without the load generator in it). It prints one JSON line with its
port and invite tokens, serves until SIGTERM or until its stdin closes, and answers
``GET /bench/stats`` (``?reset=1`` clears the latency samples) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from media.metrics import ForwardingMetrics, percentile

ENCODE_COUNTS: dict[str, int] = {"vp8": 0, "h264": 0, "opus": 0}

StatsSource = Callable[[bool], dict[str, Any]]


class LoopLag:
    """How late a periodic timer fires on this process's event loop: stalls show here.

    Each firing costs a loop wake-up: at the default 10 ms that is about 1.8 % of a
    core here, so CPU benchmarks use a longer period (see ``serve``)."""

    def __init__(self, period: float = 0.01) -> None:
        self._period = period
        self._task: asyncio.Task[None] | None = None
        self.reset()

    def reset(self) -> None:
        self.max_ms = 0.0
        self.over_50ms = 0

    def start(self, period: float | None = None) -> None:
        if period is not None:
            self._period = period
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._period
            await asyncio.sleep(self._period)
            late = (loop.time() - due) * 1000
            self.max_ms = max(self.max_ms, late)
            if late > 50:
                self.over_50ms += 1

    def as_json(self) -> dict[str, float]:
        return {"max_ms": round(self.max_ms, 1), "over_50ms": self.over_50ms}


LOOP_LAG = LoopLag()


async def stall_loop(stall_s: float, every_s: float) -> None:
    """Block this process's event loop for ``stall_s`` every ``every_s`` (like a long GC
    pause or a descheduled process), to see how the server copes. Diagnosis only."""
    import time

    while True:
        await asyncio.sleep(every_s)
        time.sleep(stall_s)


def install_encoder_spy() -> None:
    """Count every aiortc encoder ``encode()`` call in this process, by codec."""
    from aiortc.codecs import h264, opus, vpx

    for name, cls in (("vp8", vpx.Vp8Encoder), ("h264", h264.H264Encoder), ("opus", opus.OpusEncoder)):
        original = cls.encode

        def encode(self: Any, *args: Any, _original: Any = original, _name: str = name,
                   **kwargs: Any) -> Any:
            ENCODE_COUNTS[_name] += 1  # a GIL-atomic enough counter for a benchmark
            return _original(self, *args, **kwargs)

        cls.encode = encode  # type: ignore[method-assign]


def latency_summary(metrics: ForwardingMetrics) -> dict[str, dict[str, float]]:
    result = {}
    for kind in ("video", "audio"):
        samples = metrics.latencies(kind)
        result[kind] = {
            "p50_ms": percentile(samples, 50) * 1000,
            "p95_ms": percentile(samples, 95) * 1000,
            "max_ms": max(samples, default=0.0) * 1000,
            "n": len(samples),
        }
    return result


def add_stats_route(app: web.Application, source: StatsSource) -> None:
    async def stats(request: web.Request) -> web.Response:
        reset = request.query.get("reset") == "1"
        body = source(reset)
        body["encodes"] = dict(ENCODE_COUNTS)
        body["loop_lag"] = LOOP_LAG.as_json()
        if reset:
            LOOP_LAG.reset()
        return web.json_response(body)

    app.router.add_get("/bench/stats", stats)


async def serve(
    app: web.Application,
    announce: Callable[[int], Awaitable[dict[str, Any]]],
    *,
    lag_period_s: float = 0.01,
) -> None:
    """Run ``app`` on 127.0.0.1 until SIGTERM or stdin EOF; print ``announce(port)``.
    ``lag_period_s``: how often the loop-lag probe wakes the loop."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_stdin() -> None:
        await reader.read()  # EOF: the driver went away
        done.set()

    watcher = asyncio.create_task(watch_stdin())
    LOOP_LAG.start(lag_period_s)
    stall_ms = float(os.environ.get("BENCH_STALL_MS", "0"))
    staller = asyncio.create_task(stall_loop(stall_ms / 1000, 2.5)) if stall_ms > 0 else None
    try:
        print(json.dumps({"port": port, **await announce(port)}), flush=True)
        await done.wait()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        if staller is not None:
            staller.cancel()
            await asyncio.gather(staller, return_exceptions=True)
        await LOOP_LAG.stop()
        try:
            await asyncio.wait_for(runner.cleanup(), 15)
        except asyncio.TimeoutError:
            print("bench server: cleanup took over 15 s", file=sys.stderr)
