"""Presence comes from the media: a participant whose media stops counts as gone even
while their connection still answers, and comes back when it flows again."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import av
import pytest

from media.forwarder import PublishedTrack
from media.room import Room
from media.testing import FrameNumberTrack
from server.config import Config
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .conftest import RunningServer, make_config
from .procedure_helpers import Api, day_spec
from .timing import wait_until

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
def config(tmp_path: Path) -> Config:
    config = make_config(tmp_path)
    return dataclasses.replace(config, media=dataclasses.replace(config.media, media_stall_s=2.0))


@pytest.mark.parametrize("tick_fails", [False, True], ids=["", "a-bandwidth-tick-failing"])
async def test_a_student_whose_media_stops_is_not_present(
        server: RunningServer, monkeypatch: pytest.MonkeyPatch, tick_fails: bool) -> None:
    if tick_fails:
        # The watchdog also ticks each publication's bandwidth estimate; one that
        # raises must not stop it, or nobody would ever count as gone again.
        def failing(self: PublishedTrack) -> None:
            raise RuntimeError("the estimate broke")

        monkeypatch.setattr(PublishedTrack, "remb_tick", failing)
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60, students=1), expires_at=time.time() + 86400, now=time.time())
    tokens = [i.token for i in created.invites]  # chair, 3 members, secretary, student
    base = server.base_url
    camera = PausableTrack()
    student = RoomClient(base, tokens[5], tracks=[camera])
    secretary = RoomClient(base, tokens[4])
    api = Api(base, created.day_id, tokens[4])
    try:
        for client in (student, secretary):
            await client.connect()
            await client.start_media()
        sid = student.participant_id
        await wait_until(api.snapshot, lambda s: sid in s["present"], "the student present")
        camera.flowing.clear()
        await wait_until(api.snapshot, lambda s: sid not in s["present"],
                         "the stalled student gone", 10)
        assert student.pc.connectionState == "connected"  # ICE still answers
        camera.flowing.set()
        await wait_until(api.snapshot, lambda s: sid in s["present"], "the student back", 10)
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
        server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
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
    client = RoomClient(server.base_url, created.invites[0].token)
    try:
        await client.connect()
        await client.start_media()
        await asyncio.sleep(4.5)  # the span the watchdog's ticks are counted over
    finally:
        await client.close()
    assert 3 <= calls <= 6, calls
