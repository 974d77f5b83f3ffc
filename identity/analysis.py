"""Analysis of one frame: the live face, the document photo beside it, the verdict.

Theory of operation. The first search runs on the frame scaled to
``search_width`` with ``upsample`` HOG steps; it finds the live face and anyone
else in view. The largest face is the live one, and it must look at the camera:
its yaw by the 5-point landmarks (`faces.yaw`) at most ``max_yaw`` (which of
dlib's HOG filters found it does not matter). Three or more faces: retake ("only
you"). Two faces: the smaller is the document, its box refined by a search
around it at the document's magnification. One face: the document photo is
usually too small for the first search, so the second pass searches the regions
left and right of the live face magnified so that a 40 px face becomes ~90 px
(`DOCUMENT_SEARCH_PX`). A candidate there that scores under
``min_detection_score`` is searched again around itself at a second scale and
counts when it scores enough there: HOG's score of a small printed face depends
on where the pyramid's steps fall, and a 48 px photo missed at one scale is found
at the next. Only then is "no document photo" said. The document face is the
largest found (a smaller ghost image on an ID card is ignored).

Before any comparison the pictures must be usable, checked in the order a student
can fix them: the live face bright and sharp enough; the document face wide
enough, without glare, bright and sharp enough. Only then are both faces encoded
(aligned by their landmarks, `faces.encodings`) and their distance placed in the
band: at most ``match_distance`` "match", above ``no_match_distance`` "no match",
in between "look closely".
"""

from __future__ import annotations

import dataclasses
import logging
import math

from . import faces as fr
from . import quality as q
from .quality import Image
from .settings import IdentitySettings
from .verdict import Analysis, Face, Retake, Verdict, verdict_for

logger = logging.getLogger(__name__)

#: Width (searched pixels) a `SEARCHED_FACE_PX` document face is magnified to in
#: the second pass: above HOG's 80 px window, so it is found reliably.
DOCUMENT_SEARCH_PX = 90
#: The narrowest document photo (its nominal width) the second pass is sized for;
#: it sets the pass's cost, so it does not follow ``min_document_face_px`` down.
SEARCHED_FACE_PX = 40
#: Lowest HOG score of a second-pass candidate worth searching again at another
#: scale (printed faces missed at one scale scored 0.4-0.5 in calibration).
CANDIDATE_SCORE = 0.0
#: The scales (over the candidate's refining scale) it is searched again at.
CONFIRM_STEPS = (1.15, 1.35)
#: Width (searched pixels) the document face is magnified to when its box is refined.
REFINE_PX = 110
#: Reported in place of an infinite yaw (eyes on one point).
MAX_REPORTED_YAW = 9.99


def first_scale(width: int, settings: IdentitySettings) -> float:
    return min(1.0, settings.search_width / width)


def document_magnification(settings: IdentitySettings) -> float:
    """How much the second pass magnifies the regions beside the live face."""
    return max(1.0, DOCUMENT_SEARCH_PX / max(SEARCHED_FACE_PX, settings.min_document_face_px))


def analyze(image: Image, settings: IdentitySettings) -> Analysis:
    """The verdict on one RGB frame (height x width x 3, uint8)."""
    luma = q.gray(image)
    scale = first_scale(image.shape[1], settings)
    band = settings.band
    found = fr.detect(image, scale=scale, upsample=settings.upsample,
                      min_score=settings.min_detection_score)
    measures: dict[str, float] = {}
    if not found:
        measures["frame_brightness"] = q.brightness(luma)
        if measures["frame_brightness"] < settings.min_brightness:
            return _retake(Retake.TOO_DARK, measures, band, faces=0)
        return _retake(Retake.NO_FACE, measures, band, faces=0)
    largest = max(found, key=lambda f: f.box.area)
    live = _with_pose(image, largest, settings)
    measures["live_yaw"] = abs(live.yaw or 0.0)
    if not live.frontal:  # turned away: the encoding would not be comparable
        return _retake(Retake.NO_FACE, measures, band, faces=len(found), live=live)
    if len(found) > 2:
        return _retake(Retake.TOO_MANY_FACES, measures, band, faces=len(found), live=live)
    live_luma = q.crop(luma, live.box)
    measures["live_brightness"] = q.brightness(live_luma)
    measures["live_sharpness"] = q.sharpness(live_luma)
    if measures["live_brightness"] < settings.min_brightness:
        return _retake(Retake.TOO_DARK, measures, band, faces=len(found), live=live)
    if measures["live_sharpness"] < settings.min_sharpness:
        return _retake(Retake.TOO_BLURRED, measures, band, faces=len(found), live=live)
    magnification = document_magnification(settings)
    others = [f for f in found if f is not largest]
    looked_again = not others
    if others:
        document = max(others, key=lambda f: f.box.area)
    else:
        beside = _document_candidates(image, live, magnification, settings)
        if not beside:
            return _retake(Retake.NO_DOCUMENT, measures, band, faces=1, live=live,
                           looked_again=True)
        document = max(beside, key=lambda f: f.box.area)
    # HOG's boxes come in steps of its pyramid: found again around it, magnified
    # to REFINE_PX, the box is the face's own width (a 48 px face no longer reads 40).
    document = fr.refine(image, document,
                         magnification=max(magnification, REFINE_PX / document.box.width),
                         min_score=settings.min_detection_score)
    faces = 2
    done = _check_document(luma, document, settings, measures)
    if done is not None:
        return _retake(done, measures, band, faces=faces, live=live, document=document,
                       looked_again=looked_again)
    live_code, document_code = fr.encodings(image, [live.box, document.box])
    distance = fr.distance(live_code, document_code)
    return Analysis(verdict_for(distance, band), None, distance, live, document, faces,
                    looked_again, measures, band)


def _document_candidates(image: Image, live: Face, magnification: float,
                         settings: IdentitySettings) -> list[Face]:
    """Faces beside the live one: those scoring ``min_detection_score`` at the
    second pass's scale, or a weaker one confirmed at its own refining scale."""
    found = [f for f in fr.detect_beside(image, live.box, magnification=magnification,
                                         min_score=min(CANDIDATE_SCORE,
                                                       settings.min_detection_score))
             if f.box.area < live.box.area]
    sure = [f for f in found if f.score >= settings.min_detection_score]
    if sure:
        return sure
    confirmed = []
    for candidate in sorted(found, key=lambda f: f.score, reverse=True)[:2]:
        for step in CONFIRM_STEPS:
            again = fr.refine(image, candidate,
                              magnification=max(magnification, REFINE_PX / candidate.box.width)
                              * step, min_score=settings.min_detection_score)
            if again is not candidate:  # found again, at the score a face needs
                confirmed.append(again)
                break
    return confirmed


def _with_pose(image: Image, face: Face, settings: IdentitySettings) -> Face:
    """`face` with its yaw and whether it is frontal, from its 5 landmarks."""
    yaw = fr.yaw(fr.landmarks(image, face.box))
    if not math.isfinite(yaw):
        yaw = MAX_REPORTED_YAW
    return dataclasses.replace(face, yaw=yaw, frontal=abs(yaw) <= settings.max_yaw)


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


def _retake(reason: Retake, measures: dict[str, float], band: tuple[float, float], *,
            faces: int, live: Face | None = None, document: Face | None = None,
            looked_again: bool = False) -> Analysis:
    return Analysis(Verdict.RETAKE, reason, None, live, document, faces, looked_again,
                    measures, band)
