"""`DeadlineRules`: what time does to a defense day (timers.py holds the queue).

Time never moves the phase (phases.py, rule 4): deadlines only warn, flag
overtime, mark students absent (clause 7.9) and open the chair's right to move a
failed defense (clause 7.8).
"""

from __future__ import annotations

from .effects import Broadcast, Journal, MarkAbsent, Notice, Overtime, Warn
from .model import Phase, StudentStatus
from .state import SessionState
from .timers import Deadlines


class DeadlineRules(SessionState):
    """The deadlines of the current state and what each does when it fires."""

    def _deadlines(self) -> Deadlines:
        d = Deadlines()
        warn = self._settings.warning_before_s
        if self._paused_since is None:
            phase_end, defense_end = self.phase_ends_at, self.defense_ends_at
            if phase_end is not None:
                d.add(phase_end - warn, "phase_warning", self._fire_warning, self._phase, phase_end)
                d.add(phase_end, "phase_end", self._fire_overtime, self._phase)
            if defense_end is not None:
                d.add(defense_end - warn, "defense_warning", self._fire_warning, None, defense_end)
                d.add(defense_end, "defense_end", self._fire_overtime, None)
        if self._failure_since is not None:
            at = self._failure_since + 60 * self._settings.failure_grace_minutes
            d.add(at, "failure", self._fire_failure)
        grace = 60 * self._settings.absence_grace_minutes
        for student, since in self._absence_clock.items():
            d.add(since + grace, f"absent:{student}", self._fire_absence, student)
        d.drop(self._fired)
        return d

    def _fire_warning(self, key: str, now: float, phase: Phase | None, end: float) -> None:
        self._fired.add(key)
        if now < end:
            self._emit(Warn(phase, end - now))

    def _fire_overtime(self, key: str, now: float, phase: Phase | None) -> None:
        self._fired.add(key)
        what = "the defense" if phase is None else f"phase {phase.name}"
        self._emit(
            Overtime(phase),
            Journal("overtime", f"{what} of {self._current} over its limit at {now}"),
            Broadcast(self.snapshot()),
        )

    def _fire_failure(self, key: str, now: float) -> None:
        self._fired.add(key)
        text = f"connection of {self._current} lost for 15 min: the chair may move the defense"
        self._emit(Notice(text, "7.8"), Journal("failure_deadline", text))

    def _fire_absence(self, key: str, now: float, student: str) -> None:
        del self._absence_clock[student]
        if self._status[student] is StudentStatus.WAITING:
            self._status[student] = StudentStatus.ABSENT
            self._emit(
                MarkAbsent(student, "7.9"),
                Journal("absent", f"{student} not connected at {now}"),
                Broadcast(self.snapshot()),
            )
