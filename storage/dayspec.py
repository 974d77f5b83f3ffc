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
import zoneinfo
from dataclasses import dataclass

from orchestrator.documents import DocumentKind
from orchestrator.model import Role

from .clean_text import NAME_CHARS, TITLE_CHARS, check_text

#: Who attends besides the commission and the students (rule P1, clauses 4.2, 4.8).
#: They wait in the lobby like the students and never vote.
GUEST_ROLES = (Role.SUPERVISOR, Role.REVIEWER, Role.OBSERVER)

#: Adjusted time (clause 4.3) is a percent added to a student's limits, at most double.
MAX_EXTRA_TIME_PERCENT = 100.0


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

    def __post_init__(self) -> None:
        for what, value in (("name", self.name), ("supervisor", self.supervisor),
                            ("reviewer", self.reviewer)):
            check_text(value, f"the student's {what} {value[:40]!r}", max_chars=NAME_CHARS)
        check_text(self.thesis_title, f"the thesis title of {self.name!r}",
                   max_chars=TITLE_CHARS)


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

    def __post_init__(self) -> None:
        check_text(self.title, "the day's title", max_chars=NAME_CHARS)
        for name in self.observers:
            check_text(name, f"the observer's name {name[:40]!r}", max_chars=NAME_CHARS)

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
