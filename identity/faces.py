"""Face detection (dlib's HOG detector, via face_recognition) and encodings.

Imported only where the analysis runs (the worker process, the calibration
command, tests): loading face_recognition reads its models (~100 MB).

dlib's frontal detector is five HOG filters: 0 looks straight ahead, 1 and 2
are profiles, 3 and 4 frontal but rotated; a face from 0, 3 or 4 counts as
frontal. Every detection carries a score; only those at or above
``min_detection_score`` count (dlib scores the astronaut's mission patch 0.12
against 1.16 for her face).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import dlib
import face_recognition
import numpy as np
import numpy.typing as npt

from .quality import Image
from .verdict import Box, Face

FRONTAL_FILTERS = frozenset({0, 3, 4})
# The narrowest strip beside the live face worth searching again (frame pixels).
MIN_STRIP_PX = 32

_detector = face_recognition.api.face_detector
_pose_5 = face_recognition.api.pose_predictor_5_point
_encoder = face_recognition.api.face_encoder


def detect(image: Image, *, scale: float, upsample: int, min_score: float,
           offset_x: int = 0) -> list[Face]:
    """Faces in `image` searched at `scale` (<= 1) with `upsample` steps, in the
    coordinates of the frame `image` was cut from at `offset_x`."""
    height, width = image.shape[:2]
    searched = image
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        searched = np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    else:
        scale = 1.0
        searched = np.ascontiguousarray(image)
    rects, scores, filters = _detector.run(searched, upsample, 0.0)
    faces = []
    for rect, score, which in zip(rects, scores, filters, strict=True):
        if score < min_score:
            continue
        box = Box(
            top=max(0, math.floor(rect.top() / scale)),
            right=min(width, math.ceil(rect.right() / scale)) + offset_x,
            bottom=min(height, math.ceil(rect.bottom() / scale)),
            left=max(0, math.floor(rect.left() / scale)) + offset_x,
        )
        if box.width > 0 and box.height > 0:
            faces.append(Face(box, float(score), int(which) in FRONTAL_FILTERS))
    return faces


def retry_magnification(magnification: float) -> tuple[float, int]:
    """Scale (<= 1) and upsampling that look at twice `magnification`."""
    target = 2.0 * magnification
    scale = min(1.0, target)
    upsample = max(0, math.ceil(math.log2(target / scale) - 1e-9))
    return scale, upsample


def detect_beside(image: Image, live: Box, *, magnification: float,
                  min_score: float) -> list[Face]:
    """Look again, at twice `magnification`, left and right of the live face."""
    width = image.shape[1]
    margin = live.width // 4
    scale, upsample = retry_magnification(magnification)
    found: list[Face] = []
    for x0, x1 in ((0, live.left - margin), (live.right + margin, width)):
        x0, x1 = max(0, x0), min(width, x1)
        if x1 - x0 < MIN_STRIP_PX:
            continue
        found.extend(detect(image[:, x0:x1], scale=scale, upsample=upsample,
                            min_score=min_score, offset_x=x0))
    return found


def encodings(image: Image, boxes: Sequence[Box]) -> list[npt.NDArray[np.float64]]:
    """One 128-number encoding per box (5-point landmarks, no jitter). The caller
    keeps them to itself: they are never logged nor stored."""
    contiguous = np.ascontiguousarray(image)
    result = []
    for box in boxes:
        rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
        shape = _pose_5(contiguous, rect)
        result.append(np.asarray(_encoder.compute_face_descriptor(contiguous, shape, 1),
                                 dtype=np.float64))
    return result


def distance(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.linalg.norm(a - b))
