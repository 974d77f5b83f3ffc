"""``defense-room identity-eval``: a labeled folder in, rates and a threshold out."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from defense_room.cli import main
from defense_room.identity_eval import Pair, rates, suggest

from .identity_helpers import portraits


def write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def test_identity_eval_prints_rates_and_a_threshold(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "volunteers"
    for name, portrait in zip(("collins", "hopper"), portraits(), strict=True):
        write(folder / name / "1.jpg", portrait.image)
        write(folder / name / "2.jpg", np.ascontiguousarray(portrait.image[:, ::-1]))
    write(folder / "nobody" / "1.jpg", np.full((200, 200, 3), 128, np.uint8))
    config = tmp_path / "config.yaml"
    config.write_text("data_dir: ./state\n")
    code = main(["identity-eval", str(folder), "--workers", "1", "--size", "640x480",
                 "--config", str(config)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["pairs"] == 6 and summary["same_pairs"] == 2
    assert summary["skipped"] == 1 and summary["images"] == 4
    assert summary["fmr"] == 0.0 and summary["fnmr"] == 0.0
    assert summary["max_same"] < summary["threshold"] < summary["min_different"]
    assert any("<- suggested" in line for line in lines)


def test_the_suggestion_has_no_false_match_and_sits_in_the_middle() -> None:
    pairs = [Pair(0, 1, True, 0.40, None), Pair(0, 2, True, 0.50, None),
             Pair(1, 2, False, 0.70, None), Pair(0, 3, False, 0.90, None),
             Pair(1, 3, True, None, "glare")]
    assert rates(pairs, 0.55) == (0.0, 1 / 3)  # the retake is a false non-match
    assert rates(pairs, 0.75) == (0.5, 1 / 3)
    assert suggest(pairs) == 0.59  # the middle of 0.50 .. 0.69
    overlapping = [Pair(0, 1, True, 0.65, None), Pair(1, 2, False, 0.45, None)]
    assert rates(overlapping, suggest(overlapping))[0] < 1.0


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="nope is not a folder"):
        main(["identity-eval", str(tmp_path / "nope")])
