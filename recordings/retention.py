"""Retention (rule R1): recordings are kept one month after the defense, then deleted.

What is deleted: everything the recordings store (`recordings.blobstore`) holds
under the day's prefix ``day-<id>/``, i.e. the raw takes, the archive and the
identity snapshots (``identity/``); with today's local store that is the day's
folder ``<recordings_dir>/day-<id>/``. When it is deleted: from the start of the
day after ``date + retention.days`` in the day's time zone; a defense on 23 November
with 30 days is kept through the whole of 23 December and deleted from 24 December
00:00. Never earlier.

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
import hashlib
import logging
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.db import Database

from . import manifest as mf
from .archive_store import ArchiveStore
from .blobstore import BlobInfo, BlobNotFound, BlobStore, StoreError
from .plan import ARCHIVE, day_prefix

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
    folder: str  # where it is, as the store says (`BlobStore.location`)
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

    def __init__(self, db: Database, store: BlobStore, days: int) -> None:
        self._store = ArchiveStore(db)
        self._blobs = store
        self._days = days

    async def sweep(self, now: float, *, dry_run: bool = False) -> list[Deletion]:
        """Delete (or, in a dry run, list) whatever is due at ``now``."""
        holds = await self._store.active_holds()
        deletions: list[Deletion] = []
        for row in await self._store.days():
            day_id = int(row["id"])
            due = due_at(datetime.date.fromisoformat(row["date"]), row["timezone"], self._days)
            if now < due:
                continue
            prefix = day_prefix(day_id)
            blobs = await asyncio.to_thread(self._blobs.list, prefix + "/")
            if not blobs:
                continue
            held = {student for (d, student) in holds if d == day_id}
            archives = await self._store.archives(day_id)
            gone: list[str] = []  # prefixes deleted (or, in a dry run, listed) above
            for name in _student_folders(blobs, f"{prefix}/{ARCHIVE}/"):
                number = name.removeprefix("student-")
                if not number.isdigit() or int(number) in held:
                    continue
                archive = archives.get(int(number))
                known = [archive.manifest_sha256] if archive is not None else []
                student_prefix = f"{prefix}/{ARCHIVE}/{name}"
                deletions.append(await self._delete(
                    day_id, int(number), student_prefix, _under(blobs, student_prefix), due,
                    now, known, dry_run))
                gone.append(student_prefix)
            if held:
                logger.info("day %s: recordings of %s held for an appeal", day_id,
                            ", ".join(str(s) for s in sorted(held)))
                continue
            known = sorted(a.manifest_sha256 for a in archives.values() if a.deleted_at is None)
            # In a dry run the student folders listed above are still there.
            rest = ([b for b in blobs if not any(b.key.startswith(g + "/") for g in gone)]
                    if dry_run else await asyncio.to_thread(self._blobs.list, prefix + "/"))
            deletions.append(await self._delete(day_id, None, prefix, rest, due, now, known,
                                                dry_run))
        return deletions

    async def _delete(self, day_id: int, student_id: int | None, prefix: str,
                      blobs: list[BlobInfo], due: float, now: float,
                      archive_manifests: list[str], dry_run: bool) -> Deletion:
        where = self._blobs.location(prefix)
        if dry_run:
            return Deletion(day_id, student_id, where, due, len(blobs),
                            sum(b.size for b in blobs), None)
        files = await asyncio.to_thread(self._entries, blobs)
        document: dict[str, Any] = {
            "format": DELETION_FORMAT, "day_id": day_id,
            "student": None if student_id is None else str(student_id),
            "folder": prefix, "due_at": due, "deleted_at": now,
            "archive_manifests": archive_manifests, "files": files}
        data = mf.encode(document)
        digest = mf.digest(data)
        size = sum(int(f["size"]) for f in files)
        await self._store.record_deletion(
            day_id=day_id, student_id=student_id, folder=prefix, manifest=data,
            manifest_sha256=digest, files=len(files), size=size,
            archive_manifests=archive_manifests, now=now)
        try:
            await asyncio.to_thread(self._blobs.delete, prefix)
        except (OSError, StoreError):
            logger.exception("deleting %s failed; the next sweep tries again", where)
        logger.info("retention deleted %s (%d files, manifest %s)", prefix, len(files), digest)
        return Deletion(day_id, student_id, where, due, len(files), size, digest)

    def _entries(self, blobs: list[BlobInfo]) -> list[dict[str, Any]]:
        """Manifest entries of `blobs`, hashed as read from the store (blocking)."""
        entries = []
        for blob in blobs:
            digest, size = hashlib.sha256(), 0
            try:
                with self._blobs.open(blob.key) as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                        size += len(chunk)
            except BlobNotFound:
                continue  # gone since listed: nothing of it is deleted
            entries.append({"path": blob.key, "role": "file", "size": size,
                            "sha256": digest.hexdigest()})
        return entries


def _student_folders(blobs: list[BlobInfo], archive: str) -> list[str]:
    """The ``student-*`` folder names directly under the ``archive`` prefix."""
    names = {b.key[len(archive):].split("/", 1)[0] for b in blobs
             if b.key.startswith(archive) and "/" in b.key[len(archive):]}
    return sorted(n for n in names if n.startswith("student-"))


def _under(blobs: list[BlobInfo], prefix: str) -> list[BlobInfo]:
    return [b for b in blobs if b.key.startswith(prefix + "/")]


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
