"""SQLite side of recordings: build jobs, the archive index, appeal holds, deletions.

Tables (migration ``0005_recordings_archive``): ``recording_jobs`` (one row per
day and student: the state of the newest build), ``recording_archives`` (the built
archive with its manifest and chapters), ``recording_files`` (every file of it,
with size and SHA-256; the ids recording links point at), ``appeal_holds`` and
``recording_deletions``. Whatever changes an archive's fate (a build, a hold, a
deletion) is written together with its journal event, in one transaction of the
single writer (`storage.journal.append_event`), so the two never disagree.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from orchestrator.appeals import Decision
from storage.db import Database
from storage.journal import JournalEvent, append_event, encode_detail

from .errors import HoldError


class JobState(enum.StrEnum):
    """Where the build of one student's archive stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Job:
    day_id: int
    student_id: int
    state: JobState
    progress: float
    error: str | None
    attempts: int
    requested_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return {"student": str(self.student_id), "state": self.state.value,
                "progress": self.progress, "error": self.error, "attempts": self.attempts,
                "requested_at": self.requested_at, "updated_at": self.updated_at}


@dataclass(frozen=True, slots=True)
class Archive:
    day_id: int
    student_id: int
    folder: str  # relative to the recordings folder
    manifest_sha256: str
    defense_start: float
    defense_end: float
    chapters: list[dict[str, Any]]
    built_at: float
    deleted_at: float | None


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: int
    day_id: int
    student_id: int
    path: str  # relative to the recordings folder
    role: str
    size: int
    sha256: str
    deleted_at: float | None


@dataclass(frozen=True, slots=True)
class Hold:
    hold_id: int
    day_id: int
    student_id: int
    placed_by: int
    placed_at: float
    note: str
    released_at: float | None
    decision: str | None

    def to_json(self) -> dict[str, Any]:
        return {"placed_by": str(self.placed_by), "placed_at": self.placed_at,
                "note": self.note, "released_at": self.released_at, "decision": self.decision}


def _journal(conn: sqlite_utils.Database, day_id: int, person_id: int | None, kind: str,
             detail: dict[str, Any], now: float) -> JournalEvent:
    return append_event(conn, at=now, day_id=day_id, person_id=person_id, kind=kind,
                        detail_json=encode_detail(detail))


class ArchiveStore:
    """Reads and writes the recordings tables; see the module doc."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- jobs ------------------------------------------------------------------------

    async def queue_job(self, day_id: int, student_id: int, now: float) -> Job:
        def write(conn: sqlite_utils.Database) -> None:
            conn.execute(
                "INSERT INTO recording_jobs (day_id, student_id, state, progress, error,"
                " attempts, requested_at, updated_at) VALUES (?, ?, ?, 0, NULL, 0, ?, ?)"
                " ON CONFLICT (day_id, student_id) DO UPDATE SET state = excluded.state,"
                " progress = 0, error = NULL, requested_at = excluded.requested_at,"
                " updated_at = excluded.updated_at",
                [day_id, student_id, JobState.QUEUED.value, now, now])

        await self._db.execute_write(write)
        job = await self.job(day_id, student_id)
        assert job is not None
        return job

    async def update_job(self, day_id: int, student_id: int, *, state: JobState, progress: float,
                         now: float, error: str | None = None, attempt: bool = False) -> None:
        def write(conn: sqlite_utils.Database) -> None:
            conn.execute(
                "UPDATE recording_jobs SET state = ?, progress = ?, error = ?, updated_at = ?,"
                " attempts = attempts + ? WHERE day_id = ? AND student_id = ?",
                [state.value, progress, error, now, int(attempt), day_id, student_id])

        await self._db.execute_write(write)

    async def job(self, day_id: int, student_id: int) -> Job | None:
        rows = await self._db.query(
            "SELECT * FROM recording_jobs WHERE day_id = ? AND student_id = ?",
            [day_id, student_id])
        return _job(rows[0]) if rows else None

    async def jobs(self, day_id: int | None = None) -> list[Job]:
        if day_id is None:
            rows = await self._db.query("SELECT * FROM recording_jobs ORDER BY requested_at")
        else:
            rows = await self._db.query(
                "SELECT * FROM recording_jobs WHERE day_id = ? ORDER BY student_id", [day_id])
        return [_job(row) for row in rows]

    # -- the archive index ---------------------------------------------------------------

    async def record_build(self, *, day_id: int, student_id: int, folder: str,
                           manifest: bytes, manifest_sha256: str, defense_start: float,
                           defense_end: float, chapters: list[dict[str, Any]],
                           files: list[dict[str, Any]], now: float) -> None:
        """Index a built archive (replacing an earlier build) and journal it."""
        def write(conn: sqlite_utils.Database) -> None:
            conn.execute("DELETE FROM recording_files WHERE day_id = ? AND student_id = ?",
                         [day_id, student_id])
            conn.execute(
                "INSERT OR REPLACE INTO recording_archives (day_id, student_id, folder,"
                " manifest_sha256, manifest_json, defense_start, defense_end, chapters_json,"
                " built_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                [day_id, student_id, folder, manifest_sha256, manifest.decode("utf-8"),
                 defense_start, defense_end, json.dumps(chapters, ensure_ascii=False), now])
            for entry in files:
                conn.execute(
                    "INSERT INTO recording_files (day_id, student_id, path, role, size, sha256)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [day_id, student_id, entry["path"], entry["role"], entry["size"],
                     entry["sha256"]])
            _journal(conn, day_id, None, "recording_built",
                     {"student": str(student_id), "manifest_sha256": manifest_sha256,
                      "files": len(files)}, now)

        await self._db.execute_write(write)

    async def archives(self, day_id: int) -> dict[int, Archive]:
        rows = await self._db.query(
            "SELECT * FROM recording_archives WHERE day_id = ?", [day_id])
        return {int(r["student_id"]): _archive(r) for r in rows}

    async def files(self, day_id: int, student_id: int) -> list[StoredFile]:
        rows = await self._db.query(
            "SELECT * FROM recording_files WHERE day_id = ? AND student_id = ? ORDER BY id",
            [day_id, student_id])
        return [_file(r) for r in rows]

    async def file(self, file_id: int) -> StoredFile | None:
        rows = await self._db.query("SELECT * FROM recording_files WHERE id = ?", [file_id])
        return _file(rows[0]) if rows else None

    # -- appeal holds --------------------------------------------------------------------

    async def place_hold(self, day_id: int, student_id: int, by: int, note: str,
                         now: float) -> Hold:
        def write(conn: sqlite_utils.Database) -> int:
            active = conn.execute(
                "SELECT id FROM appeal_holds WHERE day_id = ? AND student_id = ?"
                " AND released_at IS NULL", [day_id, student_id]).fetchone()
            if active is not None:
                raise HoldError(f"the recordings of student {student_id} are already held "
                                "for an appeal")
            cursor = conn.execute(
                "INSERT INTO appeal_holds (day_id, student_id, placed_by, placed_at, note)"
                " VALUES (?, ?, ?, ?, ?)", [day_id, student_id, by, now, note])
            _journal(conn, day_id, by, "appeal_hold_placed",
                     {"student": str(student_id), "note": note}, now)
            return int(cursor.lastrowid or 0)

        hold_id = await self._db.execute_write(write)
        return Hold(hold_id, day_id, student_id, by, now, note, None, None)

    async def release_hold(self, day_id: int, student_id: int, by: int, decision: Decision,
                           note: str, now: float) -> None:
        def write(conn: sqlite_utils.Database) -> None:
            cursor = conn.execute(
                "UPDATE appeal_holds SET released_by = ?, released_at = ?, decision = ?"
                " WHERE day_id = ? AND student_id = ? AND released_at IS NULL",
                [by, now, decision.value, day_id, student_id])
            if cursor.rowcount == 0:
                raise HoldError(f"no appeal holds the recordings of student {student_id}")
            _journal(conn, day_id, by, "appeal_hold_released",
                     {"student": str(student_id), "decision": decision.value, "note": note}, now)

        await self._db.execute_write(write)

    async def active_holds(self, day_id: int | None = None) -> dict[tuple[int, int], Hold]:
        """Active holds by (day, student)."""
        sql = "SELECT * FROM appeal_holds WHERE released_at IS NULL"
        rows = await (self._db.query(sql) if day_id is None
                      else self._db.query(sql + " AND day_id = ?", [day_id]))
        return {(int(r["day_id"]), int(r["student_id"])): _hold(r) for r in rows}

    # -- retention -----------------------------------------------------------------------

    async def days(self) -> list[dict[str, Any]]:
        return await self._db.query("SELECT id, date, timezone FROM defense_days ORDER BY id")

    async def record_deletion(self, *, day_id: int, student_id: int | None, folder: str,
                              manifest: bytes, manifest_sha256: str, files: int, size: int,
                              archive_manifests: list[str], now: float) -> int:
        """Journal a deletion about to happen; mark the index rows deleted."""
        def write(conn: sqlite_utils.Database) -> int:
            event = _journal(conn, day_id, None, "recording_deleted", {
                "scope": "day" if student_id is None else "student",
                "student": None if student_id is None else str(student_id),
                "folder": folder, "files": files, "bytes": size,
                "manifest_sha256": manifest_sha256,
                "archive_manifests": archive_manifests}, now)
            conn.execute(
                "INSERT INTO recording_deletions (day_id, student_id, folder, manifest_sha256,"
                " manifest_json, files, bytes, deleted_at, journal_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [day_id, student_id, folder, manifest_sha256, manifest.decode("utf-8"), files,
                 size, now, event.id])
            where = "day_id = ?" + ("" if student_id is None else " AND student_id = ?")
            params: list[Any] = [now, day_id] + ([] if student_id is None else [student_id])
            conn.execute(f"UPDATE recording_archives SET deleted_at = ? WHERE {where}"
                         " AND deleted_at IS NULL", params)
            conn.execute(f"UPDATE recording_files SET deleted_at = ? WHERE {where}"
                         " AND deleted_at IS NULL", params)
            return event.id

        return await self._db.execute_write(write)


def _job(r: dict[str, Any]) -> Job:
    return Job(int(r["day_id"]), int(r["student_id"]), JobState(r["state"]), float(r["progress"]),
               r["error"], int(r["attempts"]), float(r["requested_at"]), float(r["updated_at"]))


def _archive(r: dict[str, Any]) -> Archive:
    return Archive(int(r["day_id"]), int(r["student_id"]), str(r["folder"]),
                   str(r["manifest_sha256"]), float(r["defense_start"]),
                   float(r["defense_end"]), json.loads(r["chapters_json"]),
                   float(r["built_at"]), r["deleted_at"])


def _file(r: dict[str, Any]) -> StoredFile:
    return StoredFile(int(r["id"]), int(r["day_id"]), int(r["student_id"]), str(r["path"]),
                      str(r["role"]), int(r["size"]), str(r["sha256"]), r["deleted_at"])


def _hold(r: dict[str, Any]) -> Hold:
    return Hold(int(r["id"]), int(r["day_id"]), int(r["student_id"]), int(r["placed_by"]),
                float(r["placed_at"]), str(r["note"]), r["released_at"], r["decision"])
