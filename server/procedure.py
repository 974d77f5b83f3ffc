"""`ProcedureRunner`: the asyncio adapter around the pure `DefenseSession`.

The session owns the rules; this module owns time, the journal and the timer
(STYLE.md sections 1-3). Every accepted event and every firing of deadlines is
journaled (`orchestrator.replay.journal_entry`) before its effects are carried out,
and the settings the day's procedure begins with are journaled before its first
step. After a restart `start()` replays the journal through a fresh session built
with those settings (`orchestrator.replay`), which rebuilds the same state, phase
times included, so the timers continue where they were, whatever the config says
now.

Times are wall-clock (`time.time`), not `loop.time()`: a deadline written before a
restart must mean the same instant after it. Only the delay until the next
deadline is handed to the loop, as one `call_later` handle.

The journal is the truth and the session never runs ahead of it. An event's
detail is encoded before the session sees it (one that could not be journaled is
refused and changes nothing). If a journal write fails after the session has taken
the step, the session is rebuilt from the journal at once, as after a restart, and
the caller gets `JournalUnavailable` (503): what is served is what the journal
holds, and the day goes on, so the next write, once the disk or lock is back, just
works. Timer retries of a failed write back off up to `RETRY_MAX_S`. Only if the
rebuild fails too does the procedure refuse everything (503) until the next
command rebuilds it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from orchestrator.appeal_session import AppealSnapshot
from orchestrator.codec import settings_to_json
from orchestrator.effects import Effect
from orchestrator.errors import OrchestratorError
from orchestrator.events import Event
from orchestrator.model import Settings, Snapshot
from orchestrator.replay import (
    SETTINGS_KIND,
    Replayable,
    ReplayError,
    Step,
    Tick,
    journal_entry,
    journaled_settings,
    replay,
)
from storage.errors import JournalTampered
from storage.journal import Journal, JournalEvent, encode_detail

from .errors import ServerError

logger = logging.getLogger(__name__)

#: The longest wait before the timer tries again to journal deadlines that failed to.
RETRY_MAX_S = 60.0


class Procedure(Replayable, Protocol):
    """What the runner drives: `DefenseSession` or `AppealSession`."""

    @property
    def phase(self) -> enum.Enum: ...

    def next_deadline(self) -> float | None: ...

    def snapshot(self) -> Snapshot | AppealSnapshot: ...


class ProcedureError(ServerError):
    """The runner cannot go on: not started, stopped, or its journal is unusable."""

    code = "procedure_stopped"
    status_hint = 503


class JournalUnavailable(ProcedureError):
    """A step could not be journaled, so it did not happen; try again later."""

    code = "journal_unavailable"


class Unjournalable(ServerError):
    """An event whose detail cannot be journaled (e.g. a lone surrogate in a text):
    refused before the session sees it. The web edge refuses such text first."""

    code = "malformed"
    status_hint = 400


class ProcedureRunner:
    """Feeds events and deadlines of one defense day into its session.

    `submit()` and the timer are serialised by one lock. `effect_sink` is awaited
    for each effect, in order, while that lock is held: it must not await
    `submit()` itself (feed back e.g. `RecordingStarted` from another task).
    """

    def __init__(
        self,
        session_factory: Callable[[Settings], Procedure],
        journal: Journal,
        day_id: int,
        effect_sink: Callable[[Effect], Awaitable[None]],
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`settings` are those of a day that has not begun; a day that has replays
        with the settings it journaled when it began."""
        self._session_factory = session_factory
        self._settings = settings
        #: The settings still to journal before the next step: a day not begun (or one
        #: journaled before settings were, which keeps them from then on).
        self._settings_unjournaled = False
        self._journal = journal
        self._day_id = day_id
        self._sink = effect_sink
        self._clock = clock
        self._session: Procedure | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        #: Why the session may be ahead of the journal (a write failed and the rebuild
        #: from the journal did too); None when it is not.
        self._stale: str | None = None
        #: Journal writes failed in a row, and the earliest time the timer tries again.
        self._failures = 0
        self._retry_at: float | None = None

    # -- read-only views --------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def snapshot(self) -> Snapshot | AppealSnapshot:
        """The session's state as everyone may see it."""
        return self._require_session().snapshot()

    @property
    def next_deadline(self) -> float | None:
        """Wall-clock time of the next deadline, or None."""
        return self._require_session().next_deadline()

    @property
    def settings(self) -> Settings:
        """The settings the procedure runs with (journaled once it has begun)."""
        return self._settings

    @property
    def timer_armed(self) -> bool:
        """Whether a timer handle is pending (for shutdown checks)."""
        return self._timer is not None

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild the session from the journal, fire what came due while down, arm."""
        if self._running:
            raise ProcedureError(f"the procedure of day {self._day_id} is already running")
        self._loop = asyncio.get_running_loop()
        replayed = await self._rebuild()
        self._running = True
        logger.info(
            "procedure of day %s started: %s entries replayed, phase %s",
            self._day_id, replayed, self._require_session().phase.name,
        )
        async with self._lock:
            await self._fire_due(self._clock())
            self._arm()

    async def stop(self) -> None:
        """Cancel the timer and any timer work in flight, and await it. Idempotent."""
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- input -----------------------------------------------------------------------

    async def submit(self, event: Event, *, stamp: bool = True) -> None:
        """Apply `event`, journal it, carry out its effects and re-arm the timer.

        With `stamp` (the default) the event's `now` is replaced by the clock.
        Raises the session's `OrchestratorError` for a rejected event, which
        changes nothing and journals nothing.
        """
        if stamp:
            event = dataclasses.replace(event, now=self._clock())
        try:
            encode_detail(journal_entry(event)[1])
        except (TypeError, ValueError) as exc:
            raise Unjournalable(f"{type(event).__name__} cannot be journaled, so the procedure"
                                f" of day {self._day_id} refuses it: {exc}") from exc
        async with self._lock:
            await self._ready()
            # A deadline that came due before this event happens before it.
            await self._fire_due(event.now)
            session = self._require_running()
            try:
                session.handle(event)
            except OrchestratorError:
                self._arm()  # a deadline may have fired just above
                raise
            await self._journal_step(event, f"{type(event).__name__} at {event.now}")
            await self._carry_out()
            self._arm()

    async def run_due(self) -> None:
        """Fire the deadlines due at the clock's time now; what the timer does."""
        async with self._lock:
            await self._ready()
            await self._fire_due(self._clock())
            self._arm()

    # -- internals -------------------------------------------------------------------

    async def _fire_due(self, now: float) -> None:
        session = self._require_running()
        deadline = session.next_deadline()
        if deadline is None or deadline > now:
            return
        session.handle_deadline(now)
        await self._journal_step(Tick(now), f"the deadlines fired at {now}")
        await self._carry_out()

    async def _journal_step(self, step: Step, what: str) -> None:
        """Journal a step the session has taken (after the day's settings, before its
        first step). On failure the session is rebuilt from the journal, which lacks
        the step, and `JournalUnavailable` says so."""
        try:
            if self._settings_unjournaled:
                await self._journal.append(self._day_id, None, SETTINGS_KIND,
                                           settings_to_json(self._settings), step.now)
                self._settings_unjournaled = False
            kind, detail = journal_entry(step)
            await self._journal.append(self._day_id, None, kind, detail, step.now)
        except asyncio.CancelledError:
            # The write goes on in the writer thread: rebuild after it, at the next use
            # or at once by the timer.
            self._stale = f"journaling {what} was interrupted"
            self._arm()
            raise
        except Exception as exc:
            self._failures += 1
            self._retry_at = self._clock() + min(RETRY_MAX_S, 2.0 ** (self._failures - 1))
            reason = f"could not journal {what}: {exc}"
            logger.error("procedure of day %s: %s; rebuilding it from the journal",
                         self._day_id, reason)
            self._stale = reason
            try:
                await self._rebuild()
            except Exception:
                logger.exception("procedure of day %s could not be rebuilt", self._day_id)
            self._arm()  # the rebuilt session's deadline, or a retry of the rebuild
            raise JournalUnavailable(
                f"the procedure of day {self._day_id} {reason}; it did not happen,"
                " try again") from exc
        self._failures = 0
        self._retry_at = None

    async def _ready(self) -> None:
        """Raise unless running; first rebuild a session that may be ahead of the journal."""
        self._require_running_or_stale()
        if self._stale is not None:
            await self._rebuild()

    async def _rebuild(self) -> int:
        """Replace the session by one rebuilt from the day's journal (after every write
        already queued); the number of steps replayed."""
        await self._journal.settle()
        try:
            # A changed or deleted event would replay into a different state.
            entries: list[JournalEvent] = await self._journal.verified_entries(self._day_id)
        except JournalTampered as exc:
            raise ProcedureError(
                f"the journal of day {self._day_id} fails verification, so its procedure"
                f" cannot be rebuilt from it: {exc}") from exc
        replayed = 0
        try:
            settings = journaled_settings(entries)
            session = self._session_factory(self._settings if settings is None else settings)
            for _ in replay(session, entries):
                replayed += 1  # its effects were carried out when it was journaled
        except ReplayError as exc:
            raise ProcedureError(
                f"cannot rebuild the procedure of day {self._day_id}: {exc}") from exc
        if settings is not None:
            self._settings = settings
        self._settings_unjournaled = settings is None
        self._session = session
        self._stale = None
        return replayed

    async def _carry_out(self) -> None:
        session = self._require_running()
        effects: list[Effect] = []
        while (effect := session.next_effect()) is not None:
            effects.append(effect)
        for effect in effects:
            await self._sink(effect)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is None or not self._running:
            return
        if self._stale is not None:
            # Only a rebuild can tell the next deadline: the timer's run_due tries one,
            # backed off if the last one failed.
            deadline: float | None = (self._clock() if self._retry_at is None
                                      else self._retry_at)
        else:
            deadline = self._require_session().next_deadline()
            if deadline is not None and self._retry_at is not None:
                deadline = max(deadline, self._retry_at)
        if deadline is None:
            return
        delay = max(0.0, deadline - self._clock())
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._running or self._loop is None:
            return
        task = self._loop.create_task(self._timer_work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _timer_work(self) -> None:
        try:
            await self.run_due()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Nobody awaits the timer: log, and re-arm so the next deadline still fires.
            logger.exception("deadline handling of day %s failed", self._day_id)
            if self._running:
                self._arm()

    def _require_session(self) -> Procedure:
        if self._stale is not None:
            # Its state may hold a step the journal does not: serve nothing rather.
            raise ProcedureError(f"the procedure of day {self._day_id} is waiting for its"
                                 f" journal: {self._stale}")
        if self._session is None:
            raise ProcedureError(f"the procedure of day {self._day_id} is not started")
        return self._session

    def _require_running_or_stale(self) -> None:
        if not self._running:
            raise ProcedureError(f"the procedure of day {self._day_id} is not running")

    def _require_running(self) -> Procedure:
        self._require_running_or_stale()
        return self._require_session()
