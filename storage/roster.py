"""The roster of a defense day: its students, their consent and documents.

A day is created from a validated `DaySpec` (the day file's parser,
`server.dayfile`, and the day API produce one): the day and every invite go
through `InviteStore` (one token per person: commission and students), then the
students' rows, consents and documents are written in one transaction. Every
change appends to the hash-chained journal inside the same write that makes it,
so the journal never shows a change that did not commit, or misses one that did.
"""

from __future__ import annotations

import datetime
import logging
import sqlite3
import zoneinfo
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from orchestrator.documents import DocumentKind

from .db import Database
from .errors import NotFoundError, StorageError
from .invites import DefenseDay, InviteStore, IssuedInvite, Role
from .journal import append_event, encode_detail

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    """A document on file, and when it was uploaded."""

    kind: DocumentKind
    uploaded_at: datetime.datetime  # time-zone aware


@dataclass(frozen=True, slots=True)
class StudentSpec:
    """One student of the day, in queue order."""

    name: str
    thesis_title: str
    supervisor: str
    reviewer: str
    timezone: str
    consent_at: datetime.datetime | None  # None: no consent on file
    documents: tuple[DocumentSpec, ...]


@dataclass(frozen=True, slots=True)
class CommissionSpec:
    """The state examination commission (ГЭК) of the day."""

    chair: str
    members: tuple[str, ...]
    secretary: str


@dataclass(frozen=True, slots=True)
class DaySpec:
    """A validated defense day file."""

    title: str
    date: datetime.date
    start: datetime.time
    timezone: str
    norm_control_required: bool
    commission: CommissionSpec
    students: tuple[StudentSpec, ...]

    @property
    def starts_at(self) -> float:
        """Unix time of the start of the sitting."""
        moment = datetime.datetime.combine(
            self.date, self.start, tzinfo=zoneinfo.ZoneInfo(self.timezone))
        return moment.timestamp()


@dataclass(frozen=True, slots=True)
class Document:
    """A document on file for a student."""

    kind: DocumentKind
    uploaded_at: float


@dataclass(frozen=True, slots=True)
class RosterStudent:
    """A student of a day as the roster keeps them."""

    person_id: int
    day_id: int
    name: str
    thesis_title: str
    supervisor: str
    reviewer: str
    timezone: str
    consent_at: float | None
    queue_position: int
    documents: tuple[Document, ...]


@dataclass(frozen=True, slots=True)
class DayRoster:
    """A day with what the readiness report needs to know about it."""

    day: DefenseDay
    norm_control_required: bool
    students: tuple[RosterStudent, ...]


@dataclass(frozen=True, slots=True)
class CreatedDay:
    """A freshly created day and its invites (commission first, then students)."""

    day_id: int
    invites: tuple[IssuedInvite, ...]


class RosterStore:
    """Creates days from a spec, keeps their students, consents and documents."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._invites = InviteStore(db)

    async def create_day(self, spec: DaySpec, *, expires_at: float, now: float) -> CreatedDay:
        """Create the day, invite its commission and students, write the roster."""
        day_id = await self._invites.create_day(
            spec.title, spec.date, spec.starts_at, spec.timezone, now=now)
        commission = [
            (Role.CHAIR, spec.commission.chair),
            *((Role.MEMBER, name) for name in spec.commission.members),
            (Role.SECRETARY, spec.commission.secretary),
        ]
        invites = [
            await self._invites.issue(day_id, role, name, expires_at, now=now)
            for role, name in commission
        ]
        students = [
            await self._invites.issue(day_id, Role.STUDENT, student.name, expires_at, now=now)
            for student in spec.students
        ]

        def write(db: sqlite_utils.Database) -> None:
            db.execute("UPDATE defense_days SET norm_control_required = ? WHERE id = ?",
                       [int(spec.norm_control_required), day_id])
            _journal(db, now, day_id, None, "roster_settings",
                     {"norm_control_required": spec.norm_control_required})
            for position, (invite, student) in enumerate(zip(students, spec.students), 1):
                db.execute(
                    "INSERT INTO students (person_id, thesis_title, supervisor, reviewer,"
                    " timezone, consent_at, queue_position) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                    [invite.person_id, student.thesis_title, student.supervisor,
                     student.reviewer, student.timezone, position],
                )
                _journal(db, now, day_id, invite.person_id, "student_added", {
                    "thesis_title": student.thesis_title, "supervisor": student.supervisor,
                    "reviewer": student.reviewer, "timezone": student.timezone,
                    "queue_position": position,
                })
                if student.consent_at is not None:
                    _record_consent(db, invite.person_id, student.consent_at.timestamp(), now)
                for document in student.documents:
                    _record_document(db, invite.person_id, document.kind,
                                     document.uploaded_at.timestamp(), now)

        await self._db.execute_write(write)
        logger.info("defense day %s created from a day file with %s students",
                    day_id, len(students))
        return CreatedDay(day_id, tuple(invites + students))

    async def update_student(
        self,
        person_id: int,
        *,
        now: float,
        thesis_title: str | None = None,
        supervisor: str | None = None,
        reviewer: str | None = None,
        timezone: str | None = None,
        queue_position: int | None = None,
    ) -> None:
        """Change some of a student's fields; the journal records the new values."""
        changes: dict[str, Any] = {}
        for column, value in (("thesis_title", thesis_title), ("supervisor", supervisor),
                              ("reviewer", reviewer)):
            if value is not None:
                if not value.strip():
                    raise StorageError(f"a student's {column} must not be empty")
                changes[column] = value.strip()
        if timezone is not None:
            try:
                zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise StorageError(f"unknown time zone {timezone!r}") from exc
            changes["timezone"] = timezone
        if queue_position is not None:
            if queue_position < 1:
                raise StorageError(f"queue position must be 1 or more, got {queue_position}")
            changes["queue_position"] = queue_position
        if not changes:
            return

        def write(db: sqlite_utils.Database) -> None:
            day_id = _student_day(db, person_id)
            assignments = ", ".join(f"{column} = ?" for column in changes)
            db.execute(f"UPDATE students SET {assignments} WHERE person_id = ?",
                       [*changes.values(), person_id])
            _journal(db, now, day_id, person_id, "student_updated", changes)

        await self._db.execute_write(write)

    async def record_consent(self, person_id: int, consent_at: float, *, now: float) -> None:
        """Record consent to personal-data processing; the first consent stays."""
        await self._db.execute_write(
            lambda db: _record_consent(db, person_id, consent_at, now))

    async def record_document(
        self, person_id: int, kind: DocumentKind, uploaded_at: float, *, now: float
    ) -> None:
        """Record that a student's document was uploaded at `uploaded_at`."""
        kind = DocumentKind(kind)
        await self._db.execute_write(
            lambda db: _record_document(db, person_id, kind, uploaded_at, now))

    async def list_students(self, day_id: int) -> list[RosterStudent]:
        """The day's students in queue order (ties: in order of invitation)."""

        def read(db: sqlite_utils.Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            students = list(db.query(
                "SELECT s.*, p.day_id, p.name FROM students s JOIN people p ON p.id = s.person_id"
                " WHERE p.day_id = ? ORDER BY s.queue_position, s.person_id", [day_id]))
            documents = list(db.query(
                "SELECT d.person_id, d.kind, d.uploaded_at FROM documents d"
                " JOIN people p ON p.id = d.person_id WHERE p.day_id = ?"
                " ORDER BY d.uploaded_at, d.id", [day_id]))
            return students, documents

        rows, document_rows = await self._db.execute_read(read)
        documents: dict[int, list[Document]] = {}
        for row in document_rows:
            documents.setdefault(row["person_id"], []).append(
                Document(DocumentKind(row["kind"]), row["uploaded_at"]))
        return [
            RosterStudent(
                person_id=row["person_id"], day_id=row["day_id"], name=row["name"],
                thesis_title=row["thesis_title"], supervisor=row["supervisor"],
                reviewer=row["reviewer"], timezone=row["timezone"],
                consent_at=row["consent_at"], queue_position=row["queue_position"],
                documents=tuple(documents.get(row["person_id"], ())),
            )
            for row in rows
        ]

    async def day_roster(self, day_id: int) -> DayRoster:
        """The day, its norm-control flag and its students; NotFoundError if none."""
        day = await self._invites.get_day(day_id)

        def read(db: sqlite_utils.Database) -> int:
            row = db.execute("SELECT norm_control_required FROM defense_days WHERE id = ?",
                             [day_id]).fetchone()
            return int(row[0]) if row is not None else 0

        norm = await self._db.execute_read(read)
        return DayRoster(day, bool(norm), tuple(await self.list_students(day_id)))


def _student_day(db: sqlite_utils.Database, person_id: int) -> int:
    row = db.execute(
        "SELECT p.day_id FROM students s JOIN people p ON p.id = s.person_id"
        " WHERE s.person_id = ?", [person_id]).fetchone()
    if row is None:
        raise NotFoundError(f"no student on a roster with person id {person_id}")
    return int(row[0])


def _record_consent(db: sqlite_utils.Database, person_id: int, at: float, now: float) -> None:
    day_id = _student_day(db, person_id)
    row = db.execute("SELECT consent_at FROM students WHERE person_id = ?",
                     [person_id]).fetchone()
    if row[0] is not None and row[0] <= at:
        return  # consent only moves forward: the earliest one on file stands
    db.execute("UPDATE students SET consent_at = ? WHERE person_id = ?", [at, person_id])
    _journal(db, now, day_id, person_id, "consent_recorded", {"consent_at": at})


def _record_document(
    db: sqlite_utils.Database, person_id: int, kind: DocumentKind, at: float, now: float
) -> None:
    day_id = _student_day(db, person_id)
    try:
        db.execute("INSERT INTO documents (person_id, kind, uploaded_at) VALUES (?, ?, ?)",
                   [person_id, kind.value, at])
    except sqlite3.IntegrityError as exc:  # the CHECK on kind; cannot happen via DocumentKind
        raise StorageError(f"cannot record document {kind!r}: {exc}") from exc
    _journal(db, now, day_id, person_id, "document_recorded",
             {"kind": kind.value, "uploaded_at": at,
              "uploaded_on": datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat()})


def _journal(
    db: sqlite_utils.Database, at: float, day_id: int, person_id: int | None, kind: str,
    detail: dict[str, Any],
) -> None:
    # Inside the caller's write, so the event commits together with the change.
    append_event(db, at=at, day_id=day_id, person_id=person_id, kind=kind,
                 detail_json=encode_detail(detail))
