"""``defense-room identity-eval DIR``: calibrate the identity check's threshold.

DIR holds labeled photos, ``<person>/<n>.jpg`` (also .jpeg/.png), one face each
(photos with no face or several are skipped and counted). Every unordered pair of
photos becomes one built frame (`identity.compose.passport_frame`): the first as
the live face, the second as the passport photo beside it, scaled down, slightly
blurred and printed-looking. Each frame goes through the same analysis as a live
check. A university runs this on its own consenting volunteers.

Rates over thresholds t: FMR is the share of different-person pairs compared at a
distance <= t (a retake is not a match); FNMR the share of same-person pairs not
matched at t (a distance > t, or a retake: the genuine student would be asked
again). The suggested threshold has no false match and the fewest false
non-matches; of the thresholds that tie, the middle one. The last line printed is
one JSON object with at least ``threshold``, ``fmr``, ``fnmr`` and ``pairs``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from identity.settings import IdentitySettings
from server.config import DEFAULT_CONFIG_PATH, Config

SUFFIXES = {".jpg", ".jpeg", ".png"}
GRID = [round(0.30 + 0.01 * i, 2) for i in range(51)]  # 0.30 .. 0.80
TABLE_EVERY = 5


@dataclass(frozen=True, slots=True)
class Pair:
    live: int
    document: int
    same: bool
    distance: float | None  # None: the analysis asked for a retake
    reason: str | None


def add_identity_eval(commands: Any) -> argparse.ArgumentParser:
    """The ``identity-eval`` subcommand's parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "identity-eval", help="calibrate the identity check's match threshold on labeled photos")
    parser.add_argument("folder", type=Path, help="labeled photos: <person>/<n>.jpg")
    parser.add_argument("--size", default="1280x720", help="built frame size (default 1280x720)")
    parser.add_argument("--document-face-px", type=int, default=64,
                        help="width of the document's face in the frame (default 64)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="analysis processes (default: one per CPU)")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"configuration file (default: {DEFAULT_CONFIG_PATH} if it exists)")
    return parser


def photos(folder: Path) -> list[tuple[str, Path]]:
    """(person, path) for every photo under ``<person>/``, sorted."""
    if not folder.is_dir():
        raise SystemExit(f"identity-eval: {folder} is not a folder")
    return [(person.name, path)
            for person in sorted(p for p in folder.iterdir() if p.is_dir())
            for path in sorted(person.iterdir()) if path.suffix.lower() in SUFFIXES]


# -- the worker processes --------------------------------------------------------------

_portraits: list[Any] = []


def _load(paths: Sequence[Path]) -> None:
    """Worker initializer: read and locate every face once."""
    import numpy as np
    from PIL import Image, ImageOps

    from identity.compose import Portrait
    from identity.faces import detect

    for path in paths:
        with Image.open(path) as picture:
            rgb = np.asarray(ImageOps.exif_transpose(picture).convert("RGB"), dtype=np.uint8)
        found = detect(rgb, scale=1.0, upsample=1, min_score=0.5)
        _portraits.append(Portrait(rgb, found[0].box) if len(found) == 1 else len(found))


def _faces_found(index: int) -> int:
    entry = _portraits[index]
    return entry if isinstance(entry, int) else 1


def _compare(job: tuple[int, int, IdentitySettings, tuple[int, int], int]
             ) -> tuple[float | None, str | None]:
    from identity.analysis import analyze
    from identity.compose import passport_frame

    live, document, settings, size, document_px = job
    portrait = _portraits[live]
    # Never enlarge the live face beyond its source: upscaling blurs it.
    live_px = min(round(size[1] * 0.3), portrait.box.width)
    frame = passport_frame(portrait, _portraits[document], size=size, live_face_px=live_px,
                           document_face_px=document_px, seed=live * 1000 + document)
    result = analyze(frame, settings)
    return result.distance, result.reason.value if result.reason else None


# -- the evaluation --------------------------------------------------------------------

def evaluate(folder: Path, settings: IdentitySettings, *, size: tuple[int, int] = (1280, 720),
             document_face_px: int = 64, workers: int = 1,
             out: TextIO | None = None) -> dict[str, Any]:
    """Run the evaluation, print the report to `out` (stdout), return the summary."""
    labeled = photos(folder)
    paths = [path for _, path in labeled]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context,
                             initializer=_load, initargs=(paths,)) as pool:
        counts = list(pool.map(_faces_found, range(len(paths))))
        usable = [i for i, n in enumerate(counts) if n == 1]
        jobs = [(a, b, settings, size, document_face_px)
                for x, a in enumerate(usable) for b in usable[x + 1:]]
        results = list(pool.map(_compare, jobs, chunksize=4))
    pairs = [Pair(a, b, labeled[a][0] == labeled[b][0], distance, reason)
             for (a, b, *_), (distance, reason) in zip(jobs, results, strict=True)]
    skipped = {str(paths[i].relative_to(folder)): n for i, n in enumerate(counts) if n != 1}
    return report(pairs, len(usable), skipped, size, document_face_px, out or sys.stdout)


def rates(pairs: Sequence[Pair], threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at `threshold`; see the module doc."""
    same = [p for p in pairs if p.same]
    different = [p for p in pairs if not p.same]
    false_match = sum(1 for p in different if p.distance is not None and p.distance <= threshold)
    false_non_match = sum(1 for p in same if p.distance is None or p.distance > threshold)
    return (false_match / len(different) if different else 0.0,
            false_non_match / len(same) if same else 0.0)


def suggest(pairs: Sequence[Pair]) -> float:
    table = {t: rates(pairs, t) for t in GRID}
    safe = [t for t in GRID if table[t][0] == 0.0]
    if not safe:
        return min(GRID, key=lambda t: (sum(table[t]), table[t][0]))
    fewest = min(table[t][1] for t in safe)
    best = [t for t in safe if table[t][1] == fewest]
    return round((best[0] + best[-1]) / 2, 2)


def report(pairs: Sequence[Pair], images: int, skipped: dict[str, int],
           size: tuple[int, int], document_face_px: int, out: TextIO) -> dict[str, Any]:
    same = [p.distance for p in pairs if p.same and p.distance is not None]
    different = [p.distance for p in pairs if not p.same and p.distance is not None]
    retakes = Counter(p.reason for p in pairs if p.reason is not None)
    print(f"{images} photos, {len(skipped)} skipped (faces found: {skipped or 'none'}); "
          f"frames {size[0]}x{size[1]}, document face {document_face_px} px", file=out)
    print(f"{sum(p.same for p in pairs)} same-person pairs, "
          f"{sum(not p.same for p in pairs)} different-person pairs; "
          f"retakes: {dict(retakes) or 'none'}", file=out)
    if same:
        print(f"same person: distance {min(same):.3f}-{max(same):.3f}", file=out)
    if different:
        print(f"different people: distance {min(different):.3f}-{max(different):.3f}", file=out)
    threshold = suggest(pairs) if pairs else 0.6
    print(f"{'threshold':>9} {'FMR':>8} {'FNMR':>8}", file=out)
    for t in sorted({*GRID[::TABLE_EVERY], threshold}):
        fmr, fnmr = rates(pairs, t)
        mark = "  <- suggested" if t == threshold else ""
        print(f"{t:>9.2f} {fmr:>8.4f} {fnmr:>8.4f}{mark}", file=out)
    fmr, fnmr = rates(pairs, threshold)
    print(f"suggested identity.match_distance: {threshold:.2f}", file=out)
    summary = {
        "threshold": threshold, "fmr": round(fmr, 6), "fnmr": round(fnmr, 6),
        "pairs": len(pairs), "same_pairs": sum(p.same for p in pairs),
        "different_pairs": sum(not p.same for p in pairs), "images": images,
        "skipped": len(skipped), "retakes": dict(retakes),
        "max_same": round(max(same), 4) if same else None,
        "min_different": round(min(different), 4) if different else None,
        "size": f"{size[0]}x{size[1]}", "document_face_px": document_face_px,
    }
    print(json.dumps(summary), file=out, flush=True)
    return summary


def run_identity_eval(config: Config, args: argparse.Namespace) -> int:
    """The subcommand: evaluate with the configured thresholds (all but the distance)."""
    try:
        width, height = (int(n) for n in str(args.size).lower().split("x"))
    except ValueError:
        print(f"identity-eval: --size must look like 1280x720, got {args.size!r}",
              file=sys.stderr)
        return 2
    evaluate(args.folder, replace(config.identity), size=(width, height),
             document_face_px=args.document_face_px, workers=args.workers)
    return 0
