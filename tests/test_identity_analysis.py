"""The analysis of built frames: public-domain faces shipped by installed packages
(scikit-image's astronaut, Eileen Collins; matplotlib's Grace Hopper). The face
model is real; nothing is faked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import skimage.data

from identity.analysis import analyze
from identity.compose import passport_frame
from identity.faces import detect, retry_magnification
from identity.settings import IdentitySettings
from identity.verdict import INSTRUCTIONS, Analysis, Retake, Verdict, instruction_for

from .identity_helpers import portraits

SETTINGS = IdentitySettings()


def check(**frame: Any) -> Analysis:
    collins, hopper = portraits()
    who = {"collins": collins, "hopper": hopper, None: None}
    live = who[frame.pop("live", "collins")]
    document = who[frame.pop("document", "collins")]
    third = who[frame.pop("third", None)]
    assert live is not None
    return analyze(passport_frame(live, document, third=third, **frame), SETTINGS)


@pytest.mark.parametrize("size", [(1280, 720), (640, 480)])
@pytest.mark.parametrize("person", ["collins", "hopper"])
def test_the_same_person_on_the_document_matches(person: str, size: tuple[int, int]) -> None:
    result = check(live=person, document=person, size=size)
    assert result.verdict is Verdict.MATCH, result
    assert result.distance is not None and result.distance < 0.45
    assert result.reason is None and result.faces == 2
    assert result.live is not None and result.document is not None
    assert result.document.box.area < result.live.box.area
    assert result.document.box.left > result.live.box.right  # beside the face


@pytest.mark.parametrize("live,document", [("collins", "hopper"), ("hopper", "collins")])
def test_another_persons_photo_does_not_match(live: str, document: str) -> None:
    result = check(live=live, document=document)
    assert result.verdict is Verdict.NO_MATCH, result
    assert result.distance is not None and result.distance > SETTINGS.match_distance


def test_a_small_document_is_found_by_looking_again_beside_the_face() -> None:
    result = check(live="hopper", document="hopper", document_face_px=44)
    assert result.looked_again and result.verdict is Verdict.MATCH, result


def test_no_document_asks_for_the_passport_beside_the_face() -> None:
    result = check(document=None)
    assert result.verdict is Verdict.RETAKE and result.reason is Retake.NO_DOCUMENT, result
    assert result.looked_again and result.distance is None
    assert "passport" in instruction_for(result.reason)[0]


def test_the_astronauts_mission_patch_is_not_a_document_photo() -> None:
    # dlib finds a "face" on the patch, scoring far below a real one.
    image = np.ascontiguousarray(skimage.data.astronaut())  # type: ignore[no-untyped-call]
    everything = detect(image, scale=1.0, upsample=1, min_score=-1.0)
    assert len(everything) == 2 and min(f.score for f in everything) < 0.3
    assert len(detect(image, scale=1.0, upsample=1, min_score=SETTINGS.min_detection_score)) == 1
    result = analyze(image, SETTINGS)
    assert result.reason is Retake.NO_DOCUMENT and result.faces == 1, result


def test_a_blurred_picture_is_retaken() -> None:
    result = check(frame_blur=4.0)
    assert result.reason is Retake.TOO_BLURRED, result
    assert result.measures["live_sharpness"] < SETTINGS.min_sharpness


def test_a_tiny_document_photo_asks_to_bring_it_closer() -> None:
    result = check(live="hopper", document="hopper", document_face_px=30, document_blur=0.5)
    assert result.reason is Retake.DOCUMENT_TOO_SMALL, result
    assert result.document is not None
    assert result.document.box.width < SETTINGS.min_document_face_px


def test_glare_on_the_document_is_retaken() -> None:
    result = check(glare=True, document_face_px=64)
    assert result.reason is Retake.GLARE, result
    assert result.measures["document_glare"] > SETTINGS.max_glare
    clean = check(document_face_px=64)
    assert clean.measures["document_glare"] < 0.01


def test_a_third_face_is_retaken() -> None:
    result = check(third="hopper")
    assert result.reason is Retake.TOO_MANY_FACES and result.faces == 3, result
    assert "only you" in instruction_for(result.reason)[0].lower()


def test_a_dark_picture_is_retaken() -> None:
    assert check(light=0.2).reason is Retake.TOO_DARK
    black = np.zeros((480, 640, 3), dtype=np.uint8)
    assert analyze(black, SETTINGS).reason is Retake.TOO_DARK


def test_an_empty_room_has_no_face() -> None:
    wall = np.full((480, 640, 3), 150, dtype=np.uint8)
    result = analyze(wall, SETTINGS)
    assert result.verdict is Verdict.RETAKE and result.reason is Retake.NO_FACE
    assert result.faces == 0 and result.live is None


def test_the_threshold_in_force_decides() -> None:
    collins, _ = portraits()
    frame = passport_frame(collins, collins)
    strict = analyze(frame, IdentitySettings(match_distance=0.1))
    assert strict.verdict is Verdict.NO_MATCH and strict.distance is not None
    assert strict.distance > 0.1


def test_looking_again_doubles_the_magnification() -> None:
    assert retry_magnification(1.0) == (1.0, 1)  # 1280 wide scaled to 640, upsample 1
    assert retry_magnification(2.0) == (1.0, 2)  # 640 wide, upsample 1
    assert retry_magnification(0.25) == (0.5, 0)


def test_every_retake_has_an_instruction_without_numbers() -> None:
    assert set(INSTRUCTIONS) == set(Retake)
    for english, russian in [*INSTRUCTIONS.values(), instruction_for(None)]:
        assert english and russian
        assert not any(ch.isdigit() for ch in english + russian)


def test_the_analysis_never_returns_an_encoding() -> None:
    result = check()
    assert "encoding" not in repr(result)
    assert all(isinstance(v, float) for v in result.measures.values())
    assert len(result.as_json()["measures"]) == len(result.measures)
