"""The roster of a defense day: its people, its students, their consent and documents.

A day is created from a validated `DaySpec` (`storage.dayspec`; the day file's
parser, `server.dayfile`, and the day API produce one): the day and every invite go
through `InviteStore` (one token per person: the commission, the students, then the
supervisors, reviewers and observers, `DaySpec.guests`), then the students' rows,
consents and documents are written in one transaction. The secretary may add a
supervisor, reviewer or observer later, until the sitting opens. Every change
appends to the hash-chained journal inside the same write that makes it, so the
journal never shows a change that did not commit, or misses one that did.

What the procedure takes from the roster when it starts (the people, each student's
adjusted time) is fixed once the sitting has opened (`OpenSitting` in the journal):
changing it then is refused with `RosterRefused`.
"""

from __future__ import annotations

import datetime
import enum
import logging
import sqlite3
import zoneinfo
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from orchestrator import events as ev
from orchestrator.documents import DocumentKind

from .appeals import DayKind
from .clean_text import NAME_CHARS, TITLE_CHARS, check_text
from .dayspec import GUEST_ROLES as GUEST_ROLES
from .dayspec import MAX_EXTRA_TIME_PERCENT, check_email, check_language
from .dayspec import CommissionSpec as CommissionSpec
from .dayspec import ContactSpec as ContactSpec
from .dayspec import DaySpec as DaySpec
from .dayspec import DocumentSpec as DocumentSpec
from .dayspec import StudentSpec as StudentSpec
from .db import Database
from .errors import NotFoundError, RosterRefused, StorageError
from .invites import DefenseDay, InviteStore, IssuedInvite, Person, Role, issue_invite
from .journal import append_event, encode_detail, procedure_logged

logger = logging.getLogger(__name__)


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
    extra_time_percent: float = 0.0  # clause 4.3


@dataclass(frozen=True, slots=True)
class DayRoster:
    """A day with what the readiness report needs to know about it."""

    day: DefenseDay
    norm_control_required: bool
    students: tuple[RosterStudent, ...]


@dataclass(frozen=True, slots=True)
class CreatedDay:
    """A freshly created day and its invites: `invites` the commission's first, then
    the students'; `guests` the supervisors', reviewers' and observers'."""

    day_id: int
    invites: tuple[IssuedInvite, ...]
    guests: tuple[IssuedInvite, ...] = ()

    @property
    def everyone(self) -> tuple[IssuedInvite, ...]:
        """Every invite of the day, in the order above: the links to hand out."""
        return self.invites + self.guests


class Keep(enum.Enum):
    """`RosterStore.set_contact`: leave this field as it is."""

    KEEP = "keep"


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
        guests = [await self._invites.issue(day_id, role, name, expires_at, now=now)
                  for role, name in spec.guests()]

        def write(db: sqlite_utils.Database) -> None:
            for invite in (*invites, *students, *guests):
                contact = spec.contact(invite.name)
                if contact is not None:
                    _write_contact(db, now, day_id, invite.person_id, contact.email,
                                   contact.language, None)
            db.execute("UPDATE defense_days SET norm_control_required = ? WHERE id = ?",
                       [int(spec.norm_control_required), day_id])
            _journal(db, now, day_id, None, "roster_settings",
                     {"norm_control_required": spec.norm_control_required})
            for position, (invite, student) in enumerate(zip(students, spec.students), 1):
                db.execute(
                    "INSERT INTO students (person_id, thesis_title, supervisor, reviewer,"
                    " timezone, consent_at, queue_position, extra_time_percent)"
                    " VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
                    [invite.person_id, student.thesis_title, student.supervisor,
                     student.reviewer, student.timezone, position,
                     _percent(student.extra_time_percent)],
                )
                _journal(db, now, day_id, invite.person_id, "student_added", {
                    "thesis_title": student.thesis_title, "supervisor": student.supervisor,
                    "reviewer": student.reviewer, "timezone": student.timezone,
                    "queue_position": position,
                    "extra_time_percent": student.extra_time_percent,
                })
                if student.consent_at is not None:
                    _record_consent(db, invite.person_id, student.consent_at.timestamp(), now)
                for document in student.documents:
                    _record_document(db, invite.person_id, document.kind,
                                     document.uploaded_at.timestamp(), now)

        await self._db.execute_write(write)
        logger.info("defense day %s created from a day file with %s students and %s guests",
                    day_id, len(students), len(guests))
        return CreatedDay(day_id, tuple(invites + students), tuple(guests))

    async def add_person(self, day_id: int, role: Role, name: str, *, expires_at: float,
                         by: int | None, now: float) -> IssuedInvite:
        """Invite a supervisor, reviewer or observer to a day already created (rule P1);
        `by` is who asked (the secretary), for the journal.

        `RosterRefused` for an appeal sitting (its people come with its scheduling), a
        name already invited to the day (one person, one link), and once the sitting
        has opened (the procedure takes the day's people when it starts).
        """
        role = Role(role)
        name = check_text(name.strip(), "a person's name", max_chars=NAME_CHARS)
        if role not in GUEST_ROLES:
            raise StorageError(f"only {', '.join(GUEST_ROLES)} are added to a day, not {role}")

        def write(db: sqlite_utils.Database) -> IssuedInvite:
            row = db.execute("SELECT kind FROM defense_days WHERE id = ?", [day_id]).fetchone()
            if row is None:
                raise NotFoundError(f"no defense day with id {day_id}")
            if row[0] == DayKind.APPEAL:
                raise RosterRefused(f"day {day_id} is an appeal sitting: its people are invited"
                                    " when it is scheduled")
            _require_not_opened(db, day_id, "people are added to a day before its sitting"
                                " opens; the procedure knows only those invited by then")
            same = db.execute("SELECT id, role FROM people WHERE day_id = ? AND name = ?"
                              " AND revoked_at IS NULL", [day_id, name]).fetchone()
            if same is not None:
                raise RosterRefused(f"{name} is already invited to day {day_id} (person"
                                    f" {same[0]}, {same[1]}); one person has one link")
            invite = issue_invite(db, day_id, role, name, expires_at, now)
            _journal(db, now, day_id, invite.person_id, "person_added",
                     {"role": role.value, "name": name, "added_by": by})
            return invite

        invite = await self._db.execute_write(write)
        logger.info("day %s: %s person %s added", day_id, role, invite.person_id)
        return invite

    async def set_contact(self, person_id: int, *, now: float, by: int | str | None,
                          email: str | None | Keep = Keep.KEEP,
                          language: str | Keep = Keep.KEEP) -> Person:
        """Change a person's e-mail address (None: none) and/or mail language; `by` (a
        person id, or "organizer") is journaled, the address itself is not (the journal
        is kept for good). Returns the person as they are now."""
        rows = await self._db.query("SELECT name, email, language FROM people WHERE id = ?",
                                    [person_id])
        if not rows:
            raise NotFoundError(f"no invited person {person_id}")
        whose = repr(rows[0]["name"])
        new_email = rows[0]["email"] if isinstance(email, Keep) else (
            None if email is None else check_email(email, whose))
        new_language = rows[0]["language"] if isinstance(language, Keep) else check_language(
            language, whose)

        def write(db: sqlite_utils.Database) -> None:
            row = db.execute("SELECT day_id FROM people WHERE id = ?", [person_id]).fetchone()
            if row is None:
                raise NotFoundError(f"no invited person {person_id}")
            _write_contact(db, now, int(row[0]), person_id, new_email, new_language, by)

        await self._db.execute_write(write)
        person = await self._invites.person(person_id)
        assert person is not None
        return person

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
        extra_time_percent: float | None = None,
    ) -> None:
        """Change some of a student's fields; the journal records the new values.

        The adjusted time (clause 4.3) is set before the day: `RosterRefused` once the
        sitting has opened.
        """
        changes: dict[str, Any] = {}
        for column, value in (("thesis_title", thesis_title), ("supervisor", supervisor),
                              ("reviewer", reviewer)):
            if value is not None:
                if not value.strip():
                    raise StorageError(f"a student's {column} must not be empty")
                changes[column] = check_text(
                    value.strip(), f"a student's {column}",
                    max_chars=TITLE_CHARS if column == "thesis_title" else NAME_CHARS)
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
        if extra_time_percent is not None:
            changes["extra_time_percent"] = _percent(extra_time_percent)
        if not changes:
            return

        def write(db: sqlite_utils.Database) -> None:
            day_id = _student_day(db, person_id)
            if "extra_time_percent" in changes:
                _require_not_opened(db, day_id, "a student's adjusted time is set before the"
                                    " day (clause 4.3)", clause="4.3")
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
                extra_time_percent=row["extra_time_percent"],
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


def _write_contact(db: sqlite_utils.Database, now: float, day_id: int, person_id: int,
                   email: str | None, language: str, by: int | str | None) -> None:
    db.execute("UPDATE people SET email = ?, language = ? WHERE id = ?",
               [email, language, person_id])
    detail: dict[str, Any] = {"has_email": email is not None, "language": language}
    if by is not None:
        detail["by"] = by
    _journal(db, now, day_id, person_id, "contact_set", detail)


def _student_day(db: sqlite_utils.Database, person_id: int) -> int:
    row = db.execute(
        "SELECT p.day_id FROM students s JOIN people p ON p.id = s.person_id"
        " WHERE s.person_id = ?", [person_id]).fetchone()
    if row is None:
        raise NotFoundError(f"no student on a roster with person id {person_id}")
    return int(row[0])


def _percent(value: float) -> float:
    if not 0 <= value <= MAX_EXTRA_TIME_PERCENT:  # also refuses NaN
        raise StorageError(f"extra time must be from 0 to {MAX_EXTRA_TIME_PERCENT:g} percent,"
                           f" got {value!r}")
    return float(value)


def _require_not_opened(db: sqlite_utils.Database, day_id: int, why: str,
                        clause: str | None = None) -> None:
    if procedure_logged(db, day_id, ev.OpenSitting):
        raise RosterRefused(f"the sitting of day {day_id} has opened: {why}", clause)


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


# -- The student's own consents (clause 6.6; issue 15) -----------------------------------

#: What a student consents to from their page.
PERSONAL_DATA = "personal_data"
ELIBRARY = "elibrary"


@dataclass(frozen=True, slots=True)
class ConsentOnFile:
    """One consent as it stands: the choice, when, and how it came (the student's
    page, or paper recorded by the secretary)."""

    choice: bool
    at: float
    how: str  # "page" or "paper"


@dataclass(frozen=True, slots=True)
class StudentConsents:
    """A student's consents on file; None where nothing was said yet."""

    personal_data: ConsentOnFile | None
    elibrary: ConsentOnFile | None


class ConsentStore:
    """The student's own consent statements (migration 0015). Personal-data consent
    also sets ``students.consent_at``, so it counts for B1 exactly like the paper one
    (`RosterStore.record_consent`); it is never withdrawn here (the secretary handles
    a withdrawal). The e-library choice may change; every statement is a new row and
    a ``student_consent`` journal event, in one write."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def give(self, person_id: int, *, personal_data: bool, elibrary: bool | None,
                   by: int, now: float) -> StudentConsents:
        """Record what the student said on their page; `personal_data` False records
        nothing for it (withdrawal is not offered), `elibrary` None leaves it as is."""

        def write(db: sqlite_utils.Database) -> None:
            day_id = _student_day(db, person_id)
            said: dict[str, Any] = {}
            if personal_data:
                _record_consent(db, person_id, now, now)
                current = _newest_consent(db, person_id, PERSONAL_DATA)
                if current is None:
                    _insert_consent(db, person_id, PERSONAL_DATA, True, by, now)
                    said[PERSONAL_DATA] = True
            if elibrary is not None:
                current = _newest_consent(db, person_id, ELIBRARY)
                if current is None or current.choice is not elibrary:
                    _insert_consent(db, person_id, ELIBRARY, elibrary, by, now)
                    said[ELIBRARY] = elibrary
            if said:
                _journal(db, now, day_id, person_id, "student_consent",
                         {**said, "how": "page", "by": by})

        await self._db.execute_write(write)
        logger.info("student %s gave consents on their page", person_id)
        return await self.on_file(person_id)

    async def on_file(self, person_id: int) -> StudentConsents:
        """What stands now; personal data from the paper ``consent_at`` when the
        student never consented on the page."""

        def read(db: sqlite_utils.Database) -> StudentConsents:
            _student_day(db, person_id)
            page = _newest_consent(db, person_id, PERSONAL_DATA)
            row = db.execute("SELECT consent_at FROM students WHERE person_id = ?",
                             [person_id]).fetchone()
            paper = row[0] if row is not None else None
            personal: ConsentOnFile | None = page
            if paper is not None and (page is None or paper < page.at):
                personal = ConsentOnFile(True, float(paper), "paper")
            return StudentConsents(personal, _newest_consent(db, person_id, ELIBRARY))

        return await self._db.execute_read(read)


def _newest_consent(db: sqlite_utils.Database, person_id: int,
                    kind: str) -> ConsentOnFile | None:
    row = db.execute("SELECT choice, at, how FROM student_consents WHERE person_id = ?"
                     " AND kind = ? ORDER BY id DESC LIMIT 1", [person_id, kind]).fetchone()
    return ConsentOnFile(bool(row[0]), float(row[1]), str(row[2])) if row is not None else None


def _insert_consent(db: sqlite_utils.Database, person_id: int, kind: str, choice: bool,
                    by: int, now: float) -> None:
    db.execute("INSERT INTO student_consents (person_id, kind, choice, how, at, by_person)"
               " VALUES (?, ?, ?, 'page', ?, ?)", [person_id, kind, int(choice), now, by])
