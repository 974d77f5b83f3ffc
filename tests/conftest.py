"""Shared fixtures: the network guard, a running server, invites, an encoder spy."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.config import Config, LobbyConfig, TlsConfig, TlsMode
from server.rooms import RoomRegistry
from storage.db import Database
from storage.invites import InviteStore, IssuedInvite, Role
from web_ui.app import create_app
from web_ui.keys import INVITES, ROOMS

NETNS_INTERFACES = {"lo", "dr0", "dr1"}


@pytest.fixture(scope="session")
def isolated_network() -> None:
    """Real peers may run only inside the namespace made by scripts/netns-run:
    outside it, ICE would use (and send to) this machine's LAN addresses."""
    names = {name for _, name in socket.if_nameindex()}
    if not names <= NETNS_INTERFACES or "dr0" not in names:
        pytest.fail(
            "WebRTC tests must run in a private network namespace; run them with "
            f"scripts/test.sh (or scripts/netns-run pytest). Interfaces here: {sorted(names)}",
            pytrace=False,
        )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "defense-room.sqlite3"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    """A started database on a real SQLite file under tmp_path."""
    database = Database(db_path)
    await database.start()
    yield database
    await database.stop()


@dataclass
class RunningServer:
    app: web.Application
    base_url: str
    day_id: int

    @property
    def invites(self) -> InviteStore:
        return self.app[INVITES]

    @property
    def rooms(self) -> RoomRegistry:
        return self.app[ROOMS]

    async def invite(self, role: Role, name: str, *, expires_in: float = 3600.0) -> IssuedInvite:
        return await self.invites.issue(self.day_id, role, name, time.time() + expires_in)


def free_port() -> int:
    """A local TCP port free right now, for a server started as its own process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    """A test server's config. Students enter directly (no admission step) unless a
    test asks for it: most tests are about media and the procedure, not the lobby."""
    base = Config()
    return dataclasses.replace(
        base,
        data_dir=tmp_path / "data",
        server=dataclasses.replace(base.server, host="127.0.0.1", port=0),
        tls=TlsConfig(mode=TlsMode.OFF),
        **{"lobby": LobbyConfig(admission=False), **overrides},
    )


@contextlib.asynccontextmanager
async def serving(config: Config) -> AsyncIterator[TestServer]:
    """The app made from ``config``, served on a free local port until the block ends."""
    test_server = TestServer(create_app(config), host="127.0.0.1", port=0)
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()


def url_of(test_server: TestServer) -> str:
    """The server's base URL, without the trailing slash."""
    return str(test_server.make_url("")).rstrip("/")


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The config the ``server`` fixture runs; a test module overrides this fixture to
    run it otherwise."""
    return make_config(tmp_path)


@pytest.fixture
async def server(config: Config, isolated_network: None) -> AsyncIterator[RunningServer]:
    """A running server with one day created ("Test defense day")."""
    async with serving(config) as test_server:
        day_id = await test_server.app[INVITES].create_day(
            "Test defense day", datetime.date.today(), time.time(), "Europe/Moscow")
        yield RunningServer(test_server.app, url_of(test_server), day_id)


class EncoderSpy:
    """Records every aiortc encoder instance whose encode() ran."""

    def __init__(self) -> None:
        self.encoded_by: dict[int, int] = {}

    def calls_for(self, encoders: list[object]) -> int:
        return sum(self.encoded_by.get(id(e), 0) for e in encoders)


@pytest.fixture
def encoder_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[EncoderSpy]:
    from aiortc.codecs import h264, opus, vpx

    spy = EncoderSpy()
    for cls in (vpx.Vp8Encoder, h264.H264Encoder, opus.OpusEncoder):
        original = cls.encode

        def encode(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            spy.encoded_by[id(self)] = spy.encoded_by.get(id(self), 0) + 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "encode", encode)
    yield spy
