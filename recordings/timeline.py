"""The timeline of a defense day, rebuilt from its journal.

The journal holds every accepted procedure event and every firing of deadlines
(`defense_room.procedure`). Replaying them through a fresh `DefenseSession`, as
`ProcedureRunner.start` does after a restart, gives back the phase, the current
student and the quorum pauses at every instant, with the times the events carried.
No second record of phases is kept anywhere: the recording's chapters are read from
the same evidence as the protocol (rule R2).

A defense runs from the `StartDefense` that makes a student current to the event
that ends it: the `NextPhase` out of FINAL_WORD ("defended") or a `MoveDefense`
("moved", clause 7.8). Its chapters are the phases in between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from defense_room.procedure import DEADLINE_KIND, EVENT_KIND
from orchestrator.codec import EventCodecError, event_from_json
from orchestrator.errors import OrchestratorError
from orchestrator.model import DefenseDay, Phase, Settings, StudentStatus
from orchestrator.session import DefenseSession

from .errors import RecordingError

#: Chapter titles as they appear in the player and on the picture.
PHASE_TITLES: dict[Phase, str] = {
    Phase.TALK: "Talk",
    Phase.QUESTIONS: "Questions",
    Phase.SUPERVISOR: "Supervisor's review",
    Phase.REVIEW: "Reviewer's review",
    Phase.ANSWER: "Answer to the review",
    Phase.FINAL_WORD: "Final word",
}

_OUTCOMES = {StudentStatus.DEFENDED: "defended", StudentStatus.RESCHEDULED: "moved"}


class TimelineError(RecordingError):
    """The journal cannot be replayed into a timeline."""


class Entry(Protocol):
    """What the replay reads of a journal entry (`storage.journal.JournalEvent`)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Chapter:
    phase: Phase
    start: float
    end: float

    @property
    def title(self) -> str:
        return PHASE_TITLES.get(self.phase, self.phase.value)


@dataclass(frozen=True, slots=True)
class Defense:
    """One student's defense; `end` is None while it is still under way."""

    student: str
    start: float
    end: float | None
    outcome: str  # "defended", "moved" or "under_way"
    chapters: tuple[Chapter, ...]
    pauses: tuple[tuple[float, float], ...]  # quorum pauses (clause 7.2), clipped

    @property
    def finished(self) -> bool:
        return self.end is not None


@dataclass(frozen=True, slots=True)
class DayTimeline:
    defenses: tuple[Defense, ...]
    phase: Phase
    recording: bool  # whether the recording ran when the journal ends
    last_time: float | None

    def defense_of(self, student: str) -> Defense | None:
        """The student's last defense of the day, if any."""
        found = [d for d in self.defenses if d.student == student]
        return found[-1] if found else None


@dataclass
class _Open:
    student: str
    start: float
    phase: Phase
    phase_start: float
    chapters: list[Chapter] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)
    paused_since: float | None = None

    def close(self, now: float, outcome: str | None) -> Defense:
        self.chapters.append(Chapter(self.phase, self.phase_start, now))
        if self.paused_since is not None:
            self.pauses.append((self.paused_since, now))
        return Defense(self.student, self.start, None if outcome is None else now,
                       outcome or "under_way", tuple(self.chapters), tuple(self.pauses))


def replay(day: DefenseDay, settings: Settings, entries: Iterable[Entry]) -> DayTimeline:
    """The day's timeline from its journal entries (in journal order)."""
    session = DefenseSession(day, settings)
    defenses: list[Defense] = []
    current: _Open | None = None
    now: float | None = None
    for entry in entries:
        try:
            if entry.kind == EVENT_KIND:
                event = event_from_json(entry.detail)
                now = event.now
                session.handle(event)
            elif entry.kind == DEADLINE_KIND:
                now = float(entry.detail["now"])
                session.handle_deadline(now)
            else:
                continue
        except (OrchestratorError, EventCodecError, KeyError, TypeError, ValueError) as exc:
            raise TimelineError(
                f"cannot replay journal entry {entry.id} ({entry.kind}): {exc}") from exc
        while session.next_effect() is not None:
            pass
        student = session.current_student
        if current is not None and current.student != student:
            outcome = _OUTCOMES.get(session.status(current.student), "ended")
            defenses.append(current.close(now, outcome))
            current = None
        if current is None and student is not None:
            current = _Open(student, now, session.phase, now)
        elif current is not None and session.phase is not current.phase:
            current.chapters.append(Chapter(current.phase, current.phase_start, now))
            current.phase, current.phase_start = session.phase, now
        if current is not None:
            if session.paused and current.paused_since is None:
                current.paused_since = now
            elif not session.paused and current.paused_since is not None:
                current.pauses.append((current.paused_since, now))
                current.paused_since = None
    if current is not None and now is not None:
        defenses.append(current.close(now, None))
    return DayTimeline(tuple(defenses), session.phase, session.recording, now)
