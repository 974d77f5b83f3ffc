"""One recording file: forwarded encoded frames muxed as they are, never decoded.

A ``Segment`` is created and used only by the recorder's writer thread. It opens a
WebM (VP8, Opus) or Matroska (H.264) container named ``<name>.part``, muxes each
frame as an ``av.Packet`` into a stream that has no encoder behind it, and on a clean
close renames the file to its final name. A ``.part`` file is therefore one whose
writer died; Matroska is written cluster by cluster (at most one second each, flushed
at once), so such a file still plays up to its last complete cluster.

Next to the media file a JSON sidecar (``<final name>.json``) records when the first
frame arrived, so that tracks recorded in separate files can be lined up later. It is
written when the segment opens and rewritten when it closes.
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream

from .errors import UnsupportedTrack
from .sps import h264_dimensions

_RTP_MOD = 1 << 32

# Close a cluster after a second of media and flush every packet to the file: after a
# crash, at most about one second is lost (the open cluster).
MUXER_OPTIONS = {"cluster_time_limit": "1000", "flush_packets": "1"}

VIDEO_CODECS = {"VP8": "vp8", "H264": "h264"}
AUDIO_CODECS = {"opus": "opus"}


@dataclass(frozen=True, slots=True)
class TrackKey:
    """One participant's forwarded track, as the recorder files it."""

    participant: str
    kind: str  # "audio" or "video"
    codec: str  # "VP8", "H264" or "opus"
    clock_rate: int

    def __post_init__(self) -> None:
        codecs = VIDEO_CODECS if self.kind == "video" else AUDIO_CODECS if self.kind == "audio" else None
        if codecs is None:
            raise UnsupportedTrack(f"cannot record a track of kind {self.kind!r}")
        if self.codec not in codecs:
            raise UnsupportedTrack(f"cannot record {self.kind} codec {self.codec!r}")
        if self.clock_rate <= 0:
            raise UnsupportedTrack(f"clock rate {self.clock_rate} is not positive")
        name = self.participant
        if not name or name.startswith(".") or not all(c.isalnum() or c in "-_." for c in name):
            raise UnsupportedTrack(f"participant id {name!r} cannot be used in a file name")

    @property
    def extension(self) -> str:
        return ".mkv" if self.codec == "H264" else ".webm"


def vp8_dimensions(keyframe: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1)."""
    if len(keyframe) < 10 or keyframe[0] & 1 or keyframe[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", keyframe, 6)
    return width & 0x3FFF, height & 0x3FFF


def opus_head(channels: int = 2, sample_rate: int = 48_000) -> bytes:
    """An Opus identification header (RFC 7845 section 5.1) for the CodecPrivate.

    WebRTC Opus is always negotiated as two channels; pre-skip is zero because the
    capture starts mid-stream, with no encoder priming to hide."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, 0, sample_rate, 0, 0)


_opus_template: Stream | None = None


def _opus_stream_template() -> Stream:
    """An Opus stream carrying a codec context that is never opened.

    PyAV's ``add_mux_stream`` makes a stream without a codec context, so it cannot
    carry extradata (the OpusHead). A stream copied from a template keeps a codec
    context marked as already initialized, which the muxer does not open; the template
    is read from a tiny file written here in memory, once per process."""
    global _opus_template
    if _opus_template is None:
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="matroska") as out:
            stream = out.add_mux_stream("opus", rate=48_000)
            packet = av.Packet(b"\xf8\xff\xfe")  # 20 ms of CELT silence
            packet.pts = packet.dts = 0
            packet.time_base = Fraction(1, 1000)
            packet.stream = stream
            out.mux(packet)
        buffer.seek(0)
        _opus_template = av.open(buffer, "r").streams.audio[0]
    return _opus_template


class Segment:
    """One open recording file of one track; see the module doc."""

    def __init__(self, folder: Path, track: TrackKey, number: int, *, first_rtp: int,
                 first_arrived: float, keyframe: bytes | None) -> None:
        self._track = track
        self._number = number
        stem = f"{track.participant}-{track.kind}-{number}{track.extension}"
        self._final_path = folder / stem
        self._part_path = folder / (stem + ".part")
        self._sidecar_path = folder / (stem + ".json")
        self._time_base = Fraction(1, track.clock_rate)
        self._first_ext = first_rtp
        self._last_raw = first_rtp
        self._last_ext = first_rtp
        self._last_pts = -1
        self._first_arrived = first_arrived
        self._last_arrived = first_arrived
        self._frames = 0
        self._opened_unix = time.time()
        self._container: OutputContainer = av.open(
            str(self._part_path), "w",
            format="matroska" if track.codec == "H264" else "webm",
            container_options=dict(MUXER_OPTIONS),
        )
        try:
            self._stream = self._add_stream(keyframe)
        except BaseException:
            self._container.close()
            self._part_path.unlink(missing_ok=True)
            raise
        self._write_sidecar(complete=False)

    @property
    def final_path(self) -> Path:
        return self._final_path

    @property
    def part_path(self) -> Path:
        return self._part_path

    @property
    def sidecar_path(self) -> Path:
        return self._sidecar_path

    @property
    def stream(self) -> Stream:
        return self._stream

    @property
    def frames(self) -> int:
        return self._frames

    @staticmethod
    def paths_taken(folder: Path, track: TrackKey, number: int) -> bool:
        stem = f"{track.participant}-{track.kind}-{number}{track.extension}"
        return any((folder / name).exists() for name in (stem, stem + ".part", stem + ".json"))

    def _add_stream(self, keyframe: bytes | None) -> Stream:
        track = self._track
        stream: Stream
        if track.kind == "audio":
            stream = self._container.add_stream_from_template(_opus_stream_template(), opaque=True)
            stream.codec_context.extradata = opus_head()
        else:
            size = None
            if keyframe:
                size = vp8_dimensions(keyframe) if track.codec == "VP8" else h264_dimensions(keyframe)
            width, height = size or (0, 0)
            stream = self._container.add_mux_stream(VIDEO_CODECS[track.codec], width=width, height=height)
        stream.time_base = self._time_base
        return stream

    def write(self, data: bytes, rtp_timestamp: int, keyframe: bool, arrived: float) -> bool:
        """Mux one frame; False if its timestamp does not move forward (dropped)."""
        delta = (rtp_timestamp - self._last_raw) % _RTP_MOD
        if delta >= _RTP_MOD // 2:
            delta -= _RTP_MOD
        ext = self._last_ext + delta
        pts = ext - self._first_ext
        # Matroska needs increasing timestamps; a late or repeated frame is left out.
        if pts < 0 or pts <= self._last_pts:
            return False
        self._last_raw = rtp_timestamp
        self._last_ext = ext
        self._last_pts = pts
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = self._time_base
        packet.stream = self._stream
        packet.is_keyframe = keyframe or self._track.kind == "audio"
        self._container.mux(packet)
        self._frames += 1
        self._last_arrived = arrived
        return True

    def close(self) -> None:
        """Write the trailer, give the file its final name and complete the sidecar."""
        self._container.close()
        os.replace(self._part_path, self._final_path)
        self._write_sidecar(complete=True)

    def abandon(self) -> None:
        """Close after a muxing error; the file keeps its ``.part`` name."""
        try:
            self._container.close()
        finally:
            self._write_sidecar(complete=False)

    def _write_sidecar(self, *, complete: bool) -> None:
        info: dict[str, Any] = {
            "participant": self._track.participant,
            "kind": self._track.kind,
            "codec": self._track.codec,
            "clock_rate": self._track.clock_rate,
            "segment": self._number,
            "file": self._final_path.name,
            # In the forwarder's clock (EncodedFrame.arrived): compare between sidecars.
            "first_arrived": self._first_arrived,
            "first_rtp_timestamp": self._first_ext % _RTP_MOD,
            "opened_unix": self._opened_unix,
            "complete": complete,
        }
        if complete:
            info["frames"] = self._frames
            info["last_arrived"] = self._last_arrived
            info["duration_s"] = max(self._last_pts, 0) / self._track.clock_rate
        tmp = self._sidecar_path.with_name(self._sidecar_path.name + ".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(tmp, self._sidecar_path)
