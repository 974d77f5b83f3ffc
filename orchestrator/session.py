"""`DefenseSession`: the state of one defense day and the rules that move it.

Feed events with `handle(event)`, carry out what `next_effect()` returns until it
returns None, and call `handle_deadline(now)` once `now` reaches
`next_deadline()`. Nothing here reads the clock: every time comes from the caller.
The phase table and its theory of operation are in `phases.py`.
"""

from __future__ import annotations

import logging

from . import events as ev
from .effects import (
    AdmitFromLobby,
    Broadcast,
    Effect,
    Journal,
    MoveToLobby,
    Notice,
    PublishResults,
    Reschedule,
    SaveVote,
    StartRecording,
    StopRecording,
)
from .errors import ForbiddenAction, NotAllowedForRole
from .model import COMMISSION_ROLES, RESOLVED_STATUSES, AbsenceFrom, Phase, StudentStatus
from .phases import DEFENSE_PHASES, RECORDED_PHASES, RIGHTS, next_phase
from .deadlines import DeadlineRules
from .votes import decide

logger = logging.getLogger(__name__)

class DefenseSession(DeadlineRules):
    """The defense procedure of one day: queue, phases, quorum, absence and votes."""

    # -- the caller's interface -------------------------------------------------------

    def next_effect(self) -> Effect | None:
        return self._effects.popleft() if self._effects else None

    def next_deadline(self) -> float | None:
        return self._deadlines().earliest()

    def handle_deadline(self, now: float) -> None:
        """Fire every deadline at or before `now`, earliest first."""
        with self._broadcasting():
            while (due := self._deadlines().due(now)) is not None:
                due.fire(now)

    def handle(self, event: ev.Event) -> None:
        """Apply `event`, or raise an `OrchestratorError` and change nothing."""
        self._check_rights(event)
        following = next_phase(self._phase, event)
        handler = getattr(self, f"_on_{type(event).__name__}")
        with self._broadcasting():
            handler(event)
            if following is not self._phase:
                self._enter(following, event.now)

    def _check_rights(self, event: ev.Event) -> None:
        allowed = RIGHTS.get(type(event))
        actor = getattr(event, "actor", None)
        if actor is not None:
            person = self._person(actor)
            if allowed is not None and person.role not in allowed:
                raise NotAllowedForRole(
                    f"a {person.role.value} ({actor}) may not {type(event).__name__}; "
                    f"allowed: {', '.join(sorted(r.value for r in allowed))}"
                )

    # -- state changes ------------------------------------------------------------------

    def _enter(self, phase: Phase, now: float) -> None:
        logger.info("phase %s -> %s (student %s)", self._phase.name, phase.name, self._current)
        self._emit(Journal("phase", f"{self._phase.name} -> {phase.name} at {now}"))
        self._phase = phase
        self._phase_started_at = now
        self._phase_paused_s = 0.0
        self._fired -= {"phase_warning", "phase_end"}
        self._emit(Broadcast(self.snapshot()))

    def _end_defense(self, status: StudentStatus, now: float) -> None:
        assert self._current is not None
        if self._paused_since is not None:
            self._pauses.append((self._paused_since, now))
        self._status[self._current] = status
        self._current = None
        self._defense_started_at = None
        self._defense_paused_s = 0.0
        self._failure_since = None
        self._paused_since = None
        self._fired.clear()

    def _presence_changed(self, now: float) -> None:
        if self._phase not in DEFENSE_PHASES:
            return
        q = self.quorum
        if not q.reached and self._paused_since is None:
            self._paused_since = now
            text = f"paused: {q.present} of {q.total} members present, {q.required} needed"
            self._emit(Notice(text, "7.2"), Journal("pause", text), Broadcast(self.snapshot()))
        elif q.reached and self._paused_since is not None:
            start, self._paused_since = self._paused_since, None
            self._pauses.append((start, now))
            self._phase_paused_s += now - start
            self._defense_paused_s += now - start
            text = f"resumed after {now - start:.0f} s paused"
            self._emit(Notice(text, "7.2"), Journal("resume", text), Broadcast(self.snapshot()))

    # -- event handlers: validate everything first, then change the state ----------

    def _on_ParticipantJoined(self, event: ev.ParticipantJoined) -> None:
        person = self._person(event.actor)
        self._present.add(event.actor)
        self._absence_clock.pop(event.actor, None)
        if event.actor == self._current:
            self._failure_since = None
            self._fired.discard("failure")
        if self._phase is Phase.CLOSED_SITTING and person.role not in COMMISSION_ROLES:
            self._lobby.add(event.actor)
            self._emit(MoveToLobby(event.actor))
        self._presence_changed(event.now)

    def _on_ParticipantLeft(self, event: ev.ParticipantLeft) -> None:
        self._person(event.actor)
        self._present.discard(event.actor)
        if event.actor == self._current and self._failure_since is None:
            self._failure_since = event.now
            self._emit(Journal("connection_lost", f"{event.actor} at {event.now}"))
        self._presence_changed(event.now)

    def _on_RecordingStarted(self, event: ev.RecordingStarted) -> None:
        self._recording = True
        self._emit(Journal("recording", f"on at {event.now}"))
        if self._phase is Phase.RESULTS and self._results is None:
            decided = tuple(
                (s, grade) for s in self._queue
                if (grade := decide(self._votes.get(s, {}), self._day.chair.person_id))
                is not None
            )
            self._results, self._results_at = decided, event.now
            self._emit(PublishResults(decided), Journal("results", repr(decided)))

    def _on_RecordingStopped(self, event: ev.RecordingStopped) -> None:
        self._recording = False
        self._emit(Journal("recording", f"off at {event.now}"))

    def _on_ConsentOnFile(self, event: ev.ConsentOnFile) -> None:
        self._student(event.student)
        self._consent.add(event.student)

    def _on_OpenSitting(self, event: ev.OpenSitting) -> None:
        if self._settings.absence_from is AbsenceFrom.START:
            for student in self._queue:
                if student not in self._present:
                    self._absence_clock[student] = event.now
        self._emit(StartRecording())

    def _on_IdentityDecided(self, event: ev.IdentityDecided) -> None:
        status = self._student(event.student)
        if status is not StudentStatus.WAITING:
            raise ForbiddenAction(
                f"cannot identify {event.student}: status is {status.value}", "7.5"
            )
        if event.student not in self._present:
            raise ForbiddenAction(f"cannot identify {event.student}: not connected", "7.5")
        self._require_consent(event.student, f"identify {event.student}")
        self._require_recording(f"identify {event.student}", "7.5")
        for earlier in self._queue[: self._queue.index(event.student)]:
            if self._status[earlier] is StudentStatus.WAITING and earlier in self._present:
                raise ForbiddenAction(
                    f"cannot identify {event.student} before {earlier}, who is earlier "
                    "in the queue",
                    "7.5",
                )
        if event.accepted:
            self._status[event.student] = StudentStatus.IDENTIFIED
        verdict = "accepted" if event.accepted else "rejected"
        self._emit(Journal("identity", f"{event.student} {verdict} by {event.actor}"))

    def _on_AnnounceLimits(self, event: ev.AnnounceLimits) -> None:
        self._require_recording("announce the time limits", "7.5")
        s = self._settings
        limits = (
            f"talk {s.talk_minutes} min, questions {s.questions_minutes} min, "
            f"defense {s.defense_max_minutes} min"
        )
        self._emit(Journal("limits", limits), Notice(f"time limits: {limits}", "7.5"))

    def _on_CallStudent(self, event: ev.CallStudent) -> None:
        status = self._student(event.student)
        if status in RESOLVED_STATUSES:
            raise ForbiddenAction(f"cannot call {event.student}: {status.value}", "7.4")
        if self._settings.absence_from is AbsenceFrom.CALL and event.student not in self._present:
            self._absence_clock.setdefault(event.student, event.now)
        self._emit(Journal("call", f"{event.student} called at {event.now}"))

    def _on_StartDefense(self, event: ev.StartDefense) -> None:
        status = self._student(event.student)
        if status is not StudentStatus.IDENTIFIED:
            raise ForbiddenAction(
                f"cannot start the defense of {event.student}: status is {status.value}, "
                "not identified",
                "7.5",
            )
        if event.student not in self._present:
            raise ForbiddenAction(
                f"cannot start the defense of {event.student}: not connected", "7.5"
            )
        for earlier in self._queue[: self._queue.index(event.student)]:
            if self._status[earlier] is StudentStatus.IDENTIFIED:
                raise ForbiddenAction(
                    f"cannot start the defense of {event.student} before {earlier}",
                    "7.4",
                )
        self._require_consent(event.student, f"start the defense of {event.student}")
        self._require_quorum(f"start the defense of {event.student}")
        self._require_appeal_witness(f"start the defense of {event.student}")
        self._require_recording(f"start the defense of {event.student}", "7.11")
        self._status[event.student] = StudentStatus.DEFENDING
        self._current = event.student
        self._defense_started_at = event.now
        self._defense_paused_s = 0.0
        self._fired.clear()

    def _on_NextPhase(self, event: ev.NextPhase) -> None:
        if self.paused:
            raise ForbiddenAction(
                f"cannot move on from phase {self._phase.name} while paused without quorum",
                "7.2",
            )
        self._require_recording(f"move on from phase {self._phase.name}", "7.11")
        if self._phase is Phase.FINAL_WORD:
            self._emit(Journal("defended", f"{self._current} at {event.now}"))
            self._end_defense(StudentStatus.DEFENDED, event.now)

    def _on_ReorderQueue(self, event: ev.ReorderQueue) -> None:
        if event.now >= self.queue_locked_at:
            raise ForbiddenAction(
                f"cannot reorder the queue at {event.now}: it locked at "
                f"{self.queue_locked_at}",
                "7.4",
            )
        if sorted(event.order) != sorted(self._queue):
            raise ForbiddenAction(
                f"cannot reorder the queue to {list(event.order)}: not the same students "
                f"as {self._queue}",
                "7.4",
            )
        self._queue = list(event.order)
        self._emit(Journal("queue", ", ".join(self._queue)), Broadcast(self.snapshot()))

    def _on_RecordValidReason(self, event: ev.RecordValidReason) -> None:
        status = self._student(event.student)
        if status in {StudentStatus.DEFENDING, StudentStatus.DEFENDED, StudentStatus.RESCHEDULED}:
            raise ForbiddenAction(
                f"cannot record a valid reason for {event.student}: {status.value}", "7.9"
            )
        self._status[event.student] = StudentStatus.RESCHEDULED
        self._absence_clock.pop(event.student, None)
        self._emit(
            Reschedule(event.student, event.reason, "7.9"),
            Journal("valid_reason", f"{event.student}: {event.reason}"),
        )

    def _on_MoveDefense(self, event: ev.MoveDefense) -> None:
        if event.student != self._current:
            raise ForbiddenAction(
                f"cannot move the defense of {event.student}: it is not under way", "7.8"
            )
        since = self._failure_since
        grace = 60 * self._settings.failure_grace_minutes
        if since is None or event.now < since + grace:
            lasted = 0.0 if since is None else event.now - since
            raise ForbiddenAction(
                f"cannot move the defense of {event.student}: the failure has lasted "
                f"{lasted:.0f} s, less than {grace:.0f} s",
                "7.8",
            )
        self._emit(
            Journal("failure", f"{event.student}: {event.failure_description}"),
            Reschedule(event.student, event.failure_description, "7.8"),
        )
        self._end_defense(StudentStatus.RESCHEDULED, event.now)

    def _on_SetRecording(self, event: ev.SetRecording) -> None:
        if event.on:
            if self._phase is Phase.CLOSED_SITTING:
                raise ForbiddenAction(
                    "cannot turn the recording on: the closed sitting is not recorded", "7.12"
                )
            if self._recording:
                raise ForbiddenAction("cannot turn the recording on: it is on", "7.5")
            self._emit(StartRecording())
            return
        if self._phase in RECORDED_PHASES:
            raise ForbiddenAction(
                f"cannot turn the recording off in phase {self._phase.name}: the whole "
                "procedure is recorded",
                "7.11",
            )
        if not self._recording:
            raise ForbiddenAction("cannot turn the recording off: it is off", "7.11")
        self._emit(StopRecording())

    def _on_RecordQuestion(self, event: ev.RecordQuestion) -> None:
        if event.student != self._current:
            raise ForbiddenAction(
                f"cannot record a question for {event.student}: not defending now", "7.6"
            )
        text = event.text.strip()
        if not text:
            raise ForbiddenAction("cannot record an empty question", "7.14")
        self._questions.append((event.student, event.now, text))
        self._emit(Journal("question", f"{event.student}: {text}"))

    def _on_TellReturnTime(self, event: ev.TellReturnTime) -> None:
        self._require_group_done("tell the students when to come back")
        if event.return_at < event.now:
            raise ForbiddenAction(
                f"cannot tell the students to come back at {event.return_at}: it has passed",
                "7.7",
            )
        self._return_at = event.return_at
        self._emit(
            Notice(f"results at {event.return_at}", "7.7"),
            Journal("return_time", f"results at {event.return_at}"),
            Broadcast(self.snapshot()),
        )

    def _on_StartClosedSitting(self, event: ev.StartClosedSitting) -> None:
        self._require_group_done("start the closed sitting")
        if self._return_at is None:
            raise ForbiddenAction(
                "cannot start the closed sitting: tell the students when to come back "
                "for the results first",
                "7.7",
            )
        for person_id in sorted(self._present):
            if self._person(person_id).role not in COMMISSION_ROLES:
                self._lobby.add(person_id)
                self._emit(MoveToLobby(person_id))
        self._emit(StopRecording())

    def _on_CastVote(self, event: ev.CastVote) -> None:
        if self._recording:
            raise ForbiddenAction("cannot accept a vote while the recording is on", "7.12")
        if event.actor not in self._present:
            raise ForbiddenAction(f"cannot accept a vote from {event.actor}: not present", "7.12")
        status = self._student(event.student)
        if status is not StudentStatus.DEFENDED:
            raise ForbiddenAction(
                f"cannot accept a vote for {event.student}: status is {status.value}", "7.12"
            )
        if event.actor in self._votes.get(event.student, {}):
            raise ForbiddenAction(
                f"cannot accept a second vote from {event.actor} for {event.student}", "7.12"
            )
        self._require_quorum("start the vote")
        self._votes.setdefault(event.student, {})[event.actor] = event.grade
        self._emit(SaveVote(event.actor, event.student, event.grade))

    def _on_AnnounceResults(self, event: ev.AnnounceResults) -> None:
        chair = self._day.chair.person_id
        voters = self._day.voting_members & self._present
        for student in self._queue:
            if self._status[student] is not StudentStatus.DEFENDED:
                continue
            votes = self._votes.get(student, {})
            missing = sorted(voters - votes.keys())
            if missing:
                raise ForbiddenAction(
                    f"cannot announce the results: {', '.join(missing)} did not vote "
                    f"for {student}",
                    "7.12",
                )
            if decide(votes, chair) is None:
                raise ForbiddenAction(
                    f"cannot announce the results: the vote for {student} is tied and "
                    "the chair's vote does not break the tie",
                    "7.12",
                )
        self._emit(StartRecording())
        for person_id in sorted(self._lobby):
            self._emit(AdmitFromLobby(person_id))
        self._lobby.clear()

    def _on_CloseSitting(self, event: ev.CloseSitting) -> None:
        if self._results is None:
            raise ForbiddenAction(
                "cannot close the sitting: results not yet announced on the recording",
                "7.13",
            )
        self._emit(StopRecording())
