"""server.procedure: the journal-backed asyncio adapter, across a restart.

Real SQLite under tmp_path; only the clock is fake (wall-clock seconds the test
moves forward).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator import events as ev
from orchestrator.effects import Effect, Warn
from orchestrator.errors import NotAllowedForRole
from orchestrator.model import Phase, Settings
from orchestrator.replay import DEADLINE_KIND, EVENT_KIND
from orchestrator.session import DefenseSession
from server.procedure import ProcedureError, ProcedureRunner
from storage.db import Database
from storage.invites import InviteStore
from storage.journal import Journal, JournalEvent

from .orchestrator_helpers import COMMISSION, MIN, START, STUDENTS, drain, make_day, on_file
from .timing import FakeClock, wait_until


@dataclass
class Server:
    """One process's worth: database, journal, runner and what the sink got."""

    db: Database
    journal: Journal
    runner: ProcedureRunner
    effects: list[Effect] = field(default_factory=list)
    #: When set, the sink records an effect, then waits on this event.
    hold: asyncio.Event | None = None

    async def stop(self) -> None:
        await self.runner.stop()
        await self.db.stop()


async def boot(path: Path, day_id: int, clock: FakeClock) -> Server:
    db = Database(path)
    await db.start()
    journal = Journal(db)
    effects: list[Effect] = []
    server: Server | None = None

    async def sink(effect: Effect) -> None:
        effects.append(effect)
        if server is not None and server.hold is not None:
            await server.hold.wait()

    runner = ProcedureRunner(lambda s: DefenseSession(make_day(), s), journal, day_id, sink,
                             Settings(), clock)
    server = Server(db, journal, runner, effects)
    await runner.start()
    return server


#: The day up to the first defense's talk, as (time, event without `now`).
SCRIPT: list[tuple[float, ev.Event]] = [
    *((START - 60 * MIN, e) for s in STUDENTS for e in on_file(s)),
    *((START - 5 * MIN, ev.ParticipantJoined(now=0, actor=p))
      for p in (*COMMISSION, "sec", "sup", "rev", *STUDENTS)),
    (START, ev.OpenSitting(now=0, actor="sec")),
    (START + 1, ev.RecordingStarted(now=0)),
    (START + 2 * MIN, ev.IdentityDecided(now=0, actor="sec", student="s1", accepted=True)),
    (START + 5 * MIN, ev.AnnounceLimits(now=0, actor="chair")),
    (START + 6 * MIN, ev.StartDefense(now=0, actor="sec", student="s1")),
]
TALK_STARTS = START + 6 * MIN
TALK_WARNING = TALK_STARTS + 10 * MIN - 60


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START - 10 * MIN)


@pytest.fixture
async def db_file(tmp_path: Path) -> AsyncIterator[tuple[Path, int]]:
    path = tmp_path / "defense-room.sqlite3"
    async with Database(path) as db:
        day_id = await InviteStore(db).create_day(
            "Defenses", datetime.date(2026, 6, 20), START, "UTC", now=START - 60 * MIN
        )
    yield path, day_id


async def play_script(server: Server, clock: FakeClock) -> None:
    for at, event in SCRIPT:
        clock.now = at
        await server.runner.submit(event)


def reference_effects_at_warning(now: float) -> list[Effect]:
    """What the pure session emits at `now` when nothing restarted."""
    session = DefenseSession(make_day())
    for at, event in SCRIPT:
        session.handle(dataclasses.replace(event, now=at))
    drain(session)
    session.handle_deadline(now)
    return drain(session)


async def test_restart_rebuilds_state_and_timers_continue(
    db_file: tuple[Path, int], clock: FakeClock
) -> None:
    path, day_id = db_file
    first = await boot(path, day_id, clock)
    await play_script(first, clock)
    before = first.runner.snapshot
    deadline_before = first.runner.next_deadline
    assert before.phase is Phase.TALK
    assert before.current_student == "s1"
    assert before.phase_started_at == TALK_STARTS
    assert before.phase_ends_at == TALK_STARTS + 10 * MIN
    assert deadline_before == TALK_WARNING
    entries_before = await first.journal.entries(day_id)
    assert [e.kind for e in entries_before].count(EVENT_KIND) == len(SCRIPT)
    await first.stop()

    clock.now = TALK_STARTS + 2 * MIN  # time passes while the server is down
    second = await boot(path, day_id, clock)
    try:
        after = second.runner.snapshot
        assert after == before
        assert (after.phase, after.current_student) == (Phase.TALK, "s1")
        assert after.phase_started_at == before.phase_started_at
        assert after.phase_ends_at == before.phase_ends_at
        assert second.runner.next_deadline == deadline_before
        assert second.effects == []  # the replay's effects are not carried out again
        assert second.runner.timer_armed

        clock.now = TALK_WARNING + 1
        await second.runner.run_due()
        assert second.effects == reference_effects_at_warning(TALK_WARNING + 1)
        assert second.effects == [Warn(Phase.TALK, 59.0)]
        await second.journal.verify()
    finally:
        await second.stop()


async def test_deadline_passed_while_down_fires_on_start_and_replays_once(
    db_file: tuple[Path, int], clock: FakeClock
) -> None:
    path, day_id = db_file
    first = await boot(path, day_id, clock)
    await play_script(first, clock)
    await first.stop()

    clock.now = TALK_WARNING + 5
    second = await boot(path, day_id, clock)
    assert second.effects == reference_effects_at_warning(TALK_WARNING + 5)
    assert second.effects == [Warn(Phase.TALK, 55.0)]
    snapshot = second.runner.snapshot
    await second.stop()
    kinds = [e.kind for e in await journal_entries(path, day_id)]
    assert kinds.count(DEADLINE_KIND) == 1

    # A second restart replays the fired deadline: no second warning.
    third = await boot(path, day_id, clock)
    try:
        assert third.effects == []
        assert third.runner.snapshot == snapshot
        assert third.runner.next_deadline == TALK_STARTS + 10 * MIN
        await third.journal.verify()
    finally:
        await third.stop()


async def journal_entries(path: Path, day_id: int) -> list[JournalEvent]:
    async with Database(path) as db:
        return list(await Journal(db).entries(day_id))


async def test_real_timer_fires_the_warning(db_file: tuple[Path, int], clock: FakeClock) -> None:
    path, day_id = db_file
    server = await boot(path, day_id, clock)
    try:
        await play_script(server, clock)
        clock.now = TALK_WARNING - 0.05
        await server.runner.submit(ev.ParticipantJoined(now=0, actor="sup"))  # re-arms
        server.effects.clear()
        clock.now = TALK_WARNING + 0.05  # the loop's 0.05 s delay passes on the fake clock too
        await wait_until(lambda: server.effects, what="the timer's Warn effect", timeout=1.0)
        assert server.effects == [Warn(Phase.TALK, TALK_STARTS + 10 * MIN - clock.now)]
        assert server.runner.next_deadline == TALK_STARTS + 10 * MIN
    finally:
        await server.stop()


async def test_rejected_event_changes_nothing(db_file: tuple[Path, int], clock: FakeClock) -> None:
    path, day_id = db_file
    server = await boot(path, day_id, clock)
    try:
        await play_script(server, clock)
        server.effects.clear()
        before = server.runner.snapshot
        entries = await server.journal.entries(day_id)
        clock.now += MIN
        with pytest.raises(NotAllowedForRole, match=r"a student \(s1\) may not NextPhase"):
            await server.runner.submit(ev.NextPhase(now=0, actor="s1"))
        assert await server.journal.entries(day_id) == entries
        assert server.runner.snapshot == before
        assert server.effects == []
        assert server.runner.timer_armed
        await server.journal.verify()
    finally:
        await server.stop()


async def test_stop_leaves_no_timer_and_is_idempotent(
    db_file: tuple[Path, int], clock: FakeClock
) -> None:
    path, day_id = db_file
    server = await boot(path, day_id, clock)
    await play_script(server, clock)
    assert server.runner.timer_armed
    await server.runner.stop()
    assert not server.runner.timer_armed
    assert not server.runner.running
    await server.runner.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(ProcedureError, match="not running"):
        await server.runner.submit(ev.NextPhase(now=0, actor="sec"))
    with pytest.raises(ProcedureError, match="not running"):
        await server.runner.run_due()
    await server.journal.verify()
    await server.db.stop()


async def test_stop_cancels_timer_work_in_flight(
    db_file: tuple[Path, int], clock: FakeClock
) -> None:
    path, day_id = db_file
    server = await boot(path, day_id, clock)
    await play_script(server, clock)
    server.effects.clear()
    server.hold = asyncio.Event()  # never set: the sink hangs on the timer's effect
    clock.now = TALK_WARNING - 0.01
    await server.runner.submit(ev.ParticipantJoined(now=0, actor="sup"))
    clock.now = TALK_WARNING + 1
    await wait_until(lambda: server.effects, what="the timer's work to reach the sink",
                     timeout=1.0)
    assert len(asyncio.all_tasks()) == 2
    await server.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not server.runner.timer_armed


async def test_start_twice_is_an_error(db_file: tuple[Path, int], clock: FakeClock) -> None:
    path, day_id = db_file
    server = await boot(path, day_id, clock)
    try:
        with pytest.raises(ProcedureError, match="already running"):
            await server.runner.start()
    finally:
        await server.stop()
