"""The defense protocol (rules V5, V6; clauses 7.8, 7.9, 7.12-7.15), built from the journal.

Everything a protocol states already happened through the procedure, so it is
derived, not typed: the day's steps (accepted events and deadline ticks, in journal
order) are replayed through a fresh `DefenseSession`, and its state is compared
before and after each step. The session stays the one owner of the rules.

The result is frozen data, a `StudentProtocol` per student inside a `DayProtocol`.
The same steps give the same protocol and the same `canonical_json`, whose SHA-256
(`content_hash`) members approve and the chair signs. Replay stops at the closing of
the sitting, so people leaving the room afterwards cannot change a protocol that is
being approved.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import events as ev
from .effects import Effect
from .effects import Overtime as OvertimeEffect
from .model import (
    COMMISSION_ROLES,
    VOTING_ROLES,
    DefenseDay,
    Grade,
    Phase,
    Role,
    Settings,
    Snapshot,
    StudentStatus,
)
from .replay import Entry, Step, replay
from .session import DefenseSession

#: The form of the sitting the protocol states (rule V5, clause 7.14).
FORM_OF_SITTING = "в форме видеоконференции с применением дистанционных образовательных технологий"


@dataclass(frozen=True, slots=True)
class SittingInfo:
    """What the database knows of the sitting; times are shown in `timezone` (IANA)."""

    title: str
    date: str  # ISO date
    timezone: str
    scheduled_start: float


@dataclass(frozen=True, slots=True)
class StudentInfo:
    thesis_title: str
    supervisor: str
    reviewer: str


@dataclass(frozen=True, slots=True)
class RecordingFile:
    """A finished recording: `path` relative to the day's folder, '/'-separated."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PersonEntry:
    person_id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float | None  # None: still lasting when the replay ended


@dataclass(frozen=True, slots=True)
class PhaseEntry:
    phase: Phase
    start: float
    end: float | None
    student: str | None


@dataclass(frozen=True, slots=True)
class Attendance:
    person: PersonEntry
    spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class IdentityEntry:
    at: float
    accepted: bool
    by: str
    comment: str


@dataclass(frozen=True, slots=True)
class Question:
    at: float
    text: str


@dataclass(frozen=True, slots=True)
class OvertimeEntry:
    at: float
    phase: Phase | None  # None: the limit of the whole defense


@dataclass(frozen=True, slots=True)
class Vote:
    member: PersonEntry
    grade: Grade
    at: float


class AbsenceKind(enum.Enum):
    ABSENT = "absent"  # not connected within the grace period (7.9)
    VALID_REASON = "valid_reason"  # absent for a valid reason, another day (7.9)
    MOVED = "moved"  # a technical failure past its grace period, moved by the chair (7.8)


@dataclass(frozen=True, slots=True)
class Absence:
    kind: AbsenceKind
    at: float
    clause: str
    description: str  # the reason or failure as typed in; empty for ABSENT


@dataclass(frozen=True, slots=True)
class StudentProtocol:
    """The protocol of one student's defense."""

    sitting: SittingInfo
    form: str
    commission: tuple[PersonEntry, ...]
    student: PersonEntry
    info: StudentInfo | None
    status: StudentStatus
    identity: tuple[IdentityEntry, ...]
    started_at: float | None
    ended_at: float | None
    phases: tuple[PhaseEntry, ...]
    #: Chair and members present during the defense (for a student who never
    #: defended: when the absence was recorded); `others_present` the rest.
    members_present: tuple[PersonEntry, ...]
    others_present: tuple[PersonEntry, ...]
    questions: tuple[Question, ...]
    pauses: tuple[Span, ...]  # for lack of quorum (clause 7.2)
    overtime: tuple[OvertimeEntry, ...]
    connection_losses: tuple[Span, ...]
    absence: Absence | None
    votes: tuple[Vote, ...]
    grade: Grade | None
    decided_by_chair: bool  # the leading grades tied; the chair's vote decided (7.12)
    results_at: float | None
    recordings: tuple[RecordingFile, ...]

    @property
    def ready(self) -> bool:
        """Final, so open to approval, once the results are announced (clause 7.13)."""
        return self.results_at is not None


@dataclass(frozen=True, slots=True)
class DayProtocol:
    """The protocol of the sitting; its students' protocols are part of it."""

    sitting: SittingInfo
    form: str
    commission: tuple[PersonEntry, ...]
    opened_at: float | None
    return_at: float | None
    results_at: float | None
    closed_at: float | None
    phases: tuple[PhaseEntry, ...]
    attendance: tuple[Attendance, ...]
    members_present: tuple[PersonEntry, ...]
    students: tuple[StudentProtocol, ...]
    recordings: tuple[RecordingFile, ...]

    @property
    def ready(self) -> bool:
        """Final, so open to approval, once the sitting is closed."""
        return self.closed_at is not None


Protocol = DayProtocol | StudentProtocol


def approvers(protocol: Protocol) -> tuple[PersonEntry, ...]:
    """The members (not the chair) who approve the draft before the chair signs (V6)."""
    return tuple(p for p in protocol.members_present if p.role is Role.MEMBER)


def to_json(value: Any) -> Any:
    """Plain JSON data of a protocol (or any part of it): enums by value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot put {value!r} into a protocol")


def canonical_json(protocol: Protocol) -> str:
    """The one text of a protocol: sorted keys, no spaces, UTF-8 characters kept."""
    kind = "day" if isinstance(protocol, DayProtocol) else "student"
    return json.dumps(
        {"kind": kind, "protocol": to_json(protocol)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
    )


def content_hash(protocol: Protocol) -> str:
    """SHA-256 hex of `canonical_json`: what approvals and the signature bind to."""
    return hashlib.sha256(canonical_json(protocol).encode("utf-8")).hexdigest()


def build_protocol(day: DefenseDay, settings: Settings, source: Iterable[Entry | Step],
                   sitting: SittingInfo, students: Mapping[str, StudentInfo],
                   recordings: Iterable[RecordingFile] = ()) -> DayProtocol:
    """Replay `source` (the day's journal entries, or bare steps) and describe the day;
    `orchestrator.replay.ReplayError` if a step is unreadable or refused."""
    observer = _Observer(day, sitting, tuple(recordings))
    session = DefenseSession(day, settings)
    before, announced = session.snapshot(), False
    for done in replay(session, source):
        observer.observe(done.step, before, announced, session, list(done.effects))
        if session.phase is Phase.CLOSED:
            break
        before, announced = session.snapshot(), session.results is not None
    return observer.result(session, students)


def _end(spans: list[Any], now: float) -> None:
    """End the last span of `spans` (Span or PhaseEntry) at `now`, if it lasts."""
    if spans and spans[-1].end is None:
        spans[-1] = dataclasses.replace(spans[-1], end=now)


class _Observer:
    """Collects what changed after each step; assembles the protocol at the end."""

    def __init__(self, day: DefenseDay, sitting: SittingInfo,
                 files: tuple[RecordingFile, ...]) -> None:
        self.day, self.sitting, self.files = day, sitting, files
        self.commission = tuple(PersonEntry(p.person_id, p.name, p.role) for p in day.people
                                if p.role in COMMISSION_ROLES)
        self.last = 0.0
        self.times: dict[str, float] = {}  # "return" (told to come back at), "results"
        self.phases: list[PhaseEntry] = []
        self.presence: defaultdict[str, list[Span]] = defaultdict(list)
        self.pauses: defaultdict[str, list[Span]] = defaultdict(list)  # by student
        self.losses: defaultdict[str, list[Span]] = defaultdict(list)  # by student
        self.identity: defaultdict[str, list[IdentityEntry]] = defaultdict(list)
        self.absence: dict[str, Absence] = {}
        self.overtime: defaultdict[str, list[OvertimeEntry]] = defaultdict(list)
        self.vote_at: dict[tuple[str, str], float] = {}

    def observe(self, step: Step, b: Snapshot, announced: bool, s: DefenseSession,
                effects: list[Effect]) -> None:
        """Note what `step` changed: `b` and `announced` are from before it."""
        now = self.last = step.now
        if s.phase is not b.phase:
            _end(self.phases, now)
            self.phases.append(PhaseEntry(s.phase, now, None, s.current_student))
        for person in sorted(s.present - b.present):
            self.presence[person].append(Span(now, None))
            _end(self.losses[person], now)
        for person in sorted(b.present - s.present):
            _end(self.presence[person], now)
            if person == b.current_student:
                self.losses[person].append(Span(now, None))
        if s.paused and not b.paused and s.current_student is not None:
            self.pauses[s.current_student].append(Span(now, None))
        elif b.paused and not s.paused and b.current_student is not None:
            _end(self.pauses[b.current_student], now)
        if isinstance(step, ev.IdentityDecided):
            entry = IdentityEntry(now, step.accepted, step.actor, step.comment)
            self.identity[step.student].append(entry)
        elif isinstance(step, ev.CastVote):
            self.vote_at[(step.student, step.actor)] = now
        elif isinstance(step, ev.TellReturnTime):
            self.times["return"] = step.return_at
        for student, status in b.statuses:
            if (after := s.status(student)) is status:
                continue
            if after is StudentStatus.ABSENT:
                self.absence[student] = Absence(AbsenceKind.ABSENT, now, "7.9", "")
            elif isinstance(step, ev.RecordValidReason):
                self.absence[student] = Absence(AbsenceKind.VALID_REASON, now, "7.9", step.reason)
            elif isinstance(step, ev.MoveDefense):
                self.absence[student] = Absence(
                    AbsenceKind.MOVED, now, "7.8", step.failure_description)
        if b.current_student is not None:
            self.overtime[b.current_student].extend(
                OvertimeEntry(now, e.phase) for e in effects if isinstance(e, OvertimeEffect))
        if s.results is not None and not announced:
            self.times["results"] = now

    def _entry(self, person_id: str) -> PersonEntry:
        person = self.day.person(person_id)
        assert person is not None  # the session refuses unknown people
        return PersonEntry(person.person_id, person.name, person.role)

    def _present(self, start: float, end: float) -> list[PersonEntry]:
        """Everyone present at some moment of [start, end], in the day's order of people."""
        return [
            self._entry(p.person_id) for p in self.day.people
            if any((s.start < end or s.start <= end == start) and (s.end is None or s.end > start)
                   for s in self.presence[p.person_id])
        ]

    def result(self, s: DefenseSession, info: Mapping[str, StudentInfo]) -> DayProtocol:
        phases = tuple(p for p in self.phases if p.phase is not Phase.CLOSED)
        opened, closed = (next((p.start for p in self.phases if p.phase is phase), None)
                          for phase in (Phase.OPENING, Phase.CLOSED))
        students = tuple(self._student(s, x, info.get(x), phases) for x in s.queue)
        attendance: list[Attendance] = []
        if opened is not None:  # spans clipped to the sitting
            end = self.last if closed is None else closed
            for person in self._present(opened, end):
                spans = (Span(max(x.start, opened),
                              min((e for e in (x.end, closed) if e is not None), default=None))
                         for x in self.presence[person.person_id]
                         if x.start <= end and (x.end is None or x.end > opened))
                attendance.append(Attendance(person, tuple(spans)))
        return DayProtocol(
            sitting=self.sitting, form=FORM_OF_SITTING, commission=self.commission,
            opened_at=opened, return_at=self.times.get("return"),
            results_at=self.times.get("results"), closed_at=closed, phases=phases,
            attendance=tuple(attendance),
            members_present=tuple(a.person for a in attendance if a.person.role in VOTING_ROLES),
            students=students, recordings=self.files,
        )

    def _student(self, s: DefenseSession, student: str, info: StudentInfo | None,
                 phases: tuple[PhaseEntry, ...]) -> StudentProtocol:
        absence = self.absence.get(student)
        mine = tuple(p for p in phases if p.student == student)  # TALK ... FINAL_WORD
        started, ended = (mine[0].start, mine[-1].end) if mine else (None, None)
        present: list[PersonEntry] = []
        if started is not None:
            present = self._present(started, self.last if ended is None else ended)
        elif absence is not None:
            present = self._present(absence.at, absence.at)
        votes = s.votes(student)
        grade = dict(s.results or ()).get(student)
        tally = Counter(votes.values()).most_common()
        tied = len(tally) > 1 and tally[0][1] == tally[1][1]
        order = [p.person_id for p in self.day.people]
        return StudentProtocol(
            sitting=self.sitting, form=FORM_OF_SITTING, commission=self.commission,
            student=self._entry(student), info=info, status=s.status(student),
            identity=tuple(self.identity[student]), started_at=started, ended_at=ended, phases=mine,
            members_present=tuple(p for p in present if p.role in VOTING_ROLES),
            others_present=tuple(p for p in present if p.role not in VOTING_ROLES),
            questions=tuple(Question(at, text) for at, text in s.questions(student)),
            pauses=tuple(self.pauses[student]), overtime=tuple(self.overtime[student]),
            connection_losses=tuple(self.losses[student]), absence=absence,
            votes=tuple(Vote(self._entry(m), votes[m], self.vote_at[(student, m)])
                        for m in sorted(votes, key=order.index)),
            grade=grade, decided_by_chair=tied and grade is not None
            and votes.get(self.day.chair.person_id) is grade,
            results_at=self.times.get("results") if s.results is not None else None,
            recordings=self.files,
        )
