"""The worker that builds one defense's archive folder: ``python -m recordings.build PLAN``.

It runs as a child process of the server (`recordings.jobs`), at a lower CPU
priority, so decoding and encoding never compete with the event loop or media
forwarding for the interpreter, and a stuck or crashing build is one process to
kill. It reads the plan (`recordings.plan`), and:

1. stream-copies every raw segment of the day into ``archive/raw/`` (once; an
   existing copy is complete, see `recordings.remux.finalize`), so archived files
   carry durations and cues;
2. builds the composite (`recordings.composite`) from the copies that overlap the
   defense, with its chapters as WebVTT and a JSON timeline;
3. writes the manifest: SHA-256 of the new files, of the copies and of the raw
   files they came from.

Everything is written into a staging folder on the local spool
(`BuildPlan.staging_folder`); the server publishes it to the recordings store once
the worker has succeeded (`recordings.jobs`, `BlobStore.put_tree`), so a failed or
killed build leaves the previous archive (if any) as it was, and the raw files are
only ever opened for reading.

Progress goes to stdout as JSON lines ``{"progress": 0.42}``; the last line is
``{"result": {...}}`` or ``{"error": "..."}`` (then the exit status is 1).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import manifest as mf
from .composite import Input, Spec, build_composite
from .errors import RemuxError
from .plan import BuildPlan
from .remux import finalize

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "defense-room-recording/1"
REMUX_SHARE = 0.1
COMPOSITE_SHARE = 0.8


def _vtt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def chapters_vtt(plan: BuildPlan) -> str:
    """The phases as a WebVTT chapters track (``<track kind="chapters">``)."""
    cues = [f"{n}\n{_vtt_time(c.start - plan.start)} --> {_vtt_time(c.end - plan.start)}\n{c.title}"
            for n, c in enumerate(plan.chapters, 1)]
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def timeline_json(plan: BuildPlan, speakers: tuple[tuple[float, str], ...]) -> dict[str, Any]:
    return {
        "day_id": plan.day_id, "student": plan.student, "student_name": plan.student_name,
        "start": plan.start, "end": plan.end, "outcome": plan.outcome,
        "timezone": plan.timezone,
        "chapters": [{"phase": c.phase, "title": c.title, "start_s": c.start - plan.start,
                      "end_s": c.end - plan.start} for c in plan.chapters],
        "speakers": [{"at_s": at, "participant": p} for at, p in speakers],
    }


def remux_sources(plan: BuildPlan, progress: Callable[[float], None]) -> list[str]:
    """Stream-copy the raw segments not archived yet; the ones that cannot be read."""
    unreadable = []
    for n, source in enumerate(plan.sources):
        target = plan.folder / source.archived
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                finalize(plan.folder / source.raw, target)
            except RemuxError as exc:
                logger.warning("raw file %s cannot be archived: %s", source.raw, exc)
                unreadable.append(source.raw)
        progress((n + 1) / max(1, len(plan.sources)))
    return unreadable


def run(plan: BuildPlan, progress: Callable[[float], None]) -> dict[str, Any]:
    """Build the student's archive into the staging folder; return the manifest's
    hash and figures."""
    day = plan.folder
    unreadable = remux_sources(plan, lambda f: progress(REMUX_SHARE * f))
    used = [s for s in plan.overlapping() if s.raw not in unreadable]
    staging = plan.staging_folder
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    spec = Spec(
        output=staging / "defense.mp4", start=plan.start, end=plan.end,
        inputs=tuple(Input(s.participant, s.kind, day / s.archived, s.wall_start) for s in used),
        order=tuple(p for p, _ in plan.people), labels=dict(plan.people),
        captions=plan.captions,
        chapters=tuple((c.title, c.start, c.end) for c in plan.chapters),
        timezone=plan.timezone)
    result = build_composite(spec, lambda f: progress(REMUX_SHARE + COMPOSITE_SHARE * f))
    (staging / "chapters.vtt").write_text(chapters_vtt(plan))
    (staging / "timeline.json").write_text(
        json.dumps(timeline_json(plan, result.speakers), ensure_ascii=False, indent=1) + "\n")
    files = [mf.file_entry(staging, name, role) for name, role in
             (("defense.mp4", "composite"), ("chapters.vtt", "chapters"),
              ("timeline.json", "timeline"))]
    for entry in files:
        entry["path"] = f"{plan.student_folder}/{entry['path']}"
    for source in used:
        files.append(mf.file_entry(day, source.raw, "raw"))
        files.append(mf.file_entry(day, source.archived, "archived"))
    document = {
        "format": MANIFEST_FORMAT, "day_id": plan.day_id, "student": plan.student,
        "built_at": time.time(),
        "defense": {"start": plan.start, "end": plan.end, "outcome": plan.outcome},
        "composite": {"frames": result.frames, "duration_s": result.duration_s},
        "unreadable_raw": unreadable, "files": files,
    }
    data = mf.encode(document)
    (staging / "manifest.json").write_bytes(data)
    progress(1.0)
    return {"manifest_sha256": mf.digest(data), "frames": result.frames,
            "duration_s": result.duration_s, "files": len(files)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m recordings.build PLAN.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        os.nice(10)  # the server's media forwarding comes first
    except OSError:
        pass
    last = [0.0, -1.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - last[0] >= 0.5:
            last[0] = now
            print(json.dumps({"progress": round(fraction, 4)}), flush=True)

    try:
        result = run(BuildPlan.read(Path(args[0])), progress)
    except Exception as exc:
        logger.exception("build failed")
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({"result": result}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
