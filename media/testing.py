"""Synthetic camera and microphone whose content a receiver can check.

The video shows its frame number as a 4x4 grid of black and white blocks (16 bits,
row by row, most significant first), big enough to survive VP8 at low bitrates; a
coloured band on top makes it look like a picture to a human. The audio is a pure
tone. ``read_frame_number`` and ``dominant_frequency`` check them after decoding.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import av
import numpy as np
from aiortc import MediaStreamTrack

VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AUDIO_PTIME = 0.020
GRID = 4


def frame_number_image(number: int, width: int, height: int) -> np.ndarray:
    """An RGB image carrying ``number`` (mod 2**16) as blocks."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    band = height // 8
    image[:band, :, 0] = 200
    image[:band, :, 2] = (number * 8) % 256
    cell_h = (height - band) // GRID
    cell_w = width // GRID
    for bit in range(GRID * GRID):
        if (number >> (GRID * GRID - 1 - bit)) & 1:
            row, col = divmod(bit, GRID)
            y = band + row * cell_h
            x = col * cell_w
            image[y:y + cell_h, x:x + cell_w, :] = 255
    return image


def read_frame_number(frame: av.VideoFrame) -> int:
    """Read back the number drawn by ``frame_number_image`` from a decoded frame."""
    gray = frame.to_ndarray(format="gray")
    height, width = gray.shape
    band = height // 8
    cell_h = (height - band) // GRID
    cell_w = width // GRID
    number = 0
    for bit in range(GRID * GRID):
        row, col = divmod(bit, GRID)
        y = band + row * cell_h + cell_h // 2
        x = col * cell_w + cell_w // 2
        patch = gray[y - cell_h // 4:y + cell_h // 4, x - cell_w // 4:x + cell_w // 4]
        number = (number << 1) | int(patch.mean() > 128)
    return number


def dominant_frequency(samples: np.ndarray, rate: int = AUDIO_RATE) -> float:
    """The strongest frequency in a mono signal, in Hz."""
    window = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(window))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * rate / len(samples))


class FrameNumberTrack(MediaStreamTrack):
    """A camera at ``fps`` frames per second showing its own frame numbers."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__()
        self._width = width
        self._height = height
        self._fps = fps
        self._count = 0
        self._start: float | None = None

    @property
    def frames_sent(self) -> int:
        return self._count

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            from aiortc.mediastreams import MediaStreamError
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self._fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame.from_ndarray(
            frame_number_image(self._count, self._width, self._height), format="rgb24")
        frame.pts = self._count * VIDEO_CLOCK // self._fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A microphone playing a sine tone."""

    kind = "audio"

    def __init__(self, frequency: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self._frequency = frequency
        self._amplitude = amplitude
        self._sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            from aiortc.mediastreams import MediaStreamError
            raise MediaStreamError
        samples = int(AUDIO_RATE * AUDIO_PTIME)
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._sent / AUDIO_RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(samples) + self._sent) / AUDIO_RATE
        wave = (self._amplitude * 32767 * np.sin(2 * math.pi * self._frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._sent += samples
        return frame
