"""Shared pieces of the identity tests: built frames and a camera that shows one."""

from __future__ import annotations

import asyncio
import fractions
import functools
import time
from typing import Any

import aiohttp
import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from identity.compose import Portrait, sample_portraits
from web_ui.client import RoomClient

VIDEO_CLOCK = 90_000


@functools.cache
def portraits() -> tuple[Portrait, Portrait]:
    """(Eileen Collins, Grace Hopper), located once per test session."""
    return sample_portraits()


class StillTrack(MediaStreamTrack):
    """A camera showing `image` (RGB); assign `image` to change what it shows."""

    kind = "video"

    def __init__(self, image: npt.NDArray[np.uint8], fps: int = 15) -> None:
        super().__init__()
        self.image = image
        self._fps = fps
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / self._fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame.from_ndarray(self.image, format="rgb24")
        frame.pts = self._count * VIDEO_CLOCK // self._fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class IdentityClient(RoomClient):
    """A participant that also keeps the ``identity`` messages sent to it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.identity: list[dict[str, Any]] = []

    async def _handle(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "identity":
            self.identity.append(msg)
        await super()._handle(msg)


class IdentityApi:
    """The identity API as one person calls it, with their invite token."""

    def __init__(self, base_url: str, day_id: int, token: str) -> None:
        self._base_url = base_url
        self._day = f"{base_url}/api/days/{day_id}"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self._session.close()

    async def check(self, student: str) -> tuple[int, dict[str, Any]]:
        async with self._session.post(f"{self._day}/identity/{student}/check",
                                      headers=self._headers) as r:
            body: dict[str, Any] = await r.json()
            return r.status, body

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET a path of the day's API ("identity/...") or an absolute "/api/..." URL."""
        url = self._base_url + path if path.startswith("/") else f"{self._day}/{path}"
        async with self._session.get(url, headers=self._headers) as r:
            return r.status, dict(r.headers), await r.read()
