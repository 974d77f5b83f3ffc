"""The lobby before the room: students wait, seeing and sending nothing, until the
secretary admits them; once admitted they come back in directly."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from media.testing import FrameNumberTrack, ToneTrack
from server.config import Config, LobbyConfig
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .conftest import RunningServer, make_config
from .procedure_helpers import day_spec

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, lobby=LobbyConfig(admission=True))


async def test_a_student_waits_until_the_secretary_admits(server: RunningServer) -> None:
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60, students=1), expires_at=time.time() + 86400, now=time.time())
    tokens = [i.token for i in created.invites]  # chair, 3 members, secretary, student
    base = server.base_url
    member = RoomClient(base, tokens[1], tracks=[FrameNumberTrack()])
    student = RoomClient(base, tokens[5], tracks=[FrameNumberTrack(), ToneTrack()])
    clients = [member, student]
    try:
        for client in clients:
            await client.connect()
            await client.start_media()
        assert member.state.welcome is not None and student.state.welcome is not None
        assert member.state.welcome["lobby"] == {"waiting": False, "reason": None}
        assert student.state.welcome["lobby"] == {"waiting": True, "reason": "admission"}
        sid = student.participant_id
        await member.wait_for(lambda: any(e["id"] == sid and e["publishing"]
                                          for e in member.state.roster), 10, "the student publishing")
        assert not any(t.participant == sid for t in member.received.values())
        assert not student.received  # the student sees nothing yet

        async def admit(token: str) -> int:
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{base}/api/days/{created.day_id}/admit",
                                        json={"person": sid},
                                        headers={"Authorization": f"Bearer {token}"}) as r:
                    return r.status

        assert await admit(tokens[1]) == 403  # a member does not admit
        assert await admit(tokens[4]) == 200
        await student.wait_for(lambda: not student.state.lobby and bool(student.received), 10,
                               "the student admitted and receiving")
        await member.wait_for(lambda: any(t.participant == sid for t in member.received.values()),
                              10, "the student's media reaching the member")
        await student.close()
        clients.remove(student)
        again = RoomClient(base, tokens[5])
        clients.append(again)
        await again.connect()
        assert again.state.welcome is not None
        assert again.state.welcome["lobby"]["waiting"] is False  # admitted for the day
    finally:
        for client in clients:
            await client.close()
    entries = await Journal(server.app[DATABASE]).entries(created.day_id)
    assert [e.detail for e in entries if e.kind == "admitted"] == [{"person": sid}]
