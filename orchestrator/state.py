"""`SessionState`: what a defense day holds, and the read-only views of it.

`DefenseSession` (session.py) adds the rules that change it. Only the session
writes these attributes; callers read the properties.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator

from .effects import Broadcast, Effect
from .errors import ForbiddenAction, UnknownPerson
from .model import (
    APPEAL_ROLES,
    RESOLVED_STATUSES,
    DefenseDay,
    Grade,
    Person,
    Phase,
    Settings,
    Snapshot,
    StudentStatus,
)
from .quorum import Quorum, count_quorum

_PHASE_LIMIT_MINUTES: dict[Phase, Callable[[Settings], float]] = {
    Phase.TALK: lambda s: s.talk_minutes,
    Phase.QUESTIONS: lambda s: s.questions_minutes,
}


class SessionState:
    """The state of one defense day; see `DefenseSession`."""

    def __init__(self, day: DefenseDay, settings: Settings | None = None) -> None:
        self._day = day
        self._settings = settings or Settings()
        self._phase = Phase.WAITING
        self._phase_started_at: float | None = None
        self._queue: list[str] = list(day.students)
        self._status = {s: StudentStatus.WAITING for s in self._queue}
        self._present: set[str] = set()
        self._lobby: set[str] = set()
        self._recording = False
        self._current: str | None = None
        self._defense_started_at: float | None = None
        self._paused_since: float | None = None
        self._phase_paused_s = 0.0
        self._defense_paused_s = 0.0
        self._pauses: list[tuple[float, float]] = []
        self._fired: set[str] = set()
        self._absence_clock: dict[str, float] = {}
        self._failure_since: float | None = None
        self._votes: dict[str, dict[str, Grade]] = {}
        self._results: tuple[tuple[str, Grade], ...] | None = None
        self._return_at: float | None = None
        self._results_at: float | None = None
        self._consent: set[str] = set()
        self._questions: list[tuple[str, float, str]] = []
        self._effects: deque[Effect] = deque()

    # -- read-only state ---------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def current_student(self) -> str | None:
        return self._current

    @property
    def queue(self) -> tuple[str, ...]:
        return tuple(self._queue)

    def status(self, student: str) -> StudentStatus:
        return self._status[student]

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self._present)

    @property
    def quorum(self) -> Quorum:
        return count_quorum(self._day.voting_members, self._present)

    @property
    def recording(self) -> bool:
        """Whether the recorder has confirmed that it records."""
        return self._recording

    @property
    def paused(self) -> bool:
        """Whether the defense is paused for lack of quorum (clause 7.2)."""
        return self._paused_since is not None

    @property
    def pauses(self) -> tuple[tuple[float, float], ...]:
        """Finished pauses as (start, end) timestamps."""
        return tuple(self._pauses)

    @property
    def phase_started_at(self) -> float | None:
        return self._phase_started_at

    @property
    def phase_ends_at(self) -> float | None:
        """When the limit of the current phase passes; later by the time paused."""
        limit = _PHASE_LIMIT_MINUTES.get(self._phase)
        if limit is None or self._phase_started_at is None:
            return None
        return self._phase_started_at + 60 * limit(self._settings) + self._phase_paused_s

    @property
    def defense_ends_at(self) -> float | None:
        if self._defense_started_at is None:
            return None
        return (
            self._defense_started_at
            + 60 * self._settings.defense_max_minutes
            + self._defense_paused_s
        )

    @property
    def phase_overtime(self) -> bool:
        return "phase_end" in self._fired

    @property
    def defense_overtime(self) -> bool:
        return "defense_end" in self._fired

    @property
    def queue_locked_at(self) -> float:
        return self._day.scheduled_start - 60 * self._settings.queue_lock_minutes

    def votes(self, student: str) -> dict[str, Grade]:
        return dict(self._votes.get(student, {}))

    @property
    def results(self) -> tuple[tuple[str, Grade], ...] | None:
        """The grades, once announced with the recording on (clause 7.13)."""
        return self._results

    @property
    def return_at(self) -> float | None:
        return self._return_at

    def questions(self, student: str) -> tuple[tuple[float, str], ...]:
        """The questions typed in for `student`, as (time, text)."""
        return tuple((at, text) for s, at, text in self._questions if s == student)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            phase=self._phase,
            current_student=self._current,
            queue=self.queue,
            statuses=tuple((s, self._status[s]) for s in self._queue),
            present=self.present,
            quorum=self.quorum,
            recording=self._recording,
            paused=self.paused,
            phase_started_at=self._phase_started_at,
            phase_ends_at=self.phase_ends_at,
            defense_ends_at=self.defense_ends_at,
            phase_overtime=self.phase_overtime,
            defense_overtime=self.defense_overtime,
            return_at=self._return_at,
            consented=frozenset(self._consent),
            lobby=frozenset(self._lobby),
            results_at=self._results_at,
        )

    def _emit(self, *effects: Effect) -> None:
        self._effects.extend(effects)

    @contextlib.contextmanager
    def _broadcasting(self) -> Iterator[None]:
        """Every change of what participants see ends with a `Broadcast` of it, once.

        Handlers broadcast where the order matters; this adds the one they did not
        send (a recording confirmed, someone present, consent on file).
        """
        before, queued = self.snapshot(), len(self._effects)
        yield
        after = self.snapshot()
        sent = [e for e in list(self._effects)[queued:] if isinstance(e, Broadcast)]
        if after != before and not (sent and sent[-1].snapshot == after):
            self._effects.append(Broadcast(after))

    # -- checks -------------------------------------------------------------------------

    def _person(self, person_id: str) -> Person:
        person = self._day.person(person_id)
        if person is None:
            raise UnknownPerson(f"no person {person_id!r} on this defense day")
        return person

    def _student(self, student: str) -> StudentStatus:
        status = self._status.get(student)
        if status is None:
            raise UnknownPerson(f"{student!r} is not a student in the queue")
        return status

    def _require_consent(self, student: str, action: str) -> None:
        if student not in self._consent:
            raise ForbiddenAction(
                f"cannot {action}: no consent to personal-data processing on file", "6.6"
            )

    def _require_recording(self, action: str, clause: str) -> None:
        if not self._recording:
            raise ForbiddenAction(
                f"cannot {action}: the recording is off; the secretary turns it on first",
                clause,
            )

    def _require_group_done(self, action: str) -> None:
        pending = [s for s in self._queue if self._status[s] not in RESOLVED_STATUSES]
        if pending:
            raise ForbiddenAction(
                f"cannot {action}: defenses of {', '.join(pending)} pending", "7.7"
            )

    def _require_appeal_witness(self, action: str) -> None:
        if self._day.repeat and not any(
                p.role in APPEAL_ROLES for p in self._day.people if p.person_id in self._present):
            raise ForbiddenAction(
                f"cannot {action}: a repeated defense needs the chair or a member of the "
                "appeal commission present", "8.8")

    def _require_quorum(self, action: str) -> None:
        q = self.quorum
        if not q.reached:
            raise ForbiddenAction(
                f"cannot {action}: {q.present} of {q.total} members present, "
                f"{q.required} needed",
                "7.2",
            )
