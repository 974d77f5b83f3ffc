"""Forwarding statistics out of every server process that hosts rooms, for capacity.py.

capacity.py runs the real ``defense-room serve`` (with ``--workers N`` once the CLI has
it), so it cannot add a route to the app the way bench/_server.py does: with workers,
the front would route ``/bench/stats`` to one worker only. Instead
``_stats_hook/sitecustomize.py`` (on ``PYTHONPATH`` only for the bench's server) calls
`install` at interpreter start in every process of the server, however the workers are
started (fork, spawn or a new interpreter). When ``web_ui.app`` is imported,
``create_app`` is wrapped: each app built also starts a small stats listener on
127.0.0.1 and writes ``<BENCH_STATS_DIR>/stats-<pid>.json`` with its port.

``GET /`` on that listener answers, for every room of that process, the forwarding
delay summary of ``room.metrics`` (as forwarding.py reads it) and its counters, and
the aiortc encoder calls of the process; ``?reset=1`` clears the delay samples.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ENV = "BENCH_STATS_DIR"


def _room_stats(app: Any, reset: bool) -> list[dict[str, Any]]:
    from _control import latency_summary
    from web_ui.keys import ROOMS

    registry = app.get(ROOMS)
    rooms = list(registry.rooms.items()) if registry is not None else []
    result = []
    for room_id, room in rooms:
        metrics = room.metrics
        result.append({
            "room": room_id,
            "latency": latency_summary(metrics),
            "frames_in": dict(metrics.frames_in), "frames_out": dict(metrics.frames_out),
            "frames_dropped": metrics.frames_dropped,
            "keyframe_requests": metrics.keyframe_requests,
        })
        if reset:
            metrics.reset_latency()
    return result


def _wrap(create_app: Any) -> Any:
    from aiohttp import web

    from _control import ENCODE_COUNTS, install_encoder_spy

    install_encoder_spy()
    folder = Path(os.environ[ENV])

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)
        runner_holder: list[web.AppRunner] = []

        async def stats(request: web.Request) -> web.Response:
            reset = request.query.get("reset") == "1"
            return web.json_response({"pid": os.getpid(), "rooms": _room_stats(app, reset),
                                      "encodes": dict(ENCODE_COUNTS)})

        async def start(_: web.Application) -> None:
            side = web.Application()
            side.router.add_get("/", stats)
            runner = web.AppRunner(side, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            runner_holder.append(runner)
            port = runner.addresses[0][1]
            target = folder / f"stats-{os.getpid()}.json"
            temporary = target.with_suffix(".tmp")
            temporary.write_text(json.dumps({"pid": os.getpid(), "port": port}))
            temporary.replace(target)  # the driver never reads half a file

        async def stop(_: web.Application) -> None:
            (folder / f"stats-{os.getpid()}.json").unlink(missing_ok=True)
            for runner in runner_holder:
                await runner.cleanup()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)
        return app

    return wrapped


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        module.create_app = _wrap(module.create_app)  # type: ignore[attr-defined]


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``web_ui.app`` as usual, then wraps its loader."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "web_ui.app":
            return None
        sys.meta_path.remove(self)  # once, and not found again by the lookup below
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Wrap ``web_ui.app.create_app`` when it is imported, if ``BENCH_STATS_DIR`` is set."""
    if os.environ.get(ENV) and "web_ui.app" not in sys.modules:
        sys.meta_path.insert(0, _Finder())
