"""Catching a short burst of the student's encoded video, on the event loop.

A `BurstCapture` hangs a frame sink on the student's video publication (which
asks the publisher for a keyframe), keeps copies of the encoded frames from the
first keyframe on, and detaches once it has enough or its time is up. The sink
only appends bytes: it runs on the forwarder's path and must return at once.
Nothing is decoded here; the worker does that.
"""

from __future__ import annotations

import asyncio
import logging

from media.assembler import EncodedFrame
from media.forwarder import PublishedTrack

from .errors import NoFrames, NoVideo
from .worker import Burst

logger = logging.getLogger(__name__)

DECODERS = {"video/vp8": "vp8", "video/h264": "h264"}


def decoder_for(publication: PublishedTrack) -> str:
    """PyAV's decoder for the publication's codec; NoVideo for anything else."""
    mime = publication.codec.mimeType.lower()
    if publication.kind != "video" or mime not in DECODERS:
        raise NoVideo(f"participant {publication.publisher_id} sends {mime}, not VP8 or "
                      "H.264 video")
    return DECODERS[mime]


class BurstCapture:
    """Collects up to `frames` encoded frames of `publication` from a keyframe on."""

    def __init__(self, publication: PublishedTrack, *, frames: int, timeout_s: float) -> None:
        self._publication = publication
        self._codec = decoder_for(publication)
        self._wanted = frames
        self._timeout_s = timeout_s
        self._frames: list[bytes] = []
        self._full = asyncio.Event()

    async def run(self) -> Burst:
        """The burst; NoFrames if no keyframe came in time. Always detaches."""
        self._publication.add_sink(self._sink)
        try:
            await asyncio.wait_for(self._full.wait(), self._timeout_s)
        except TimeoutError:
            pass
        finally:
            self._publication.remove_sink(self._sink)
        if not self._frames:
            raise NoFrames(
                f"no picture from participant {self._publication.publisher_id} within "
                f"{self._timeout_s:g} s (no keyframe arrived)")
        logger.debug("burst of %d %s frames from %s", len(self._frames), self._codec,
                      self._publication.publisher_id)
        return Burst(self._codec, tuple(self._frames))

    def _sink(self, publication: PublishedTrack, frame: EncodedFrame) -> None:
        if self._full.is_set() or (not self._frames and not frame.keyframe):
            return
        self._frames.append(bytes(frame.data))
        if len(self._frames) >= self._wanted:
            self._full.set()
