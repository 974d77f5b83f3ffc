"""Analysis of one frame: the live face, the document photo beside it, the verdict.

Theory of operation. The first search runs on the frame scaled to
``search_width`` with ``upsample`` HOG steps; it finds the live face and anyone
else in view. The largest face is the live one, and it must be frontal. Three or more faces:
retake ("only you"). One face: the document photo is usually too small for the
first search, so the strips left and right of the live face are searched again at
twice the magnification before "no document photo" is said. The document face is
then the largest found there (a smaller ghost image on an ID card is ignored).

Before any comparison the pictures must be usable, checked in the order a student
can fix them: the live face bright and sharp enough; the document face wide
enough, without glare, bright and sharp enough. Only then are both faces encoded
and their distance compared with ``match_distance``.
"""

from __future__ import annotations

import logging

from . import faces as fr
from . import quality as q
from .quality import Image
from .settings import IdentitySettings
from .verdict import Analysis, Face, Retake, Verdict

logger = logging.getLogger(__name__)


def first_scale(width: int, settings: IdentitySettings) -> float:
    return min(1.0, settings.search_width / width)


def analyze(image: Image, settings: IdentitySettings) -> Analysis:
    """The verdict on one RGB frame (height x width x 3, uint8)."""
    height, width = image.shape[:2]
    luma = q.gray(image)
    scale = first_scale(width, settings)
    found = fr.detect(image, scale=scale, upsample=settings.upsample,
                      min_score=settings.min_detection_score)
    measures: dict[str, float] = {}
    if not found:
        measures["frame_brightness"] = q.brightness(luma)
        if measures["frame_brightness"] < settings.min_brightness:
            return _retake(Retake.TOO_DARK, measures, faces=0)
        return _retake(Retake.NO_FACE, measures, faces=0)
    live = max(found, key=lambda f: f.box.area)
    if not live.frontal:  # turned away: the encoding would not be comparable
        return _retake(Retake.NO_FACE, measures, faces=len(found), live=live)
    if len(found) > 2:
        return _retake(Retake.TOO_MANY_FACES, measures, faces=len(found), live=live)
    live_luma = q.crop(luma, live.box)
    measures["live_brightness"] = q.brightness(live_luma)
    measures["live_sharpness"] = q.sharpness(live_luma)
    if measures["live_brightness"] < settings.min_brightness:
        return _retake(Retake.TOO_DARK, measures, faces=len(found), live=live)
    if measures["live_sharpness"] < settings.min_sharpness:
        return _retake(Retake.TOO_BLURRED, measures, faces=len(found), live=live)
    others = [f for f in found if f is not live]
    looked_again = False
    if not others:
        looked_again = True
        others = [f for f in fr.detect_beside(
            image, live.box, magnification=scale * 2 ** settings.upsample,
            min_score=settings.min_detection_score) if f.box.area < live.box.area]
        if not others:
            return _retake(Retake.NO_DOCUMENT, measures, faces=1, live=live, looked_again=True)
    document = max(others, key=lambda f: f.box.area)
    faces = 2
    done = _check_document(luma, document, settings, measures)
    if done is not None:
        return _retake(done, measures, faces=faces, live=live, document=document,
                       looked_again=looked_again)
    live_code, document_code = fr.encodings(image, [live.box, document.box])
    distance = fr.distance(live_code, document_code)
    verdict = Verdict.MATCH if distance <= settings.match_distance else Verdict.NO_MATCH
    return Analysis(verdict, None, distance, live, document, faces, looked_again, measures)


def _check_document(luma: Image, document: Face, settings: IdentitySettings,
                    measures: dict[str, float]) -> Retake | None:
    height, width = luma.shape[:2]
    measures["document_width_px"] = float(document.box.width)
    if document.box.width < settings.min_document_face_px:
        return Retake.DOCUMENT_TOO_SMALL
    face = q.crop(luma, document.box)
    measures["document_glare"] = q.glare(face)
    measures["document_brightness"] = q.brightness(face)
    measures["document_sharpness"] = q.sharpness(face)
    if measures["document_glare"] > settings.max_glare:
        return Retake.GLARE
    if measures["document_brightness"] < settings.min_brightness:
        return Retake.TOO_DARK
    if measures["document_sharpness"] < settings.min_document_sharpness:
        return Retake.TOO_BLURRED
    return None


def _retake(reason: Retake, measures: dict[str, float], *, faces: int,
            live: Face | None = None, document: Face | None = None,
            looked_again: bool = False) -> Analysis:
    return Analysis(Verdict.RETAKE, reason, None, live, document, faces, looked_again, measures)
