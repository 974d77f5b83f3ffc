"""One browser-playable file of a defense, built from the raw recordings.

Theory of operation
-------------------
The raw capture keeps every participant's encoded media in files of its own, as
it arrived, never decoded (`recordings.recorder`). Watching a defense needs one
picture and one sound, so this module decodes the files of the defense's window
and encodes one MP4 (H.264 and AAC, which every browser plays; the moov atom goes
first so playback starts before the download ends):

* the picture, ``fps`` times a second: every participant with recent video (or
  sound) gets a tile; the current speaker's is the large one (`layout`); the bar
  on top shows the phase and the local clock;
* the sound: every participant's sound placed on the wall clock and summed; the
  same samples give each participant's level, from which the speaker is chosen;
* chapters: one per phase, written into the MP4 and handed back for the player.

This is CPU work (decoding, scaling, encoding). It runs in a worker process
(`recordings.build`), never on the server's event loop or media path, and it only
reads the files it is given.
"""

from __future__ import annotations

import datetime
import fractions
import logging
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from .layout import (
    Rect,
    SpeakerDetector,
    draw_bar,
    draw_border,
    draw_label,
    fit,
    tile_area,
    tile_rects,
)
from .tracks import AUDIO_RATE, AudioTrack, Placed, VideoTrack, audio_chunks, video_frames

logger = logging.getLogger(__name__)

BACKGROUND = (16, 16, 16)
SPEAKER_COLOUR = (0, 190, 255)  # BGR amber


@dataclass(frozen=True, slots=True)
class Input:
    """One raw (or remuxed) file of one participant's track."""

    participant: str
    kind: str  # "audio" or "video"
    path: Path
    wall_start: float


@dataclass(frozen=True, slots=True)
class Spec:
    """What to build: the window [start, end) in unix time and how to show it."""

    output: Path
    start: float
    end: float
    inputs: tuple[Input, ...]
    order: tuple[str, ...]  # tile order; the first is the speaker until someone speaks
    labels: dict[str, str] = field(default_factory=dict)
    captions: tuple[tuple[float, str], ...] = ()  # (from unix time, text) for the bar
    chapters: tuple[tuple[str, float, float], ...] = ()  # (title, start, end), unix time
    timezone: str = "UTC"
    width: int = 960
    height: int = 540
    fps: int = 15


@dataclass(frozen=True, slots=True)
class Result:
    frames: int
    duration_s: float
    speakers: tuple[tuple[float, str], ...]  # (seconds into the file, speaker) at each change


def build_composite(spec: Spec, progress: Callable[[float], None] = lambda _f: None) -> Result:
    """Write ``spec.output`` and return what was written; see the module doc."""
    if AUDIO_RATE % spec.fps or spec.width % 2 or spec.height % 2:
        raise ValueError(f"cannot build {spec.width}x{spec.height} at {spec.fps} fps")
    tick = 1 / spec.fps
    frames = max(1, round((spec.end - spec.start) * spec.fps))
    per_tick = AUDIO_RATE // spec.fps
    people = list(dict.fromkeys([*spec.order, *(i.participant for i in spec.inputs)]))

    def placed(person: str, kind: str) -> list[Placed]:
        return [Placed(i.path, i.wall_start) for i in spec.inputs
                if i.participant == person and i.kind == kind]

    videos = {p: VideoTrack(video_frames(placed(p, "video"), spec.start))
              for p in people if placed(p, "video")}
    audios = {p: AudioTrack(audio_chunks(placed(p, "audio"), spec.start))
              for p in people if placed(p, "audio")}
    zone = zoneinfo.ZoneInfo(spec.timezone)
    captions = sorted(spec.captions)
    detector = SpeakerDetector(people[0] if people else None, tick)
    speakers: list[tuple[float, str]] = []
    area = tile_area(spec.width, spec.height)
    canvas = np.empty((spec.height, spec.width, 3), dtype=np.uint8)
    time_base = fractions.Fraction(1, spec.fps)
    audio_base = fractions.Fraction(1, AUDIO_RATE)
    try:
        with av.open(str(spec.output), "w", format="mp4",
                     options={"movflags": "+faststart"}) as out:
            video = out.add_stream("libx264", rate=spec.fps)
            video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
            video.options = {"preset": "veryfast", "crf": "26", "g": str(2 * spec.fps)}
            audio = out.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "mono"
            audio.bit_rate = 96_000
            out.set_chapters([
                {"id": n + 1, "start": round((s - spec.start) * 1000),
                 "end": round((e - spec.start) * 1000), "time_base": fractions.Fraction(1, 1000),
                 "metadata": {"title": title}}
                for n, (title, s, e) in enumerate(spec.chapters)])
            for index in range(frames):
                t = spec.start + index * tick
                levels: dict[str, float] = {}
                mix = np.zeros(per_tick, dtype=np.float32)
                for person, track in audios.items():
                    chunk = track.take(index * per_tick, per_tick)
                    levels[person] = float(np.sqrt(np.mean(chunk * chunk)))
                    mix += chunk
                for video_track in videos.values():
                    video_track.advance(t)
                present = [p for p in people
                           if (p in videos and videos[p].active(t))
                           or (p in audios and audios[p].active(index * per_tick))]
                speaker = detector.update(levels, present)
                if speaker is not None and (not speakers or speakers[-1][1] != speaker):
                    speakers.append((index * tick, speaker))
                _draw(canvas, area, present, speaker, videos, t, spec.labels)
                caption = next((text for at, text in reversed(captions) if at <= t), "")
                clock = datetime.datetime.fromtimestamp(t, zone).strftime("%H:%M:%S")
                draw_bar(canvas, caption, clock)
                picture = av.VideoFrame.from_ndarray(canvas, format="bgr24")
                picture.pts, picture.time_base = index, time_base
                out.mux(video.encode(picture))
                sound = av.AudioFrame.from_ndarray(
                    np.clip(mix, -1, 1).reshape(1, -1), format="flt", layout="mono")
                sound.sample_rate = AUDIO_RATE
                sound.pts, sound.time_base = index * per_tick, audio_base
                out.mux(audio.encode(sound))
                progress((index + 1) / frames)
            out.mux(video.encode(None))
            out.mux(audio.encode(None))
    finally:
        for video_track in videos.values():
            video_track.close()
        for track in audios.values():
            track.close()
    return Result(frames, frames / spec.fps, tuple(speakers))


def _draw(canvas: np.ndarray, area: Rect, present: list[str], speaker: str | None,
          videos: dict[str, VideoTrack], t: float, labels: dict[str, str]) -> None:
    canvas[:] = BACKGROUND
    big = present.index(speaker) if speaker in present and len(present) > 1 else None
    for n, (person, cell) in enumerate(zip(present, tile_rects(len(present), big, area))):
        rect = cell
        track = videos.get(person)
        if track is not None and track.active(t):
            image = track.image()
            rect = fit(cell, image.shape[1], image.shape[0])
            shrink = rect.w < image.shape[1]
            canvas[rect.y:rect.y + rect.h, rect.x:rect.x + rect.w] = cv2.resize(
                image, (rect.w, rect.h),
                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        draw_label(canvas, rect, labels.get(person, person))
        if n == big:
            draw_border(canvas, cell, SPEAKER_COLOUR)
