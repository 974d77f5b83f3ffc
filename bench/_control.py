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
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from media.metrics import ForwardingMetrics, percentile

ENCODE_COUNTS: dict[str, int] = {"vp8": 0, "h264": 0, "opus": 0}

StatsSource = Callable[[bool], dict[str, Any]]


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
        body = source(request.query.get("reset") == "1")
        body["encodes"] = dict(ENCODE_COUNTS)
        return web.json_response(body)

    app.router.add_get("/bench/stats", stats)


async def serve(
    app: web.Application,
    announce: Callable[[int], Awaitable[dict[str, Any]]],
) -> None:
    """Run ``app`` on 127.0.0.1 until SIGTERM or stdin EOF; print ``announce(port)``."""
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
    try:
        print(json.dumps({"port": port, **await announce(port)}), flush=True)
        await done.wait()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        try:
            await asyncio.wait_for(runner.cleanup(), 15)
        except asyncio.TimeoutError:
            print("bench server: cleanup took over 15 s", file=sys.stderr)
