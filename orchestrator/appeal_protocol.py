"""The protocol of an appeal sitting (clauses 8.7-8.9; rule A5), built from its journal.

Like the defense protocol (protocol.py), it is derived, not typed: the sitting's
steps are replayed through a fresh `AppealSession` and its snapshot is compared
before and after each step, so the session stays the one owner of the rules. What
the sitting's journal cannot know comes in as `AppealInfo`: the appeal's grounds
and the commission chair's conclusion (8.1, 8.3), and the defense appealed with
its grade, as the defense day's own journal has it.

The protocol states who attended and who was named aloud (8.7), whether the student
took part (8.6), the decision and its reasoning (8.8, 8.9), the times, the recording
and its files. Replay stops at the closing of the sitting, so leaving the room
afterwards cannot change a protocol that is being approved. The same steps and the
same `AppealInfo` give the same `canonical_json` and `content_hash`: what the
members of the appeal commission approve and its chair signs (8.8).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import events as ev
from .appeal_model import AppealPhase, AppealSnapshot
from .appeal_session import AppealSession
from .appeals import Decision
from .model import APPEAL_ROLES, DefenseDay, Grade, Role
from .protocol import (
    FORM_OF_SITTING,
    Attendance,
    PersonEntry,
    RecordingFile,
    SittingInfo,
    Span,
    to_json,
)
from .replay import Entry, Step, replay


@dataclass(frozen=True, slots=True)
class AppealedDefense:
    """The defense the appeal is about, as the defense day's journal has it."""

    day_id: int
    title: str
    date: str  # ISO date
    student: str  # the student's name
    thesis_title: str
    grade: Grade | None  # the grade announced (7.13); None: none was given
    results_at: float | None


@dataclass(frozen=True, slots=True)
class AppealInfo:
    """What the database knows of the appeal heard (storage.appeals)."""

    appeal_id: int
    grounds: str  # the appeal's text: the violation claimed (8.1)
    filed_at: float
    on_paper: bool  # received on paper and recorded by the secretary
    conclusion: str | None  # the commission chair's conclusion on the procedure (8.3)
    defense: AppealedDefense


@dataclass(frozen=True, slots=True)
class Naming:
    """A person named aloud by the appeal chair before the hearing (8.7)."""

    person: PersonEntry
    at: float


@dataclass(frozen=True, slots=True)
class AppealPhaseEntry:
    phase: AppealPhase
    start: float
    end: float | None


@dataclass(frozen=True, slots=True)
class AppealProtocol:
    """The protocol of one appeal sitting."""

    sitting: SittingInfo
    form: str
    appeal: AppealInfo
    #: The appeal commission: its chair, then its members.
    commission: tuple[PersonEntry, ...]
    #: Invited beside it (8.4): the student who appealed, the commission chair.
    invited: tuple[PersonEntry, ...]
    opened_at: float | None
    decided_at: float | None
    closed_at: float | None
    phases: tuple[AppealPhaseEntry, ...]
    recording: tuple[Span, ...]  # recording on, up to the closing (8.7, 8.10)
    named: tuple[Naming, ...]
    attendance: tuple[Attendance, ...]
    #: The appeal commission present at some moment of the sitting.
    members_present: tuple[PersonEntry, ...]
    student_present: bool  # the sitting may go on without the student (8.6)
    decision: Decision | None
    reasoning: str | None
    recordings: tuple[RecordingFile, ...]

    @property
    def ready(self) -> bool:
        """Final, so open to approval, once the sitting is closed (after the decision)."""
        return self.closed_at is not None


def appeal_approvers(protocol: AppealProtocol) -> tuple[PersonEntry, ...]:
    """The members of the appeal commission present at the sitting, who approve the draft
    before the appeal chair signs it (8.8)."""
    return tuple(p for p in protocol.members_present if p.role is Role.APPEAL_MEMBER)


def appeal_canonical_json(protocol: AppealProtocol) -> str:
    """The one text of the protocol: sorted keys, no spaces, UTF-8 characters kept."""
    return json.dumps({"kind": "appeal", "protocol": to_json(protocol)},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def appeal_content_hash(protocol: AppealProtocol) -> str:
    """SHA-256 hex of `appeal_canonical_json`: what approvals and the signature bind to."""
    return hashlib.sha256(appeal_canonical_json(protocol).encode("utf-8")).hexdigest()


def build_appeal_protocol(day: DefenseDay, source: Iterable[Entry | Step], sitting: SittingInfo,
                          appeal: AppealInfo,
                          recordings: Iterable[RecordingFile] = ()) -> AppealProtocol:
    """Replay `source` (the sitting's journal entries, or bare steps) and describe the
    sitting; `orchestrator.replay.ReplayError` if a step is unreadable or refused."""
    observer = _Observer(day)
    session = AppealSession(day)
    before = session.snapshot()
    for done in replay(session, source):
        after = session.snapshot()
        observer.observe(done.step, before, after)
        if after.phase is AppealPhase.CLOSED:
            break
        before = after
    return observer.result(session.snapshot(), sitting, appeal, tuple(recordings))


def _end(spans: list[Any], now: float) -> None:
    """End the last span of `spans` (Span or AppealPhaseEntry) at `now`, if it lasts."""
    if spans and spans[-1].end is None:
        spans[-1] = dataclasses.replace(spans[-1], end=now)


class _Observer:
    """Collects what changed after each step; assembles the protocol at the end."""

    def __init__(self, day: DefenseDay) -> None:
        self.day = day
        self.last = 0.0
        self.phases: list[AppealPhaseEntry] = []
        self.presence: defaultdict[str, list[Span]] = defaultdict(list)
        self.recording: list[Span] = []
        self.named: list[Naming] = []

    def observe(self, step: Step, b: AppealSnapshot, s: AppealSnapshot) -> None:
        """Note what `step` changed from `b` to `s`."""
        now = self.last = step.now
        if s.phase is not b.phase:
            _end(self.phases, now)
            self.phases.append(AppealPhaseEntry(s.phase, now, None))
        for person in sorted(s.present - b.present):
            self.presence[person].append(Span(now, None))
        for person in sorted(b.present - s.present):
            _end(self.presence[person], now)
        if s.recording and not b.recording:
            self.recording.append(Span(now, None))
        elif b.recording and not s.recording:
            _end(self.recording, now)
        if isinstance(step, ev.NameAnnounced):
            self.named.append(Naming(self._entry(step.person), now))

    def _entry(self, person_id: str) -> PersonEntry:
        person = self.day.person(person_id)
        assert person is not None  # the session refuses unknown people
        return PersonEntry(person.person_id, person.name, person.role)

    def _clipped(self, person_id: str, start: float, end: float | None) -> tuple[Span, ...]:
        """`person_id`'s presence within [start, end] (end None: still lasting)."""
        spans = []
        for x in self.presence[person_id]:
            if (end is not None and x.start > end) or (x.end is not None and x.end <= start):
                continue
            ends = [e for e in (x.end, end) if e is not None]
            spans.append(Span(max(x.start, start), min(ends) if ends else None))
        return tuple(spans)

    def result(self, s: AppealSnapshot, sitting: SittingInfo, appeal: AppealInfo,
               files: tuple[RecordingFile, ...]) -> AppealProtocol:
        opened, closed = (next((p.start for p in self.phases if p.phase is phase), None)
                          for phase in (AppealPhase.NAMING, AppealPhase.CLOSED))
        people = [self._entry(p.person_id) for p in self.day.people]
        commission = sorted((p for p in people if p.role in APPEAL_ROLES),
                            key=lambda p: p.role is not Role.APPEAL_CHAIR)
        attendance: list[Attendance] = []
        if opened is not None:  # spans clipped to the sitting
            for person in people:
                spans = self._clipped(person.person_id, opened, closed)
                if spans:
                    attendance.append(Attendance(person, spans))
        recording = list(self.recording)
        if closed is not None:
            _end(recording, closed)
        return AppealProtocol(
            sitting=sitting, form=FORM_OF_SITTING, appeal=appeal,
            commission=tuple(commission),
            invited=tuple(p for p in people if p.role not in APPEAL_ROLES),
            opened_at=opened, decided_at=s.decided_at, closed_at=closed,
            phases=tuple(p for p in self.phases if p.phase is not AppealPhase.CLOSED),
            recording=tuple(recording), named=tuple(self.named),
            attendance=tuple(attendance),
            members_present=tuple(a.person for a in attendance
                                  if a.person.role in APPEAL_ROLES),
            student_present=any(a.person.role is Role.STUDENT for a in attendance),
            decision=s.decision, reasoning=s.reasoning, recordings=files,
        )
