"""Closed sets, people, the defense day, settings and the state snapshot."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .documents import DocumentKind
from .quorum import Quorum


class Role(enum.StrEnum):
    """What a person does at a defense; decides what they may see and do.

    The one definition of roles: invites (storage) bind tokens to these values.
    """

    CHAIR = "chair"
    MEMBER = "member"
    SECRETARY = "secretary"
    STUDENT = "student"
    SUPERVISOR = "supervisor"
    REVIEWER = "reviewer"
    OBSERVER = "observer"
    #: The appeal commission (АК, section 8): it hears appeals and one of them
    #: attends a repeated defense (clause 8.8).
    APPEAL_CHAIR = "appeal_chair"
    APPEAL_MEMBER = "appeal_member"


#: The commission (ГЭК): chair, members and secretary. Only they stay in the closed
#: sitting (clause 7.12).
COMMISSION_ROLES = frozenset({Role.CHAIR, Role.MEMBER, Role.SECRETARY})

#: Quorum (clause 7.2) and voting (clause 7.12) count the "members of the
#: commission" who grade: the chair and the members. The secretary keeps the record
#: and neither votes nor counts towards the two thirds.
VOTING_ROLES = frozenset({Role.CHAIR, Role.MEMBER})

APPEAL_ROLES = frozenset({Role.APPEAL_CHAIR, Role.APPEAL_MEMBER})

#: The chair and the secretary keep the day's records: they see its recordings
#: through the retention month (R1) and hold them for an appeal.
OFFICE_ROLES = frozenset({Role.CHAIR, Role.SECRETARY})


class Phase(enum.Enum):
    WAITING = "waiting"
    OPENING = "opening"
    IDENTIFICATION = "identification"
    ANNOUNCEMENT = "announcement"
    TALK = "talk"
    QUESTIONS = "questions"
    SUPERVISOR = "supervisor"
    REVIEW = "review"
    ANSWER = "answer"
    FINAL_WORD = "final_word"
    BETWEEN_DEFENSES = "between_defenses"
    CLOSED_SITTING = "closed_sitting"
    RESULTS = "results"
    CLOSED = "closed"


class Grade(enum.Enum):
    EXCELLENT = "excellent"
    GOOD = "good"
    SATISFACTORY = "satisfactory"
    UNSATISFACTORY = "unsatisfactory"


class StudentStatus(enum.Enum):
    WAITING = "waiting"
    IDENTIFIED = "identified"
    DEFENDING = "defending"
    DEFENDED = "defended"
    ABSENT = "absent"
    #: Absent for a valid reason (clauses 7.8, 7.9): the defense goes to another day.
    RESCHEDULED = "rescheduled"


#: A student in one of these needs nothing more today.
RESOLVED_STATUSES = frozenset(
    {StudentStatus.DEFENDED, StudentStatus.ABSENT, StudentStatus.RESCHEDULED}
)


class AbsenceFrom(enum.Enum):
    """Where the absence grace period of clause 7.9 is counted from."""

    #: From the opening of the sitting.
    START = "from_start"
    #: From the moment the secretary calls the student to their defense.
    CALL = "from_call"


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class DefenseDay:
    """One commission sitting with a group of students.

    `people` lists everyone who may join; the order of the students in it is the
    initial queue.
    """

    people: tuple[Person, ...]
    scheduled_start: float
    #: A repeated defense after an upheld appeal: it starts only with a member of the
    #: appeal commission present (clause 8.8).
    repeat: bool = False
    #: Adjusted time (clause 4.3, students with disabilities): (student, percent)
    #: added to the talk, the questions and the whole defense. Set before the day.
    extra_time_percent: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        ids = [p.person_id for p in self.people]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate person ids in the defense day: {ids}")
        chairs = [p for p in self.people if p.role is Role.CHAIR]
        if len(chairs) != 1:
            raise ValueError(f"a defense day needs exactly one chair, got {len(chairs)}")

    @property
    def chair(self) -> Person:
        return next(p for p in self.people if p.role is Role.CHAIR)

    @property
    def students(self) -> tuple[str, ...]:
        return tuple(p.person_id for p in self.people if p.role is Role.STUDENT)

    @property
    def voting_members(self) -> frozenset[str]:
        return frozenset(p.person_id for p in self.people if p.role in VOTING_ROLES)

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.person_id == person_id), None)

    def time_factor(self, student: str) -> float:
        """How much longer `student`'s limits are than the settings say (4.3)."""
        return 1 + dict(self.extra_time_percent).get(student, 0.0) / 100


@dataclass(frozen=True, slots=True)
class Settings:
    """Phase lengths and grace periods (config, not constants)."""

    talk_minutes: float = 10
    questions_minutes: float = 15
    defense_max_minutes: float = 30
    warning_before_s: float = 60
    absence_grace_minutes: float = 15
    absence_from: AbsenceFrom = AbsenceFrom.START
    failure_grace_minutes: float = 15
    queue_lock_minutes: float = 30
    #: The last moment of the attestation period (unix seconds): a moved defense
    #: gets a new date no later than this (clause 7.8). 0: not configured.
    attestation_period_end: float = 0.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What everyone in the room may see; timestamps, never countdowns."""

    phase: Phase
    current_student: str | None
    queue: tuple[str, ...]
    statuses: tuple[tuple[str, StudentStatus], ...]
    present: frozenset[str]
    quorum: Quorum
    recording: bool
    paused: bool
    phase_started_at: float | None
    phase_ends_at: float | None
    defense_ends_at: float | None
    phase_overtime: bool
    defense_overtime: bool
    #: When the students were told to come back for the results (clause 7.7).
    return_at: float | None
    #: Students whose consent to personal-data processing is on file (clause 6.6).
    consented: frozenset[str]
    #: Who waits in the lobby (the closed sitting, clause 7.12).
    lobby: frozenset[str]
    #: When the results were announced on the recording (clause 7.13).
    results_at: float | None = None
    #: Commission members the secretary marked as attending in person, in the
    #: university room around one device (clause 4.8).
    in_person: frozenset[str] = frozenset()
    #: Moved defenses (clause 7.8) as (student, new date).
    moved: tuple[tuple[str, float], ...] = ()
    #: The round of the vote for a student once the commission votes again (7.12).
    vote_rounds: tuple[tuple[str, int], ...] = ()
    #: Since when a failure stops the sitting (clause 7.8): quorum lost, the chair's,
    #: the secretary's or the defending student's link down. None: nothing fails.
    failure_since: float | None = None
    #: What fails, in words, while `failure_since` is set.
    failure: str = ""
    #: (student, kind) of every document on file that the procedure looks at.
    documents: frozenset[tuple[str, DocumentKind]] = frozenset()
    #: Why the recording broke (it is off, clause 7.11), until it runs again; "" if
    #: it did not.
    recording_failure: str = ""
