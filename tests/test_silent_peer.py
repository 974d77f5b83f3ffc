"""A participant that never answers the server's offer is dropped (issue 17, item 6).

A raw websocket joins and then says nothing: after ``media.first_answer_timeout_s``
it gets an ``error`` with the code ``no_answer``, a ``bye`` with that reason, and the
socket closes; the room no longer lists it. A participant that answered stays.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.config import Config
from storage.invites import Role

from .conftest import RunningServer, make_config
from .media_helpers import joined

TIMEOUT_S = 2.0


@pytest.fixture
def config(tmp_path: Path) -> Config:
    base = make_config(tmp_path)
    return dataclasses.replace(base, media=dataclasses.replace(base.media, first_answer_timeout_s=TIMEOUT_S))


async def test_silent_participant_is_dropped_with_a_reason(server: RunningServer) -> None:
    silent = await server.invite(Role.STUDENT, "Silent page")
    answering = await joined(server.base_url, (await server.invite(Role.MEMBER, "Answers")).token)
    room_id = str(server.day_id)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.base_url.replace("http", "ws", 1) + "/ws") as ws:
                await ws.send_json({"type": "join", "token": silent.token})
                started = time.monotonic()
                received: list[dict[str, Any]] = []
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    received.append(msg.json())
                    if received[-1]["type"] == "welcome":
                        assert server.rooms.get(room_id) is not None
                        assert server.rooms.get(room_id).peer(str(silent.person_id)) is not None  # type: ignore[union-attr]
                took = time.monotonic() - started
                assert ws.closed
        types = [m["type"] for m in received]
        print(f"silent participant dropped after {took:.1f} s: {types}")
        assert types[0] == "welcome" and "offer" in types, types
        errors = [m for m in received if m["type"] == "error"]
        assert [e["code"] for e in errors] == ["no_answer"], errors
        assert f"{TIMEOUT_S:.0f} s" in errors[0]["message"]
        assert [m["reason"] for m in received if m["type"] == "bye"] == ["no_answer"]
        assert TIMEOUT_S <= took < TIMEOUT_S + 5
        room = server.rooms.get(room_id)
        assert room is not None and room.peer(str(silent.person_id)) is None
        # The one that answered is still there, past the same timeout.
        await asyncio.sleep(0.5)
        assert room.peer(answering.participant_id) is not None
        assert answering.state.bye is None
    finally:
        await answering.close()
