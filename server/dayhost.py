"""`DayHost`: one defense day running on the server.

It joins the three owners of a day's state: the `ProcedureRunner` (rules, journal,
timer), the `Room` (media) and the current `RoomRecording` (files). It feeds the
runner what the media layer sees (presence) and what the recorder confirms, and
carries out the runner's effects on the room and the recorder.

Presence: the room reports each participant's media connection going up or down;
one task (`_presence_loop`) turns those reports into `ParticipantJoined`/`Left`
events, in order, and only when they differ from what the procedure believes, so
the journal holds presence changes and nothing else. After a restart the
procedure believes those present before the crash are still there; they get
`reconnect_grace_s` to come back before they count as gone, so a server restart is
not an absence and the talk's clock goes on as if nothing happened.

Recording: `StartRecording`/`StopRecording` effects start or stop a take in a task
of their own (the effect sink may not submit), which then submits the recorder's
confirmation. A day whose procedure was recording when the server died resumes
recording in a new take as soon as it starts again. A take that cannot start (too
little free disk space: `recordings.min_free_mb`) or that fails while it runs (a
write error, the disk filling up) is stopped and fed to the core as
`RecordingFailed`: the recording is off, every page shows why, and the recorded
phases wait until the secretary turns it on again (rule D6, clause 7.11). Turning it
on with too little space is refused at once, with the sentence that says so.

Page turns reach everyone at once; the journal takes at most one a second, the
page shown at its end (`server.flood.Coalescer`), and the last one on stop. During
the closed sitting the room's lobby holds everyone of the day outside the
commission, present or not, so that nobody joining then is ever sent the
commission's media.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from media.forwarder import PublishedTrack
from media.participant import ParticipantInfo
from media.room import Room
from orchestrator import effects as fx
from orchestrator import events as ev
from orchestrator.appeal_session import AppealSession, AppealSnapshot
from orchestrator.codec import snapshot_to_json
from orchestrator.documents import DocumentKind
from orchestrator.errors import OrchestratorError
from orchestrator.model import (
    APPEAL_ROLES,
    COMMISSION_ROLES,
    Phase,
    Role,
    Settings,
    Snapshot,
)
from orchestrator.session import DefenseSession
from recordings.errors import NotEnoughSpace
from recordings.plan import day_folder
from recordings.recorder import describe_error
from recordings.room_recording import MB, RoomRecording, ensure_free_space
from storage.appeals import DayKind
from storage.days import LoadedDay
from storage.journal import Journal

from .errors import ServerError
from .flood import Coalescer
from .procedure import ProcedureRunner

logger = logging.getLogger(__name__)

PRESENTATION_KIND = "presentation_page"
ADMITTED_KIND = "admitted"


class DayObserver(Protocol):
    """Told, in a task of the day's own, what its procedure settled that matters
    beyond the day: the results (students' links last to the appeal deadline), an
    appeal sitting's decision (the appeal it hears), the closing of a sitting with
    its files closed (the archive builds one file per defense), and a defense moved
    to a new date (the student's link shows it until then, clause 7.8)."""

    async def results_announced(self, host: DayHost) -> None: ...

    async def appeal_decided(self, host: DayHost) -> None: ...

    async def sitting_closed(self, host: DayHost) -> None: ...

    async def defense_moved(self, host: DayHost, student: str, new_date: float) -> None: ...


class NoticeKind(enum.StrEnum):
    """What a ``notice`` message tells the room (docs/signaling.md lists the fields)."""

    NOTICE = "notice"  # text, clause: e.g. the procedure paused (7.2)
    WARNING = "warning"  # phase (None: the whole defense), seconds_left
    OVERTIME = "overtime"  # phase
    ABSENT = "absent"  # student, clause
    RESCHEDULED = "rescheduled"  # student, reason, clause, new_date
    RESULTS = "results"  # grades by student


class NotAllowedHere(ServerError):
    """A page turned by someone other than the defending student (or the secretary),
    or someone admitted who does not wait to be."""

    code = "not_allowed_here"
    status_hint = 409


class DayHost:
    """Runs one defense day; see the module doc."""

    def __init__(
        self,
        loaded: LoadedDay,
        settings: Settings,
        journal: Journal,
        room: Room,
        recordings_dir: Path,
        *,
        reconnect_grace_s: float,
        clock: Callable[[], float] = time.time,
        observer: DayObserver | None = None,
        admission: bool = False,
        min_free_mb: int = 0,
        free_space_check_s: float = 5.0,
        page_journal_interval_s: float = 1.0,
    ) -> None:
        self._loaded = loaded
        self._day_id = loaded.stored.day_id
        self._room = room
        self._journal = journal
        self._folder = day_folder(recordings_dir, self._day_id)
        self._grace_s = reconnect_grace_s
        self._clock = clock
        self._runner = ProcedureRunner(
            lambda s: (AppealSession(loaded.day) if loaded.kind is DayKind.APPEAL
                       else DefenseSession(loaded.day, s)),
            journal, self._day_id, self._carry_out, settings, clock,
        )
        self._observer = observer
        # People who wait to be admitted (not the commission); admitted ones stay
        # admitted for the day ("admitted" journal entries).
        self._needs_admission = frozenset(
            p.person_id for p in loaded.day.people
            if admission and loaded.kind is not DayKind.APPEAL
            and p.role not in COMMISSION_ROLES | APPEAL_ROLES)
        self._admitted: set[str] = set()
        self._recording: RoomRecording | None = None
        self._min_free_bytes = min_free_mb * MB
        self._free_space_check_s = free_space_check_s
        self._stopping = False  # stop() began: a take's failure is no longer news
        self._presence: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
        # Messages to the room leave from one task, in order, so a slow socket never
        # holds the runner's lock (the effect sink only enqueues).
        self._outbox: asyncio.Queue[tuple[str | None, dict[str, Any]]] = asyncio.Queue()
        self._send_task: asyncio.Task[None] | None = None
        self._grace: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._presence_task: asyncio.Task[None] | None = None
        self._started = False
        #: (student, page) of the presentation on screen; journaled, not in the core.
        self._presentation: tuple[str, int] | None = None
        # At most one page turn a second reaches the journal (S5); the latest wins.
        self._page_turns: Coalescer[tuple[int, str, int]] = Coalescer(page_journal_interval_s)
        self._page_timer: asyncio.TimerHandle | None = None
        self._page_writes: set[asyncio.Task[None]] = set()  # awaited, not cancelled, on stop

    @property
    def day_id(self) -> int:
        return self._day_id

    @property
    def loaded(self) -> LoadedDay:
        return self._loaded

    @property
    def runner(self) -> ProcedureRunner:
        return self._runner

    @property
    def recording(self) -> RoomRecording | None:
        return self._recording

    @property
    def snapshot(self) -> Snapshot | AppealSnapshot:
        return self._runner.snapshot

    def state_message(self) -> dict[str, Any]:
        """The ``state`` message every participant receives on join and on change."""
        presentation = (None if self._presentation is None else
                        {"student": self._presentation[0], "page": self._presentation[1]})
        return {"type": "state", "state": snapshot_to_json(self._runner.snapshot),
                "presentation": presentation, "server_time": self._clock()}

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self._runner.start()
        try:
            await self._start_rest()
        except BaseException:
            await self.stop()
            raise

    async def _start_rest(self) -> None:
        self._started = True
        self._send_task = asyncio.create_task(self._send_loop())
        for entry in await self._journal.entries(self._day_id):
            if entry.kind == PRESENTATION_KIND:
                self._presentation = (str(entry.detail["student"]), int(entry.detail["page"]))
            elif entry.kind == ADMITTED_KIND:
                self._admitted.add(str(entry.detail["person"]))
        self._room.observe(self)
        self._presence_task = asyncio.create_task(self._presence_loop())
        snapshot = self._runner.snapshot
        for person_id in sorted(snapshot.present - self._room.present):
            # Present before a restart: give them time to come back.
            loop = asyncio.get_running_loop()
            self._grace[person_id] = loop.call_later(
                self._grace_s, self._grace_over, person_id)
        for person_id in sorted(self._room.present - snapshot.present):
            self._presence.put_nowait((person_id, True))
        for student_id, student in self._loaded.students.items():
            if student.consent_at is not None and student_id not in snapshot.consented:
                await self._runner.submit(ev.ConsentOnFile(now=0, student=student_id))
            for document in student.documents:
                await self.document_recorded(student_id, document.kind)
        self._room.set_lobby(self._lobby(snapshot))
        if snapshot.recording:
            await self._journal.append(self._day_id, None, "recording_resumed",
                                       {"reason": "server restarted"}, self._clock())
            await self._start_take()
        if isinstance(snapshot, AppealSnapshot) and snapshot.decision is not None:
            # The decision may have been journaled just before a crash.
            self._spawn(self._appeal_decided())
        logger.info("day %s hosted: phase %s", self._day_id, snapshot.phase.value)

    def now(self) -> float:
        """The time by the day's clock (the procedure's; fake in tests)."""
        return self._clock()

    async def stop(self) -> None:
        """Stop the timer, presence work and recording (files closed). Idempotent."""
        self._stopping = True
        if self._page_timer is not None:
            self._page_timer.cancel()
            self._page_timer = None
        await asyncio.gather(*self._page_writes, return_exceptions=True)
        pending = self._page_turns.flush()
        if pending is not None:
            await self._journal_page(pending)
        self._room.unobserve(self)
        for handle in self._grace.values():
            handle.cancel()
        self._grace.clear()
        for task in (self._presence_task, self._send_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._presence_task = self._send_task = None
        await self._runner.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._recording is not None:
            await self._recording.stop()
            self._recording = None

    # -- commands --------------------------------------------------------------------

    async def act(self, event: ev.Event) -> Snapshot | AppealSnapshot:
        """Submit a person's command; raises the core's error if it is refused, and
        `NotEnoughSpace` for turning the recording on with too little disk space."""
        if (isinstance(event, ev.SetRecording) and event.on
                and not self._runner.snapshot.recording):
            await asyncio.to_thread(ensure_free_space, self._folder, self._min_free_bytes)
        await self._runner.submit(event)
        return self._runner.snapshot

    async def turn_page(self, person_id: str, page: int) -> None:
        """The defending student (or the secretary, helping) shows page `page` of the
        student's presentation to everyone at once. The timeline (journal) takes at
        most one turn per interval: the page shown at its end, so the last turn of a
        burst is always written, a little later."""
        snapshot = self._runner.snapshot
        student = snapshot.current_student
        person = self._loaded.day.person(person_id)
        if student is None:
            raise NotAllowedHere("no defense is under way")
        if person_id != student and (person is None or person.role is not Role.SECRETARY):
            raise NotAllowedHere("only the defending student turns the pages")
        self._presentation = (student, page)
        self._outbox.put_nowait(
            (None, {"type": "presentation", "student": student, "page": page}))
        loop = asyncio.get_running_loop()
        now_due = self._page_turns.offer((int(person_id), student, page), loop.time())
        if now_due is not None:
            await self._journal_page(now_due)
        elif self._page_timer is None and (due := self._page_turns.due_at) is not None:
            self._page_timer = loop.call_at(due, self._page_due)

    def _page_due(self) -> None:
        self._page_timer = None
        turn = self._page_turns.take_due(asyncio.get_running_loop().time())
        if turn is not None:
            task = asyncio.create_task(self._journal_page_logged(turn))
            self._page_writes.add(task)
            task.add_done_callback(self._page_writes.discard)

    async def _journal_page_logged(self, turn: tuple[int, str, int]) -> None:
        try:
            await self._journal_page(turn)
        except Exception:
            logger.exception("day %s: journaling page %s failed", self._day_id, turn[2])

    async def _journal_page(self, turn: tuple[int, str, int]) -> None:
        person, student, page = turn
        await self._journal.append(self._day_id, person, PRESENTATION_KIND,
                                   {"student": student, "page": page}, self._clock())

    def lobby_state(self, person_id: str) -> dict[str, Any]:
        """Whether `person_id` waits, and why: to be admitted, or outside the closed sitting."""
        if person_id in self._needs_admission - self._admitted:
            return {"waiting": True, "reason": "admission"}
        snapshot = self._runner.snapshot
        if person_id in snapshot.lobby or (self._in_closed_sitting(snapshot)
                                           and person_id in self._outside_closed_sitting):
            return {"waiting": True, "reason": "closed_sitting"}
        return {"waiting": False, "reason": None}

    @property
    def waiting_for_admission(self) -> frozenset[str]:
        return self._needs_admission - self._admitted

    async def admit(self, person_id: str, by: int) -> None:
        """The secretary lets `person_id` in (once for the day)."""
        if person_id not in self._needs_admission:
            raise NotAllowedHere(f"person {person_id} does not wait to be admitted")
        if person_id in self._admitted:
            return
        await self._journal.append(self._day_id, by, ADMITTED_KIND, {"person": person_id},
                                   self._clock())
        self._admitted.add(person_id)
        self._room.set_lobby(self._lobby(self._runner.snapshot))
        self._outbox.put_nowait((person_id, {"type": "lobby", **self.lobby_state(person_id)}))
        self._outbox.put_nowait((None, {"type": "participants", "participants":
                                        self._room.roster()}))

    def _lobby(self, snapshot: Snapshot | AppealSnapshot,
               core: frozenset[str] | None = None) -> frozenset[str]:
        """The room's lobby: the core's (or ``core``), those waiting to be admitted,
        and during the closed sitting everyone outside the commission, present or
        not, so that joining then never subscribes them to the commission's tracks,
        not even in their first offer (S16)."""
        lobby = (snapshot.lobby if core is None else core) | (
            self._needs_admission - self._admitted)
        if self._in_closed_sitting(snapshot):
            lobby |= self._outside_closed_sitting
        return lobby

    @property
    def _outside_closed_sitting(self) -> frozenset[str]:
        """Everyone of the day the closed sitting keeps out, present or not (S16)."""
        return frozenset(p.person_id for p in self._loaded.day.people
                         if p.role not in COMMISSION_ROLES)

    @staticmethod
    def _in_closed_sitting(snapshot: Snapshot | AppealSnapshot) -> bool:
        return isinstance(snapshot, Snapshot) and snapshot.phase is Phase.CLOSED_SITTING

    async def consent_recorded(self, student_id: str) -> None:
        if student_id not in self._runner.snapshot.consented:
            await self._runner.submit(ev.ConsentOnFile(now=0, student=student_id))

    async def document_recorded(self, student_id: str, kind: DocumentKind) -> None:
        snapshot = self._runner.snapshot
        if isinstance(snapshot, Snapshot) and (student_id, kind) not in snapshot.documents:
            await self._runner.submit(ev.DocumentOnFile(now=0, student=student_id, kind=kind))

    # -- RoomObserver ----------------------------------------------------------------

    def presence_changed(self, participant: ParticipantInfo, present: bool) -> None:
        if present:
            handle = self._grace.pop(participant.id, None)
            if handle is not None:
                handle.cancel()
        self._presence.put_nowait((participant.id, present))

    def publication_added(self, participant: ParticipantInfo, track: PublishedTrack) -> None:
        pass

    def publication_removed(self, participant: ParticipantInfo, track: PublishedTrack) -> None:
        pass

    # -- presence --------------------------------------------------------------------

    def _grace_over(self, person_id: str) -> None:
        self._grace.pop(person_id, None)
        if person_id not in self._room.present:
            self._presence.put_nowait((person_id, False))

    async def _presence_loop(self) -> None:
        while True:
            person_id, present = await self._presence.get()
            if person_id in self._grace and not present:
                continue  # still within the grace after a restart
            if present == (person_id in self._runner.snapshot.present):
                continue
            event: ev.Event = (ev.ParticipantJoined(now=0, actor=person_id) if present
                               else ev.ParticipantLeft(now=0, actor=person_id))
            try:
                await self._runner.submit(event)
            except OrchestratorError as exc:
                logger.warning("day %s: presence of %s not taken: %s",
                               self._day_id, person_id, exc)
            except Exception:
                logger.exception("day %s: presence of %s failed", self._day_id, person_id)

    # -- effects ---------------------------------------------------------------------

    async def _carry_out(self, effect: fx.Effect) -> None:
        """The runner's effect sink: runs under its lock, so it never submits."""
        if isinstance(effect, fx.Broadcast):
            # The phase may have changed the lobby with nobody moved (a closed sitting
            # with no student present).
            lobby = self._lobby(self._runner.snapshot)
            if lobby != self._room.lobby:
                self._room.set_lobby(lobby)
            self._outbox.put_nowait((None, self.state_message()))
        elif isinstance(effect, fx.StartRecording):
            self._spawn(self._recording_on())
        elif isinstance(effect, fx.StopRecording):
            self._spawn(self._recording_off())
        elif isinstance(effect, fx.MoveToLobby | fx.AdmitFromLobby):
            waiting = isinstance(effect, fx.MoveToLobby)
            core = (self._runner.snapshot.lobby | {effect.person} if waiting
                    else self._runner.snapshot.lobby - {effect.person})
            self._room.set_lobby(self._lobby(self._runner.snapshot, core))
            self._outbox.put_nowait((effect.person, {"type": "lobby",
                                                     **self.lobby_state(effect.person)}))
        elif isinstance(effect, fx.Notice):
            await self._notice(NoticeKind.NOTICE, text=effect.text, clause=effect.clause)
        elif isinstance(effect, fx.Warn):
            await self._notice(NoticeKind.WARNING, phase=_phase_name(effect.phase),
                               seconds_left=effect.seconds_left)
        elif isinstance(effect, fx.Overtime):
            await self._notice(NoticeKind.OVERTIME, phase=_phase_name(effect.phase))
        elif isinstance(effect, fx.MarkAbsent):
            await self._notice(NoticeKind.ABSENT, student=effect.student, clause=effect.clause)
        elif isinstance(effect, fx.Reschedule):
            await self._notice(NoticeKind.RESCHEDULED, student=effect.student,
                               reason=effect.reason, clause=effect.clause,
                               new_date=effect.new_date)
            if effect.new_date is not None:
                self._spawn(self._defense_moved(effect.student, effect.new_date))
        elif isinstance(effect, fx.AppealDecided):
            self._spawn(self._appeal_decided())
        elif isinstance(effect, fx.PublishResults):
            await self._notice(NoticeKind.RESULTS, grades={s: g.value for s, g in effect.grades})
            self._spawn(self._results_announced())
        # Every effect is carried out above. None is journaled: the journal holds the
        # events that caused them, and the protocol is built by replaying it.

    async def _results_announced(self) -> None:
        if self._observer is not None:
            try:
                await self._observer.results_announced(self)
            except Exception:
                logger.exception("day %s: extending the students' links failed", self._day_id)

    async def _defense_moved(self, student: str, new_date: float) -> None:
        if self._observer is not None:
            try:
                await self._observer.defense_moved(self, student, new_date)
            except Exception:
                logger.exception("day %s: extending %s's link to the new date failed",
                                 self._day_id, student)

    async def _appeal_decided(self) -> None:
        if self._observer is not None:
            try:
                await self._observer.appeal_decided(self)
            except Exception:
                logger.exception("day %s: recording the appeal decision failed", self._day_id)

    async def _notice(self, kind: NoticeKind, **fields: Any) -> None:
        self._outbox.put_nowait((None, {"type": "notice", "kind": kind, **fields}))

    async def _send_loop(self) -> None:
        while True:
            to, message = await self._outbox.get()
            try:
                if to is None:
                    await self._room.broadcast(message)
                else:
                    await self._room.send_to(to, message)
            except Exception:
                logger.exception("day %s: sending %s failed", self._day_id, message.get("type"))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- recording -------------------------------------------------------------------

    async def _start_take(self) -> bool:
        """Start a take; if it cannot start, tell the core (`RecordingFailed`)."""
        if self._recording is not None:
            return True
        take = RoomRecording(self._room, self._folder, started_at=self._clock(),
                             min_free_bytes=self._min_free_bytes,
                             check_every_s=self._free_space_check_s,
                             on_failure=self._take_failed)
        try:
            await take.start()
        except NotEnoughSpace as exc:
            logger.error("day %s: the recording cannot start: %s", self._day_id, exc)
            reason = str(exc)
        except Exception as exc:
            logger.exception("day %s: the recording could not start", self._day_id)
            reason = f"the recording could not start: {describe_error(exc)}"
        else:
            self._recording = take
            return True
        await take.stop()
        await self._runner.submit(ev.RecordingFailed(now=0, reason=reason))
        return False

    def _take_failed(self, take: RoomRecording, reason: str) -> None:
        if not self._stopping:
            self._spawn(self._recording_failed(take, reason))

    async def _recording_failed(self, take: RoomRecording, reason: str) -> None:
        if self._recording is not take:
            return  # already stopped, or replaced by a newer take
        self._recording = None
        await take.stop()
        await self._runner.submit(ev.RecordingFailed(now=0, reason=reason))

    async def _recording_on(self) -> None:
        if await self._start_take():
            await self._runner.submit(ev.RecordingStarted(now=0))

    async def _recording_off(self) -> None:
        take, self._recording = self._recording, None
        if take is not None:
            await take.stop()
        await self._runner.submit(ev.RecordingStopped(now=0))
        snapshot = self._runner.snapshot
        if (isinstance(snapshot, Snapshot) and snapshot.phase is Phase.CLOSED
                and self._observer is not None):
            # The sitting is over and its files are closed: build one file per defense.
            await self._observer.sitting_closed(self)


def _phase_name(phase: Phase | None) -> str | None:
    """A limit's phase as a notice names it; None is the limit of the whole defense."""
    return None if phase is None else phase.value
