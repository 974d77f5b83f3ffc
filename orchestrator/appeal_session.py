"""`AppealSession`: the sitting of the appeal commission (clauses 8.4-8.9; rules A3, A4).

The same interface as `DefenseSession` (handle, handle_deadline, next_effect,
next_deadline, snapshot), so the same runner, journal and host run it.

    WAITING -OpenAppealSitting-> NAMING -(every name said)-> HEARING
    -DecideAppeal-> DECIDED -CloseAppealSitting-> CLOSED

Before the sitting starts the appeal chair turns recording on, then says aloud
the full name of the student and of every member of the appeal commission (8.7);
the console walks through the list and each `NameAnnounced` ticks one off. The
sitting may go on without the student (8.6). The decision needs the recording on
and every name said. The appeal chair controls the recording; the recording of an
appeal sitting is never turned off before the decision.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Any

from . import events as ev
from .appeals import Decision
from .effects import Broadcast, Effect, Journal, Notice, StartRecording, StopRecording
from .errors import ForbiddenAction, NotAllowedForRole, UnknownPerson
from .model import APPEAL_ROLES, DefenseDay, Person, Role, Settings


class AppealPhase(enum.Enum):
    WAITING = "appeal_waiting"
    NAMING = "appeal_naming"
    HEARING = "appeal_hearing"
    DECIDED = "appeal_decided"
    CLOSED = "appeal_closed"


@dataclass(frozen=True, slots=True)
class AppealSnapshot:
    """What everyone at the appeal sitting sees."""

    phase: AppealPhase
    present: frozenset[str]
    recording: bool
    to_name: tuple[str, ...]  # still to be said aloud, in order
    named: tuple[str, ...]
    decision: Decision | None
    reasoning: str | None
    opened_at: float | None
    decided_at: float | None
    # What the day host reads of any procedure's snapshot.
    lobby: frozenset[str] = frozenset()
    consented: frozenset[str] = frozenset()
    current_student: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "appeal", "phase": self.phase.value, "present": sorted(self.present),
            "recording": self.recording, "to_name": list(self.to_name),
            "named": list(self.named),
            "decision": self.decision.value if self.decision else None,
            "reasoning": self.reasoning,
            "opened_at": self.opened_at, "decided_at": self.decided_at,
            "lobby": [], "consented": [], "current_student": None,
        }


_CHAIR_ONLY = (ev.OpenAppealSitting, ev.NameAnnounced, ev.DecideAppeal,
               ev.CloseAppealSitting, ev.SetRecording)
_FACTS = (ev.ParticipantJoined, ev.ParticipantLeft, ev.RecordingStarted, ev.RecordingStopped)


class AppealSession:
    """One appeal sitting; see the module doc."""

    def __init__(self, day: DefenseDay, settings: Settings | None = None) -> None:
        self._day = day
        self._phase = AppealPhase.WAITING
        self._present: set[str] = set()
        self._recording = False
        students = [p.person_id for p in day.people if p.role is Role.STUDENT]
        members = [p.person_id for p in day.people if p.role in APPEAL_ROLES]
        # The student first, then the appeal commission, chair first (8.7).
        members.sort(key=lambda pid: self._person(pid).role is not Role.APPEAL_CHAIR)
        self._to_name: list[str] = students + members
        self._named: list[str] = []
        self._decision: Decision | None = None
        self._reasoning: str | None = None
        self._opened_at: float | None = None
        self._decided_at: float | None = None
        self._effects: deque[Effect] = deque()

    # -- the runner's interface ---------------------------------------------------------

    @property
    def phase(self) -> AppealPhase:
        return self._phase

    def next_effect(self) -> Effect | None:
        return self._effects.popleft() if self._effects else None

    def next_deadline(self) -> float | None:
        return None  # nothing here runs on a timer

    def handle_deadline(self, now: float) -> None:
        pass

    def snapshot(self) -> AppealSnapshot:
        return AppealSnapshot(
            phase=self._phase, present=frozenset(self._present), recording=self._recording,
            to_name=tuple(p for p in self._to_name if p not in self._named),
            named=tuple(self._named), decision=self._decision, reasoning=self._reasoning,
            opened_at=self._opened_at,
            decided_at=self._decided_at)

    def handle(self, event: ev.Event) -> None:
        """Apply `event`, or raise an `OrchestratorError` and change nothing."""
        if isinstance(event, _FACTS):
            self._fact(event)
        elif isinstance(event, _CHAIR_ONLY):
            actor = self._person(event.actor)
            if actor.role is not Role.APPEAL_CHAIR:
                raise NotAllowedForRole(
                    f"a {actor.role.value} ({event.actor}) may not {type(event).__name__}; "
                    "only the chair of the appeal commission may")
            self._command(event)
        else:
            raise ForbiddenAction(f"{type(event).__name__} has no place in an appeal sitting",
                                  "8.7")
        self._effects.append(Broadcast(self.snapshot()))

    # -- facts ----------------------------------------------------------------------------

    def _fact(self, event: ev.Event) -> None:
        if isinstance(event, ev.ParticipantJoined):
            self._person(event.actor)
            self._present.add(event.actor)
        elif isinstance(event, ev.ParticipantLeft):
            self._person(event.actor)
            self._present.discard(event.actor)
        elif isinstance(event, ev.RecordingStarted):
            self._recording = True
            self._effects.append(Journal("recording", f"on at {event.now}"))
        elif isinstance(event, ev.RecordingStopped):
            self._recording = False
            self._effects.append(Journal("recording", f"off at {event.now}"))

    # -- the chair's commands ---------------------------------------------------------

    def _command(self, event: ev.Event) -> None:
        if isinstance(event, ev.SetRecording):
            self._set_recording(event)
        elif isinstance(event, ev.OpenAppealSitting):
            self._require(AppealPhase.WAITING, "open the sitting")
            if not self._recording:
                raise ForbiddenAction(
                    "cannot open the appeal sitting: turn the recording on first", "8.7")
            self._phase, self._opened_at = AppealPhase.NAMING, event.now
            self._effects.append(Journal("appeal_opened", f"at {event.now}"))
        elif isinstance(event, ev.NameAnnounced):
            self._require(AppealPhase.NAMING, "announce a name")
            if event.person not in self._to_name:
                raise UnknownPerson(f"{event.person!r} is not named at this sitting")
            if event.person in self._named:
                raise ForbiddenAction(f"{event.person} has already been named", "8.7")
            self._named.append(event.person)
            if len(self._named) == len(self._to_name):
                self._phase = AppealPhase.HEARING
                self._effects.append(Notice("everyone named: the hearing begins", "8.7"))
        elif isinstance(event, ev.DecideAppeal):
            self._decide(event)
        elif isinstance(event, ev.CloseAppealSitting):
            self._require(AppealPhase.DECIDED, "close the sitting")
            self._phase = AppealPhase.CLOSED
            if self._recording:
                self._effects.append(StopRecording())

    def _set_recording(self, event: ev.SetRecording) -> None:
        if event.on:
            if self._recording:
                raise ForbiddenAction("cannot turn the recording on: it is on", "8.7")
            self._effects.append(StartRecording())
            return
        if self._phase in (AppealPhase.NAMING, AppealPhase.HEARING):
            raise ForbiddenAction("the appeal sitting is recorded until the decision", "8.10")
        if not self._recording:
            raise ForbiddenAction("cannot turn the recording off: it is off", "8.10")
        self._effects.append(StopRecording())

    def _decide(self, event: ev.DecideAppeal) -> None:
        if self._phase is AppealPhase.NAMING:
            missing = ", ".join(self._person(p).name for p in self._to_name
                                if p not in self._named)
            raise ForbiddenAction(f"cannot decide before naming aloud: {missing}", "8.7")
        self._require(AppealPhase.HEARING, "decide the appeal")
        if not self._recording:
            raise ForbiddenAction("cannot decide while the recording is off", "8.7")
        try:
            decision = Decision(event.decision)
        except ValueError:
            raise ForbiddenAction(
                f"the decision is 'rejected' or 'upheld', not {event.decision!r}", "8.8"
            ) from None
        if not event.reasoning.strip():
            raise ForbiddenAction("the decision needs its reasoning", "8.9")
        self._decision, self._decided_at = decision, event.now
        self._reasoning = event.reasoning.strip()
        self._phase = AppealPhase.DECIDED
        self._effects.append(Journal("appeal_decided", f"{decision.value}: {event.reasoning}"))

    def _require(self, phase: AppealPhase, action: str) -> None:
        if self._phase is not phase:
            raise ForbiddenAction(f"cannot {action} in phase {self._phase.name}", "8.7")

    def _person(self, person_id: str) -> Person:
        person = self._day.person(person_id)
        if person is None:
            raise UnknownPerson(f"no person {person_id!r} at this appeal sitting")
        return person
