"""`AppealSession`: the sitting of the appeal commission (clauses 8.4-8.10; rules A3, A4).

The same interface as `DefenseSession` (handle, handle_deadline, next_effect,
next_deadline, snapshot), so the same runner, journal and host run it. The phase
table and its theory of operation are in `appeal_phases.py`.

Before the sitting starts the appeal chair turns recording on, then says aloud
the full name of the student and of every member of the appeal commission (8.7);
the console walks through the list and each `NameAnnounced` ticks one off. The
sitting may go on without the student (8.6). The decision needs the recording on
and every name said. The appeal chair controls the recording; the recording of an
appeal sitting is never turned off before the decision.
"""

from __future__ import annotations

from collections import deque

from . import events as ev
from .appeal_model import AppealPhase, AppealSnapshot
from .appeal_phases import CHAIR_COMMANDS, EveryoneNamed, next_appeal_phase
from .appeals import Decision
from .effects import AppealDecided, Broadcast, Effect, Notice, StartRecording, StopRecording
from .errors import ForbiddenAction, NotAllowedForRole, UnknownPerson
from .handlers import HandlerTable, on
from .model import APPEAL_ROLES, DefenseDay, Person, Role, Settings

# The phase and the snapshot live in appeal_model.py (effects.py names the snapshot);
# callers keep importing them from here.
__all__ = ["AppealPhase", "AppealSession", "AppealSnapshot"]


class AppealSession:
    """One appeal sitting; see the module doc."""

    def __init__(self, day: DefenseDay, settings: Settings | None = None) -> None:
        self._day = day
        self._phase = AppealPhase.WAITING
        self._present: set[str] = set()
        self._recording = False
        self._recording_failure = ""
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
        # Which phases allow each event is appeal_phases.py's; these apply it.
        self._handlers = HandlerTable(
            on(ev.ParticipantJoined, self._participant_joined),
            on(ev.ParticipantLeft, self._participant_left),
            on(ev.RecordingStarted, self._recording_started),
            on(ev.RecordingStopped, self._recording_stopped),
            on(ev.RecordingFailed, self._recording_failed),
            on(ev.SetRecording, self._set_recording),
            on(ev.OpenAppealSitting, self._open_sitting),
            on(ev.NameAnnounced, self._name_announced),
            on(ev.DecideAppeal, self._decide),
            on(ev.CloseAppealSitting, self._close_sitting),
        )

    # -- the runner's interface ---------------------------------------------------------

    @property
    def phase(self) -> AppealPhase:
        return self._phase

    @property
    def event_types(self) -> frozenset[type[ev.Event]]:
        """The event classes this session applies; appeal_phases.py says in which phases."""
        return self._handlers.kinds

    def next_effect(self) -> Effect | None:
        """The next effect to carry out, in order; None when there is none."""
        return self._effects.popleft() if self._effects else None

    def next_deadline(self) -> float | None:
        return None  # nothing here runs on a timer

    def handle_deadline(self, now: float) -> None:
        pass

    def snapshot(self) -> AppealSnapshot:
        """What everyone at the sitting may see now."""
        return AppealSnapshot(
            phase=self._phase, present=frozenset(self._present), recording=self._recording,
            to_name=self._left_to_name(),
            named=tuple(self._named), decision=self._decision, reasoning=self._reasoning,
            opened_at=self._opened_at,
            decided_at=self._decided_at, recording_failure=self._recording_failure)

    def handle(self, event: ev.Event) -> None:
        """Apply `event`, or raise an `OrchestratorError` and change nothing."""
        if type(event) not in self._handlers:
            raise ForbiddenAction(f"{type(event).__name__} has no place in an appeal sitting",
                                  "8.7")
        self._check_rights(event)
        following = self._following(event)
        self._handlers.dispatch(event)
        self._phase = following
        if self._phase is AppealPhase.NAMING and not self._left_to_name():
            self._phase = next_appeal_phase(self._phase, EveryoneNamed)
            self._effects.append(Notice("everyone named: the hearing begins", "8.7"))
        self._effects.append(Broadcast(self.snapshot()))

    # -- checks -------------------------------------------------------------------------

    def _check_rights(self, event: ev.Event) -> None:
        if type(event) not in CHAIR_COMMANDS:
            return
        actor_id: str = getattr(event, "actor")
        actor = self._person(actor_id)
        if actor.role is not Role.APPEAL_CHAIR:
            raise NotAllowedForRole(
                f"a {actor.role.value} ({actor_id}) may not {type(event).__name__}; "
                "only the chair of the appeal commission may")

    def _following(self, event: ev.Event) -> AppealPhase:
        """The phase after `event`; a decision before the naming says who is left."""
        if type(event) is ev.DecideAppeal and self._phase is AppealPhase.NAMING:
            missing = ", ".join(self._person(p).name for p in self._left_to_name())
            raise ForbiddenAction(f"cannot decide before naming aloud: {missing}", "8.7")
        return next_appeal_phase(self._phase, type(event))

    def _left_to_name(self) -> tuple[str, ...]:
        return tuple(p for p in self._to_name if p not in self._named)

    def _person(self, person_id: str) -> Person:
        person = self._day.person(person_id)
        if person is None:
            raise UnknownPerson(f"no person {person_id!r} at this appeal sitting")
        return person

    # -- facts ----------------------------------------------------------------------------

    def _participant_joined(self, event: ev.ParticipantJoined) -> None:
        self._person(event.actor)
        self._present.add(event.actor)

    def _participant_left(self, event: ev.ParticipantLeft) -> None:
        self._person(event.actor)
        self._present.discard(event.actor)

    def _recording_started(self, event: ev.RecordingStarted) -> None:
        self._recording = True
        self._recording_failure = ""

    def _recording_stopped(self, event: ev.RecordingStopped) -> None:
        self._recording = False

    def _recording_failed(self, event: ev.RecordingFailed) -> None:
        # Off as if stopped: the decision waits until the chair turns it on again (8.7).
        self._recording = False
        self._recording_failure = event.reason
        self._effects.append(Notice(f"the recording failed: {event.reason}", "8.7"))

    # -- the chair's commands: validate everything first, then change the state --------

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

    def _open_sitting(self, event: ev.OpenAppealSitting) -> None:
        if not self._recording:
            raise ForbiddenAction(
                "cannot open the appeal sitting: turn the recording on first", "8.7")
        self._opened_at = event.now

    def _name_announced(self, event: ev.NameAnnounced) -> None:
        if event.person not in self._to_name:
            raise UnknownPerson(f"{event.person!r} is not named at this sitting")
        if event.person in self._named:
            raise ForbiddenAction(f"{event.person} has already been named", "8.7")
        self._named.append(event.person)

    def _decide(self, event: ev.DecideAppeal) -> None:
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
        self._effects.append(AppealDecided(decision, event.now))

    def _close_sitting(self, event: ev.CloseAppealSitting) -> None:
        if self._recording:
            self._effects.append(StopRecording())
