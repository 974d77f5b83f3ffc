"""The defense protocol (rules V5, V6; clauses 7.8, 7.9, 7.12-7.15), built from the journal.

Everything a protocol states already happened through the procedure, so it is
derived, not typed: the day's steps (accepted events and deadline ticks, in journal
order) are replayed through a fresh `DefenseSession`, and its state is compared
before and after each step. The session stays the one owner of the rules.

The result is frozen data, a `StudentProtocol` per student inside a `DayProtocol`.
Besides the course of the sitting it states what issue 13's ways out left behind:
every round of a vote (7.12), a moved defense's new date (7.8), the proof of a valid
reason (7.9), the chair's reason for a defense without its documents (7.3), adjusted
time (4.3), how each commission member attended (remotely or in the university room,
4.8) and the failures of clause 7.8.

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
from .documents import NEEDED_TO_DEFEND, DocumentKind
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
from .quorum import Quorum
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
    #: The secretary who recorded the open vote of a member in the university room
    #: (clause 4.8); None for a vote the member cast from their own page.
    recorded_by: str | None = None


@dataclass(frozen=True, slots=True)
class VoteRound:
    """A round of the vote that decided nothing; the commission voted again (7.12)."""

    number: int  # from 1
    votes: tuple[Vote, ...]
    ended_at: float  # when the new round was started


@dataclass(frozen=True, slots=True)
class DocumentsWaived:
    """The chair let the defense start without its documents, saying why (7.3)."""

    at: float
    by: str
    reason: str
    #: The documents needed to defend that were not on file when the defense started
    #: (or, for a defense that did not start, when the replay ended).
    missing: tuple[DocumentKind, ...]


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """A student's limits in minutes: the settings' times the adjusted time (4.3)."""

    talk_minutes: float
    questions_minutes: float
    defense_minutes: float


class AttendanceMode(enum.Enum):
    """How a commission member attended the sitting (clause 4.8)."""

    REMOTE = "remote"  # connected with their own media
    IN_PERSON = "in_person"  # in the university room, around its device
    BOTH = "both"  # one and the other at different times (or at once)
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class MemberAttendance:
    """One commission member's attendance, both ways, clipped to the sitting."""

    person: PersonEntry
    mode: AttendanceMode
    remote: tuple[Span, ...]
    in_person: tuple[Span, ...]


class FailureKind(enum.Enum):
    """What keeps the sitting from going on (clause 7.8)."""

    QUORUM = "quorum"  # fewer voting members attending than the quorum (7.2)
    CHAIR = "chair"  # the chair neither connected nor in the university room
    SECRETARY = "secretary"  # no secretary connected nor in the university room
    STUDENT = "student"  # the defending student's connection is lost


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure of clause 7.8 while what fails stays the same: from when to when."""

    start: float
    end: float | None  # None: still failing when the replay ended
    what: tuple[FailureKind, ...]
    quorum: Quorum | None  # members attending and in all, when QUORUM fails
    student: PersonEntry | None  # whose connection is lost, when STUDENT fails
    description: str  # what fails in the procedure's own words


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
    new_date: float | None = None  # MOVED: the date the defense is moved to (7.8)
    #: VALID_REASON: the document proving the reason is on file (7.9).
    proof_on_file: bool = False


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
    #: The chair's leave to start without the documents (7.3), or None.
    documents_waived: DocumentsWaived | None
    extra_time_percent: float  # adjusted time (4.3); 0 for none
    limits: TimeLimits
    #: Earlier rounds of the vote that decided nothing, oldest first (7.12); `votes`
    #: is the last round, number len(earlier_rounds) + 1.
    earlier_rounds: tuple[VoteRound, ...]
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
    #: Everyone connected to the video conference, with their connections.
    attendance: tuple[Attendance, ...]
    #: How each commission member attended: remotely, in person or both (4.8).
    commission_attendance: tuple[MemberAttendance, ...]
    #: Chair and members who attended, either way.
    members_present: tuple[PersonEntry, ...]
    failures: tuple[Failure, ...]  # clause 7.8
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
    observer = _Observer(day, settings, sitting, tuple(recordings))
    session = DefenseSession(day, settings)
    before, announced = session.snapshot(), False
    for done in replay(session, source):
        after = session.snapshot()
        observer.observe(done.step, before, after, announced, session, list(done.effects))
        if session.phase is Phase.CLOSED:
            break
        before, announced = after, session.results is not None
    return observer.result(session, students)


def _end(spans: list[Any], now: float) -> None:
    """End the last span of `spans` (Span, PhaseEntry or Failure) at `now`, if it lasts."""
    if spans and spans[-1].end is None:
        spans[-1] = dataclasses.replace(spans[-1], end=now)


def _overlaps(span: Span, start: float, end: float) -> bool:
    """Whether `span` lasts at some moment of [start, end]."""
    return ((span.start < end or span.start <= end == start)
            and (span.end is None or span.end > start))


def _follow(spans: defaultdict[str, list[Span]], before: frozenset[str],
            after: frozenset[str], now: float) -> None:
    """Open a span for everyone in `after` only, end it for everyone in `before` only."""
    for person in sorted(after - before):
        spans[person].append(Span(now, None))
    for person in sorted(before - after):
        _end(spans[person], now)


class _Observer:
    """Collects what changed after each step; assembles the protocol at the end."""

    def __init__(self, day: DefenseDay, settings: Settings, sitting: SittingInfo,
                 files: tuple[RecordingFile, ...]) -> None:
        self.day, self.settings, self.sitting, self.files = day, settings, sitting, files
        self.commission = tuple(PersonEntry(p.person_id, p.name, p.role) for p in day.people
                                if p.role in COMMISSION_ROLES)
        self.order = [p.person_id for p in day.people]
        self.last = 0.0
        self.times: dict[str, float] = {}  # "return" (told to come back at), "results"
        self.phases: list[PhaseEntry] = []
        self.presence: defaultdict[str, list[Span]] = defaultdict(list)
        self.in_room: defaultdict[str, list[Span]] = defaultdict(list)  # clause 4.8
        self.pauses: defaultdict[str, list[Span]] = defaultdict(list)  # by student
        self.losses: defaultdict[str, list[Span]] = defaultdict(list)  # by student
        self.failures: list[Failure] = []
        self.identity: defaultdict[str, list[IdentityEntry]] = defaultdict(list)
        self.absence: dict[str, Absence] = {}
        self.overtime: defaultdict[str, list[OvertimeEntry]] = defaultdict(list)
        self.documents: defaultdict[str, set[DocumentKind]] = defaultdict(set)
        self.waived: dict[str, tuple[float, str]] = {}  # student -> (when, by whom)
        self.started_without: dict[str, tuple[DocumentKind, ...]] = {}
        #: (student, round, voter) -> (when, recorded by); (student, round) -> ended at.
        self.vote_at: dict[tuple[str, int, str], tuple[float, str | None]] = {}
        self.round_ended: dict[tuple[str, int], float] = {}

    def observe(self, step: Step, b: Snapshot, a: Snapshot, announced: bool,
                s: DefenseSession, effects: list[Effect]) -> None:
        """Note what `step` changed: `b` and `announced` are from before it, `a` after."""
        now = self.last = step.now
        if a.phase is not b.phase:
            _end(self.phases, now)
            self.phases.append(PhaseEntry(a.phase, now, None, a.current_student))
        _follow(self.presence, b.present, a.present, now)
        _follow(self.in_room, b.in_person, a.in_person, now)
        for person in sorted(a.present - b.present):
            _end(self.losses[person], now)
        if (lost := b.current_student) is not None and lost in b.present - a.present:
            self.losses[lost].append(Span(now, None))
        if a.paused and not b.paused and a.current_student is not None:
            self.pauses[a.current_student].append(Span(now, None))
        elif b.paused and not a.paused and b.current_student is not None:
            _end(self.pauses[b.current_student], now)
        if a.failure != b.failure:
            _end(self.failures, now)
            if a.failure:
                self.failures.append(self._failure(a, now))
        self._note_step(step, s, now)
        for student, status in b.statuses:
            if (after := s.status(student)) is status:
                continue
            if after is StudentStatus.ABSENT:
                self.absence[student] = Absence(AbsenceKind.ABSENT, now, "7.9", "")
            elif isinstance(step, ev.RecordValidReason):
                proof = DocumentKind.ABSENCE_PROOF in self.documents[student]
                self.absence[student] = Absence(AbsenceKind.VALID_REASON, now, "7.9",
                                                step.reason, proof_on_file=proof)
            elif (isinstance(step, (ev.MoveDefense, ev.MoveRestOfDay))
                  and (moved := s.moved(student)) is not None):
                self.absence[student] = Absence(AbsenceKind.MOVED, now, "7.8", moved[1],
                                                new_date=moved[0])
        if b.current_student is not None:
            self.overtime[b.current_student].extend(
                OvertimeEntry(now, e.phase) for e in effects if isinstance(e, OvertimeEffect))
        if s.results is not None and not announced:
            self.times["results"] = now

    def _note_step(self, step: Step, s: DefenseSession, now: float) -> None:
        """Note what the step itself says that the session's state does not keep."""
        match step:
            case ev.IdentityDecided():
                entry = IdentityEntry(now, step.accepted, step.actor, step.comment)
                self.identity[step.student].append(entry)
            case ev.CastVote() | ev.RecordVote():
                voter, by = ((step.actor, None) if isinstance(step, ev.CastVote)
                             else (step.voter, step.actor))
                number = len(s.vote_rounds(step.student))
                self.vote_at[(step.student, number, voter)] = (now, by)
            case ev.NewVoteRound():
                self.round_ended[(step.student, len(s.vote_rounds(step.student)) - 1)] = now
            case ev.TellReturnTime():
                self.times["return"] = step.return_at
            case ev.DocumentOnFile():
                self.documents[step.student].add(step.kind)
            case ev.WaiveDocuments():
                self.waived[step.student] = (now, step.actor)
            case ev.StartDefense():
                self.started_without[step.student] = self._missing(step.student)
            case _:
                pass

    def _missing(self, student: str) -> tuple[DocumentKind, ...]:
        return tuple(k for k in NEEDED_TO_DEFEND if k not in self.documents[student])

    def _failure(self, a: Snapshot, now: float) -> Failure:
        """What fails after a step, in parts; the session decides that something does."""
        attending = a.present | a.in_person
        secretaries = {p.person_id for p in self.day.people if p.role is Role.SECRETARY}
        lost = a.current_student if a.current_student not in attending else None
        parts = {
            FailureKind.QUORUM: not a.quorum.reached,
            FailureKind.CHAIR: self.day.chair.person_id not in attending,
            FailureKind.SECRETARY: bool(secretaries) and not secretaries & attending,
            FailureKind.STUDENT: lost is not None,
        }
        return Failure(now, None, tuple(k for k, failing in parts.items() if failing),
                       None if a.quorum.reached else a.quorum,
                       None if lost is None else self._entry(lost), a.failure)

    def _entry(self, person_id: str) -> PersonEntry:
        person = self.day.person(person_id)
        assert person is not None  # the session refuses unknown people
        return PersonEntry(person.person_id, person.name, person.role)

    def _present(self, start: float, end: float, remote_only: bool = False) -> list[PersonEntry]:
        """Everyone attending at some moment of [start, end], in the day's order of
        people: connected, or (unless `remote_only`) in the university room."""
        return [
            self._entry(p.person_id) for p in self.day.people
            if any(_overlaps(s, start, end) for s in self.presence[p.person_id])
            or (not remote_only and any(_overlaps(s, start, end)
                                        for s in self.in_room[p.person_id]))
        ]

    def _clipped(self, spans: list[Span], opened: float, closed: float | None
                 ) -> tuple[Span, ...]:
        """`spans` cut to the sitting, from `opened` to `closed` (None: not closed)."""
        end = self.last if closed is None else closed
        return tuple(Span(max(x.start, opened),
                          min((e for e in (x.end, closed) if e is not None), default=None))
                     for x in spans if x.start <= end and (x.end is None or x.end > opened))

    def _how_attended(self, person: PersonEntry, opened: float | None, closed: float | None,
             present: set[str]) -> MemberAttendance:
        remote: tuple[Span, ...] = ()
        in_person: tuple[Span, ...] = ()
        if opened is not None and person.person_id in present:
            remote = self._clipped(self.presence[person.person_id], opened, closed)
            in_person = self._clipped(self.in_room[person.person_id], opened, closed)
        mode = {(True, False): AttendanceMode.REMOTE, (False, True): AttendanceMode.IN_PERSON,
                (True, True): AttendanceMode.BOTH}.get((bool(remote), bool(in_person)),
                                                      AttendanceMode.ABSENT)
        return MemberAttendance(person, mode, remote, in_person)

    def result(self, s: DefenseSession, info: Mapping[str, StudentInfo]) -> DayProtocol:
        phases = tuple(p for p in self.phases if p.phase is not Phase.CLOSED)
        opened, closed = (next((p.start for p in self.phases if p.phase is phase), None)
                          for phase in (Phase.OPENING, Phase.CLOSED))
        students = tuple(self._student(s, x, info.get(x), phases) for x in s.queue)
        attendance: list[Attendance] = []
        attended: list[PersonEntry] = []
        if opened is not None:  # spans clipped to the sitting
            end = self.last if closed is None else closed
            attendance = [Attendance(p, self._clipped(self.presence[p.person_id], opened, closed))
                          for p in self._present(opened, end, remote_only=True)]
            attended = self._present(opened, end)
        present = {p.person_id for p in attended}
        return DayProtocol(
            sitting=self.sitting, form=FORM_OF_SITTING, commission=self.commission,
            opened_at=opened, return_at=self.times.get("return"),
            results_at=self.times.get("results"), closed_at=closed, phases=phases,
            attendance=tuple(attendance),
            commission_attendance=tuple(self._how_attended(c, opened, closed, present)
                                        for c in self.commission),
            members_present=tuple(p for p in attended if p.role in VOTING_ROLES),
            failures=tuple(self.failures), students=students, recordings=self.files,
        )

    def _votes(self, student: str, number: int, grades: dict[str, Grade]) -> tuple[Vote, ...]:
        return tuple(Vote(self._entry(m), grades[m], *self.vote_at[(student, number, m)])
                     for m in sorted(grades, key=self.order.index))

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
        rounds = s.vote_rounds(student)
        votes = rounds[-1]
        grade = dict(s.results or ()).get(student)
        tally = Counter(votes.values()).most_common()
        tied = len(tally) > 1 and tally[0][1] == tally[1][1]
        waived, reason = self.waived.get(student), s.documents_waived(student)
        factor, limits = self.day.time_factor(student), self.settings
        return StudentProtocol(
            sitting=self.sitting, form=FORM_OF_SITTING, commission=self.commission,
            student=self._entry(student), info=info, status=s.status(student),
            identity=tuple(self.identity[student]), started_at=started, ended_at=ended, phases=mine,
            members_present=tuple(p for p in present if p.role in VOTING_ROLES),
            others_present=tuple(p for p in present if p.role not in VOTING_ROLES),
            questions=tuple(Question(at, text) for at, text in s.questions(student)),
            pauses=tuple(self.pauses[student]), overtime=tuple(self.overtime[student]),
            connection_losses=tuple(self.losses[student]), absence=absence,
            documents_waived=None if waived is None or reason is None else DocumentsWaived(
                waived[0], waived[1], reason,
                self.started_without.get(student, self._missing(student))),
            extra_time_percent=float(dict(self.day.extra_time_percent).get(student, 0.0)),
            limits=TimeLimits(limits.talk_minutes * factor, limits.questions_minutes * factor,
                              limits.defense_max_minutes * factor),
            earlier_rounds=tuple(
                VoteRound(n, self._votes(student, n, r), self.round_ended[(student, n)])
                for n, r in enumerate(rounds[:-1], 1)),
            votes=self._votes(student, len(rounds), votes),
            grade=grade, decided_by_chair=tied and grade is not None
            and votes.get(self.day.chair.person_id) is grade,
            results_at=self.times.get("results") if s.results is not None else None,
            recordings=self.files,
        )
