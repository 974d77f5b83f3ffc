"""`Timekeeper`: the clocks of a defense day and the deadlines they give.

It owns every time the procedure keeps: when the phase and the defense started,
the pauses for lack of quorum (clause 7.2), the absence clocks of clause 7.9, the
start of a technical failure (clause 7.8) and which deadlines have fired. The
session tells it what happened (`enter_phase`, `start_defense`, `pause`, ...) and
asks it what has come due; it sees nothing else of the day. The deadlines are
derived from these times whenever they are asked for (timers.py).

Time never moves the phase (phases.py, rule 4). A deadline only says what has come
due, as a typed `Due`: a limit is near or has passed, a student's grace period
for coming is over, or a failure has lasted long enough for the chair to move the
defense. What that does is the session's rule (`DefenseSession.handle_deadline`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import Phase, Settings
from .timers import Deadlines

_PHASE_LIMIT_MINUTES: dict[Phase, Callable[[Settings], float]] = {
    Phase.TALK: lambda s: s.talk_minutes,
    Phase.QUESTIONS: lambda s: s.questions_minutes,
}

# Deadline keys. Deadlines due at the same moment fire in the order of their keys.
_PHASE_WARNING = "phase_warning"
_PHASE_END = "phase_end"
_DEFENSE_WARNING = "defense_warning"
_DEFENSE_END = "defense_end"
_FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class LimitNear:
    """`warning_before_s` before a limit (it may have passed by the time this fires)."""

    phase: Phase | None  # None: the limit of the whole defense
    end: float


@dataclass(frozen=True, slots=True)
class LimitPassed:
    """A limit has passed; the defense goes on, flagged (clause 7.5)."""

    phase: Phase | None  # None: the limit of the whole defense


@dataclass(frozen=True, slots=True)
class FailureGraceOver:
    """A failure (quorum lost, the chair's, secretary's or defending student's link
    down) has lasted `failure_grace_minutes`: the chair may now move the defense or
    the rest of the day (clause 7.8)."""


@dataclass(frozen=True, slots=True)
class AbsenceGraceOver:
    """`student` has not connected within `absence_grace_minutes` (clause 7.9)."""

    student: str


#: What a deadline says has come due.
Due = LimitNear | LimitPassed | FailureGraceOver | AbsenceGraceOver


class Timekeeper:
    """The times of one defense day; only its own methods change them."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._phase_started_at: float | None = None
        self._phase_paused_s = 0.0
        self._defense_started_at: float | None = None
        self._defense_paused_s = 0.0
        self._paused_since: float | None = None
        self._pauses: list[tuple[float, float]] = []
        self._absence_clock: dict[str, float] = {}
        self._failure_since: float | None = None
        self._fired: set[str] = set()
        #: The current student's limits over the settings' (clause 4.3).
        self._factor = 1.0

    # -- read-only views ---------------------------------------------------------------

    @property
    def phase_started_at(self) -> float | None:
        return self._phase_started_at

    def phase_ends_at(self, phase: Phase) -> float | None:
        """When the limit of `phase`, the current one, passes; later by the time paused."""
        limit = _PHASE_LIMIT_MINUTES.get(phase)
        if limit is None or self._phase_started_at is None:
            return None
        minutes = limit(self._settings) * self._factor
        return self._phase_started_at + 60 * minutes + self._phase_paused_s

    @property
    def defense_ends_at(self) -> float | None:
        if self._defense_started_at is None:
            return None
        return (
            self._defense_started_at
            + 60 * self._settings.defense_max_minutes * self._factor
            + self._defense_paused_s
        )

    @property
    def phase_overtime(self) -> bool:
        return _PHASE_END in self._fired

    @property
    def defense_overtime(self) -> bool:
        return _DEFENSE_END in self._fired

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    @property
    def pauses(self) -> tuple[tuple[float, float], ...]:
        """Finished pauses as (start, end) timestamps."""
        return tuple(self._pauses)

    @property
    def failure_since(self) -> float | None:
        """Since when a failure stops the sitting (clause 7.8); None: nothing fails."""
        return self._failure_since

    # -- what happened -----------------------------------------------------------------

    def enter_phase(self, now: float) -> None:
        self._phase_started_at = now
        self._phase_paused_s = 0.0
        self._fired -= {_PHASE_WARNING, _PHASE_END}

    def start_defense(self, now: float, factor: float = 1.0) -> None:
        """A defense starts; its limits are the settings' times `factor` (4.3)."""
        self._defense_started_at = now
        self._defense_paused_s = 0.0
        self._factor = factor
        self._fired -= {_PHASE_WARNING, _PHASE_END, _DEFENSE_WARNING, _DEFENSE_END}

    def end_defense(self, now: float) -> None:
        """The defense ended (defended or moved): its clocks stop, a pause ends."""
        if self._paused_since is not None:
            self._pauses.append((self._paused_since, now))
        self._defense_started_at = None
        self._defense_paused_s = 0.0
        self._factor = 1.0
        self._paused_since = None
        self._fired -= {_PHASE_WARNING, _PHASE_END, _DEFENSE_WARNING, _DEFENSE_END}

    def pause(self, now: float) -> None:
        self._paused_since = now

    def resume(self, now: float) -> float:
        """End the pause; the limits move later by its length, which is returned."""
        assert self._paused_since is not None
        start, self._paused_since = self._paused_since, None
        self._pauses.append((start, now))
        self._phase_paused_s += now - start
        self._defense_paused_s += now - start
        return now - start

    def start_absence_clock(self, student: str, now: float) -> None:
        """Count `student`'s grace period for coming from `now`, unless it runs already."""
        self._absence_clock.setdefault(student, now)

    def stop_absence_clock(self, student: str) -> None:
        self._absence_clock.pop(student, None)

    def failing(self, now: float) -> None:
        """Something stops the sitting (clause 7.8); counted from when it began."""
        if self._failure_since is None:
            self._failure_since = now

    def failure_over(self) -> None:
        self._failure_since = None
        self._fired.discard(_FAILURE)

    # -- deadlines ---------------------------------------------------------------------

    def next_deadline(self, phase: Phase) -> float | None:
        """The earliest deadline not yet fired, in the current `phase`."""
        return self._deadlines(phase).earliest()

    def take_due(self, phase: Phase, now: float) -> Due | None:
        """The earliest deadline at or before `now`, noted as fired; None if none is."""
        due = self._deadlines(phase).due(now)
        if due is None:
            return None
        if isinstance(due.what, AbsenceGraceOver):
            # The clock is gone rather than fired: a later call may start it again.
            del self._absence_clock[due.what.student]
        else:
            self._fired.add(due.key)
        return due.what

    def _deadlines(self, phase: Phase) -> Deadlines[Due]:
        d: Deadlines[Due] = Deadlines()
        warn = self._settings.warning_before_s
        if self._paused_since is None:
            phase_end, defense_end = self.phase_ends_at(phase), self.defense_ends_at
            if phase_end is not None:
                d.add(phase_end - warn, _PHASE_WARNING, LimitNear(phase, phase_end))
                d.add(phase_end, _PHASE_END, LimitPassed(phase))
            if defense_end is not None:
                d.add(defense_end - warn, _DEFENSE_WARNING, LimitNear(None, defense_end))
                d.add(defense_end, _DEFENSE_END, LimitPassed(None))
        if self._failure_since is not None:
            at = self._failure_since + 60 * self._settings.failure_grace_minutes
            d.add(at, _FAILURE, FailureGraceOver())
        grace = 60 * self._settings.absence_grace_minutes
        for student, since in self._absence_clock.items():
            d.add(since + grace, f"absent:{student}", AbsenceGraceOver(student))
        d.drop(self._fired)
        return d
