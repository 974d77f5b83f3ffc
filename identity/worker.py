"""What runs in the analysis worker process: decode a burst, analyse the
sharpest few frames, keep the best comparable pair, encode its frame and the two
face crops as JPEG.

Several frames (``analysed_frames``, sharpest first) because a single frame can
miss the document photo (a reflection, motion) or catch the face mid-turn. The
kept frame is the one with the lowest distance among those that gave a
comparison; if none did, the sharpest frame's retake. Within the time budget
(`FRAMES_BUDGET_S`): a match ends the search (a lower distance would not change
the verdict), and a further frame is only started if, at the pace of the ones
before, it ends within the budget.

This is the only place the server decodes video. It runs in a process of its own
(`service.IdentityChecks`): dlib's face encoder holds the GIL for ~70 ms per face,
which in a thread would stall the event loop that forwards everyone's media.
face_recognition is imported here lazily, so importing this module (to hand its
functions to the pool) costs the server nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import av
import cv2
import numpy as np

from .errors import NoFrames
from .quality import Image, frame_sharpness, gray
from .settings import IdentitySettings
from .verdict import Analysis, Box, Verdict

JPEG_QUALITY = 90
WORKER_NICENESS = 10
# Crops shown to the secretary: the face and some of what surrounds it.
LIVE_MARGIN = 0.4
DOCUMENT_MARGIN = 0.6
#: Seconds of analysis after which no further frame of the burst is started.
FRAMES_BUDGET_S = 0.8


@dataclass(frozen=True, slots=True)
class Burst:
    """Encoded frames of one video track, starting at a keyframe."""

    codec: str  # PyAV decoder name: "vp8" or "h264"
    frames: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class CheckOutput:
    """What the worker hands back; no face encoding is in it."""

    analysis: Analysis
    width: int
    height: int
    frames_decoded: int
    frame_sharpness: float
    #: JPEG bytes by name: "frame", and "live" / "document" where found.
    images: dict[str, bytes]
    worker_seconds: float
    #: Frames of the burst analysed (the sharpest first) before one was kept.
    frames_analysed: int = 1


def warm_up() -> None:
    """Start of the worker process: yield the CPU to the server, load the models.

    The worker runs at a lower priority (nice +10) so that on a small machine the
    event loop forwarding everyone's media always gets a core first; a check then
    takes longer under load rather than the media stalling.
    """
    os.nice(WORKER_NICENESS)
    from . import faces  # noqa: F401


def sharpest_frames(burst: Burst, count: int) -> tuple[list[tuple[Image, float]], int]:
    """Decode every frame; the `count` sharpest (image, sharpness), sharpest
    first, and how many decoded."""
    decoder = av.CodecContext.create(burst.codec, "r")
    assert isinstance(decoder, av.VideoCodecContext)
    kept: list[tuple[Image, float]] = []
    decoded = 0
    packets: list[av.Packet[Any] | None] = [av.Packet(data) for data in burst.frames]
    for packet in [*packets, None]:  # None flushes the decoder
        try:
            frames = decoder.decode(packet)
        except av.error.FFmpegError:
            continue  # a damaged frame: the others may still do
        for frame in frames:
            image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
            decoded += 1
            kept.append((image, frame_sharpness(gray(image))))
            kept.sort(key=lambda pair: -pair[1])  # stable: the earlier of equals first
            del kept[count:]
    if not kept:
        raise NoFrames(f"none of the {len(burst.frames)} {burst.codec} frames decoded")
    return kept, decoded


def sharpest_frame(burst: Burst) -> tuple[Image, int, float]:
    """Decode every frame; the sharpest one, how many decoded, its sharpness."""
    frames, decoded = sharpest_frames(burst, 1)
    best, score = frames[0]
    return best, decoded, score


def best_analysis(frames: list[tuple[Image, float]], settings: IdentitySettings, *,
                  budget_s: float | None = FRAMES_BUDGET_S
                  ) -> tuple[Image, float, Analysis, int]:
    """Analyse `frames` (sharpest first) within `budget_s` (None: all of them);
    the kept frame, its sharpness, its analysis and how many frames were analysed."""
    from .analysis import analyze

    started = time.perf_counter()
    best: tuple[Image, float, Analysis] | None = None
    first: tuple[Image, float, Analysis] | None = None
    analysed = 0
    for image, score in frames:
        elapsed = time.perf_counter() - started
        if analysed and budget_s is not None and elapsed * (analysed + 1) / analysed > budget_s:
            break
        analysis = analyze(image, settings)
        analysed += 1
        if first is None:
            first = (image, score, analysis)
        if analysis.distance is not None and (
                best is None or best[2].distance is None
                or analysis.distance < best[2].distance):
            best = (image, score, analysis)
        if analysis.verdict is Verdict.MATCH:
            break
    assert first is not None
    image, score, analysis = best if best is not None else first
    return image, score, analysis, analysed


def jpeg(image: Image) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"JPEG encoding of a {image.shape} image failed")
    return bytes(data.tobytes())


def _crop(image: Image, box: Box, margin: float) -> Image:
    height, width = image.shape[:2]
    grown = box.expanded(margin, width, height)
    return image[grown.top:grown.bottom, grown.left:grown.right]


def check_image(image: Image, settings: IdentitySettings, *, frames_decoded: int = 1,
                sharpness: float | None = None, started: float | None = None,
                analysis: Analysis | None = None, frames_analysed: int = 1) -> CheckOutput:
    """Analyse one RGB frame (unless `analysis` of it is given) and encode what the
    secretary sees."""
    from .analysis import analyze

    started = time.perf_counter() if started is None else started
    if analysis is None:
        analysis = analyze(image, settings)
    images = {"frame": jpeg(image)}
    if analysis.live is not None:
        images["live"] = jpeg(_crop(image, analysis.live.box, LIVE_MARGIN))
    if analysis.document is not None:
        images["document"] = jpeg(_crop(image, analysis.document.box, DOCUMENT_MARGIN))
    height, width = image.shape[:2]
    return CheckOutput(
        analysis, width, height, frames_decoded,
        frame_sharpness(gray(image)) if sharpness is None else sharpness,
        images, time.perf_counter() - started, frames_analysed)


def run_check(burst: Burst, settings: IdentitySettings, *,
              budget_s: float | None = FRAMES_BUDGET_S) -> CheckOutput:
    """The worker's job for one check."""
    started = time.perf_counter()
    frames, decoded = sharpest_frames(burst, settings.analysed_frames)
    image, score, analysis, analysed = best_analysis(frames, settings, budget_s=budget_s)
    return check_image(image, settings, frames_decoded=decoded, sharpness=score,
                       started=started, analysis=analysis, frames_analysed=analysed)
