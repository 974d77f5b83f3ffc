"""``defense-room identity-eval``: a labeled folder in, verdict shares per size and a band out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from defense_room.cli import main
from defense_room.identity_eval import (
    HI_MARGIN, LOOK_CLOSELY, MARGIN, MATCH, MAX_LOOK_CLOSELY, NO_MATCH, RETAKE, Pair, figures,
    held_out,
    look_closely_rate,
    rates, report, suggest_band, verdict)
from identity.settings import IdentitySettings

from .identity_helpers import portraits


def write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def volunteers(tmp_path: Path) -> tuple[Path, Path]:
    """Two people with two photos each (the portrait and its mirror image), and a
    photo without a face; and a config file."""
    folder = tmp_path / "volunteers"
    for name, portrait in zip(("collins", "hopper"), portraits(), strict=True):
        write(folder / name / "1.jpg", portrait.image)
        write(folder / name / "2.jpg", np.ascontiguousarray(portrait.image[:, ::-1]))
    write(folder / "nobody" / "1.jpg", np.full((200, 200, 3), 128, np.uint8))
    config = tmp_path / "config.yaml"
    config.write_text("data_dir: ./state\n")
    return folder, config


def test_identity_eval_reports_every_document_size_and_a_band(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, config = volunteers(tmp_path)
    code = main(["identity-eval", str(folder), "--workers", "2", "--size", "640x480",
                 "--config", str(config)])
    assert code == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["pairs"] == 6 and summary["same_pairs"] == 2
    assert summary["comparisons"] == 18  # every pair at 48, 64 and 96 px
    assert summary["skipped"] == 1 and summary["images"] == 4
    assert summary["document_face_px"] == [48, 64, 96]
    assert set(summary["sizes"]) == {"48", "64", "96"}
    lo, hi = summary["band"]
    assert summary["threshold"] == lo <= hi
    assert summary["fmr"] == 0.0  # the band's match bound lies below every different pair
    for row in summary["sizes"].values():
        assert row["pairs"] == 6 and row["false_match_rate"] == 0.0
        assert 0.0 <= row["same_rejected_rate"] <= 1.0
        assert 0.0 <= row["look_closely_rate"] <= 1.0
        assert isinstance(row["retakes"], dict) and "configured" in row
    # The two identities are far apart: nothing is sent to look closely at 64 and 96 px.
    for px in ("64", "96"):
        assert summary["sizes"][px]["same_rejected_rate"] == 0.0
        assert summary["sizes"][px]["look_closely_rate"] == 0.0
    assert summary["look_closely_rate"] <= MAX_LOOK_CLOSELY
    assert summary["max_same"] < lo and hi < summary["min_different"]
    assert any("suggested identity.match_distance" in line for line in lines)
    assert any("suggested identity.no_match_distance" in line for line in lines)
    assert "18/18 frames" in captured.err  # progress goes to stderr, not into the report


def test_a_single_document_size_still_works(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder, config = volunteers(tmp_path)
    saved = tmp_path / "distances.json"
    code = main(["identity-eval", str(folder), "--workers", "1", "--size", "640x480",
                 "--document-face-px", "64", "--config", str(config),
                 "--save-distances", str(saved)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["document_face_px"] == [64] and list(summary["sizes"]) == ["64"]
    assert summary["pairs"] == summary["comparisons"] == 6
    assert summary["fmr"] == 0.0 and summary["fnmr"] == 0.0
    # The saved distances report the same again, without the analysis.
    assert main(["identity-eval", str(saved), "--from-distances", "--config", str(config)]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again == {key: value for key, value in summary.items() if key != "seconds"}


def test_a_file_that_is_not_saved_distances_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, config = volunteers(tmp_path)
    for text in ("not json", '{"pairs": [[1, 2]]}'):
        (tmp_path / "bad.json").write_text(text)
        assert main(["identity-eval", str(tmp_path / "bad.json"), "--from-distances",
                     "--config", str(config)]) == 2
        assert "not a file written by --save-distances" in capsys.readouterr().err


def test_bad_document_sizes_are_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder, config = volunteers(tmp_path)
    for bad in ("64,x", "0", ""):
        assert main(["identity-eval", str(folder), "--document-face-px", bad,
                     "--config", str(config)]) == 2
        assert "--document-face-px" in capsys.readouterr().err


def test_verdicts_from_the_band() -> None:
    def pair(distance: float | None) -> Pair:
        return Pair(0, 1, True, distance, None if distance is not None else "no_document")

    assert verdict(pair(0.50), 0.50, 0.60) == MATCH  # the bounds belong to the lower verdict
    assert verdict(pair(0.55), 0.50, 0.60) == LOOK_CLOSELY
    assert verdict(pair(0.60), 0.50, 0.60) == LOOK_CLOSELY
    assert verdict(pair(0.61), 0.50, 0.60) == NO_MATCH
    assert verdict(pair(None), 0.50, 0.60) == RETAKE
    assert verdict(pair(0.55), 0.55, 0.55) == MATCH  # an empty band: two verdicts


def test_figures_count_each_kind_of_pair() -> None:
    pairs = [Pair(0, 1, True, 0.40, None), Pair(0, 2, True, 0.55, None),
             Pair(0, 3, True, 0.70, None), Pair(0, 4, True, None, "no_document"),
             Pair(1, 2, False, 0.45, None), Pair(1, 3, False, 0.58, None),
             Pair(1, 4, False, 0.90, None), Pair(2, 3, False, None, "glare")]
    row = figures(pairs, 0.50, 0.60)
    assert row["false_match_rate"] == 0.25  # 0.45 of four different pairs
    assert row["same_rejected_rate"] == 0.5  # 0.70 (no match) and the retake
    assert (row["same_no_match"], row["same_retake"]) == (1, 1)
    assert row["look_closely_rate"] == 0.25  # 0.55 of four same pairs
    assert row["look_closely_all_rate"] == 0.25  # 0.55 and 0.58 of eight pairs
    assert row["different_look_closely"] == 1


def test_a_separated_set_gets_an_empty_band_below_every_different_pair() -> None:
    pairs = [Pair(0, 1, True, 0.40, None), Pair(0, 2, True, 0.50, None),
             Pair(1, 2, False, 0.70, None), Pair(0, 3, False, 0.90, None),
             Pair(1, 3, True, None, "glare")]
    band = suggest_band(pairs)
    assert (band.lo, band.hi, band.conflict_hi) == (0.68, 0.68, None)  # 0.02 below 0.70
    assert rates(pairs, band.lo) == (0.0, 1 / 3)  # the retake is a false non-match
    assert rates(pairs, 0.75) == (0.5, 1 / 3)


def test_overlapping_people_are_sent_to_look_closely() -> None:
    same = [Pair(0, n, True, 0.30 + 0.01 * n, None) for n in range(1, 20)]  # 0.31 .. 0.49
    pairs = [*same, Pair(0, 99, True, 0.56, None),  # one look-alike same pair
             Pair(1, 2, False, 0.54, None), Pair(1, 3, False, 0.80, None)]
    band = suggest_band(pairs)
    assert band.lo == 0.52  # MARGIN below the closest different pair, 0.54
    assert band.hi == 0.64  # HI_MARGIN above the largest same-person distance, 0.56
    assert band.conflict_hi is None
    assert look_closely_rate(pairs, band.lo, band.hi) == 0.05  # 1 of 20 same pairs
    assert figures(pairs, band.lo, band.hi)["false_match_rate"] == 0.0


def test_when_both_targets_cannot_hold_the_report_says_so() -> None:
    same = [Pair(0, n, True, 0.40, None) for n in range(1, 6)]
    same += [Pair(1, n, True, d, None) for n, d in enumerate((0.56, 0.57, 0.58))]
    pairs = [*same, Pair(2, 3, False, 0.50, None), Pair(2, 4, False, 0.90, None)]
    band = suggest_band(pairs)
    assert (band.lo, band.hi) == (0.48, 0.58)  # nobody of the same person called no match
    assert look_closely_rate(pairs, band.lo, band.hi) == 3 / 8 > MAX_LOOK_CLOSELY
    assert band.conflict_hi == 0.56 and band.conflict_no_match == 2
    out = io.StringIO()
    summary = report([Pair(p.live, p.document, p.same, p.distance, p.reason, 64)
                      for p in pairs], 6, {}, (1280, 720), (64,), IdentitySettings(), out)
    assert "both cannot hold" in out.getvalue()
    assert summary["band"] == [0.48, 0.58]
    assert summary["band_conflict"] == {"no_match_distance": 0.56, "same_no_match": 2}
    assert json.loads(out.getvalue().strip().splitlines()[-1]) == summary


def test_the_held_out_estimate_judges_each_person_by_a_band_tuned_without_them() -> None:
    def pair(x: str, y: str, distance: float) -> Pair:
        return Pair(0, 1, x[0] == y[0], distance, None, 64, (x[0], y[0]))

    pairs = [pair("a1", "a2", 0.30), pair("b1", "b2", 0.32), pair("c1", "c2", 0.62),
             pair("a1", "b1", 0.80), pair("a1", "c1", 0.58), pair("b1", "c1", 0.90)]
    everyone = suggest_band(pairs)
    assert (everyone.lo, everyone.hi) == (0.56, 0.62)
    assert figures(pairs, everyone.lo, everyone.hi)["false_match_rate"] == 0.0
    # Without a, the only different pair left is b-c (0.90): lo 0.88 calls a-b (0.80)
    # and a-c (0.58) a match. Without c, lo 0.78 calls a-c a match. Without b the band
    # is the full one. 3 of the 6 judged different pairs: what a band tuned on too few
    # people does to a stranger, invisible in the figures on the tuning set.
    unseen = held_out(pairs, (64,))
    assert unseen["people"] == 3
    assert unseen["lo_range"] == [0.56, 0.88]
    row = unseen["sizes"]["64"]
    assert (row["different_judged"], row["same_judged"]) == (6, 3)
    assert row["false_match_rate"] == 0.5
    assert row["same_rejected_rate"] == 0.0 and row["look_closely_rate"] == 0.0
    out = io.StringIO()
    summary = report(pairs, 6, {}, (1280, 720), (64,), IdentitySettings(), out)
    assert summary["held_out"] == unseen
    assert "has not seen (leave one of 3 people out" in out.getvalue()


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="nope is not a folder"):
        main(["identity-eval", str(tmp_path / "nope")])


def test_the_room_above_the_farthest_same_pair_keeps_an_unseen_genuine_pair_from_no_match(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def pair(x: str, y: str, distance: float) -> Pair:
        return Pair(0, 1, x == y, distance, None, 64, (x, y))

    people = [f"p{n}" for n in range(20)]
    pairs = [pair(name, name, 0.40) for name in people]
    pairs += [pair("y", "y", 0.62), pair("z", "z", 0.66)]  # two genuine look-unalikes
    pairs += [pair("p0", "p1", 0.60), pair("p2", "p3", 0.60), pair("p4", "p5", 0.61)]
    pairs += [pair("y", "z", 0.90), pair("p6", "z", 0.85)]
    band = suggest_band(pairs)
    assert (band.lo, band.hi, band.conflict_hi) == (0.58, 0.74, None)
    # Judged by a band tuned without them, z's pair (0.66) lies beyond the farthest
    # same pair that band saw (0.62): with HI_MARGIN it is looked at, not refused.
    assert HI_MARGIN > MARGIN
    unseen = held_out(pairs, (64,))["sizes"]["64"]
    assert unseen["false_match_rate"] == 0.0
    assert unseen["same_rejected_rate"] == 0.0
    assert unseen["look_closely_rate"] == round(2 / 22, 6)
    # With no more room above than below, the same stranger is called no match.
    monkeypatch.setattr("defense_room.identity_eval.HI_MARGIN", MARGIN)
    assert held_out(pairs, (64,))["sizes"]["64"]["same_rejected_rate"] == round(1 / 22, 6)
