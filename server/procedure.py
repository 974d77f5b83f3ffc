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
from storage.journal import Journal

from .errors import ServerError

logger = logging.getLogger(__name__)


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
        self._broken: str | None = None

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
        try:
            # A changed or deleted event would replay into a different state.
            await self._journal.verify()
        except JournalTampered as exc:
            raise ProcedureError(
                f"the journal fails verification, so the procedure of day {self._day_id} "
                f"cannot be rebuilt from it: {exc}"
            ) from exc
        entries = await self._journal.entries(self._day_id)
        replayed = 0
        try:
            settings = journaled_settings(entries)
            self._settings_unjournaled = settings is None
            session = self._session_factory(self._settings if settings is None else settings)
            for _ in replay(session, entries):
                replayed += 1  # its effects were carried out before the restart
        except ReplayError as exc:
            raise ProcedureError(
                f"cannot rebuild the procedure of day {self._day_id}: {exc}") from exc
        if settings is not None:
            self._settings = settings
        self._session = session
        self._running = True
        logger.info(
            "procedure of day %s started: %s entries replayed, phase %s",
            self._day_id, replayed, session.phase.name,
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
        async with self._lock:
            session = self._require_running()
            # A deadline that came due before this event happens before it.
            await self._fire_due(event.now)
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
            self._require_running()
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
        first step); on failure stop, since the session is ahead of the journal."""
        try:
            if self._settings_unjournaled:
                await self._journal.append(self._day_id, None, SETTINGS_KIND,
                                           settings_to_json(self._settings), step.now)
                self._settings_unjournaled = False
            kind, detail = journal_entry(step)
            await self._journal.append(self._day_id, None, kind, detail, step.now)
        except BaseException:
            self._fail(f"could not journal {what}")
            raise

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
        deadline = self._require_running().next_deadline()
        if deadline is None or self._loop is None:
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

    def _fail(self, reason: str) -> None:
        # The session has moved on but the journal has not: a replay would differ.
        # Stop here; a restart rebuilds the state from what the journal holds.
        self._broken = reason
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        logger.error("procedure of day %s stopped: %s", self._day_id, reason)

    def _require_session(self) -> Procedure:
        if self._session is None:
            raise ProcedureError(f"the procedure of day {self._day_id} is not started")
        return self._session

    def _require_running(self) -> Procedure:
        if self._broken is not None:
            raise ProcedureError(f"the procedure of day {self._day_id} stopped: {self._broken}")
        if not self._running:
            raise ProcedureError(f"the procedure of day {self._day_id} is not running")
        return self._require_session()
