"""Stopping the server leaves no task or thread of ours behind."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from pathlib import Path

from media.testing import FrameNumberTrack, ToneTrack
from storage.invites import Role
from web_ui.client import RoomClient
from web_ui.keys import INVITES, ROOMS

from .conftest import make_config, serving, url_of
from .timing import wait_until


def our_threads() -> set[str]:
    # The default executor's workers belong to the event loop, not to us.
    return {t.name for t in threading.enumerate()
            if not t.name.startswith(("asyncio_", "ThreadPoolExecutor"))}


async def test_server_stop_with_peers_connected_leaves_nothing_running(
        tmp_path: Path, isolated_network: None) -> None:
    threads_before = our_threads()
    async with serving(make_config(tmp_path)) as server:
        app = server.app
        day = await app[INVITES].create_day("d", datetime.date.today(), time.time(), "UTC")
        student = await app[INVITES].issue(day, Role.STUDENT, "Студент", time.time() + 600)
        member = await app[INVITES].issue(day, Role.MEMBER, "Член", time.time() + 600)
        base = url_of(server)
        publisher = RoomClient(base, student.token, tracks=[FrameNumberTrack(), ToneTrack()])
        subscriber = RoomClient(base, member.token)
        for client in (publisher, subscriber):
            await client.connect()
            await client.start_media()
        room = app[ROOMS].get(str(day))
        assert room is not None
        await wait_until(lambda: room.metrics.frames_out["video"], lambda n: n > 10,
                         "video to flow", 15)
    # The server went first, with everyone still connected.
    await wait_until(lambda: (publisher.state.bye, subscriber.state.bye),
                     lambda byes: None not in byes,
                     "both clients to be told the session ended (byes)", 10)
    assert {publisher.state.bye, subscriber.state.bye} <= {"shutdown", "closed"}
    await publisher.close()
    await subscriber.close()

    await wait_until(lambda: [t for t in asyncio.all_tasks() if t is not asyncio.current_task()],
                     lambda leftover: leftover == [], "our tasks to end", 1)
    await wait_until(lambda: our_threads() - threads_before, lambda leftover: not leftover,
                     "our threads to end", 5)
