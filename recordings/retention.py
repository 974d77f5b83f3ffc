"""Retention (rule R1): recordings are kept one month after the defense, then deleted.

What is deleted: everything under the day's folder ``<recordings_dir>/day-<id>/``,
i.e. the raw takes, the archive and the identity snapshots (``identity/``). When it
is deleted: from the start of the day after ``date + retention.days`` in the day's
time zone; a defense on 23 November with 30 days is kept through the whole of
23 December and deleted from 24 December 00:00. Never earlier.

Appeal holds: a student whose appeal is recorded holds their recordings until the
decision is recorded. A held student's archive folder is never deleted, and neither
is the day's shared material (raw takes, identity snapshots), which the appeal may
need; the folders of the day's other students go on time.

Each deletion is first journaled ("recording_deleted") with the SHA-256 of a
manifest of every file it removes (the manifest itself is kept in SQLite), then the
files are removed. A dry run reports what would go and touches nothing.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import shutil
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storage.db import Database

from . import manifest as mf
from .archive_store import ArchiveStore
from .plan import ARCHIVE, day_folder

logger = logging.getLogger(__name__)

DELETION_FORMAT = "defense-room-deletion/1"


def due_at(day: datetime.date, timezone: str, days: int) -> float:
    """When the recordings of a defense on ``day`` may be deleted (unix time)."""
    last_kept = day + datetime.timedelta(days=days)
    start = datetime.datetime.combine(last_kept + datetime.timedelta(days=1), datetime.time(),
                                      zoneinfo.ZoneInfo(timezone))
    return start.timestamp()


@dataclass(frozen=True, slots=True)
class Deletion:
    day_id: int
    student_id: int | None  # None: the rest of the day folder
    folder: Path
    due_at: float
    files: int
    bytes: int
    manifest_sha256: str | None  # None in a dry run

    def describe(self) -> str:
        what = "day folder" if self.student_id is None else f"student {self.student_id}"
        due = datetime.datetime.fromtimestamp(self.due_at, datetime.UTC)
        sha = f" manifest {self.manifest_sha256}" if self.manifest_sha256 else ""
        return (f"day {self.day_id} {what}: {self.folder} ({self.files} files, {self.bytes} "
                f"bytes, due {due:%Y-%m-%d %H:%M} UTC){sha}")


class Retention:
    """Finds and deletes recordings past their retention; see the module doc."""

    def __init__(self, db: Database, recordings_dir: Path, days: int) -> None:
        self._store = ArchiveStore(db)
        self._root = recordings_dir
        self._days = days

    async def sweep(self, now: float, *, dry_run: bool = False) -> list[Deletion]:
        """Delete (or, in a dry run, list) whatever is due at ``now``."""
        holds = await self._store.active_holds()
        deletions: list[Deletion] = []
        for row in await self._store.days():
            day_id = int(row["id"])
            folder = day_folder(self._root, day_id)
            if not folder.is_dir():
                continue
            due = due_at(datetime.date.fromisoformat(row["date"]), row["timezone"], self._days)
            if now < due:
                continue
            held = {student for (d, student) in holds if d == day_id}
            archives = await self._store.archives(day_id)
            for student_dir in sorted((folder / ARCHIVE).glob("student-*")):
                number = student_dir.name.removeprefix("student-")
                if not number.isdigit() or int(number) in held:
                    continue
                archive = archives.get(int(number))
                known = [archive.manifest_sha256] if archive is not None else []
                deletions.append(await self._delete(day_id, int(number), student_dir, due,
                                                    now, known, dry_run))
            if held:
                logger.info("day %s: recordings of %s held for an appeal", day_id,
                            ", ".join(str(s) for s in sorted(held)))
                continue
            known = sorted(a.manifest_sha256 for a in archives.values() if a.deleted_at is None)
            # In a dry run the student folders listed above are still there.
            listed = [d.folder for d in deletions if d.day_id == day_id]
            deletions.append(await self._delete(day_id, None, folder, due, now, known, dry_run,
                                                listed))
        return deletions

    async def _delete(self, day_id: int, student_id: int | None, folder: Path, due: float,
                      now: float, archive_manifests: list[str], dry_run: bool,
                      listed: list[Path] | None = None) -> Deletion:
        relative = str(folder.relative_to(self._root))
        if dry_run:
            skip = listed or []
            sizes = await asyncio.to_thread(
                lambda: [p.stat().st_size for p in folder.rglob("*") if p.is_file()
                         and not any(p.is_relative_to(d) for d in skip)])
            return Deletion(day_id, student_id, folder, due, len(sizes), sum(sizes), None)
        files = await asyncio.to_thread(mf.folder_files, folder, self._root)
        document: dict[str, Any] = {
            "format": DELETION_FORMAT, "day_id": day_id,
            "student": None if student_id is None else str(student_id),
            "folder": relative, "due_at": due, "deleted_at": now,
            "archive_manifests": archive_manifests, "files": files}
        data = mf.encode(document)
        digest = mf.digest(data)
        size = sum(int(f["size"]) for f in files)
        await self._store.record_deletion(
            day_id=day_id, student_id=student_id, folder=relative, manifest=data,
            manifest_sha256=digest, files=len(files), size=size,
            archive_manifests=archive_manifests, now=now)
        try:
            await asyncio.to_thread(shutil.rmtree, folder)
        except OSError:
            logger.exception("deleting %s failed; the next sweep tries again", folder)
        logger.info("retention deleted %s (%d files, manifest %s)", relative, len(files), digest)
        return Deletion(day_id, student_id, folder, due, len(files), size, digest)


class RetentionSweeper:
    """Runs `Retention.sweep` at start and then every ``interval_s``, inside the server."""

    def __init__(self, retention: Retention, *, clock: Callable[[], float] = time.time,
                 interval_s: float = 3600.0) -> None:
        self._retention = retention
        self._clock = clock
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._sweeps = 0

    @property
    def sweeps(self) -> int:
        """Sweeps finished so far (for tests)."""
        return self._sweeps

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retention-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self._retention.sweep(self._clock())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("retention sweep failed; trying again in %.0f s",
                                 self._interval_s)
            self._sweeps += 1
            await asyncio.sleep(self._interval_s)
