"""The rooms of a running server, one per defense day, created on first join."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from aiortc import RTCIceServer

from media.room import Room

from .config import Config
from .flood import WaitingSockets

logger = logging.getLogger(__name__)


class RoomRegistry:
    """Owns every Room, the count of sockets waiting to join (per address), and the
    few fire-and-forget tasks of the web layer."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._rooms: dict[str, Room] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting = WaitingSockets(config.signaling.max_waiting_per_ip)
        self._ice_servers = [
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in config.ice_servers
        ]

    def room_for(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = Room(
                room_id,
                ice_servers=self._ice_servers,
                keyframe_min_interval=self._config.media.keyframe_min_interval_ms / 1000,
                media_stall_s=self._config.media.media_stall_s,
                max_ice_candidates=self._config.signaling.max_ice_candidates,
            )
        return room

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
        for room in list(self._rooms.values()):
            await room.stop()
        self._rooms.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
