"""`DefenseSession`: the rules that move one defense day.

Feed events with `handle(event)`, carry out what `next_effect()` returns until it
returns None, and call `handle_deadline(now)` once `now` reaches
`next_deadline()`. Nothing here reads the clock: every time comes from the caller.
The phase table and its theory of operation are in `phases.py`.

The session is made of three parts, each the one owner of its state:

- `DayState` (state.py): the phase, the queue, who is where, consent, votes and
  results, with the checks that read them. Only the session's handlers write it.
- `Timekeeper` (deadlines.py): phase and defense times, pauses, grace periods and
  fired deadlines. The session tells it what happened; it says what came due.
- the session itself: the handler table (one handler per event class), the
  reactions to deadlines, and the queue of effects.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from typing import assert_never

from . import events as ev
from .deadlines import (
    AbsenceGraceOver,
    Due,
    FailureGraceOver,
    LimitNear,
    LimitPassed,
    Timekeeper,
)
from .effects import (
    AdmitFromLobby,
    Broadcast,
    Effect,
    MarkAbsent,
    MoveToLobby,
    Notice,
    Overtime,
    PublishResults,
    Reschedule,
    StartRecording,
    StopRecording,
    Warn,
)
from .documents import DocumentKind
from .errors import ForbiddenAction, NotAllowedForRole
from .handlers import HandlerTable, on
from .model import (
    COMMISSION_ROLES,
    RESOLVED_STATUSES,
    VOTING_ROLES,
    AbsenceFrom,
    DefenseDay,
    Grade,
    Phase,
    Role,
    Settings,
    Snapshot,
    StudentStatus,
)
from .phases import DEFENSE_PHASES, RECORDED_PHASES, RIGHTS, next_phase
from .quorum import Quorum
from .state import DayState
from .votes import decide

logger = logging.getLogger(__name__)


def _minutes(value: float) -> str:
    """A setting in minutes as people read it: 15 -> "15 min", 7.5 -> "7.5 min"."""
    return f"{value:g} min"


class DefenseSession:
    """The defense procedure of one day: queue, phases, quorum, absence and votes."""

    def __init__(self, day: DefenseDay, settings: Settings | None = None) -> None:
        self._settings = settings or Settings()
        self._state = DayState(day)
        self._time = Timekeeper(self._settings)
        self._effects: deque[Effect] = deque()
        # Which phases allow each event is phases.py's; these apply it.
        self._handlers = HandlerTable(
            on(ev.ParticipantJoined, self._participant_joined),
            on(ev.ParticipantLeft, self._participant_left),
            on(ev.RecordingStarted, self._recording_started),
            on(ev.RecordingStopped, self._recording_stopped),
            on(ev.RecordingFailed, self._recording_failed),
            on(ev.ConsentOnFile, self._consent_on_file),
            on(ev.DocumentOnFile, self._document_on_file),
            on(ev.WaiveDocuments, self._waive_documents),
            on(ev.SetInPerson, self._set_in_person),
            on(ev.OpenSitting, self._open_sitting),
            on(ev.IdentityDecided, self._identity_decided),
            on(ev.AnnounceLimits, self._announce_limits),
            on(ev.CallStudent, self._call_student),
            on(ev.StartDefense, self._start_defense),
            on(ev.NextPhase, self._next_phase),
            on(ev.ReorderQueue, self._reorder_queue),
            on(ev.RecordValidReason, self._record_valid_reason),
            on(ev.MoveDefense, self._move_defense),
            on(ev.MoveRestOfDay, self._move_rest_of_day),
            on(ev.SetRecording, self._set_recording),
            on(ev.RecordQuestion, self._record_question),
            on(ev.TellReturnTime, self._tell_return_time),
            on(ev.StartClosedSitting, self._start_closed_sitting),
            on(ev.CastVote, self._cast_vote),
            on(ev.RecordVote, self._record_vote),
            on(ev.NewVoteRound, self._new_vote_round),
            on(ev.AnnounceResults, self._announce_results),
            on(ev.CloseSitting, self._close_sitting),
        )

    # -- the caller's interface -------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        """Apply `event`, or raise an `OrchestratorError` and change nothing."""
        self._check_rights(event)
        following = next_phase(self._state.phase, event)
        with self._broadcasting():
            self._handlers.dispatch(event)
            if following is not self._state.phase:
                self._enter(following, event.now)
            self._watch_failure(event.now)

    def next_effect(self) -> Effect | None:
        """The next effect to carry out, in order; None when there is none."""
        return self._effects.popleft() if self._effects else None

    def next_deadline(self) -> float | None:
        """When `handle_deadline` is next due; None while nothing runs on time."""
        return self._time.next_deadline(self._state.phase)

    def handle_deadline(self, now: float) -> None:
        """Fire every deadline at or before `now`, earliest first."""
        with self._broadcasting():
            while (due := self._time.take_due(self._state.phase, now)) is not None:
                self._deadline_passed(due, now)

    def snapshot(self) -> Snapshot:
        """What everyone in the room may see now."""
        st, t = self._state, self._time
        return Snapshot(
            phase=st.phase,
            current_student=st.current,
            queue=self.queue,
            statuses=tuple((s, st.status[s]) for s in st.queue),
            present=self.present,
            quorum=st.quorum,
            recording=st.recording,
            paused=t.paused,
            phase_started_at=t.phase_started_at,
            phase_ends_at=self.phase_ends_at,
            defense_ends_at=t.defense_ends_at,
            phase_overtime=t.phase_overtime,
            defense_overtime=t.defense_overtime,
            return_at=st.return_at,
            consented=frozenset(st.consent),
            lobby=frozenset(st.lobby),
            results_at=st.results_at,
            in_person=frozenset(st.in_person),
            moved=tuple((s, at) for s, (at, _) in st.moved.items()),
            vote_rounds=tuple((s, len(r) + 1) for s, r in st.past_rounds.items() if r),
            failure_since=t.failure_since,
            failure=st.failure,
            documents=frozenset((s, k) for s, kinds in st.documents.items() for k in kinds),
            recording_failure=st.recording_failure,
        )

    @property
    def event_types(self) -> frozenset[type[ev.Event]]:
        """The event classes this session applies; phases.py says in which phases."""
        return self._handlers.kinds

    # -- read-only state ---------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self._state.phase

    @property
    def current_student(self) -> str | None:
        return self._state.current

    @property
    def queue(self) -> tuple[str, ...]:
        return tuple(self._state.queue)

    def status(self, student: str) -> StudentStatus:
        return self._state.status[student]

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self._state.present)

    @property
    def quorum(self) -> Quorum:
        return self._state.quorum

    @property
    def recording(self) -> bool:
        """Whether the recorder has confirmed that it records."""
        return self._state.recording

    @property
    def paused(self) -> bool:
        """Whether the defense is paused for lack of quorum (clause 7.2)."""
        return self._time.paused

    @property
    def pauses(self) -> tuple[tuple[float, float], ...]:
        """Finished pauses as (start, end) timestamps."""
        return self._time.pauses

    @property
    def phase_started_at(self) -> float | None:
        return self._time.phase_started_at

    @property
    def phase_ends_at(self) -> float | None:
        """When the limit of the current phase passes; later by the time paused."""
        return self._time.phase_ends_at(self._state.phase)

    @property
    def defense_ends_at(self) -> float | None:
        return self._time.defense_ends_at

    @property
    def phase_overtime(self) -> bool:
        return self._time.phase_overtime

    @property
    def defense_overtime(self) -> bool:
        return self._time.defense_overtime

    @property
    def queue_locked_at(self) -> float:
        return self._state.day.scheduled_start - 60 * self._settings.queue_lock_minutes

    def votes(self, student: str) -> dict[str, Grade]:
        """The votes of the current round for `student`."""
        return dict(self._state.votes.get(student, {}))

    def vote_rounds(self, student: str) -> tuple[dict[str, Grade], ...]:
        """Every round of the vote for `student`, the current one last (7.12)."""
        st = self._state
        return (*(dict(r) for r in st.past_rounds.get(student, [])), self.votes(student))

    @property
    def in_person(self) -> frozenset[str]:
        """Commission members attending in the university room (clause 4.8)."""
        return frozenset(self._state.in_person)

    def moved(self, student: str) -> tuple[float, str] | None:
        """(new date, what failed) of `student`'s moved defense (clause 7.8)."""
        return self._state.moved.get(student)

    def documents_waived(self, student: str) -> str | None:
        """Why the chair let `student`'s defense start without its documents."""
        return self._state.waived.get(student)

    @property
    def results(self) -> tuple[tuple[str, Grade], ...] | None:
        """The grades, once announced with the recording on (clause 7.13)."""
        return self._state.results

    @property
    def return_at(self) -> float | None:
        return self._state.return_at

    def questions(self, student: str) -> tuple[tuple[float, str], ...]:
        """The questions typed in for `student`, as (time, text)."""
        return tuple((at, text) for s, at, text in self._state.questions if s == student)

    # -- effects -----------------------------------------------------------------------

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

    # -- state changes ------------------------------------------------------------------

    def _check_rights(self, event: ev.Event) -> None:
        allowed = RIGHTS.get(type(event))
        actor = getattr(event, "actor", None)
        if actor is not None:
            person = self._state.person(actor)
            if allowed is not None and person.role not in allowed:
                raise NotAllowedForRole(
                    f"a {person.role.value} ({actor}) may not {type(event).__name__}; "
                    f"allowed: {', '.join(sorted(r.value for r in allowed))}"
                )

    def _enter(self, phase: Phase, now: float) -> None:
        st = self._state
        logger.info("phase %s -> %s (student %s)", st.phase.name, phase.name, st.current)
        st.phase = phase
        self._time.enter_phase(now)
        self._watch_failure(now)
        self._emit(Broadcast(self.snapshot()))

    def _end_defense(self, status: StudentStatus, now: float) -> None:
        st = self._state
        assert st.current is not None
        st.status[st.current] = status
        st.current = None
        self._time.end_defense(now)

    def _watch_failure(self, now: float) -> None:
        """Start or stop the failure clock of clause 7.8 as things fail or recover."""
        st = self._state
        failure = self._what_fails()
        if failure and not st.failure:
            self._time.failing(now)
        elif not failure and st.failure:
            self._time.failure_over()
        st.failure = failure

    def _what_fails(self) -> str:
        """What keeps the sitting from going on, in words; "" when nothing does."""
        st = self._state
        if st.phase in (Phase.WAITING, Phase.RESULTS, Phase.CLOSED):
            return ""
        attending, q, failing = st.attending, st.quorum, []
        if not q.reached:
            failing.append(f"quorum lost ({q.present} of {q.total} members, "
                           f"{q.required} needed)")
        if st.day.chair.person_id not in attending:
            failing.append("the chair is not connected")
        secretaries = {p.person_id for p in st.day.people if p.role is Role.SECRETARY}
        if secretaries and not secretaries & attending:
            failing.append("the secretary is not connected")
        if st.current is not None and st.current not in attending:
            failing.append(f"the connection of {st.current} is lost")
        return "; ".join(failing)

    def _presence_changed(self, now: float) -> None:
        self._watch_failure(now)
        if self._state.phase not in DEFENSE_PHASES:
            return
        q = self._state.quorum
        if not q.reached and not self._time.paused:
            self._time.pause(now)
            text = f"paused: {q.present} of {q.total} members present, {q.required} needed"
            self._emit(Notice(text, "7.2"), Broadcast(self.snapshot()))
        elif q.reached and self._time.paused:
            paused_s = self._time.resume(now)
            text = f"resumed after {paused_s:.0f} s paused"
            self._emit(Notice(text, "7.2"), Broadcast(self.snapshot()))

    def _deadline_passed(self, due: Due, now: float) -> None:
        st = self._state
        match due:
            case LimitNear(phase, end):
                if now < end:  # fired late, after the limit: the overtime says it
                    self._emit(Warn(phase, end - now))
            case LimitPassed(phase):
                self._emit(Overtime(phase), Broadcast(self.snapshot()))
            case FailureGraceOver():
                grace = _minutes(self._settings.failure_grace_minutes)
                what = "the defense or the rest of the day" if st.current else "the rest of the day"
                text = f"{st.failure} for {grace}: the chair may move {what}"
                self._emit(Notice(text, "7.8"))
            case AbsenceGraceOver(student):
                if st.status[student] in (StudentStatus.WAITING, StudentStatus.IDENTIFIED):
                    st.status[student] = StudentStatus.ABSENT
                    self._emit(MarkAbsent(student, "7.9"), Broadcast(self.snapshot()))
            case _:
                assert_never(due)

    # -- event handlers: validate everything first, then change the state ----------

    def _participant_joined(self, event: ev.ParticipantJoined) -> None:
        st = self._state
        person = st.person(event.actor)
        st.present.add(event.actor)
        self._time.stop_absence_clock(event.actor)
        if st.phase is Phase.CLOSED_SITTING and person.role not in COMMISSION_ROLES:
            st.lobby.add(event.actor)
            self._emit(MoveToLobby(event.actor))
        self._presence_changed(event.now)

    def _participant_left(self, event: ev.ParticipantLeft) -> None:
        st = self._state
        st.person(event.actor)
        st.present.discard(event.actor)
        # Gone after the opening and not back in time: absent (clause 7.9), as if
        # never come. The defending student's loss is a failure instead (7.8).
        if (st.status.get(event.actor) in (StudentStatus.WAITING, StudentStatus.IDENTIFIED)
                and st.phase not in (Phase.WAITING, Phase.CLOSED)):
            self._time.start_absence_clock(event.actor, event.now)
        self._presence_changed(event.now)

    def _recording_started(self, event: ev.RecordingStarted) -> None:
        st = self._state
        st.recording = True
        st.recording_failure = ""
        if st.phase is Phase.RESULTS and st.results is None:
            chair = st.day.chair.person_id
            decided = tuple(
                (s, grade) for s in st.queue
                if (grade := decide(st.votes.get(s, {}), chair)) is not None
            )
            st.results, st.results_at = decided, event.now
            self._emit(PublishResults(decided))

    def _recording_stopped(self, event: ev.RecordingStopped) -> None:
        self._state.recording = False

    def _recording_failed(self, event: ev.RecordingFailed) -> None:
        # Off as if stopped: the recorded phases wait (require_recording) until the
        # secretary turns it on again (clause 7.11).
        st = self._state
        st.recording = False
        st.recording_failure = event.reason
        self._emit(Notice(f"the recording failed: {event.reason}", "7.11"))

    def _consent_on_file(self, event: ev.ConsentOnFile) -> None:
        self._state.student(event.student)
        self._state.consent.add(event.student)

    def _document_on_file(self, event: ev.DocumentOnFile) -> None:
        self._state.student(event.student)
        self._state.documents.setdefault(event.student, set()).add(event.kind)

    def _waive_documents(self, event: ev.WaiveDocuments) -> None:
        st = self._state
        status = st.student(event.student)
        if status in RESOLVED_STATUSES or status is StudentStatus.DEFENDING:
            raise ForbiddenAction(
                f"cannot waive the documents of {event.student}: {status.value}", "7.3")
        reason = event.reason.strip()
        if not reason:
            raise ForbiddenAction(
                "cannot let a defense start without its documents: say why", "7.3")
        st.waived[event.student] = reason
        self._emit(Notice(f"the defense of {event.student} may start without its "
                          f"documents: {reason}", "7.3"))

    def _set_in_person(self, event: ev.SetInPerson) -> None:
        st = self._state
        person = st.person(event.person)
        if person.role not in COMMISSION_ROLES:
            raise ForbiddenAction(
                f"cannot mark {event.person} as attending in person: only the commission "
                "sits in the university room", "4.8")
        if event.in_person:
            st.in_person.add(event.person)
        else:
            st.in_person.discard(event.person)
        self._presence_changed(event.now)

    def _open_sitting(self, event: ev.OpenSitting) -> None:
        st = self._state
        if self._settings.absence_from is AbsenceFrom.START:
            for student in st.queue:
                if student not in st.present:
                    self._time.start_absence_clock(student, event.now)
        self._emit(StartRecording())

    def _identity_decided(self, event: ev.IdentityDecided) -> None:
        st = self._state
        status = st.student(event.student)
        if status is not StudentStatus.WAITING:
            raise ForbiddenAction(
                f"cannot identify {event.student}: status is {status.value}", "7.5"
            )
        if event.student not in st.present:
            raise ForbiddenAction(f"cannot identify {event.student}: not connected", "7.5")
        st.require_consent(event.student, f"identify {event.student}")
        st.require_recording(f"identify {event.student}", "7.5")
        for earlier in st.queue[: st.queue.index(event.student)]:
            if st.status[earlier] is StudentStatus.WAITING and earlier in st.present:
                raise ForbiddenAction(
                    f"cannot identify {event.student} before {earlier}, who is earlier "
                    "in the queue",
                    "7.5",
                )
        if event.accepted:
            st.status[event.student] = StudentStatus.IDENTIFIED

    def _announce_limits(self, event: ev.AnnounceLimits) -> None:
        self._state.require_recording("announce the time limits", "7.5")
        s = self._settings
        limits = (
            f"talk {_minutes(s.talk_minutes)}, questions {_minutes(s.questions_minutes)}, "
            f"defense {_minutes(s.defense_max_minutes)}"
        )
        self._emit(Notice(f"time limits: {limits}", "7.5"))

    def _call_student(self, event: ev.CallStudent) -> None:
        st = self._state
        status = st.student(event.student)
        if status in RESOLVED_STATUSES:
            raise ForbiddenAction(f"cannot call {event.student}: {status.value}", "7.4")
        if self._settings.absence_from is AbsenceFrom.CALL and event.student not in st.present:
            self._time.start_absence_clock(event.student, event.now)

    def _start_defense(self, event: ev.StartDefense) -> None:
        st = self._state
        status = st.student(event.student)
        if status is not StudentStatus.IDENTIFIED:
            raise ForbiddenAction(
                f"cannot start the defense of {event.student}: status is {status.value}, "
                "not identified",
                "7.5",
            )
        if event.student not in st.present:
            raise ForbiddenAction(
                f"cannot start the defense of {event.student}: not connected", "7.5"
            )
        for earlier in st.queue[: st.queue.index(event.student)]:
            # One who is gone does not hold up the queue; they are marked absent
            # when their grace period ends (clause 7.9).
            if st.status[earlier] is StudentStatus.IDENTIFIED and earlier in st.present:
                raise ForbiddenAction(
                    f"cannot start the defense of {event.student} before {earlier}",
                    "7.4",
                )
        st.require_consent(event.student, f"start the defense of {event.student}")
        st.require_documents(event.student, f"start the defense of {event.student}")
        st.require_quorum(f"start the defense of {event.student}")
        st.require_appeal_witness(f"start the defense of {event.student}")
        st.require_recording(f"start the defense of {event.student}", "7.11")
        st.status[event.student] = StudentStatus.DEFENDING
        st.current = event.student
        self._time.start_defense(event.now, st.day.time_factor(event.student))

    def _next_phase(self, event: ev.NextPhase) -> None:
        st = self._state
        if self._time.paused:
            raise ForbiddenAction(
                f"cannot move on from phase {st.phase.name} while paused without quorum",
                "7.2",
            )
        st.require_recording(f"move on from phase {st.phase.name}", "7.11")
        if st.phase is Phase.FINAL_WORD:
            self._end_defense(StudentStatus.DEFENDED, event.now)

    def _reorder_queue(self, event: ev.ReorderQueue) -> None:
        st = self._state
        if event.now >= self.queue_locked_at:
            raise ForbiddenAction(
                f"cannot reorder the queue at {event.now}: it locked at "
                f"{self.queue_locked_at}",
                "7.4",
            )
        if sorted(event.order) != sorted(st.queue):
            raise ForbiddenAction(
                f"cannot reorder the queue to {list(event.order)}: not the same students "
                f"as {st.queue}",
                "7.4",
            )
        st.queue = list(event.order)
        self._emit(Broadcast(self.snapshot()))

    def _record_valid_reason(self, event: ev.RecordValidReason) -> None:
        st = self._state
        status = st.student(event.student)
        if status in {StudentStatus.DEFENDING, StudentStatus.DEFENDED, StudentStatus.RESCHEDULED}:
            raise ForbiddenAction(
                f"cannot record a valid reason for {event.student}: {status.value}", "7.9"
            )
        if not event.reason.strip():
            raise ForbiddenAction("cannot record a valid reason without saying it", "7.9")
        if DocumentKind.ABSENCE_PROOF not in st.documents.get(event.student, set()):
            raise ForbiddenAction(
                f"cannot record a valid reason for {event.student}: the document that "
                "proves it is not on file; upload it first", "7.9")
        st.status[event.student] = StudentStatus.RESCHEDULED
        self._time.stop_absence_clock(event.student)
        self._emit(Reschedule(event.student, event.reason, "7.9"))

    def _move_defense(self, event: ev.MoveDefense) -> None:
        what = f"the defense of {event.student}"
        if event.student != self._state.current:
            raise ForbiddenAction(f"cannot move {what}: it is not under way", "7.8")
        description = self._check_move(what, event.failure_description, event.new_date,
                                       event.now)
        self._move(event.student, event.new_date, description)
        self._end_defense(StudentStatus.RESCHEDULED, event.now)

    def _move_rest_of_day(self, event: ev.MoveRestOfDay) -> None:
        st = self._state
        chair = st.day.chair.person_id
        undecided = [
            s for s in st.queue
            if st.status[s] not in RESOLVED_STATUSES
            or (st.phase is Phase.CLOSED_SITTING and st.status[s] is StudentStatus.DEFENDED
                and (self._missing_voters(s) or decide(st.votes.get(s, {}), chair) is None))
        ]
        what = "the rest of the day"
        if not undecided:
            raise ForbiddenAction(f"cannot move {what}: no defense is left to move", "7.8")
        description = self._check_move(what, event.failure_description, event.new_date,
                                       event.now)
        for student in undecided:
            self._move(student, event.new_date, description)
            if student == st.current:
                self._end_defense(StudentStatus.RESCHEDULED, event.now)
            else:
                st.status[student] = StudentStatus.RESCHEDULED
                st.votes.pop(student, None)

    def _check_move(self, what: str, description: str, new_date: float,
                    now: float) -> str:
        """The failure's description, once moving `what` is allowed (clause 7.8)."""
        since = self._time.failure_since
        grace = 60 * self._settings.failure_grace_minutes
        if since is None or now < since + grace:
            lasted = 0.0 if since is None else now - since
            raise ForbiddenAction(
                f"cannot move {what}: the failure has lasted {lasted:.0f} s, less than "
                f"{grace:.0f} s", "7.8")
        if not description.strip():
            raise ForbiddenAction(f"cannot move {what}: describe the failure", "7.8")
        if new_date <= now:
            raise ForbiddenAction(f"cannot move {what} to {new_date}: it has passed", "7.8")
        end = self._settings.attestation_period_end
        if end and new_date > end:
            raise ForbiddenAction(
                f"cannot move {what} to {new_date}: after the end of the attestation "
                f"period at {end}", "7.8")
        return description.strip()

    def _move(self, student: str, new_date: float, description: str) -> None:
        self._state.moved[student] = (new_date, description)
        self._time.stop_absence_clock(student)
        self._emit(Reschedule(student, description, "7.8", new_date))

    def _set_recording(self, event: ev.SetRecording) -> None:
        st = self._state
        if event.on:
            if st.phase is Phase.CLOSED_SITTING:
                raise ForbiddenAction(
                    "cannot turn the recording on: the closed sitting is not recorded", "7.12"
                )
            if st.recording:
                raise ForbiddenAction("cannot turn the recording on: it is on", "7.5")
            self._emit(StartRecording())
            return
        if st.phase in RECORDED_PHASES:
            raise ForbiddenAction(
                f"cannot turn the recording off in phase {st.phase.name}: the whole "
                "procedure is recorded",
                "7.11",
            )
        if not st.recording:
            raise ForbiddenAction("cannot turn the recording off: it is off", "7.11")
        self._emit(StopRecording())

    def _record_question(self, event: ev.RecordQuestion) -> None:
        if event.student != self._state.current:
            raise ForbiddenAction(
                f"cannot record a question for {event.student}: not defending now", "7.6"
            )
        text = event.text.strip()
        if not text:
            raise ForbiddenAction("cannot record an empty question", "7.14")
        self._state.questions.append((event.student, event.now, text))

    def _tell_return_time(self, event: ev.TellReturnTime) -> None:
        st = self._state
        st.require_group_done("tell the students when to come back")
        if event.return_at < event.now:
            raise ForbiddenAction(
                f"cannot tell the students to come back at {event.return_at}: it has passed",
                "7.7",
            )
        st.return_at = event.return_at
        self._emit(Notice(f"results at {event.return_at}", "7.7"), Broadcast(self.snapshot()))

    def _start_closed_sitting(self, event: ev.StartClosedSitting) -> None:
        st = self._state
        st.require_group_done("start the closed sitting")
        if st.return_at is None:
            raise ForbiddenAction(
                "cannot start the closed sitting: tell the students when to come back "
                "for the results first",
                "7.7",
            )
        for person_id in sorted(st.present):
            if st.person(person_id).role not in COMMISSION_ROLES:
                st.lobby.add(person_id)
                self._emit(MoveToLobby(person_id))
        self._emit(StopRecording())

    def _cast_vote(self, event: ev.CastVote) -> None:
        if event.actor not in self._state.attending:
            raise ForbiddenAction(f"cannot accept a vote from {event.actor}: not present", "7.12")
        self._accept_vote(event.actor, event.student, event.grade)

    def _record_vote(self, event: ev.RecordVote) -> None:
        st = self._state
        if st.person(event.voter).role not in VOTING_ROLES:
            raise ForbiddenAction(f"cannot record a vote of {event.voter}: not a member "
                                  "who votes", "7.12")
        if event.voter not in st.in_person:
            raise ForbiddenAction(
                f"cannot record the vote of {event.voter}: not marked as attending in "
                "person; members online vote from their own page", "4.8")
        self._accept_vote(event.voter, event.student, event.grade)

    def _accept_vote(self, voter: str, student: str, grade: Grade) -> None:
        st = self._state
        if st.recording:
            raise ForbiddenAction("cannot accept a vote while the recording is on", "7.12")
        status = st.student(student)
        if status is not StudentStatus.DEFENDED:
            raise ForbiddenAction(
                f"cannot accept a vote for {student}: status is {status.value}", "7.12"
            )
        if voter in st.votes.get(student, {}):
            raise ForbiddenAction(
                f"cannot accept a second vote from {voter} for {student}", "7.12"
            )
        st.require_quorum("start the vote")
        st.votes.setdefault(student, {})[voter] = grade

    def _missing_voters(self, student: str) -> list[str]:
        st = self._state
        voters = st.day.voting_members & st.attending
        return sorted(voters - st.votes.get(student, {}).keys())

    def _new_vote_round(self, event: ev.NewVoteRound) -> None:
        st = self._state
        status = st.student(event.student)
        if status is not StudentStatus.DEFENDED:
            raise ForbiddenAction(
                f"cannot vote again for {event.student}: status is {status.value}", "7.12")
        votes = st.votes.get(event.student, {})
        missing = self._missing_voters(event.student)
        if not votes or missing:
            raise ForbiddenAction(
                f"cannot vote again for {event.student}: this round is not over, "
                f"{', '.join(missing) or 'nobody'} to vote", "7.12")
        if decide(votes, st.day.chair.person_id) is not None:
            raise ForbiddenAction(
                f"cannot vote again for {event.student}: this round decided", "7.12")
        st.past_rounds.setdefault(event.student, []).append(dict(votes))
        st.votes[event.student] = {}
        rounds = len(st.past_rounds[event.student]) + 1
        self._emit(Notice(f"no majority for {event.student}: round {rounds} of the vote",
                          "7.12"))

    def _announce_results(self, event: ev.AnnounceResults) -> None:
        st = self._state
        chair = st.day.chair.person_id
        for student in st.queue:
            if st.status[student] is not StudentStatus.DEFENDED:
                continue
            votes = st.votes.get(student, {})
            missing = self._missing_voters(student)
            if missing:
                raise ForbiddenAction(
                    f"cannot announce the results: {', '.join(missing)} did not vote "
                    f"for {student}",
                    "7.12",
                )
            if decide(votes, chair) is None:
                raise ForbiddenAction(
                    f"cannot announce the results: the vote for {student} has no "
                    "majority and the chair's vote breaks no tie; vote again in a new "
                    "round",
                    "7.12",
                )
        self._emit(StartRecording())
        for person_id in sorted(st.lobby):
            self._emit(AdmitFromLobby(person_id))
        st.lobby.clear()

    def _close_sitting(self, event: ev.CloseSitting) -> None:
        if self._state.results is None:
            raise ForbiddenAction(
                "cannot close the sitting: results not yet announced on the recording",
                "7.13",
            )
        self._emit(StopRecording())
