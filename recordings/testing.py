"""Synthetic takes and journals for tests and benchmarks.

`write_take` encodes a FrameNumberTrack-like picture (VP8) and a tone (Opus) for
each wanted track, feeds the encoded frames through a real `Recorder` (the capture
path of the server), and then sets the sidecars' clock offset so the take starts
at a chosen wall-clock time. Only the clock is fake: files, muxer and sidecars are
what a live session produces. `journal_defense_day` writes the procedure events of
a short day into the journal, as the procedure runner would.
"""

from __future__ import annotations

import fractions
import json
import math
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from media.testing import VIDEO_CLOCK, frame_number_image
from orchestrator import events as ev
from orchestrator.documents import NEEDED_TO_DEFEND, DocumentKind
from orchestrator.replay import journal_entry
from storage.journal import Journal

from .recorder import Recorder
from .segment import TrackKey

AUDIO_RATE = 48_000
AUDIO_FRAME = 960  # 20 ms


@dataclass(frozen=True, slots=True)
class FakeTrack:
    """One track of a synthetic take; times in seconds from the take's start."""

    participant: str
    kind: str  # "audio" or "video"
    start_s: float
    duration_s: float
    frequency: float = 440.0  # audio: the tone
    amplitude: float = 0.3  # audio
    fps: int = 30  # video
    width: int = 320
    height: int = 240
    first_number: int = 0  # video: the number drawn on the first frame


@dataclass(frozen=True, slots=True)
class _Encoded:
    data: bytes
    timestamp: int
    keyframe: bool
    arrived: float


def encode_video(track: FakeTrack) -> list[tuple[bytes, bool]]:
    """VP8 frames showing ``first_number``, ``first_number + 1``, ..."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = track.width, track.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, track.fps)
    codec.framerate = fractions.Fraction(track.fps, 1)
    codec.bit_rate = 600_000
    codec.gop_size = 2 * track.fps
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[tuple[bytes, bool]] = []
    for n in range(round(track.duration_s * track.fps)):
        image = frame_number_image(track.first_number + n, track.width, track.height)
        # cv2 converts in microseconds; VideoFrame.reformat sets up swscale every call.
        yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts, frame.time_base = n, codec.time_base
        out.extend((bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame))
    out.extend((bytes(p), bool(p.is_keyframe)) for p in codec.encode(None))
    return out


def encode_audio(track: FakeTrack) -> list[bytes]:
    """20 ms Opus frames of a stereo tone."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = AUDIO_RATE, "stereo", "s16"
    codec.bit_rate = 64_000
    total = round(track.duration_s * AUDIO_RATE) // AUDIO_FRAME * AUDIO_FRAME
    out: list[bytes] = []
    for start in range(0, total, AUDIO_FRAME):
        t = (np.arange(AUDIO_FRAME) + start) / AUDIO_RATE
        wave = (track.amplitude * 32767 * np.sin(2 * math.pi * track.frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(wave, 2).reshape(1, -1), format="s16",
                                           layout="stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out[:total // AUDIO_FRAME]


def _frames(track: FakeTrack) -> list[_Encoded]:
    rtp0 = 1000
    if track.kind == "video":
        step = VIDEO_CLOCK // track.fps
        return [_Encoded(data, rtp0 + n * step, key, track.start_s + n / track.fps)
                for n, (data, key) in enumerate(encode_video(track))]
    return [_Encoded(data, rtp0 + n * AUDIO_FRAME, True, track.start_s + n * AUDIO_FRAME / AUDIO_RATE)
            for n, data in enumerate(encode_audio(track))]


def write_take(folder: Path, tracks: list[FakeTrack], *, wall_start: float) -> list[Path]:
    """Record ``tracks`` into ``folder`` as one take starting at ``wall_start``."""
    recorder = Recorder(folder, queue_frames=1_000_000)
    recorder.start()
    events: list[tuple[float, int, TrackKey, _Encoded | None]] = []
    for track in tracks:
        key = (TrackKey(track.participant, "video", "VP8", VIDEO_CLOCK) if track.kind == "video"
               else TrackKey(track.participant, "audio", "opus", AUDIO_RATE))
        events.extend((frame.arrived, 0, key, frame) for frame in _frames(track))
        # The track ends (the participant left): its next frames start a new segment.
        events.append((track.start_s + track.duration_s, 1, key, None))
    try:
        for _at, _order, key, frame in sorted(events, key=lambda e: (e[0], e[1])):
            if frame is None:
                recorder.end_track(key)
            else:
                recorder.write(key, frame)
    finally:
        recorder.stop()
    for sidecar in folder.glob("*.json"):
        info = json.loads(sidecar.read_text())
        info["opened_unix"] = wall_start + float(info["first_arrived"])
        sidecar.write_text(json.dumps(info, indent=2) + "\n")
    return recorder.closed_files


@dataclass(frozen=True, slots=True)
class JournaledDefense:
    """When the defense written by `journal_defense_day` ran (unix times)."""

    start: float
    end: float
    phase_starts: tuple[float, ...]  # talk, questions, ..., final word


async def journal_defense_day(journal: Journal, day_id: int, *, chair: str, members: list[str],
                              secretary: str, student: str, others: list[str], t0: float,
                              phase_s: float = 1.0) -> JournaledDefense:
    """Journal a day as `ProcedureRunner` would: the sitting opens at ``t0``,
    ``student`` defends from ``t0 + 1`` through six phases of ``phase_s`` each,
    ``others`` are excused, and the closed sitting stops the recording."""
    async def put(event: ev.Event) -> None:
        await journal.append(day_id, None, *journal_entry(event), event.now)

    for s in [student, *others]:
        await put(ev.ConsentOnFile(now=t0, student=s))
        for kind in NEEDED_TO_DEFEND:
            await put(ev.DocumentOnFile(now=t0, student=s, kind=kind))
    for person in [chair, *members, secretary, student]:
        await put(ev.ParticipantJoined(now=t0, actor=person))
    await put(ev.OpenSitting(now=t0, actor=secretary))
    await put(ev.RecordingStarted(now=t0))
    await put(ev.IdentityDecided(now=t0, actor=secretary, student=student, accepted=True))
    for s in others:
        await put(ev.DocumentOnFile(now=t0, student=s, kind=DocumentKind.ABSENCE_PROOF))
        await put(ev.RecordValidReason(now=t0, actor=secretary, student=s, reason="ill"))
    await put(ev.AnnounceLimits(now=t0, actor=chair))
    start = t0 + 1
    await put(ev.StartDefense(now=start, actor=secretary, student=student))
    starts = tuple(start + n * phase_s for n in range(6))
    for at in [*starts[1:], start + 6 * phase_s]:
        await put(ev.NextPhase(now=at, actor=chair))
    end = start + 6 * phase_s
    await put(ev.TellReturnTime(now=end + 0.1, actor=secretary, return_at=end + 3600))
    await put(ev.StartClosedSitting(now=end + 0.2, actor=secretary))
    await put(ev.RecordingStopped(now=end + 0.3))
    return JournaledDefense(start, end, starts)
