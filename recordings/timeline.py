"""The timeline of a defense day, rebuilt from its journal.

The journal holds every accepted procedure event and every firing of deadlines
(`orchestrator.replay`). Replaying them through a fresh `DefenseSession`, as
the runner does after a restart, gives back the phase, the current
student and the quorum pauses at every instant, with the times the events carried.
No second record of phases is kept anywhere: the recording's chapters are read from
the same evidence as the protocol (rule R2).

A defense runs from the `StartDefense` that makes a student current to the event
that ends it: the `NextPhase` out of FINAL_WORD ("defended") or a `MoveDefense`
("moved", clause 7.8). Its chapters are the phases in between.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.model import DefenseDay, Phase, Settings, StudentStatus
from orchestrator.replay import Entry, ReplayError, day_settings
from orchestrator.replay import replay as replay_steps
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

class Outcome(enum.StrEnum):
    """How a defense ended, as the archive names it."""

    DEFENDED = "defended"
    #: Moved to another day (clause 7.8).
    MOVED = "moved"
    #: Ended otherwise (e.g. the student marked absent after it began).
    ENDED = "ended"
    UNDER_WAY = "under_way"


_OUTCOMES = {StudentStatus.DEFENDED: Outcome.DEFENDED, StudentStatus.RESCHEDULED: Outcome.MOVED}


class TimelineError(RecordingError):
    """The journal cannot be replayed into a timeline."""


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
    outcome: Outcome
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

    def close(self, now: float, outcome: Outcome | None) -> Defense:
        self.chapters.append(Chapter(self.phase, self.phase_start, now))
        if self.paused_since is not None:
            self.pauses.append((self.paused_since, now))
        return Defense(self.student, self.start, None if outcome is None else now,
                       outcome or Outcome.UNDER_WAY, tuple(self.chapters), tuple(self.pauses))


def replay(day: DefenseDay, settings: Settings, entries: Sequence[Entry]) -> DayTimeline:
    """The day's timeline from its journal entries (in journal order); `settings` only
    for a day whose journal does not hold the settings it began with."""
    session = DefenseSession(day, day_settings(entries, settings))
    defenses: list[Defense] = []
    current: _Open | None = None
    now: float | None = None
    try:
        for done in replay_steps(session, entries):
            now = done.step.now
            student = session.current_student
            if current is not None and current.student != student:
                outcome = _OUTCOMES.get(session.status(current.student), Outcome.ENDED)
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
    except ReplayError as exc:
        raise TimelineError(str(exc)) from exc
    if current is not None and now is not None:
        defenses.append(current.close(now, None))
    return DayTimeline(tuple(defenses), session.phase, session.recording, now)
