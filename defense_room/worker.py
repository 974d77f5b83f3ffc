"""``defense-room serve --worker I/N``: one worker process behind the front.

Started by the front (`server.workers.Supervisor`), never by hand: today's whole
application (`web_ui.app.create_app`) for the days worker I of N owns, on a unix
socket that only the front connects to. It prints `server.workers.READY_LINE`
once the socket listens, and dies with the front.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from aiohttp import web

from server.config import Config, ConfigError
from server.ownership import Ownership
from server.workers import READY_LINE, die_with_parent

from .eventloop import new_event_loop


def serve_worker(config: Config, worker: str, *, unix: Path | None, front_pid: int | None,
                 organizer_sha256: str | None) -> int:
    """Serve as worker `worker` ("I/N") until SIGTERM."""
    from web_ui.app import create_app

    if unix is None or front_pid is None:
        raise ConfigError("--worker is started by the front and needs --unix and --front-pid")
    die_with_parent(front_pid)
    index, _, count = worker.partition("/")
    try:
        ownership = Ownership(int(index), int(count))
    except ValueError as exc:
        raise ConfigError(f"--worker {worker!r}: {exc}") from None
    if organizer_sha256 is not None:  # the demo's token for this run (stored nowhere)
        config = dataclasses.replace(config, api=dataclasses.replace(
            config.api, organizer_token_sha256=organizer_sha256))
    os.umask(0o077)  # S19, as the front; the socket too is this user's only
    # The workers log into the front's stderr: each line says whose it is.
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname)s [worker {ownership.index}] %(name)s: %(message)s"))

    def ready(_: str) -> None:
        print(READY_LINE, flush=True)

    web.run_app(create_app(config, ownership=ownership), path=str(unix), print=ready,
                access_log=None, loop=new_event_loop())
    return 0
