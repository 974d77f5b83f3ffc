"""What the bad-link tests add to tests/netlab.py: ``lab_server``, the app listening
on every address of the test namespace, so that netlab hosts reach it at their
gateway (the ``server`` fixture binds 127.0.0.1)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from server.config import Config
from web_ui.app import create_app

from .conftest import make_config


@contextlib.asynccontextmanager
async def lab_server(tmp_path: Path, **media: Any) -> AsyncIterator[TestServer]:
    """The app on 0.0.0.0 (a free port); ``media`` overrides keys of config.media."""
    base = Config()
    config = make_config(tmp_path, media=dataclasses.replace(base.media, **media))
    server = TestServer(create_app(config), host="0.0.0.0", port=0)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()
