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
    #: Temporal layer (TID) of frame n: ``layer_pattern[n % len(layer_pattern)]``.
    layer_pattern: tuple[int, ...] = (0,)

    @property
    def duration_s(self) -> float:
        return len(self.frames) * self.frame_ticks / self.clock_rate

    @property
    def bitrate(self) -> float:
        return sum(len(d) for d, _ in self.frames) * 8 / self.duration_s


def encode_video(width: int = WIDTH, height: int = HEIGHT, bitrate: int = VIDEO_BITRATE,
                 noise: int = 12, temporal_layers: bool = False) -> EncodedClip:
    """VP8 at 30 fps with moving noise, so it costs ``bitrate`` like a camera (by
    default 640x480 at ~1.2 Mbit/s; bench/capacity.py asks for 640x360 and 1280x720;
    ``noise``: the amplitude that keeps the encoder from saving bits).

    ``temporal_layers``: three temporal layers as Chromium's ``scalabilityMode``
    L1T3 makes them (pattern 0,2,1,2; libvpx's layering mode 3 through FFmpeg's
    ``ts-parameters``, which sets each frame's references so that a layer never
    refers to a higher one), 40/20/40 % of the bitrate like libwebrtc's allocation."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.bit_rate = bitrate
    codec.gop_size = FPS * KEYFRAME_INTERVAL_S
    codec.options = {
        "deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
        "minrate": str(bitrate), "maxrate": str(bitrate),
        "bufsize": str(bitrate), "partitions": "0",
    }
    if temporal_layers:
        kbps = bitrate // 1000
        # error-resilient: no entropy context carried from frame to frame, or a
        # decoder that misses the dropped layers misreads the next frame (libwebrtc
        # sets the same for temporal layers).
        codec.options = {**codec.options, "error-resilient": "default", "ts-parameters": (
            f"ts_number_layers=3:ts_target_bitrate={kbps * 4 // 10},{kbps * 6 // 10},{kbps}"
            ":ts_rate_decimator=4,2,1:ts_periodicity=4:ts_layer_id=0,2,1,2"
            ":ts_layering_mode=3")}
    rng = np.random.default_rng(7)
    count = FPS * VIDEO_LOOP_S
    frames: list[tuple[bytes, bool]] = []
    for n in range(count):
        image = frame_number_image(n, width, height).astype(np.int16)
        image += rng.integers(-noise, noise + 1, size=(height, width, 1), dtype=np.int16)
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
    return EncodedClip("video", frames, VIDEO_CLOCK // FPS, VIDEO_CLOCK,
                       L1T3_PATTERN if temporal_layers else (0,))


L1T3_PATTERN = (0, 2, 1, 2)


def install_layered_vp8_packetizer() -> None:
    """Make aiortc's VP8 packetizer in this process write what a layered sender writes
    in each payload descriptor (RFC 7741): the temporal layer (TID), TL0PICIDX and the
    layer sync bit, for frames replayed by PacketLoopTrack from a clip encoded with
    layers (frame n has pts n * ticks; PacketLoopTrack puts the clip's layer pattern
    in each packet's ``opaque``). Frames of a clip without layers keep aiortc's own
    descriptor, as a browser sending one layer writes it.

    aiortc writes only the picture id; a forwarder that drops layers needs the rest.
    In the L1T3 pattern 0,2,1,2 the second and third frames refer to the base layer
    only (sync), the fourth also to the third (not sync)."""
    from aiortc.codecs import vpx
    from aiortc.mediastreams import VIDEO_TIME_BASE, convert_timebase

    ticks = VIDEO_CLOCK // FPS
    one_layer = vpx.Vp8Encoder.pack

    def pack(self: Any, packet: av.Packet[Any]) -> tuple[list[bytes], int]:
        pattern = packet.opaque
        if not isinstance(pattern, tuple) or len(pattern) < 2:
            return one_layer(self, packet)
        period = len(pattern)
        index = int(packet.pts or 0) // ticks
        tid = pattern[index % period]
        sync = 1 if tid > 0 and (index % period) in (1, 2) else 0
        descriptor = vpx.VpxPayloadDescriptor(
            partition_start=1, partition_id=0, picture_id=self.picture_id,
            tl0picidx=(index // period) % 256, tid=(tid, sync))
        buffer = bytes(packet)
        payloads = []
        pos = 0
        while pos < len(buffer):
            head = bytes(descriptor)
            size = min(len(buffer) - pos, vpx.PACKET_MAX - len(head))
            payloads.append(head + buffer[pos:pos + size])
            descriptor.partition_start = 0
            pos += size
        assert packet.pts is not None and packet.time_base is not None
        timestamp = convert_timebase(packet.pts, packet.time_base, VIDEO_TIME_BASE)
        self.picture_id = (self.picture_id + 1) % (1 << 15)
        return payloads, timestamp

    vpx.Vp8Encoder.pack = pack  # type: ignore[method-assign]


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
        packet.opaque = clip.layer_pattern  # for install_layered_vp8_packetizer
        self._sent += 1
        return packet
