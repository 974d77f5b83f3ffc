"""An aiortc participant run as its own process, e.g. inside a netlab namespace:

    python -m tests.badlink_peer BASE_URL TOKEN [MAX_KBPS]

It joins, publishes a camera whose picture is noisy enough that the encoder spends
its whole target bitrate (aiortc's VP8 starts at 500 kbit/s; a plain test pattern
would use a fraction of it and look like a weak link) and a tone, prints ``ready``
once its media connection is up, and stays until it is terminated. With MAX_KBPS its
video encoder stays at or under that rate, as a browser's congestion control settles
on a slow link (aiortc's own floor, 250 kbit/s, is above what rule P5 is about).
"""

from __future__ import annotations

import asyncio
import fractions
import sys
import time

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.codecs import vpx
from aiortc.mediastreams import MediaStreamError

from media.testing import VIDEO_CLOCK, ToneTrack, frame_number_image
from web_ui.client import RoomClient


class NoisyCamera(MediaStreamTrack):
    """Frame numbers (readable back) over moving noise, 320x240 at 30 frames/s."""

    kind = "video"

    def __init__(self, fps: int = 30) -> None:
        super().__init__()
        self._fps = fps
        self._count = 0
        self._start: float | None = None
        self._rng = np.random.default_rng(7)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count / self._fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        image = frame_number_image(self._count, 320, 240)
        noise = self._rng.integers(0, 96, size=(240, 320, 1), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(np.clip(image.astype(np.int16) + noise - 48, 0, 255)
                                           .astype(np.uint8), format="rgb24")
        frame.pts = self._count * VIDEO_CLOCK // self._fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


def cap_video_bitrate(kbps: int) -> None:
    # aiortc reads these module constants each time it sets the encoder's target.
    vpx.MIN_BITRATE = min(vpx.MIN_BITRATE, kbps * 1000 // 2)
    vpx.DEFAULT_BITRATE = vpx.MAX_BITRATE = kbps * 1000


async def main(base_url: str, token: str) -> None:
    client = RoomClient(base_url, token, tracks=[NoisyCamera(), ToneTrack()])
    await client.connect()
    await client.start_media(timeout=30)
    print("ready", flush=True)
    try:
        while client.state.bye is None:
            await asyncio.sleep(0.5)
    finally:
        await client.close()


if __name__ == "__main__":
    if len(sys.argv) > 3:
        cap_video_bitrate(int(sys.argv[3]))
    asyncio.run(main(sys.argv[1], sys.argv[2]))
