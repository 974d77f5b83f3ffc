"""Stopping the server leaves no task or thread of ours behind."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from pathlib import Path

from aiohttp.test_utils import TestServer

from media.testing import FrameNumberTrack, ToneTrack
from storage.invites import Role
from web_ui.app import create_app
from web_ui.client import RoomClient
from web_ui.keys import INVITES, ROOMS

from .conftest import make_config
from .media_helpers import wait_until


def our_threads() -> set[str]:
    # The default executor's workers belong to the event loop, not to us.
    return {t.name for t in threading.enumerate()
            if not t.name.startswith(("asyncio_", "ThreadPoolExecutor"))}


async def test_server_stop_with_peers_connected_leaves_nothing_running(
        tmp_path: Path, isolated_network: None) -> None:
    threads_before = our_threads()
    app = create_app(make_config(tmp_path))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    day = await app[INVITES].create_day("d", datetime.date.today(), time.time(), "UTC")
    student = await app[INVITES].issue(day, Role.STUDENT, "Студент", time.time() + 600)
    member = await app[INVITES].issue(day, Role.MEMBER, "Член", time.time() + 600)
    base = str(server.make_url("")).rstrip("/")
    publisher = RoomClient(base, student.token, tracks=[FrameNumberTrack(), ToneTrack()])
    subscriber = RoomClient(base, member.token)
    for client in (publisher, subscriber):
        await client.connect()
        await client.start_media()
    room = app[ROOMS].get(str(day))
    assert room is not None
    await wait_until(lambda: room.metrics.frames_out["video"] > 10, 15, "video to flow")

    await server.close()  # the server goes first, with everyone still connected
    await wait_until(lambda: publisher.state.bye is not None and subscriber.state.bye is not None,
                     10, "both clients to be told the session ended")
    assert {publisher.state.bye, subscriber.state.bye} <= {"shutdown", "closed"}
    await publisher.close()
    await subscriber.close()
    await asyncio.sleep(0.1)

    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == [], leftover
    await wait_until(lambda: our_threads() <= threads_before, 5,
                     f"threads to end: {our_threads() - threads_before}")
