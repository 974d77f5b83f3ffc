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
    # "match".
    match_distance: float = field(default=0.58, metadata=_range(0.05, 1.5))
    # Above this distance the verdict is "no match"; between the two it is "look
    # closely" (the band where the model is known to confuse people: the
    # secretary compares the two crops and decides).
    no_match_distance: float = field(default=0.72, metadata=_range(0.05, 1.5))
    # Largest yaw (the nose's offset from the eyes' midpoint along the eye line,
    # as a share of the eye distance; 0 looks straight ahead, ~0.25 is a head
    # turned ~30 degrees) of a live face that counts as frontal.
    max_yaw: float = field(default=0.25, metadata=_range(0.0, 2.0))
    # A detection counts as a face only from this HOG score on (dlib also finds
    # "faces" on badges and patches, scoring them far lower).
    min_detection_score: float = field(default=0.5, metadata=_range(0.0, 5.0))
    # The first search for faces runs on the frame scaled down to this width.
    search_width: int = field(default=640, metadata=_range(160, 4096))
    # HOG upsampling of that first search (each step doubles width and height).
    upsample: int = field(default=1, metadata=_range(0, 3))
    # Narrowest document face (dlib's box, pixels of the full frame) that is
    # compared. dlib boxes a 48 px printed photo at 37-56 px.
    min_document_face_px: int = field(default=34, metadata=_range(8, 2000))
    # Variance of the Laplacian of the live face scaled to 96x96 below which the
    # picture counts as blurred.
    min_sharpness: float = field(default=60.0, metadata=_range(0.0, 1e6))
    # The same for the document face (a printed photo is softer to begin with).
    min_document_sharpness: float = field(default=8.0, metadata=_range(0.0, 1e6))
    # Share of saturated pixels (>= 250) on the document face above which it has glare.
    max_glare: float = field(default=0.04, metadata=_range(0.0, 1.0))
    # Mean brightness (0-255) of a face below which the picture is too dark.
    min_brightness: float = field(default=50.0, metadata=_range(0.0, 255.0))
    # Frames of the student's video decoded per check.
    burst_frames: int = field(default=12, metadata=_range(1, 300))
    # The sharpest this many of them are analysed; the best comparable pair is kept.
    analysed_frames: int = field(default=3, metadata=_range(1, 30))
    # Seconds to wait for those frames (from the keyframe the check asks for).
    burst_timeout_s: float = field(default=3.0, metadata=_range(0.1, 60.0))

    def _problem(self) -> tuple[str, str] | None:
        """Rules across keys (`server.config_loader` calls it)."""
        if self.match_distance > self.no_match_distance:
            return "no_match_distance", (
                f"({self.no_match_distance}) must not be below match_distance "
                f"({self.match_distance})")
        return None

    @property
    def band(self) -> tuple[float, float]:
        """(match_distance, no_match_distance): the "look closely" band."""
        return self.match_distance, self.no_match_distance
