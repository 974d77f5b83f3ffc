"""The rooms of a running server, one per defense day, created on first join."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from aiortc import RTCIceServer

from media.bitrate import BitrateWatcher, LinkChange, LinkSink
from media.participant import ParticipantInfo
from media.room import Room
from storage.journal import Journal

from .config import Config
from .flood import WaitingSockets
from .turn import TurnIssuer

logger = logging.getLogger(__name__)


class RoomRegistry:
    """Owns every Room, the count of sockets waiting to join (per address), and the
    few fire-and-forget tasks of the web layer."""

    def __init__(self, config: Config, *, link_sink: LinkSink | None = None) -> None:
        self._config = config
        self._rooms: dict[str, Room] = {}
        # Each room's watch over its students' uplinks (P5), and who hears of a change.
        self._watchers: dict[str, BitrateWatcher] = {}
        self._link_sink = link_sink
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting = WaitingSockets(config.signaling.max_waiting_per_ip)
        self._ice_servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in config.ice_servers
        ]
        # Participants' TURN credentials (read at startup: a bad secret file stops it).
        # The server's own peers get no TURN server: they listen on the machine's
        # (or the announced) address, which every participant's relay can reach, and
        # a relay on both ends would only add a hop.
        self.turn = TurnIssuer(config.turn)

    def room_for(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = Room(
                room_id,
                ice_servers=self._ice_servers,
                keyframe_min_interval=self._config.media.keyframe_min_interval_ms / 1000,
                media_stall_s=self._config.media.media_stall_s,
                max_ice_candidates=self._config.signaling.max_ice_candidates,
                layer_selection=self._config.media.layer_selection,
            )
            watcher = self._watchers[room_id] = BitrateWatcher(
                room, min_kbps=self._config.media.student_min_kbps,
                after_s=self._config.media.student_low_after_s, sink=self._link_sink)
            watcher.start()
        return room

    def watcher(self, room_id: str) -> BitrateWatcher | None:
        return self._watchers.get(room_id)

    @property
    def waiting(self) -> WaitingSockets:
        """Signaling sockets open but not joined yet, by client address (S18)."""
        return self._waiting

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    @property
    def rooms(self) -> dict[str, Room]:
        return dict(self._rooms)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a short task that belongs to nobody else; awaited on stop()."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for watcher in list(self._watchers.values()):
            await watcher.stop()
        self._watchers.clear()
        for room in list(self._rooms.values()):
            await room.stop()
        self._rooms.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def journal_link_changes(journal: Journal) -> LinkSink:
    """A LinkSink that journals each change of a student's link (P5): the day's record
    of when the student could not be seen or heard properly, and for how long."""

    async def record(room_id: str, student: ParticipantInfo, change: LinkChange,
                     min_kbps: int) -> None:
        if room_id.isdigit() and student.id.isdigit():
            await journal.append(int(room_id), int(student.id), change.kind,
                                 {"kbps": change.kbps, "minimum_kbps": min_kbps}, time.time())

    return record
