"""A participant's recorded segments read back as pictures and sound on the wall clock.

Only the composite build reads media this way; capture never decodes. Each reader
walks its participant's segments in order, seeks close to the start of the window
it is asked for (a defense may begin hours into a take), and hands out what falls
at a given instant: the newest picture for video, a run of samples for audio.
A segment that ends in damaged data (a crash) ends there; the next one goes on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

logger = logging.getLogger(__name__)

AUDIO_RATE = 48_000
#: How long a participant's last picture (or sound) keeps their tile.
HOLD_S = 1.0
_SEEK_MARGIN_S = 2.0


@dataclass(frozen=True, slots=True)
class Placed:
    """A media file and the wall-clock time of its first frame."""

    path: Path
    wall_start: float


def _seek(container: av.container.InputContainer, segment: Placed, start: float) -> None:
    skip = start - segment.wall_start - _SEEK_MARGIN_S
    if skip > 0:
        # Lands on the keyframe at or before; decoding goes on from there.
        container.seek(int(skip * 1_000_000), backward=True, any_frame=False)


def video_frames(segments: list[Placed], start: float) -> Iterator[tuple[float, av.VideoFrame]]:
    """(wall time, frame) of every decoded picture from about ``start`` on."""
    for segment in sorted(segments, key=lambda s: s.wall_start):
        try:
            with av.open(str(segment.path)) as container:
                if not container.streams.video:
                    continue
                _seek(container, segment, start)
                for frame in container.decode(video=0):
                    if frame.time is not None:
                        yield segment.wall_start + float(frame.time), frame
        except av.FFmpegError as exc:
            logger.warning("video of %s ends early: %s", segment.path.name, exc)


def audio_chunks(segments: list[Placed], start: float) -> Iterator[tuple[int, np.ndarray]]:
    """(sample index from ``start``, mono float samples) of the decoded sound."""
    for segment in sorted(segments, key=lambda s: s.wall_start):
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        try:
            with av.open(str(segment.path)) as container:
                if not container.streams.audio:
                    continue
                _seek(container, segment, start)
                for frame in container.decode(audio=0):
                    if frame.time is None:
                        continue
                    at = round((segment.wall_start + float(frame.time) - start) * AUDIO_RATE)
                    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
                    if parts:
                        yield at, np.concatenate(parts).astype(np.float32, copy=False)
        except av.FFmpegError as exc:
            logger.warning("audio of %s ends early: %s", segment.path.name, exc)


class VideoTrack:
    """The newest picture of one participant at the time it is advanced to."""

    def __init__(self, frames: Iterator[tuple[float, av.VideoFrame]]) -> None:
        self._frames = frames
        self._next = next(frames, None)
        self._current: av.VideoFrame | None = None
        self._current_t = float("-inf")
        self._image: np.ndarray | None = None

    def advance(self, t: float) -> None:
        while self._next is not None and self._next[0] <= t:
            self._current_t, self._current = self._next
            self._image = None
            self._next = next(self._frames, None)

    def active(self, t: float) -> bool:
        return self._current is not None and t - self._current_t <= HOLD_S

    def image(self) -> np.ndarray:
        """The current picture as BGR (converted once per picture shown)."""
        if self._current is None:
            raise ValueError("no picture yet")
        if self._image is None:
            self._image = self._current.to_ndarray(format="bgr24")
        return self._image

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


class AudioTrack:
    """One participant's sound, handed out in runs of samples on the composite's
    sample clock (0 = the window's start); silence where nothing was recorded."""

    def __init__(self, chunks: Iterator[tuple[int, np.ndarray]]) -> None:
        self._chunks = chunks
        self._pending: deque[tuple[int, np.ndarray]] = deque()  # in order, no overlap
        self._end: int | None = None  # end of the last sample pulled
        self._done = False
        self._heard: deque[list[int]] = deque()  # [start, end) runs that had sound

    def _pull(self) -> None:
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            return
        at, samples = chunk
        if self._end is not None and at < self._end:
            samples = samples[self._end - at:]  # overlaps what came before
            at = self._end
        if not len(samples):
            return
        if self._heard and self._heard[-1][1] >= at:
            self._heard[-1][1] = at + len(samples)
        else:
            self._heard.append([at, at + len(samples)])
        self._pending.append((at, samples))
        self._end = at + len(samples)

    def take(self, start: int, count: int) -> np.ndarray:
        """Samples [start, start + count); afterwards, earlier samples are gone."""
        end = start + count
        while not self._done and (self._end is None or self._end < end):
            self._pull()
        out = np.zeros(count, dtype=np.float32)
        for at, samples in self._pending:
            lo, hi = max(start, at), min(end, at + len(samples))
            if hi > lo:
                out[lo - start:hi - start] = samples[lo - at:hi - at]
        while self._pending and self._pending[0][0] + len(self._pending[0][1]) <= end:
            self._pending.popleft()
        while self._heard and self._heard[0][1] < start - HOLD_S * AUDIO_RATE:
            self._heard.popleft()
        return out

    def active(self, sample: int) -> bool:
        hold = HOLD_S * AUDIO_RATE
        return any(lo <= sample <= hi + hold for lo, hi in self._heard)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
