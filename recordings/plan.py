"""What the build of one defense's archive needs, in one JSON-ready value.

The server works the plan out (from the database, the journal and the take
folders) and hands it to the worker process (`recordings.build`) as a file, so
the worker needs no database and the plan is on disk for whoever wants to see
why a build came out as it did.

Archive layout inside the day folder ``<recordings_dir>/day-<id>/``::

    take-<UTC>/...                    raw capture, as recorded (never changed)
    archive/raw/take-<UTC>/<name>     stream-copied raw files, with durations
    archive/student-<id>/             one folder per defended student:
        defense.mp4  chapters.vtt  timeline.json  manifest.json
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.model import Role

from .sources import RawSegment
from .timeline import Defense

ARCHIVE = "archive"
RAW_ARCHIVE = f"{ARCHIVE}/raw"

_ROLE_ORDER = {Role.STUDENT: 0, Role.CHAIR: 1, Role.MEMBER: 2, Role.SECRETARY: 3,
               Role.SUPERVISOR: 4, Role.REVIEWER: 5, Role.OBSERVER: 6}
_PAUSED = "paused: no quorum (7.2)"


def day_prefix(day_id: int) -> str:
    """The one place the layout of a day's recordings is spelled: its takes, its
    archive and its identity checks live under this folder (or store prefix)."""
    return f"day-{day_id}"


def day_folder(recordings_dir: Path, day_id: int) -> Path:
    """The day's folder under the local recordings folder (`day_prefix`)."""
    return recordings_dir / day_prefix(day_id)


def student_folder_name(student: str) -> str:
    return f"student-{student}"


@dataclass(frozen=True, slots=True)
class PlannedSource:
    """A raw segment and the stream-copied file the archive keeps of it."""

    raw: str  # relative to the day folder
    archived: str  # relative to the day folder
    participant: str
    kind: str
    wall_start: float
    wall_end: float | None


@dataclass(frozen=True, slots=True)
class PlannedChapter:
    phase: str
    title: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class BuildPlan:
    day_id: int
    student: str
    student_name: str
    day_folder: str  # absolute
    timezone: str
    start: float
    end: float
    outcome: str  # `timeline.Outcome`, as the plan travels as JSON
    chapters: tuple[PlannedChapter, ...]
    captions: tuple[tuple[float, str], ...]
    people: tuple[tuple[str, str], ...]  # (participant id, label) in tile order
    sources: tuple[PlannedSource, ...]  # every raw segment of the day

    @property
    def folder(self) -> Path:
        return Path(self.day_folder)

    @property
    def student_folder(self) -> str:
        """Relative to the day folder."""
        return f"{ARCHIVE}/{student_folder_name(self.student)}"

    @property
    def staging_folder(self) -> Path:
        """Where the worker builds the archive on the local spool, before the server
        publishes it to the store (`recordings.blobstore.BlobStore.put_tree`)."""
        return self.folder / ARCHIVE / f".{student_folder_name(self.student)}.building"

    def overlapping(self) -> list[PlannedSource]:
        """The sources with media inside the defense's window."""
        return [s for s in self.sources
                if s.wall_start < self.end and (s.wall_end is None or s.wall_end > self.start)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildPlan:
        return cls(
            **{**data,
               "chapters": tuple(PlannedChapter(**c) for c in data["chapters"]),
               "captions": tuple((float(t), str(text)) for t, text in data["captions"]),
               "people": tuple((str(p), str(label)) for p, label in data["people"]),
               "sources": tuple(PlannedSource(**s) for s in data["sources"])})

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1))

    @classmethod
    def read(cls, path: Path) -> BuildPlan:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a build plan")
        return cls.from_json(data)


def make_plan(*, day_id: int, day_folder: Path, timezone: str, defense: Defense,
              people: list[tuple[str, str, Role]], segments: list[RawSegment]) -> BuildPlan:
    """The plan for ``defense`` of a day whose people are (id, name, role)."""
    if defense.end is None:
        raise ValueError(f"the defense of {defense.student} has not ended")
    names = {pid: name for pid, name, _ in people}
    roles = {pid: role for pid, _, role in people}
    recorded = {s.participant for s in segments}
    order = sorted(recorded | {defense.student},
                   key=lambda p: (p != defense.student, _ROLE_ORDER.get(roles.get(p, Role.OBSERVER), 9), p))
    tiles = tuple((p, f"{names.get(p, p)} ({roles[p].value})" if p in roles else p) for p in order)
    student_name = names.get(defense.student, defense.student)
    chapters = tuple(PlannedChapter(c.phase.value, c.title, c.start, c.end)
                     for c in defense.chapters if c.end > c.start)
    captions: list[tuple[float, str]] = [(c.start, f"{c.title} · {student_name}") for c in chapters]
    for start, end in defense.pauses:
        title = next((c.title for c in reversed(chapters) if c.start <= start), "")
        captions.append((start, f"{title} · {_PAUSED}"))
        back = next((c.title for c in reversed(chapters) if c.start <= end), title)
        captions.append((end, f"{back} · {student_name}"))
    sources = tuple(
        PlannedSource(raw=f"{s.take}/{s.path.name}", archived=f"{RAW_ARCHIVE}/{s.take}/{s.name}",
                      participant=s.participant, kind=s.kind, wall_start=s.wall_start,
                      wall_end=s.wall_end)
        for s in segments)
    return BuildPlan(day_id=day_id, student=defense.student, student_name=student_name,
                     day_folder=str(day_folder), timezone=timezone, start=defense.start,
                     end=defense.end, outcome=defense.outcome.value, chapters=chapters,
                     captions=tuple(sorted(captions)), people=tiles, sources=sources)
