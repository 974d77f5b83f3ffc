"""Protocol drafts (rules V5, V6), rebuilt from the journal whenever asked.

Drafts are never stored. `load_drafts` rebuilds them from the day's journal and its
finished recording files, so a draft always says what the evidence says; what
people did with a draft (approvals, the chair's signature) is `protocols.approvals`.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

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
from storage.days import load_day
from storage.db import Database
from storage.errors import NotFoundError
from storage.journal import Journal

DAY = "day"
"""The `which` of the day's protocol; a student's protocol is their person id."""

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
    def not_final(self) -> str | None:
        """Why it cannot be approved or signed yet, or None."""
        if self.protocol.ready:
            return None
        if isinstance(self.protocol, DayProtocol):
            return "the sitting is not closed yet"
        return "the results are not announced yet"


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
