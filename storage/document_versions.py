"""The versions of students' documents: who filed what, when, and why (finding S4).

Each upload is one row of ``documents`` with its SHA-256, size, uploader and (for a
replacement by the secretary) reason; its bytes stay on disk under the hash
(`storage.document_files`). Rows are never changed (a trigger refuses it): the
current version of a kind is its newest row, and the *defended* version is the
newest one filed before the student's defense started (`defended_version`), which
is what the evidence pack should hold however the file changed afterwards.

A student replaces their own documents only until their uploads close
(`orchestrator.documents.student_uploads_closed`); after that only the secretary
does, with a reason. The check, the row, the ``document_file`` journal event and
moving the current file happen in one write on the writer thread, which is also
where the procedure journals ``StartDefense``: an upload cannot slip in after it.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from orchestrator import events as ev
from orchestrator.documents import DocumentKind, StudentUploadsClose, student_uploads_closed
from orchestrator.replay import EVENT_KIND

from .db import Database
from .document_files import DocumentFiles, StoredFile
from .errors import NotFoundError, RosterRefused, StorageError
from .journal import append_event, encode_detail

logger = logging.getLogger(__name__)

#: The longest reason the secretary may give for a replacement.
MAX_REASON_CHARS = 500

_COLUMNS = "d.id, d.person_id, p.day_id, d.kind, d.sha256, d.size, d.uploaded_at," \
    " d.uploaded_by, d.reason"


class UploadsClosed(RosterRefused):
    """A student's upload after their uploads closed (409)."""

    code = "uploads_closed"


class ReasonInvalid(StorageError):
    """A reason for a replacement that cannot be kept (too long, control characters)."""

    code = "invalid_reason"
    status_hint = 400


class ReasonRequired(ReasonInvalid):
    """A replacement after the student's uploads closed came without a reason."""

    code = "reason_required"


@dataclass(frozen=True, slots=True)
class DocumentVersion:
    """One uploaded version of a student's document."""

    id: int
    person_id: int  # the student
    day_id: int
    kind: DocumentKind
    sha256: str
    size: int
    uploaded_at: float
    uploaded_by: int | None  # the student or the secretary
    reason: str | None

    def path(self, files: DocumentFiles) -> Path:
        """Where its bytes are kept."""
        return files.version_path(self.day_id, self.person_id, self.sha256)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "sha256": self.sha256, "size": self.size,
                "uploaded_at": self.uploaded_at, "uploaded_by": self.uploaded_by,
                "reason": self.reason}


class DocumentVersions:
    """Records and reads the versions of students' documents; see the module doc."""

    def __init__(self, db: Database, files: DocumentFiles,
                 close: StudentUploadsClose = StudentUploadsClose.DEFENSE_START) -> None:
        self._db = db
        self._files = files
        self._close = close

    async def closed(self, person_id: int, now: float) -> str | None:
        """Why the uploads of student `person_id` are closed at `now` (a clause), or
        None; read before the body, `record` checks again where it counts."""
        return await self._db.execute_read(lambda db: self._closed(db, person_id, now))

    async def record(self, stored: StoredFile, person_id: int, kind: DocumentKind, *,
                     by: int, reason: str | None, now: float) -> DocumentVersion:
        """File `stored` (already under its hash) as the current `kind` of student
        `person_id`, uploaded by person `by` (the student or the secretary).

        `UploadsClosed` when the student uploads after their uploads closed;
        `ReasonRequired` when someone else does so without a `reason`.
        """
        kind = DocumentKind(kind)
        reason = check_reason(reason)

        def write(db: sqlite_utils.Database) -> DocumentVersion:
            closed = self._closed(db, person_id, now)
            if closed is not None:
                if by == person_id:
                    raise UploadsClosed(student_refusal(closed))
                if reason is None:
                    raise ReasonRequired(f"{closed}: replacing the student's {kind.value}"
                                         " needs a reason")
            previous = _newest(db, person_id, kind)
            row_id = db.execute(
                "INSERT INTO documents (person_id, kind, uploaded_at, sha256, size,"
                " uploaded_by, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [person_id, kind.value, now, stored.sha256, stored.size, by, reason],
            ).lastrowid
            day_id = _student_day(db, person_id)
            detail: dict[str, Any] = {
                "student": person_id, "kind": kind.value, "size": stored.size,
                "sha256": stored.sha256,
                "replaces": previous.sha256 if previous is not None else None,
                "uploaded_on": datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat()}
            if reason is not None:
                detail["reason"] = reason
            append_event(db, at=now, day_id=day_id, person_id=by, kind="document_file",
                         detail_json=encode_detail(detail))
            # Last, so that a refusal above leaves the current file as it was; the
            # writer thread orders it like the rows.
            self._files.make_current(day_id, person_id, kind, stored.sha256)
            assert row_id is not None
            return DocumentVersion(row_id, person_id, day_id, kind, stored.sha256,
                                   stored.size, now, by, reason)

        version = await self._db.execute_write(write)
        logger.info("day %s: %s of student %s is now %s (by person %s%s)", version.day_id,
                    kind.value, person_id, stored.sha256[:12], by,
                    ", with a reason" if reason else "")
        return version

    async def current(self, person_id: int, kind: DocumentKind) -> DocumentVersion | None:
        """The newest version of the student's `kind`, or None."""
        return await self._db.execute_read(lambda db: _newest(db, person_id, kind))

    async def history(self, person_id: int, kind: DocumentKind) -> list[DocumentVersion]:
        """Every version of the student's `kind`, oldest first."""
        def read(db: sqlite_utils.Database) -> list[DocumentVersion]:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM documents d JOIN people p ON p.id = d.person_id"
                " WHERE d.person_id = ? AND d.kind = ? AND d.sha256 IS NOT NULL"
                " ORDER BY d.id", [person_id, DocumentKind(kind).value]).fetchall()
            return [_version(row) for row in rows]
        return await self._db.execute_read(read)

    async def defended_version(self, person_id: int,
                               kind: DocumentKind) -> DocumentVersion | None:
        """See the module-level `defended_version`."""
        return await defended_version(self._db, person_id, kind)

    def _closed(self, db: sqlite_utils.Database, person_id: int, now: float) -> str | None:
        row = db.execute(
            "SELECT dd.id, dd.date, dd.timezone FROM students s"
            " JOIN people p ON p.id = s.person_id JOIN defense_days dd ON dd.id = p.day_id"
            " WHERE s.person_id = ?", [person_id]).fetchone()
        if row is None:
            raise NotFoundError(f"no student on a roster with person id {person_id}")
        return student_uploads_closed(
            now=now, date=datetime.date.fromisoformat(row[1]), timezone=row[2],
            defense_started=_defense_started_at(db, row[0], person_id) is not None,
            close=self._close)


async def defended_version(db: Database, person_id: int,
                           kind: DocumentKind) -> DocumentVersion | None:
    """The version of student `person_id`'s `kind` that was on file when their
    defense started (the first ``StartDefense`` of the day's journal); None when the
    defense never started or nothing was uploaded by then. Its bytes are at
    `DocumentVersion.path(files)`."""
    def read(db: sqlite_utils.Database) -> DocumentVersion | None:
        day = db.execute("SELECT day_id FROM people WHERE id = ?", [person_id]).fetchone()
        if day is None:
            return None
        started = _defense_started_at(db, day[0], person_id)
        if started is None:
            return None
        return _newest(db, person_id, kind, before=started)
    return await db.execute_read(read)


def student_refusal(closed: str) -> str:
    """The sentence a student gets for an upload after `closed` (from `closed()`)."""
    return (f"{closed}: a student can no longer upload their documents; the secretary"
            " can replace one, giving a reason")


def check_reason(reason: str | None) -> str | None:
    """`reason` stripped, None if blank; ReasonInvalid if too long or holding
    control characters (it goes into the journal and the evidence)."""
    if reason is None or not reason.strip():
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        raise ReasonInvalid(f"a reason is at most {MAX_REASON_CHARS} characters,"
                             f" got {len(reason)}")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000
           for c in reason):
        raise ReasonInvalid("a reason must not hold control characters")
    return reason


def _defense_started_at(db: sqlite_utils.Database, day_id: int,
                        person_id: int) -> float | None:
    row = db.execute(
        "SELECT at FROM journal WHERE day_id = ? AND kind = ?"
        " AND json_extract(detail, '$.type') = ? AND json_extract(detail, '$.student') = ?"
        " ORDER BY id LIMIT 1",
        [day_id, EVENT_KIND, ev.StartDefense.__name__, str(person_id)]).fetchone()
    return float(row[0]) if row is not None else None


def _newest(db: sqlite_utils.Database, person_id: int, kind: DocumentKind,
            before: float | None = None) -> DocumentVersion | None:
    row = db.execute(
        f"SELECT {_COLUMNS} FROM documents d JOIN people p ON p.id = d.person_id"
        " WHERE d.person_id = ? AND d.kind = ? AND d.sha256 IS NOT NULL"
        " AND (? IS NULL OR d.uploaded_at <= ?) ORDER BY d.id DESC LIMIT 1",
        [person_id, DocumentKind(kind).value, before, before]).fetchone()
    return _version(row) if row is not None else None


def _version(row: Any) -> DocumentVersion:
    return DocumentVersion(row[0], row[1], row[2], DocumentKind(row[3]), row[4], row[5],
                           row[6], row[7], row[8])


def _student_day(db: sqlite_utils.Database, person_id: int) -> int:
    row = db.execute("SELECT day_id FROM people WHERE id = ?", [person_id]).fetchone()
    if row is None:
        raise NotFoundError(f"no person with id {person_id}")
    return int(row[0])
