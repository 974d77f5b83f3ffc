"""What runs in the analysis worker process: decode a burst, pick the sharpest
frame, analyse it, encode the frame and the two face crops as JPEG.

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
from .verdict import Analysis, Box

JPEG_QUALITY = 90
WORKER_NICENESS = 10
# Crops shown to the secretary: the face and some of what surrounds it.
LIVE_MARGIN = 0.4
DOCUMENT_MARGIN = 0.6


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


def warm_up() -> None:
    """Start of the worker process: yield the CPU to the server, load the models.

    The worker runs at a lower priority (nice +10) so that on a small machine the
    event loop forwarding everyone's media always gets a core first; a check then
    takes longer under load rather than the media stalling.
    """
    os.nice(WORKER_NICENESS)
    from . import faces  # noqa: F401


def sharpest_frame(burst: Burst) -> tuple[Image, int, float]:
    """Decode every frame; the sharpest one, how many decoded, its sharpness."""
    decoder = av.CodecContext.create(burst.codec, "r")
    assert isinstance(decoder, av.VideoCodecContext)
    best: Image | None = None
    best_score = -1.0
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
            score = frame_sharpness(gray(image))
            if score > best_score:
                best, best_score = image, score
    if best is None:
        raise NoFrames(f"none of the {len(burst.frames)} {burst.codec} frames decoded")
    return best, decoded, best_score


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
                sharpness: float | None = None, started: float | None = None) -> CheckOutput:
    """Analyse one RGB frame and encode what the secretary sees."""
    from .analysis import analyze

    started = time.perf_counter() if started is None else started
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
        images, time.perf_counter() - started)


def run_check(burst: Burst, settings: IdentitySettings) -> CheckOutput:
    """The worker's job for one check."""
    started = time.perf_counter()
    image, decoded, score = sharpest_frame(burst)
    return check_image(image, settings, frames_decoded=decoded, sharpness=score,
                       started=started)
