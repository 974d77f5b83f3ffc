"""Protocol drafts (rules V5, V6, A5), rebuilt from the journal whenever asked.

Drafts are never stored. `load_drafts` rebuilds a defense day's from its journal and
its finished recording files, so a draft always says what the evidence says; what
people did with a draft (approvals, the chair's signature) is `protocols.approvals`.

An appeal sitting is a day of its own with one protocol, "appeal" (clauses 8.8,
8.9): `load_appeal_drafts` replays the sitting's journal, and reads the appeal and
the defense appealed (its grade replayed from the defense day's journal).
`load_day_drafts` picks the one that fits the day.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from orchestrator.appeal_protocol import (
    AppealedDefense,
    AppealInfo,
    AppealProtocol,
    appeal_approvers,
    appeal_canonical_json,
    build_appeal_protocol,
)
from orchestrator.model import Settings
from orchestrator.protocol import (
    DayProtocol,
    Protocol,
    RecordingFile,
    SittingInfo,
    StudentInfo,
    approvers,
    build_protocol,
    canonical_json,
)
from orchestrator.replay import day_settings, last_step_id
from storage.appeals import AppealStore, DayKind
from storage.days import LoadedDay, load_day
from storage.db import Database
from storage.errors import NotFoundError
from storage.journal import Journal

DAY = "day"
"""The `which` of the day's protocol; a student's protocol is their person id."""
APPEAL = "appeal"
"""The `which` of an appeal sitting's one protocol."""

FINISHED_SUFFIXES = frozenset({".webm", ".mkv", ".mka"})


@dataclass(frozen=True, slots=True)
class Draft:
    """One protocol as the journal has it now."""

    day_id: int
    which: str
    protocol: Protocol
    content_json: str
    content_hash: str
    #: The last procedure journal entry it was built from (0: none), to detect a
    #: journal that moved on before an approval or signature is written.
    source_id: int

    @property
    def approvers(self) -> dict[int, str]:
        """Person id -> name of the members who must approve it."""
        return {int(p.person_id): p.name for p in approvers(self.protocol)}

    @property
    def clause(self) -> str:
        """The clause that has the members approve before the chair signs."""
        return "7.17"

    @property
    def not_final(self) -> str | None:
        """Why it cannot be approved or signed yet, or None."""
        if self.protocol.ready:
            return None
        if isinstance(self.protocol, DayProtocol):
            return "the sitting is not closed yet"
        return "the results are not announced yet"


@dataclass(frozen=True, slots=True)
class AppealDraft:
    """The protocol of an appeal sitting as the journal has it now; read like a `Draft`."""

    day_id: int
    which: str
    protocol: AppealProtocol
    content_json: str
    content_hash: str
    source_id: int

    @property
    def approvers(self) -> dict[int, str]:
        """Person id -> name of the members of the appeal commission who approve it."""
        return {int(p.person_id): p.name for p in appeal_approvers(self.protocol)}

    @property
    def clause(self) -> str:
        return "8.8"

    @property
    def not_final(self) -> str | None:
        return None if self.protocol.ready else "the appeal sitting is not closed yet"


#: A draft of any protocol: a defense day's, a student's, an appeal sitting's.
AnyDraft = Draft | AppealDraft


@dataclass(frozen=True, slots=True)
class DayDrafts:
    """The drafts of all protocols of one day."""

    day_id: int
    protocol: DayProtocol
    source_id: int

    @property
    def names(self) -> tuple[str, ...]:
        """Every `which` of the day: "day", then the students in queue order."""
        return (DAY, *(s.student.person_id for s in self.protocol.students))

    def draft(self, which: str) -> Draft:
        """The draft `which`; `NotFoundError` if the day has no such protocol."""
        protocol: Protocol | None = self.protocol if which == DAY else next(
            (s for s in self.protocol.students if s.student.person_id == which), None)
        if protocol is None:
            raise NotFoundError(
                f"defense day {self.day_id} has no protocol {which!r}: use 'day' or the "
                "person id of one of its students")
        text = canonical_json(protocol)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return Draft(self.day_id, which, protocol, text, digest, self.source_id)


class RecordingIndex:
    """A day's finished recording files with size and SHA-256, each hashed once.

    Hashes are kept by (path, size, mtime), so listing the files again for every
    draft costs a directory walk, not a re-read of hours of video.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    async def files(self, folder: Path) -> tuple[RecordingFile, ...]:
        """The finished raw recordings of a day: the files of its takes
        (``take-*/``; `.part` files are being written). What the archive builds from
        them afterwards (``archive/``) has its own manifest and never changes a
        protocol that members are approving."""
        return await asyncio.to_thread(self._scan, folder)

    def _scan(self, folder: Path) -> tuple[RecordingFile, ...]:
        if not folder.is_dir():
            return ()
        found = []
        for path in folder.glob("take-*/**/*"):
            if path.suffix not in FINISHED_SUFFIXES or path.is_symlink() or not path.is_file():
                continue
            try:
                stat = path.stat()
                key = (str(path), stat.st_size, stat.st_mtime_ns)
                with self._lock:
                    digest = self._known.get(key)
                if digest is None:
                    with path.open("rb") as f:
                        digest = hashlib.file_digest(f, "sha256").hexdigest()
                    with self._lock:
                        self._known[key] = digest
            except FileNotFoundError:
                continue  # replaced while listed (e.g. finalized); the next listing has it
            found.append(RecordingFile(path.relative_to(folder).as_posix(), stat.st_size, digest))
        return tuple(sorted(found, key=lambda f: f.path))


async def load_drafts(db: Database, day_id: int, settings: Settings, recordings: Path,
                      index: RecordingIndex) -> DayDrafts:
    """Build the drafts of day `day_id` from its journal and the files under `recordings`
    (the day's recordings folder). `settings` is used only for a day whose journal
    does not hold the settings it began with.

    `orchestrator.replay.ReplayError` if the journal does not replay.
    """
    loaded = await load_day(db, day_id)
    entries = await Journal(db).entries(day_id)
    files = await index.files(recordings)
    stored = loaded.stored
    sitting = SittingInfo(stored.title, stored.date.isoformat(), stored.timezone,
                          stored.starts_at)
    info = {pid: StudentInfo(s.thesis_title, s.supervisor, s.reviewer)
            for pid, s in loaded.students.items()}
    # Replaying a long day is CPU work: keep it off the event loop.
    protocol = await asyncio.to_thread(
        build_protocol, loaded.day, day_settings(entries, settings), entries, sitting, info,
        files)
    return DayDrafts(day_id, protocol, last_step_id(entries))


@dataclass(frozen=True, slots=True)
class AppealDrafts:
    """The one protocol of an appeal sitting."""

    day_id: int
    protocol: AppealProtocol
    source_id: int

    @property
    def names(self) -> tuple[str, ...]:
        return (APPEAL,)

    def draft(self, which: str) -> AppealDraft:
        """The draft `which` ("appeal"); `NotFoundError` for anything else."""
        if which != APPEAL:
            raise NotFoundError(
                f"appeal sitting {self.day_id} has one protocol, {APPEAL!r}, not {which!r}")
        text = appeal_canonical_json(self.protocol)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return AppealDraft(self.day_id, which, self.protocol, text, digest, self.source_id)


async def load_appeal_drafts(db: Database, day_id: int, settings: Settings, recordings: Path,
                             index: RecordingIndex) -> AppealDrafts:
    """Build the protocol of appeal sitting `day_id` from its journal and the files under
    `recordings` (its recordings folder); the defense appealed is replayed from its own
    journal for the grade, with `settings` if that journal does not hold its own.

    `NotFoundError` if the day is not an appeal sitting; `ReplayError` if a journal
    does not replay.
    """
    loaded = await load_day(db, day_id)
    if loaded.kind is not DayKind.APPEAL or loaded.appeal_id is None:
        raise NotFoundError(f"day {day_id} is not an appeal sitting")
    appeal = await AppealStore(db).get(loaded.appeal_id)
    defense = await _appealed_defense(db, appeal.day_id, str(appeal.student_id), settings)
    info = AppealInfo(appeal_id=appeal.appeal_id, grounds=appeal.text,
                      filed_at=appeal.filed_at, on_paper=appeal.on_paper,
                      conclusion=appeal.conclusion, defense=defense)
    entries = await Journal(db).entries(day_id)
    files = await index.files(recordings)
    protocol = await asyncio.to_thread(
        build_appeal_protocol, loaded.day, entries, _sitting(loaded), info, files)
    return AppealDrafts(day_id, protocol, last_step_id(entries))


async def load_day_drafts(db: Database, day_id: int, settings: Settings, recordings: Path,
                          index: RecordingIndex) -> DayDrafts | AppealDrafts:
    """The drafts of any day: `load_appeal_drafts` for an appeal sitting, else
    `load_drafts`."""
    kind, _ = await AppealStore(db).day_kind(day_id)
    if kind is DayKind.APPEAL:
        return await load_appeal_drafts(db, day_id, settings, recordings, index)
    return await load_drafts(db, day_id, settings, recordings, index)


def _sitting(loaded: LoadedDay) -> SittingInfo:
    stored = loaded.stored
    return SittingInfo(stored.title, stored.date.isoformat(), stored.timezone, stored.starts_at)


async def _appealed_defense(db: Database, day_id: int, student: str,
                            settings: Settings) -> AppealedDefense:
    """The defense of `student` on day `day_id` as its journal has it: grade and results."""
    loaded = await load_day(db, day_id)
    entries = await Journal(db).entries(day_id)
    info = {pid: StudentInfo(s.thesis_title, s.supervisor, s.reviewer)
            for pid, s in loaded.students.items()}
    day = await asyncio.to_thread(
        build_protocol, loaded.day, day_settings(entries, settings), entries, _sitting(loaded),
        info)
    mine = next((s for s in day.students if s.student.person_id == student), None)
    roster = loaded.students.get(student)
    return AppealedDefense(
        day_id=day_id, title=loaded.stored.title, date=loaded.stored.date.isoformat(),
        student=loaded.name(student), thesis_title=roster.thesis_title if roster else "",
        grade=mine.grade if mine else None, results_at=mine.results_at if mine else None)
