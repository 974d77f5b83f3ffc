"""Presence comes from the media: a participant whose media stops counts as gone even
while their connection still answers, and comes back when it flows again."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiohttp.test_utils import TestServer

from media.room import Room
from media.testing import FrameNumberTrack
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.app import create_app
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .conftest import make_config
from .procedure_helpers import Api, day_spec

pytestmark = pytest.mark.timeout(120)


class PausableTrack(FrameNumberTrack):
    """Numbered frames that stop while paused, as a frozen phone camera does."""

    def __init__(self) -> None:
        super().__init__()
        self.flowing = asyncio.Event()
        self.flowing.set()

    async def recv(self) -> av.VideoFrame:
        await self.flowing.wait()
        return await super().recv()


@pytest.fixture
async def server(tmp_path: Path, isolated_network: None) -> AsyncIterator[TestServer]:
    config = make_config(tmp_path)
    config = dataclasses.replace(
        config, media=dataclasses.replace(config.media, media_stall_s=2.0))
    test_server = TestServer(create_app(config), host="127.0.0.1", port=0)
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()


async def test_a_student_whose_media_stops_is_not_present(server: TestServer) -> None:
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60, students=1), expires_at=time.time() + 86400, now=time.time())
    tokens = [i.token for i in created.invites]  # chair, 3 members, secretary, student
    base = str(server.make_url("")).rstrip("/")
    camera = PausableTrack()
    student = RoomClient(base, tokens[5], tracks=[camera])
    secretary = RoomClient(base, tokens[4])
    api = Api(base, created.day_id, tokens[4])
    try:
        for client in (student, secretary):
            await client.connect()
            await client.start_media()
        sid = student.participant_id
        await api.wait_state(lambda s: sid in s["present"], "the student present")
        camera.flowing.clear()
        await api.wait_state(lambda s: sid not in s["present"], "the stalled student gone", 10)
        assert student.pc.connectionState == "connected"  # ICE still answers
        camera.flowing.set()
        await api.wait_state(lambda s: sid in s["present"], "the student back", 10)
    finally:
        await student.close()
        await secretary.close()
        await api.close()
    entries = await Journal(server.app[DATABASE]).entries(created.day_id)
    presence = [(e.detail["type"], e.detail["actor"]) for e in entries
                if e.kind == "procedure_event"
                and e.detail["type"] in ("ParticipantJoined", "ParticipantLeft")]
    assert [t for t, a in presence if a == sid][:3] == [
        "ParticipantJoined", "ParticipantLeft", "ParticipantJoined"]


async def test_the_presence_watchdog_runs_once_a_second(
        server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """One timer per room, not one more at every tick."""
    calls = 0
    original = Room._watch

    def counting(self: Room) -> None:
        nonlocal calls
        calls += 1
        original(self)

    monkeypatch.setattr(Room, "_watch", counting)
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60, students=1), expires_at=time.time() + 86400, now=time.time())
    client = RoomClient(str(server.make_url("")).rstrip("/"), created.invites[0].token)
    try:
        await client.connect()
        await client.start_media()
        await asyncio.sleep(4.5)
    finally:
        await client.close()
    assert 3 <= calls <= 6, calls
