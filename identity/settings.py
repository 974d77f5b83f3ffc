"""The identity check's thresholds and effort: the ``identity:`` config section.

Defaults come from the measurements in issue 5 (face_recognition 1.3.0, dlib 20,
HOG detector) and the development face set; ``defense-room identity-eval`` prints
the distance threshold that suits a university's own volunteers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _range(low: float, high: float) -> dict[str, Any]:
    return {"min": low, "max": high}


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """How the server compares the live face with the document photo."""

    # Distance between the two face encodings at or below which the verdict is
    # "match" (face_recognition's customary tolerance is 0.6).
    match_distance: float = field(default=0.6, metadata=_range(0.05, 1.5))
    # A detection counts as a face only from this HOG score on (dlib also finds
    # "faces" on badges and patches, scoring them far lower).
    min_detection_score: float = field(default=0.5, metadata=_range(0.0, 5.0))
    # The first search for faces runs on the frame scaled down to this width.
    search_width: int = field(default=640, metadata=_range(160, 4096))
    # HOG upsampling of that first search (each step doubles width and height).
    upsample: int = field(default=1, metadata=_range(0, 3))
    # Narrowest document face (pixels of the full frame) that is compared.
    min_document_face_px: int = field(default=40, metadata=_range(8, 2000))
    # Variance of the Laplacian of the live face scaled to 96x96 below which the
    # picture counts as blurred.
    min_sharpness: float = field(default=60.0, metadata=_range(0.0, 1e6))
    # The same for the document face (a printed photo is softer to begin with).
    min_document_sharpness: float = field(default=8.0, metadata=_range(0.0, 1e6))
    # Share of saturated pixels (>= 250) on the document face above which it has glare.
    max_glare: float = field(default=0.04, metadata=_range(0.0, 1.0))
    # Mean brightness (0-255) of a face below which the picture is too dark.
    min_brightness: float = field(default=50.0, metadata=_range(0.0, 255.0))
    # Frames of the student's video decoded per check; the sharpest is analysed.
    burst_frames: int = field(default=12, metadata=_range(1, 300))
    # Seconds to wait for those frames (from the keyframe the check asks for).
    burst_timeout_s: float = field(default=3.0, metadata=_range(0.1, 60.0))
