"""A defense day as it is described before it exists: the commission, the students
in queue order, and who else is invited.

The day file's parser (`server.dayfile`), the day API and the demo produce a
`DaySpec`; `storage.roster.RosterStore.create_day` turns it into a day, its invites
and its roster. Values here are already validated; the names and titles are checked
once more on construction (`storage.clean_text`), so that whatever builds a spec, no
name reaching a protocol holds a control or bidirectional character.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo
from dataclasses import dataclass

from orchestrator.documents import DocumentKind
from orchestrator.model import Role

from .clean_text import NAME_CHARS, TITLE_CHARS, TextRefused, check_text

#: Who attends besides the commission and the students (rule P1, clauses 4.2, 4.8).
#: They wait in the lobby like the students and never vote.
GUEST_ROLES = (Role.SUPERVISOR, Role.REVIEWER, Role.OBSERVER)

#: Adjusted time (clause 4.3) is a percent added to a student's limits, at most double.
MAX_EXTRA_TIME_PERCENT = 100.0

#: The languages a person's mail is written in; Russian unless a contact says otherwise.
LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"

#: RFC 5321 caps a forward path at 254 characters.
MAX_EMAIL_CHARS = 254

# A plain, strict address: ASCII dot-atoms on both sides, a domain of at least two
# labels (no IP literals, no quoted local parts, no internationalized names).
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL_RE = re.compile(rf"{_LOCAL}@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}")


def email_problem(value: str) -> str | None:
    """Why `value` is not a plain e-mail address, as the end of a sentence; None if it is."""
    if len(value) > MAX_EMAIL_CHARS:
        return f"is longer than {MAX_EMAIL_CHARS} characters"
    local, _, _ = value.partition("@")
    if not _EMAIL_RE.fullmatch(value) or len(local) > 64:
        return "is not an e-mail address like name@university.example"
    return None


def check_email(value: str, whose: str) -> str:
    """`value` stripped if it is a plain address; `TextRefused` naming `whose` if not."""
    address = value.strip()
    problem = email_problem(address)
    if problem is not None:
        shown = address if len(address) <= 60 else address[:60] + "…"
        raise TextRefused(f"the e-mail address of {whose} {problem}, got {shown!r}")
    return address


def check_language(value: str, whose: str) -> str:
    """`value` if mail can be written in it (`LANGUAGES`); `TextRefused` if not."""
    if value not in LANGUAGES:
        raise TextRefused(f"the language of {whose} must be one of {', '.join(LANGUAGES)},"
                          f" got {value[:20]!r}")
    return value


@dataclass(frozen=True, slots=True)
class ContactSpec:
    """How to reach a person by e-mail, and in which language (`LANGUAGES`)."""

    email: str | None = None
    language: str = DEFAULT_LANGUAGE

    def checked(self, whose: str) -> ContactSpec:
        """This contact validated (the address stripped); `TextRefused` naming `whose`."""
        email = None if self.email is None else check_email(self.email, whose)
        return ContactSpec(email, check_language(self.language, whose))


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
    supervisor: str  # named here, invited as the supervisor (see `DaySpec.guests`)
    reviewer: str  # likewise, as the reviewer
    timezone: str
    consent_at: datetime.datetime | None  # None: no consent on file
    documents: tuple[DocumentSpec, ...]
    #: Clause 4.3: percent added to the talk, the questions and the whole defense.
    extra_time_percent: float = 0.0
    #: The student's e-mail and language (the CSV's ``email`` and ``language`` columns).
    contact: ContactSpec | None = None

    def __post_init__(self) -> None:
        for what, value in (("name", self.name), ("supervisor", self.supervisor),
                            ("reviewer", self.reviewer)):
            check_text(value, f"the student's {what} {value[:40]!r}", max_chars=NAME_CHARS)
        check_text(self.thesis_title, f"the thesis title of {self.name!r}",
                   max_chars=TITLE_CHARS)
        if self.contact is not None:
            self.contact.checked(repr(self.name))


@dataclass(frozen=True, slots=True)
class CommissionSpec:
    """The state examination commission (ГЭК) of the day."""

    chair: str
    members: tuple[str, ...]
    secretary: str

    def __post_init__(self) -> None:
        for name in (self.chair, *self.members, self.secretary):
            check_text(name, f"the commission's name {name[:40]!r}", max_chars=NAME_CHARS)


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
    #: People who only watch (rule P1), invited with the day.
    observers: tuple[str, ...] = ()
    #: E-mail and language by person name (the day file's ``contacts``): anyone
    #: invited with the day; a student's may come with the student instead.
    contacts: tuple[tuple[str, ContactSpec], ...] = ()

    def __post_init__(self) -> None:
        check_text(self.title, "the day's title", max_chars=NAME_CHARS)
        for name in self.observers:
            check_text(name, f"the observer's name {name[:40]!r}", max_chars=NAME_CHARS)
        invited = self.taken_names() | {name for _, name in self.guests()}
        own = {s.name for s in self.students if s.contact is not None}
        seen: set[str] = set()
        for name, contact in self.contacts:
            if name not in invited:
                raise TextRefused(f"contacts name {name[:60]!r}, who is not invited to the day")
            if name in seen or name in own:
                raise TextRefused(f"the contact of {name[:60]!r} is given twice")
            seen.add(name)
            contact.checked(repr(name))

    def contact(self, name: str) -> ContactSpec | None:
        """The e-mail and language of the person invited as `name`, if given."""
        for student in self.students:
            if student.name == name and student.contact is not None:
                return student.contact.checked(repr(name))
        for named, contact in self.contacts:
            if named == name:
                return contact.checked(repr(name))
        return None

    @property
    def starts_at(self) -> float:
        """Unix time of the start of the sitting."""
        moment = datetime.datetime.combine(
            self.date, self.start, tzinfo=zoneinfo.ZoneInfo(self.timezone))
        return moment.timestamp()

    def taken_names(self) -> frozenset[str]:
        """The names of the commission and the students: they have their own links."""
        commission = self.commission
        return frozenset({commission.chair, commission.secretary, *commission.members,
                          *(s.name for s in self.students)})

    def guests(self) -> tuple[tuple[Role, str], ...]:
        """Who is invited besides the commission and the students (rule P1): every
        supervisor, then every reviewer named for a student, then the observers.

        One invite per name (names are all a day file knows of a person): a supervisor
        of several students, or one who also reviews, gets one link, as a supervisor;
        a name already on the commission or a student's gets none, their own link
        serves.
        """
        taken = set(self.taken_names())
        named = [*((Role.SUPERVISOR, s.supervisor) for s in self.students),
                 *((Role.REVIEWER, s.reviewer) for s in self.students),
                 *((Role.OBSERVER, name) for name in self.observers)]
        found: list[tuple[Role, str]] = []
        for role, name in named:
            if name not in taken:
                taken.add(name)
                found.append((role, name))
        return tuple(found)
