"""Pre-encoded publisher media: encoded once with PyAV, then looped without encoding.

A real camera would make every publisher encode, and on a 2-core machine the load
generator would then cost more CPU than the server it measures. So the bench encodes
a few seconds of a FrameNumberTrack-like 640x480 picture (VP8, about 1.2 Mbit/s,
a keyframe every ``KEYFRAME_INTERVAL_S``) and 20 ms frames of an Opus tone once, and
publishers replay those ``av.Packet``s at real-time pace. aiortc's RTCRtpSender only
packetizes an ``av.Packet``; it never encodes it.

The video loops at its first frame, a keyframe, so the stream stays decodable; the
periodic keyframes stand in for PLI answers, which a replayed stream cannot give.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from media.testing import AUDIO_RATE, VIDEO_CLOCK, frame_number_image

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 1_200_000
KEYFRAME_INTERVAL_S = 2
VIDEO_LOOP_S = 4
AUDIO_FRAME = 960  # 20 ms at 48 kHz
AUDIO_LOOP_S = 1


@dataclass(frozen=True, slots=True)
class EncodedClip:
    """Encoded frames of one kind: (bytes, keyframe) each, one ``frame_ticks`` apart."""

    kind: str
    frames: list[tuple[bytes, bool]]
    frame_ticks: int  # pts step, in 1/clock_rate
    clock_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.frames) * self.frame_ticks / self.clock_rate

    @property
    def bitrate(self) -> float:
        return sum(len(d) for d, _ in self.frames) * 8 / self.duration_s


def encode_video() -> EncodedClip:
    """VP8 640x480 at 30 fps with moving noise, so it costs ~1.2 Mbit/s like a camera."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = WIDTH, HEIGHT
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.bit_rate = VIDEO_BITRATE
    codec.gop_size = FPS * KEYFRAME_INTERVAL_S
    codec.options = {
        "deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
        "minrate": str(VIDEO_BITRATE), "maxrate": str(VIDEO_BITRATE),
        "bufsize": str(VIDEO_BITRATE), "partitions": "0",
    }
    rng = np.random.default_rng(7)
    count = FPS * VIDEO_LOOP_S
    frames: list[tuple[bytes, bool]] = []
    for n in range(count):
        image = frame_number_image(n, WIDTH, HEIGHT).astype(np.int16)
        image += rng.integers(-12, 13, size=(HEIGHT, WIDTH, 1), dtype=np.int16)
        frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = n
        frame.time_base = codec.time_base
        if n % (FPS * KEYFRAME_INTERVAL_S) == 0:
            frame.pict_type = av.video.frame.PictureType.I
        for packet in codec.encode(frame):
            frames.append((bytes(packet), bool(packet.is_keyframe)))
    for packet in codec.encode(None):
        frames.append((bytes(packet), bool(packet.is_keyframe)))
    if len(frames) != count or not frames[0][1]:
        raise RuntimeError(f"expected {count} VP8 frames starting with a keyframe, got {len(frames)}")
    return EncodedClip("video", frames, VIDEO_CLOCK // FPS, VIDEO_CLOCK)


def encode_audio(frequency: float = 440.0) -> EncodedClip:
    """20 ms Opus frames of a stereo tone (what aiortc's Opus sender would produce)."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 64_000
    frames: list[tuple[bytes, bool]] = []
    total = AUDIO_RATE * AUDIO_LOOP_S
    for start in range(0, total, AUDIO_FRAME):
        t = (np.arange(AUDIO_FRAME) + start) / AUDIO_RATE
        wave = (0.3 * 32767 * np.sin(2 * math.pi * frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(wave, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        for packet in codec.encode(frame):
            frames.append((bytes(packet), True))
    for packet in codec.encode(None):
        frames.append((bytes(packet), True))
    # The flush may add a packet past the end: keep exactly one loop's worth.
    return EncodedClip("audio", frames[:total // AUDIO_FRAME], AUDIO_FRAME, AUDIO_RATE)


def save_clips(path: Path) -> tuple[EncodedClip, EncodedClip]:
    video, audio = encode_video(), encode_audio()
    path.write_bytes(pickle.dumps((video, audio)))
    return video, audio


def load_clips(path: Path) -> tuple[EncodedClip, EncodedClip]:
    video, audio = pickle.loads(path.read_bytes())
    assert isinstance(video, EncodedClip) and isinstance(audio, EncodedClip)
    return video, audio


class PacketLoopTrack(MediaStreamTrack):
    """Replays an EncodedClip as ``av.Packet``s at real-time pace, forever.

    The pts keeps increasing across loops, so the receiver sees one continuous stream.
    """

    def __init__(self, clip: EncodedClip) -> None:
        super().__init__()
        self.kind = clip.kind
        self._clip = clip
        self._time_base = fractions.Fraction(1, clip.clock_rate)
        self._sent = 0
        self._start: float | None = None

    @property
    def frames_sent(self) -> int:
        return self._sent

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        clip = self._clip
        due = self._start + self._sent * clip.frame_ticks / clip.clock_rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        data, _ = clip.frames[self._sent % len(clip.frames)]
        packet = av.Packet(data)
        packet.pts = self._sent * clip.frame_ticks
        packet.time_base = self._time_base
        self._sent += 1
        return packet
