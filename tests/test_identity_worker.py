"""The worker's side (decode a burst, pick the sharpest frame, answer the verdict
and the pictures) and the stored checks, on real PyAV encoders and real files."""

from __future__ import annotations

import functools
import json
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from identity.compose import encode_burst, passport_frame
from identity.errors import CheckNotFound, NoFrames
from identity.quality import frame_sharpness, gray
from identity.settings import IdentitySettings
from identity.store import CheckStore
from identity.verdict import Verdict
from identity.verdict import Retake
from identity.worker import Burst, run_check, sharpest_frame, sharpest_frames
from recordings.plan import day_folder

from .identity_helpers import portraits


def blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.uint8)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_the_sharpest_frame_of_a_burst_is_analysed(codec: str) -> None:
    collins, _ = portraits()
    sharp = passport_frame(collins, collins, size=(640, 480))
    images = [blurred(sharp, 3), blurred(sharp, 2), sharp, sharp, blurred(sharp, 3)]
    burst = Burst(codec, tuple(encode_burst(images, codec=codec)))
    image, decoded, score = sharpest_frame(burst)
    assert decoded == len(images)
    assert score == pytest.approx(frame_sharpness(gray(image)))
    assert score > 2 * frame_sharpness(gray(blurred(sharp, 2)))

    output = run_check(burst, IdentitySettings())
    assert output.analysis.verdict is Verdict.MATCH, output.analysis
    assert (output.width, output.height, output.frames_decoded) == (640, 480, 5)
    assert sorted(output.images) == ["document", "frame", "live"]
    for data in output.images.values():
        assert data[:2] == b"\xff\xd8"  # JPEG
    live = cv2.imdecode(np.frombuffer(output.images["live"], np.uint8), cv2.IMREAD_COLOR)
    document = cv2.imdecode(np.frombuffer(output.images["document"], np.uint8),
                            cv2.IMREAD_COLOR)
    assert live is not None and document is not None
    # The live face is the larger crop (the document's box, refined by a search
    # magnified twice, is ~75 px for its 64 px face: dlib's box at that scale).
    assert live.shape[1] > 1.5 * document.shape[1]


def test_the_best_comparable_pair_of_the_sharpest_frames_is_kept() -> None:
    collins, _ = portraits()
    with_document = passport_frame(collins, collins, size=(640, 480))
    without = passport_frame(collins, None, size=(640, 480))
    # The two frames without the passport are the sharpest: a single-frame check
    # would ask for a retake; the third sharpest frame shows the passport.
    softer = blurred(with_document, 1.0)
    images = [softer, without, blurred(without, 4), without, blurred(without, 5)]
    burst = Burst("vp8", tuple(encode_burst(images)))
    frames, decoded = sharpest_frames(burst, 3)
    assert decoded == 5 and len(frames) == 3
    assert [score for _, score in frames] == sorted((s for _, s in frames), reverse=True)

    output = run_check(burst, IdentitySettings(), budget_s=None)
    assert output.analysis.verdict is Verdict.MATCH, output.analysis
    assert output.frames_analysed == 3
    assert output.frame_sharpness == pytest.approx(frames[2][1])
    assert sorted(output.images) == ["document", "frame", "live"]

    # Only the sharpest frame analysed: the retake it gives is the answer.
    single = run_check(burst, IdentitySettings(analysed_frames=1), budget_s=None)
    assert single.analysis.reason is Retake.NO_DOCUMENT and single.frames_analysed == 1
    # No frame comparable: the sharpest frame's retake.
    none = run_check(Burst("vp8", tuple(encode_burst([without, blurred(without, 2)]))),
                     IdentitySettings(), budget_s=None)
    assert none.analysis.reason is Retake.NO_DOCUMENT and none.frames_analysed == 2


def test_a_match_ends_the_search_through_the_burst() -> None:
    collins, _ = portraits()
    sharp = passport_frame(collins, collins, size=(640, 480))
    burst = Burst("vp8", tuple(encode_burst([sharp, blurred(sharp, 1.0), sharp])))
    output = run_check(burst, IdentitySettings(), budget_s=None)
    assert output.analysis.verdict is Verdict.MATCH and output.frames_analysed == 1


def test_a_retake_has_no_crop_of_what_was_not_found() -> None:
    collins, _ = portraits()
    burst = Burst("vp8", tuple(encode_burst([passport_frame(collins, None, size=(640, 480))])))
    output = run_check(burst, IdentitySettings())
    assert output.analysis.verdict is Verdict.RETAKE
    assert sorted(output.images) == ["frame", "live"]


def test_undecodable_frames_are_refused() -> None:
    with pytest.raises(NoFrames, match="none of the 2 vp8 frames"):
        sharpest_frame(Burst("vp8", (b"\x00" * 40, b"garbage")))


def test_checks_are_stored_with_the_days_recordings(tmp_path: Path) -> None:
    store = CheckStore(functools.partial(day_folder, tmp_path / "recordings"))
    record = {"id": "20261123T101500Z-0123abcd", "student": "7", "verdict": "match"}
    folder = store.save(3, record, {"frame": b"\xff\xd8frame", "live": b"\xff\xd8live"})
    assert folder == tmp_path / "recordings" / "day-3" / "identity" / record["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["check.json", "frame.jpg", "live.jpg"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert not list(folder.parent.glob(".*"))  # no .part folder left
    assert store.load(3, record["id"]) == record
    assert json.loads((folder / "check.json").read_text()) == record
    assert store.image(3, record["id"], "live") == b"\xff\xd8live"
    store.save(3, {**record, "id": "20261123T101600Z-89abcdef", "student": "8"}, {})
    assert [r["student"] for r in store.checks(3)] == ["7", "8"]
    assert [r["student"] for r in store.checks(3, "8")] == ["8"]
    assert store.checks(4) == []
    with pytest.raises(CheckNotFound):
        store.image(3, record["id"], "document")
    with pytest.raises(CheckNotFound):
        store.image(4, record["id"], "live")  # another day's folder
    with pytest.raises(CheckNotFound):
        store.load(3, "../../day-4/identity/x")
    with pytest.raises(ValueError, match="malformed check id"):
        store.save(3, {**record, "id": "../escape"}, {})
