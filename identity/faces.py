"""Face detection (dlib's HOG detector, via face_recognition) and encodings.

Imported only where the analysis runs (the worker process, the calibration
command, tests): loading face_recognition reads its models (~100 MB).

dlib's frontal detector is five HOG filters (0 straight ahead, 1 and 2 turned
somewhat, 3 and 4 rotated); which one fired says little about where the person
looks: faces looking into the camera are often found by 1 or 2. Whether a face
is frontal is judged from its 5-point landmarks instead (`yaw`: the nose's
offset from the eyes' midpoint). Every detection carries a score; only those at
or above ``min_detection_score`` count (dlib scores the astronaut's mission patch
0.12 against 1.16 for her face).

The document's face is searched for a second time in its own region beside the
live face (`detect_beside`), magnified so that a 40-100 px printed photo becomes a
face of ~90 px or more, the size HOG finds reliably (its window is 80 px).

Alignment: `encodings` computes the 5-point landmarks (eye corners, nose) of each
box and hands them to dlib's descriptor, which cuts a 150x150 chip rotated and
scaled so that the landmarks fall on fixed places before it encodes; the box
only needs to be near the face, not exact.
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

# The narrowest strip beside the live face worth searching again (frame pixels).
MIN_STRIP_PX = 32
# The document is searched for within this many live-face widths left and right
# of the live face, from this many face heights above its top to below its bottom.
BESIDE_WIDTHS = 2.0
ABOVE_HEIGHTS = 0.5
BELOW_HEIGHTS = 1.25

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
    rects, scores, _filters = _detector.run(searched, upsample, 0.0)
    faces = []
    for rect, score in zip(rects, scores, strict=True):
        if score < min_score:
            continue
        box = Box(
            top=max(0, math.floor(rect.top() / scale)),
            right=min(width, math.ceil(rect.right() / scale)) + offset_x,
            bottom=min(height, math.ceil(rect.bottom() / scale)),
            left=max(0, math.floor(rect.left() / scale)) + offset_x,
        )
        if box.width > 0 and box.height > 0:
            faces.append(Face(box, float(score)))
    return faces


def detect_magnified(image: Image, region: Box, *, magnification: float,
                     min_score: float) -> list[Face]:
    """Faces in `region` of `image` searched with the region resized by
    `magnification` (cubic), in frame coordinates."""
    cut = image[region.top:region.bottom, region.left:region.right]
    if cut.shape[0] < 8 or cut.shape[1] < 8:
        return []
    size = (max(1, round(cut.shape[1] * magnification)),
            max(1, round(cut.shape[0] * magnification)))
    interpolation = cv2.INTER_CUBIC if magnification > 1 else cv2.INTER_AREA
    searched = np.ascontiguousarray(cv2.resize(cut, size, interpolation=interpolation))
    rects, scores, _filters = _detector.run(searched, 0, 0.0)
    faces = []
    for rect, score in zip(rects, scores, strict=True):
        if score < min_score:
            continue
        box = Box(
            top=region.top + max(0, math.floor(rect.top() / magnification)),
            right=region.left + min(cut.shape[1], math.ceil(rect.right() / magnification)),
            bottom=region.top + min(cut.shape[0], math.ceil(rect.bottom() / magnification)),
            left=region.left + max(0, math.floor(rect.left() / magnification)),
        )
        if box.width > 0 and box.height > 0:
            faces.append(Face(box, float(score)))
    return faces


def beside_regions(live: Box, width: int, height: int) -> list[Box]:
    """Where a document held beside the live face can be: left and right of it."""
    margin = live.width // 4
    reach = round(live.width * BESIDE_WIDTHS)
    top = max(0, live.top - round(live.height * ABOVE_HEIGHTS))
    bottom = min(height, live.bottom + round(live.height * BELOW_HEIGHTS))
    regions = []
    for x0, x1 in ((live.left - margin - reach, live.left - margin),
                   (live.right + margin, live.right + margin + reach)):
        x0, x1 = max(0, x0), min(width, x1)
        if x1 - x0 >= MIN_STRIP_PX and bottom - top >= MIN_STRIP_PX:
            regions.append(Box(top, x1, bottom, x0))
    return regions


def detect_beside(image: Image, live: Box, *, magnification: float,
                  min_score: float) -> list[Face]:
    """The second pass: look for the document left and right of the live face,
    magnified `magnification` times."""
    height, width = image.shape[:2]
    found: list[Face] = []
    for region in beside_regions(live, width, height):
        found.extend(detect_magnified(image, region, magnification=magnification,
                                      min_score=min_score))
    return found


def refine(image: Image, face: Face, *, magnification: float, min_score: float) -> Face:
    """The same face searched again around its box at `magnification`: a box found
    at a coarse scale becomes a precise one (the face itself if none is found)."""
    height, width = image.shape[:2]
    region = face.box.expanded(0.5, width, height)
    found = [f for f in detect_magnified(image, region, magnification=magnification,
                                         min_score=min_score) if _overlap(f.box, face.box) > 0.3]
    return max(found, key=lambda f: f.score) if found else face


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union."""
    w = min(a.right, b.right) - max(a.left, b.left)
    h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (a.area + b.area - inter)


def landmarks(image: Image, box: Box) -> npt.NDArray[np.float64]:
    """dlib's 5 points (x, y) of the face in `box`: two corners of each eye, then
    the base of the nose."""
    shape = _pose_5(np.ascontiguousarray(image),
                    dlib.rectangle(box.left, box.top, box.right, box.bottom))
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)


def yaw(points: npt.NDArray[np.float64]) -> float:
    """How far the head is turned, from 5 landmarks: the nose's offset from the
    eyes' midpoint along the line between the eyes, over the eye distance (0
    looking straight ahead; about 0.43 * tan(angle) for a real head, so ~0.25 at
    30 degrees). Independent of roll and of the face's size."""
    eye_a, eye_b = points[0:2].mean(axis=0), points[2:4].mean(axis=0)
    axis = eye_b - eye_a
    length2 = float(np.dot(axis, axis))
    if length2 < 1.0:
        return math.inf  # eyes on one point: nothing frontal about it
    return float(np.dot(points[4] - (eye_a + eye_b) / 2, axis) / length2)


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
