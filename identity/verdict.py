"""What a check finds: the verdict, the reason for a retake, the faces.

The verdict only advises the secretary (clause 7.5: the secretary establishes
that the person matches the document). Face encodings never leave the worker:
nothing here holds one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class Verdict(enum.StrEnum):
    """match: distance <= match_distance; no_match: distance > no_match_distance;
    look_closely: in between, where the model is known to confuse people (the
    secretary compares both crops and decides); retake: nothing comparable."""

    MATCH = "match"
    LOOK_CLOSELY = "look_closely"
    NO_MATCH = "no_match"
    RETAKE = "retake"


def verdict_for(distance: float, band: tuple[float, float]) -> Verdict:
    """The verdict on a distance with the band (match_distance, no_match_distance)."""
    match_distance, no_match_distance = band
    if distance <= match_distance:
        return Verdict.MATCH
    if distance > no_match_distance:
        return Verdict.NO_MATCH
    return Verdict.LOOK_CLOSELY


class Retake(enum.StrEnum):
    """Why the picture cannot be compared; each has an instruction for the student."""

    NO_FACE = "no_face"
    NO_DOCUMENT = "no_document"
    TOO_MANY_FACES = "too_many_faces"
    TOO_BLURRED = "too_blurred"
    DOCUMENT_TOO_SMALL = "document_too_small"
    GLARE = "glare"
    TOO_DARK = "too_dark"


#: What the student is told to do, in English and Russian.
INSTRUCTIONS: dict[Retake, tuple[str, str]] = {
    Retake.NO_FACE: (
        "Look straight into the camera so that your whole face is in view.",
        "Смотрите прямо в камеру, чтобы лицо было видно целиком."),
    Retake.NO_DOCUMENT: (
        "Hold the passport open at the photo page beside your face.",
        "Держите паспорт раскрытым на странице с фотографией рядом с лицом."),
    Retake.TOO_MANY_FACES: (
        "Only you should be in view: nobody else in the picture.",
        "В кадре должны быть только вы."),
    Retake.TOO_BLURRED: (
        "Hold still and keep the passport steady; the picture is blurred.",
        "Не двигайтесь и держите паспорт неподвижно: изображение размыто."),
    Retake.DOCUMENT_TOO_SMALL: (
        "Bring the passport closer to the camera, still beside your face.",
        "Поднесите паспорт ближе к камере, по-прежнему рядом с лицом."),
    Retake.GLARE: (
        "Tilt the passport a little: light reflects off the photo.",
        "Слегка наклоните паспорт: на фотографии блик."),
    Retake.TOO_DARK: (
        "Turn towards a light or switch one on; the picture is too dark.",
        "Повернитесь к свету или включите освещение: слишком темно."),
}

#: What the student is told while the secretary looks at a comparable picture.
WAIT_INSTRUCTION = (
    "Keep the passport open beside your face; the secretary is checking it.",
    "Держите паспорт раскрытым рядом с лицом: секретарь проверяет документ.",
)


def instruction_for(reason: Retake | None) -> tuple[str, str]:
    """The next step for the student; never says how the comparison came out."""
    return WAIT_INSTRUCTION if reason is None else INSTRUCTIONS[reason]


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in frame pixels, face_recognition's (top, right, bottom, left)."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return self.width * self.height

    def expanded(self, share: float, width: int, height: int) -> Box:
        """Grown by `share` of its size on every side, clipped to the frame."""
        dx, dy = int(self.width * share), int(self.height * share)
        return Box(max(0, self.top - dy), min(width, self.right + dx),
                   min(height, self.bottom + dy), max(0, self.left - dx))

    def as_json(self) -> dict[str, int]:
        return {"top": self.top, "right": self.right, "bottom": self.bottom, "left": self.left}


@dataclass(frozen=True, slots=True)
class Face:
    """One detection that scored high enough to count."""

    box: Box
    score: float
    #: Whether it looks at the camera: |yaw| <= max_yaw by the 5-point landmarks
    #: (`faces.yaw`); None where the landmarks were not looked at.
    frontal: bool | None = None
    #: The nose's offset from the eyes' midpoint over the eye distance (`faces.yaw`).
    yaw: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"box": self.box.as_json(), "score": round(self.score, 3),
                "frontal": self.frontal,
                "yaw": None if self.yaw is None else round(self.yaw, 3)}


@dataclass(frozen=True, slots=True)
class Analysis:
    """The outcome of analysing one frame."""

    verdict: Verdict
    reason: Retake | None
    distance: float | None
    live: Face | None
    document: Face | None
    #: Faces counted (after the look again beside the live face, if it ran).
    faces: int
    #: Whether the document was searched for again beside the live face, magnified.
    looked_again: bool
    #: Brightness, sharpness and glare measured on the crops (names say which).
    measures: dict[str, float]
    #: The thresholds the verdict was made with: (match_distance, no_match_distance).
    band: tuple[float, float] = (0.5, 0.6)

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason.value if self.reason is not None else None,
            "distance": None if self.distance is None else round(self.distance, 4),
            "live": self.live.as_json() if self.live else None,
            "document": self.document.as_json() if self.document else None,
            "faces": self.faces,
            "looked_again": self.looked_again,
            "measures": {k: round(v, 4) for k, v in self.measures.items()},
            "band": list(self.band),
        }
