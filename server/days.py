"""The defense days a running server hosts: one `DayHost` per day, started once.

A day is hosted from its first join or API call, and at startup if its journal
shows a procedure under way (so its timers fire, and recording resumes, even
before anyone reconnects). All hosts stop before the rooms do.

With several worker processes (``serve --workers N``) a process hosts only the
days its `Ownership` gives it, at startup and on request; any other day is
refused (`NotThisWorker`), so a day's room, journal writes and recording live in
one process only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from storage.days import load_day
from orchestrator.workdays import local_date
from storage.invites import InviteStore, expires_at_for_day
from storage.db import Database
from storage.journal import Journal

from .appeal_service import AppealService
from .config import Config
from .dayhost import DayHost
from .ownership import SINGLE, Ownership
from .rooms import RoomRegistry

logger = logging.getLogger(__name__)


class DayHosts:
    """Owns every DayHost of the server, and observes them (`DayObserver`): what a day
    settles goes to the appeal service and, on closing, to the archive builds."""

    def __init__(self, config: Config, db: Database, rooms: RoomRegistry, *,
                 sitting_closed: Callable[[int], Awaitable[None]] | None = None,
                 ownership: Ownership = SINGLE) -> None:
        self._config = config
        self._ownership = ownership
        self._db = db
        self._rooms = rooms
        self._journal = Journal(db)
        self._hosts: dict[int, DayHost] = {}
        self._starting: dict[int, asyncio.Task[DayHost]] = {}
        self._stopped = False
        self.appeals = AppealService(config, db, self.host)
        self._sitting_closed = sitting_closed

    def get(self, day_id: int) -> DayHost | None:
        return self._hosts.get(day_id)

    async def host(self, day_id: int) -> DayHost:
        """The running host of `day_id`, started on first use.

        Raises `storage.errors.NotFoundError` for an unknown day, `NotThisWorker`
        for a day another worker owns, and the runner's `ProcedureError` if its
        journal cannot be replayed.
        """
        host = self._hosts.get(day_id)
        if host is not None:
            return host
        self._ownership.check(day_id)
        if self._stopped:
            raise RuntimeError("the server is shutting down")
        task = self._starting.get(day_id)
        if task is None:
            # Concurrent first callers share one start.
            task = self._starting[day_id] = asyncio.ensure_future(self._start(day_id))
            task.add_done_callback(lambda _t: self._starting.pop(day_id, None))
        return await asyncio.shield(task)

    async def reload(self, day_id: int) -> None:
        """Host `day_id` afresh from storage, if it is hosted: after a roster change the
        procedure reads only when it starts (people, adjusted times).

        Like a restart, the new host replays the journal, so nothing of the day is
        lost; the roster refuses such changes once the sitting has opened, so there
        is no recording or timer under way to cut.
        """
        pending = self._starting.get(day_id)
        if pending is not None:
            # It may have read the roster before the change.
            await asyncio.gather(asyncio.shield(pending), return_exceptions=True)
        old = self._hosts.pop(day_id, None)
        if old is None or self._stopped:
            return  # an unhosted day reads the roster when it is first hosted

        async def restart() -> DayHost:
            await old.stop()
            return await self._start(day_id)

        # Callers that ask for the day meanwhile wait for the new host.
        task = self._starting[day_id] = asyncio.ensure_future(restart())
        task.add_done_callback(lambda _t: self._starting.pop(day_id, None))
        await asyncio.shield(task)
        logger.info("day %s reloaded after a roster change", day_id)

    async def _start(self, day_id: int) -> DayHost:
        loaded = await load_day(self._db, day_id)
        host = DayHost(
            loaded,
            self._config.procedure_settings(loaded.stored.timezone),
            self._journal,
            self._rooms.room_for(str(day_id)),
            self._config.recordings_dir,
            reconnect_grace_s=self._config.absence.reconnect_grace_s,
            observer=self,
            admission=self._config.lobby.admission,
            min_free_mb=self._config.recordings.min_free_mb,
            free_space_check_s=self._config.recordings.free_space_check_s,
            page_journal_interval_s=self._config.signaling.page_journal_interval_s,
        )
        await host.start()
        self._hosts[day_id] = host
        return host

    # -- DayObserver ----------------------------------------------------------------

    async def results_announced(self, host: DayHost) -> None:
        await self.appeals.results_announced(host)

    async def appeal_decided(self, host: DayHost) -> None:
        await self.appeals.record_decision(host)

    async def defense_moved(self, host: DayHost, student: str, new_date: float) -> None:
        # The student's page shows the new date (clause 7.8) until the day after it.
        tz = host.loaded.stored.timezone
        until = expires_at_for_day(local_date(new_date, tz), tz,
                                   self._config.invites.valid_days_after)
        await InviteStore(self._db).extend_person(int(student), until, now=host.now())

    async def sitting_closed(self, host: DayHost) -> None:
        if self._sitting_closed is not None:
            await self._sitting_closed(host.day_id)

    async def start_days_under_way(self) -> None:
        """Host every day of this worker whose procedure has begun and not yet closed."""
        days = [d for d in await self._journal.days_under_way() if self._ownership.owns(d)]
        if not self._ownership.alone:
            logger.info("%s resumes days %s", self._ownership.describe(), days)
        for day_id in days:
            try:
                await self.host(day_id)
            except Exception:
                logger.exception("could not resume the procedure of day %s", day_id)

    async def stop(self) -> None:
        self._stopped = True
        for task in list(self._starting.values()):
            await asyncio.gather(task, return_exceptions=True)
        for host in list(self._hosts.values()):
            await host.stop()
        self._hosts.clear()
