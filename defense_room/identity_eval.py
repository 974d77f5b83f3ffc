"""``defense-room identity-eval DIR``: calibrate the identity check's band.

DIR holds labeled photos, ``<person>/<n>.jpg`` (also .jpeg/.png), one face each
(photos with no face or several are skipped and counted). Every unordered pair of
photos becomes one built frame per document face size (`identity.compose.passport_frame`,
48, 64 and 96 px wide by default): the first photo as the live face, the second as the
passport photo beside it, scaled down, slightly blurred and printed-looking. Each
frame goes through the same analysis as a live check. A university runs this on its
own consenting volunteers.

Verdicts come from each pair's distance and a band [lo, hi]: match when the
distance is <= lo (``match_distance``), look closely when lo < distance <= hi
(``no_match_distance``), no match above hi; retake when the analysis asked for one.
Per size the report gives the share of different-person pairs verdicted match (must
be 0), the share of same-person pairs verdicted no match or retake, the share of
SAME-PERSON pairs sent to look closely (what the secretary meets: nearly every real
check is the genuine student; the share of all pairs is given too) and the retake
reasons, at the suggested band and at the configured one.

The suggested band, one for every size (a document's size is not known
beforehand): lo is MARGIN below the smallest different-person distance (of any
size), rounded down to 0.01; hi is HI_MARGIN above the largest same-person distance,
rounded up, and no lower than lo. The margins differ because the errors do: a lo too
high lets a stranger through, so lo stays just under what the set shows; a hi too
low calls a genuine student "no match", and a stranger's face is only ever farther
than the set's closest look-alike, so hi keeps room for the genuine pairs the set
has not shown (a higher hi moves pairs from no match to look closely, never to
match). If look closely would then exceed 15 % of the same-person pairs, hi drops
towards the largest same-person distance; if even that exceeds 15 %, both cannot
hold: the band keeps every same-person pair out of no match and the report says so,
naming the hi that would keep look closely at 15 %.

Faces the band has not seen: the band is tuned on the same pairs it is reported on,
so the report also gives a leave-one-person-out estimate. For each person, the band
is suggested from the pairs that do not show them and applied to the pairs that do
(to that band, that person is a stranger); the verdicts of every fold are summed per
size (``held_out`` in the JSON line).

Legacy rates at a threshold t (= lo): FMR is the share of different-person pairs
at a distance <= t (a retake is not a match); FNMR the share of same-person pairs
not matched at t (a distance > t, or a retake). The last line printed is one JSON
object with ``threshold``, ``fmr``, ``fnmr``, ``pairs`` (photo pairs; each is
compared at every size), ``look_closely_rate`` (same-person pairs, all sizes),
``band`` ([lo, hi]) and ``sizes`` (per size figures). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from identity.settings import IdentitySettings
from server.config import DEFAULT_CONFIG_PATH, Config

SUFFIXES = {".jpg", ".jpeg", ".png"}
GRID = [round(0.30 + 0.01 * i, 2) for i in range(51)]  # 0.30 .. 0.80
TABLE_EVERY = 5
DOCUMENT_SIZES = (48, 64, 96)
#: Distance kept between lo and the closest different-person pair.
MARGIN = 0.02
#: Distance kept between hi and the farthest same-person pair (see the module doc).
HI_MARGIN = 0.08
#: Most same-person pairs the suggested band may send to look closely.
MAX_LOOK_CLOSELY = 0.15
MATCH, LOOK_CLOSELY, NO_MATCH, RETAKE = "match", "look_closely", "no_match", "retake"


@dataclass(frozen=True, slots=True)
class Pair:
    live: int
    document: int
    same: bool
    distance: float | None  # None: the analysis asked for a retake
    reason: str | None
    document_px: int = 64  # the document face's width in the built frame
    people: tuple[str, str] = ("", "")  # (live, document) labels


@dataclass(frozen=True, slots=True)
class Band:
    """A suggested (lo, hi) and what it could not achieve."""

    lo: float
    hi: float
    #: Both targets could not hold: the hi that keeps look closely at MAX_LOOK_CLOSELY,
    #: and how many same-person pairs it would call no match.
    conflict_hi: float | None = None
    conflict_no_match: int = 0


def verdict(pair: Pair, lo: float, hi: float) -> str:
    """match <= lo < look closely <= hi < no match; retake when the analysis asked."""
    if pair.distance is None:
        return RETAKE
    if pair.distance <= lo:
        return MATCH
    return LOOK_CLOSELY if pair.distance <= hi else NO_MATCH


def add_identity_eval(commands: Any) -> argparse.ArgumentParser:
    """The ``identity-eval`` subcommand's parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "identity-eval", help="calibrate the identity check's match threshold on labeled photos")
    parser.add_argument("folder", type=Path, help="labeled photos: <person>/<n>.jpg")
    parser.add_argument("--size", default="1280x720", help="built frame size (default 1280x720)")
    parser.add_argument("--document-face-px", default=",".join(map(str, DOCUMENT_SIZES)),
                        help="widths of the document's face in the frame, a comma list "
                             "(default 48,64,96)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="analysis processes (default: one per CPU)")
    parser.add_argument("--config", type=Path, default=None,
                        help=f"configuration file (default: {DEFAULT_CONFIG_PATH} if it exists)")
    parser.add_argument("--save-distances", type=Path, metavar="FILE",
                        help="also write every pair's distance to FILE (JSON), to report again "
                             "later without the analysis")
    parser.add_argument("--from-distances", action="store_true",
                        help="FOLDER is a file written by --save-distances: report from it "
                             "(seconds instead of minutes)")
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


Job = tuple[int, int, IdentitySettings, tuple[int, int], int]


def _compare(job: Job) -> tuple[float | None, str | None]:
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
             document_face_px: int | Sequence[int] = DOCUMENT_SIZES, workers: int = 1,
             out: TextIO | None = None, progress: TextIO | None = None,
             save_to: Path | None = None) -> dict[str, Any]:
    """Run the evaluation, print the report to `out` (stdout) and progress to
    `progress` (stderr), return the summary. Every size runs in one process pool;
    `save_to` also keeps every pair's distance (`save_distances`)."""
    sizes = ((document_face_px,) if isinstance(document_face_px, int)
             else tuple(dict.fromkeys(document_face_px)))
    labeled = photos(folder)
    paths = [path for _, path in labeled]
    log = progress or sys.stderr
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context,
                             initializer=_load, initargs=(paths,)) as pool:
        counts = list(pool.map(_faces_found, range(len(paths))))
        usable = [i for i, n in enumerate(counts) if n == 1]
        jobs: list[Job] = [(a, b, settings, size, px) for px in sizes
                           for x, a in enumerate(usable) for b in usable[x + 1:]]
        print(f"identity-eval: {len(usable)} photos, {len(jobs)} frames "
              f"({len(jobs) // max(1, len(sizes))} pairs x {len(sizes)} sizes), "
              f"{max(1, workers)} processes", file=log, flush=True)
        results = _with_progress(pool.map(_compare, jobs, chunksize=4), len(jobs), started, log)
    pairs = [Pair(a, b, labeled[a][0] == labeled[b][0], distance, reason, px,
                  (labeled[a][0], labeled[b][0]))
             for (a, b, _, _, px), (distance, reason) in zip(jobs, results, strict=True)]
    skipped = {str(paths[i].relative_to(folder)): n for i, n in enumerate(counts) if n != 1}
    if save_to is not None:
        save_distances(save_to, pairs, len(usable), skipped, size, sizes)
    return report(pairs, len(usable), skipped, size, sizes, settings, out or sys.stdout,
                  seconds=time.monotonic() - started)


def save_distances(path: Path, pairs: Sequence[Pair], images: int, skipped: dict[str, int],
                   size: tuple[int, int], sizes: Sequence[int]) -> None:
    """Write what `report` needs, so the band can be reported again without the analysis."""
    body = {"images": images, "skipped": skipped, "size": list(size), "sizes": list(sizes),
            "pairs": [[p.live, p.document, p.same, p.distance, p.reason, p.document_px,
                       *p.people] for p in pairs]}
    temporary = path.with_name(path.name + ".part")
    temporary.write_text(json.dumps(body))
    temporary.replace(path)


def report_saved(path: Path, settings: IdentitySettings, out: TextIO | None = None
                 ) -> dict[str, Any]:
    """`report` over a file written by `save_distances`; ValueError if it is not one."""
    try:
        body = json.loads(path.read_text())
        pairs = [Pair(int(live), int(document), bool(same),
                      None if distance is None else float(distance),
                      None if reason is None else str(reason), int(px), (str(a), str(b)))
                 for live, document, same, distance, reason, px, a, b in body["pairs"]]
        size = (int(body["size"][0]), int(body["size"][1]))
        sizes = tuple(int(px) for px in body["sizes"])
        images, skipped = int(body["images"]), dict(body["skipped"])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"{path} is not a file written by --save-distances ({exc})") from exc
    return report(pairs, images, skipped, size, sizes, settings, out or sys.stdout)


def _with_progress(results: Iterable[tuple[float | None, str | None]], total: int,
                   started: float, log: TextIO) -> list[tuple[float | None, str | None]]:
    done: list[tuple[float | None, str | None]] = []
    step = max(1, total // 20)
    for result in results:
        done.append(result)
        if len(done) % step == 0 or len(done) == total:
            elapsed = time.monotonic() - started
            left = elapsed / len(done) * (total - len(done))
            print(f"identity-eval: {len(done)}/{total} frames, {elapsed:.0f} s, "
                  f"about {left:.0f} s left", file=log, flush=True)
    return done


def rates(pairs: Sequence[Pair], threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at `threshold`; see the module doc."""
    same = [p for p in pairs if p.same]
    different = [p for p in pairs if not p.same]
    false_match = sum(1 for p in different if p.distance is not None and p.distance <= threshold)
    false_non_match = sum(1 for p in same if p.distance is None or p.distance > threshold)
    return (false_match / len(different) if different else 0.0,
            false_non_match / len(same) if same else 0.0)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def look_closely_rate(pairs: Sequence[Pair], lo: float, hi: float) -> float:
    """The share of same-person pairs verdicted look closely (retakes count in the whole)."""
    same = [p for p in pairs if p.same]
    return _share(sum(verdict(p, lo, hi) == LOOK_CLOSELY for p in same), len(same))


def suggest_band(pairs: Sequence[Pair], settings: IdentitySettings | None = None) -> Band:
    """The band of the module doc; without pairs of a kind, the configured bound."""
    configured = settings or IdentitySettings()
    same = [p.distance for p in pairs if p.same and p.distance is not None]
    different = [p.distance for p in pairs if not p.same and p.distance is not None]
    lo = (math.floor(round((min(different) - MARGIN) * 100, 6)) / 100 if different
          else configured.match_distance)
    lo = max(0.05, lo)
    if not same:
        return Band(lo, max(lo, _no_match_distance(configured)))
    roomy = max(lo, math.ceil(round((max(same) + HI_MARGIN) * 100, 6)) / 100)
    tight = math.ceil(round(max(same) * 100, 6)) / 100
    if max(same) > tight:  # the rounding must not call the largest same pair no match
        tight = round(tight + 0.01, 2)
    tight = max(lo, tight)
    # Every same-person pair lies at or under `tight`: the room above it changes
    # nothing on this set but what a stranger to it is called.
    if look_closely_rate(pairs, lo, tight) <= MAX_LOOK_CLOSELY:
        return Band(lo, roomy)
    fallback = tight
    while fallback > lo and look_closely_rate(pairs, lo, fallback) > MAX_LOOK_CLOSELY:
        fallback = round(fallback - 0.01, 2)
    fallback = max(lo, fallback)
    called_no_match = sum(1 for p in pairs if p.same and verdict(p, lo, fallback) == NO_MATCH)
    return Band(lo, tight, conflict_hi=fallback, conflict_no_match=called_no_match)


def _no_match_distance(settings: IdentitySettings) -> float:
    return settings.no_match_distance


def figures(pairs: Sequence[Pair], lo: float, hi: float) -> dict[str, Any]:
    """Verdict shares of one size's pairs under the band (lo, hi)."""
    same = [p for p in pairs if p.same]
    different = [p for p in pairs if not p.same]
    same_verdicts = Counter(verdict(p, lo, hi) for p in same)
    different_verdicts = Counter(verdict(p, lo, hi) for p in different)
    look = same_verdicts[LOOK_CLOSELY] + different_verdicts[LOOK_CLOSELY]
    return {
        "false_match_rate": _share(different_verdicts[MATCH], len(different)),
        "same_rejected_rate": _share(same_verdicts[NO_MATCH] + same_verdicts[RETAKE], len(same)),
        "same_no_match": same_verdicts[NO_MATCH], "same_retake": same_verdicts[RETAKE],
        "look_closely_rate": _share(same_verdicts[LOOK_CLOSELY], len(same)),
        "look_closely_all_rate": _share(look, len(pairs)),
        "different_look_closely": different_verdicts[LOOK_CLOSELY],
    }


def _per_size(pairs: Sequence[Pair], band: Band, configured: tuple[float, float]
              ) -> dict[str, Any]:
    same = [p.distance for p in pairs if p.same and p.distance is not None]
    different = [p.distance for p in pairs if not p.same and p.distance is not None]
    return {
        "pairs": len(pairs), "same_pairs": sum(p.same for p in pairs),
        "different_pairs": sum(not p.same for p in pairs),
        **figures(pairs, band.lo, band.hi),
        "retakes": dict(Counter(p.reason for p in pairs if p.reason is not None)),
        "same_retakes": dict(Counter(p.reason for p in pairs
                                     if p.same and p.reason is not None)),
        "max_same": round(max(same), 4) if same else None,
        "min_different": round(min(different), 4) if different else None,
        "configured": figures(pairs, *configured),
    }


def held_out(pairs: Sequence[Pair], sizes: Sequence[int]) -> dict[str, Any]:
    """The leave-one-person-out estimate of the module doc, per size: the shares of
    different-person pairs verdicted match, of same-person pairs verdicted no match
    or retake, and of same-person pairs sent to look closely."""
    people = sorted({name for p in pairs for name in p.people if name})
    counts = {px: Counter[str]() for px in sizes}
    bands: list[list[float]] = []
    for person in people:
        band = suggest_band([p for p in pairs if person not in p.people])
        bands.append([band.lo, band.hi])
        for p in pairs:
            if person in p.people and p.document_px in counts:
                kind = "same" if p.same else "different"
                counts[p.document_px][kind] += 1
                counts[p.document_px][f"{kind}_{verdict(p, band.lo, band.hi)}"] += 1
    by_size = {str(px): {
        "false_match_rate": _share(c["different_match"], c["different"]),
        "same_rejected_rate": _share(c["same_no_match"] + c["same_retake"], c["same"]),
        "look_closely_rate": _share(c["same_look_closely"], c["same"]),
        "same_judged": c["same"], "different_judged": c["different"],
    } for px, c in counts.items()}
    return {"people": len(people), "sizes": by_size,
            "lo_range": [min((b[0] for b in bands), default=None),
                         max((b[0] for b in bands), default=None)],
            "hi_range": [min((b[1] for b in bands), default=None),
                         max((b[1] for b in bands), default=None)]}


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def report(pairs: Sequence[Pair], images: int, skipped: dict[str, int],
           size: tuple[int, int], sizes: Sequence[int], settings: IdentitySettings,
           out: TextIO, *, seconds: float | None = None) -> dict[str, Any]:
    configured = (settings.match_distance, max(settings.match_distance,
                                               _no_match_distance(settings)))
    band = suggest_band(pairs, settings)
    by_size = {px: [p for p in pairs if p.document_px == px] for px in sizes}
    photo_pairs = len(by_size[sizes[0]]) if sizes else 0
    print(f"{images} photos, {len(skipped)} skipped (faces found: {skipped or 'none'}); "
          f"frames {size[0]}x{size[1]}, document face {', '.join(map(str, sizes))} px; "
          f"{photo_pairs} pairs ({sum(p.same for p in by_size.get(sizes[0], []))} same person)"
          f" per size" + (f"; {seconds:.0f} s" if seconds is not None else ""), file=out)
    per_size = {str(px): _per_size(group, band, configured) for px, group in by_size.items()}
    verdicts = (f"match <= {band.lo:.2f} < look closely <= {band.hi:.2f} < no match"
                if band.hi > band.lo else f"match <= {band.lo:.2f} < no match (empty band)")
    print(f"suggested band [{band.lo:.2f}, {band.hi:.2f}]: {verdicts}; per document face size "
          f"at that band (look closely: share of same-person pairs, and of all pairs):",
          file=out)
    print(f"{'doc px':>6} {'same':>11} {'different':>11} {'diff->match':>11} "
          f"{'same->no/retake':>15} {'look closely':>12} {'(all pairs)':>11}  retakes", file=out)
    for px, row in per_size.items():
        same_range = f"-{row['max_same']:.3f}" if row["max_same"] is not None else "-"
        diff_range = f"{row['min_different']:.3f}-" if row["min_different"] is not None else "-"
        print(f"{px:>6} {same_range:>11} {diff_range:>11} {_pct(row['false_match_rate']):>11} "
              f"{_pct(row['same_rejected_rate']):>15} {_pct(row['look_closely_rate']):>12} "
              f"{_pct(row['look_closely_all_rate']):>11}  {row['retakes'] or 'none'}", file=out)
    print(f"(same: largest same-person distance; different: smallest different-person one; "
          f"at the configured band [{configured[0]:.2f}, {configured[1]:.2f}]: " + "; ".join(
              f"{px} px: diff->match {_pct(row['configured']['false_match_rate'])}, "
              f"same->no/retake {_pct(row['configured']['same_rejected_rate'])}, "
              f"look closely {_pct(row['configured']['look_closely_rate'])}"
              for px, row in per_size.items()) + ")", file=out)
    print(f"{'threshold':>9} {'FMR':>8} {'FNMR':>8}   (all sizes, match vs the rest)", file=out)
    for t in sorted({*GRID[::TABLE_EVERY], band.lo}):
        fmr, fnmr = rates(pairs, t)
        mark = "  <- suggested match_distance" if t == band.lo else ""
        print(f"{t:>9.2f} {fmr:>8.4f} {fnmr:>8.4f}{mark}", file=out)
    look = look_closely_rate(pairs, band.lo, band.hi)
    print(f"suggested identity.match_distance: {band.lo:.2f} ({MARGIN:.2f} below the smallest "
          f"different-person distance)", file=out)
    print(f"suggested identity.no_match_distance: {band.hi:.2f} (up to {HI_MARGIN:.2f} above "
          f"the largest same-person distance; look closely {_pct(look)} of same-person pairs, "
          f"all sizes)", file=out)
    if band.conflict_hi is not None:
        print(f"both cannot hold: look closely stays <= {_pct(MAX_LOOK_CLOSELY)} only with "
              f"no_match_distance {band.conflict_hi:.2f}, which calls {band.conflict_no_match} "
              f"same-person pairs no match", file=out)
    unseen = held_out(pairs, sizes)
    if unseen["people"] > 1:
        print(f"faces the band has not seen (leave one of {unseen['people']} people out; lo "
              f"{unseen['lo_range'][0]:.2f}-{unseen['lo_range'][1]:.2f}, hi "
              f"{unseen['hi_range'][0]:.2f}-{unseen['hi_range'][1]:.2f}): " + "; ".join(
                  f"{px} px: diff->match {_pct(row['false_match_rate'])}, same->no/retake "
                  f"{_pct(row['same_rejected_rate'])}, look closely "
                  f"{_pct(row['look_closely_rate'])}" for px, row in unseen["sizes"].items()),
              file=out)
    fmr, fnmr = rates(pairs, band.lo)
    same = [p.distance for p in pairs if p.same and p.distance is not None]
    different = [p.distance for p in pairs if not p.same and p.distance is not None]
    summary = {
        "threshold": band.lo, "fmr": round(fmr, 6), "fnmr": round(fnmr, 6),
        "pairs": photo_pairs, "comparisons": len(pairs),
        "same_pairs": sum(p.same for p in by_size.get(sizes[0], [])) if sizes else 0,
        "different_pairs": sum(not p.same for p in by_size.get(sizes[0], [])) if sizes else 0,
        "look_closely_rate": look, "look_closely_of": "same-person pairs",
        "band": [band.lo, band.hi], "margin": MARGIN, "hi_margin": HI_MARGIN,
        "band_conflict": None if band.conflict_hi is None else {
            "no_match_distance": band.conflict_hi, "same_no_match": band.conflict_no_match},
        "configured_band": list(configured), "images": images, "skipped": len(skipped),
        "retakes": dict(Counter(p.reason for p in pairs if p.reason is not None)),
        "max_same": round(max(same), 4) if same else None,
        "min_different": round(min(different), 4) if different else None,
        "size": f"{size[0]}x{size[1]}", "document_face_px": list(sizes), "sizes": per_size,
        "held_out": unseen,
    }
    if seconds is not None:
        summary["seconds"] = round(seconds, 1)
    print(json.dumps(summary), file=out, flush=True)
    return summary


def document_sizes(text: str) -> tuple[int, ...]:
    """``48,64,96`` (or one number) -> (48, 64, 96); ValueError if not positive integers."""
    sizes = tuple(int(part) for part in str(text).split(",") if part.strip())
    if not sizes or any(px <= 0 for px in sizes):
        raise ValueError(text)
    return sizes


def run_identity_eval(config: Config, args: argparse.Namespace) -> int:
    """The subcommand: evaluate with the configured thresholds (all but the band)."""
    if args.from_distances:
        try:
            report_saved(args.folder, replace(config.identity))
        except ValueError as exc:
            print(f"identity-eval: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        width, height = (int(n) for n in str(args.size).lower().split("x"))
    except ValueError:
        print(f"identity-eval: --size must look like 1280x720, got {args.size!r}",
              file=sys.stderr)
        return 2
    try:
        sizes = document_sizes(args.document_face_px)
    except ValueError:
        print(f"identity-eval: --document-face-px must be widths like 48,64,96, got "
              f"{args.document_face_px!r}", file=sys.stderr)
        return 2
    evaluate(args.folder, replace(config.identity), size=(width, height),
             document_face_px=sizes, workers=args.workers, save_to=args.save_distances)
    return 0
