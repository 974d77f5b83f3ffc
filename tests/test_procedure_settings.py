"""A day replays with the settings it began with, whatever the config says later.

The runner journals the procedure settings before the day's first step; after a
crash, a restart under a changed config rebuilds the same state and fires the same
deadlines, and the protocol drafts and the recording timeline read the same
settings. A real SQLite file and journal; only the clock is fake.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator import events as ev
from orchestrator.codec import EventCodecError, settings_from_json, settings_to_json
from orchestrator.effects import Effect, MarkAbsent
from orchestrator.model import AbsenceFrom, Phase, Settings, Snapshot, StudentStatus
from orchestrator.replay import (
    DEADLINE_KIND, EVENT_KIND, SETTINGS_KIND, ReplayError, day_settings, journaled_settings,
)
from orchestrator.session import DefenseSession
from recordings.timeline import replay as timeline
from server.config import ConfigError, load_config
from server.procedure import ProcedureRunner
from storage.db import Database
from storage.invites import InviteStore
from storage.journal import Journal, JournalEvent

from .orchestrator_helpers import COMMISSION, MIN, START, make_day, on_file
from .timing import FakeClock

BEGAN_WITH = Settings(talk_minutes=10, absence_grace_minutes=15, failure_grace_minutes=15)
#: What the config says after the restart: every limit different.
CHANGED = Settings(talk_minutes=25, questions_minutes=5, defense_max_minutes=50,
                   absence_grace_minutes=40, failure_grace_minutes=40,
                   absence_from=AbsenceFrom.CALL, warning_before_s=10)

#: The sitting opens with s2 missing, then s1 defends.
SCRIPT: list[tuple[float, ev.Event]] = [
    *((START - 60 * MIN, e) for s in ("s1", "s2") for e in on_file(s)),
    *((START - 5 * MIN, ev.ParticipantJoined(now=0, actor=p)) for p in (*COMMISSION, "sec", "s1")),
    (START, ev.OpenSitting(now=0, actor="sec")),
    (START + 1, ev.RecordingStarted(now=0)),
    (START + 2 * MIN, ev.IdentityDecided(now=0, actor="sec", student="s1", accepted=True)),
    (START + 3 * MIN, ev.AnnounceLimits(now=0, actor="chair")),
    (START + 4 * MIN, ev.StartDefense(now=0, actor="sec", student="s1")),
]
TALK_STARTS = START + 4 * MIN


@pytest.fixture
async def day(tmp_path: Path) -> AsyncIterator[tuple[Database, int]]:
    async with Database(tmp_path / "defense-room.sqlite3") as db:
        day_id = await InviteStore(db).create_day(
            "Defenses", datetime.date(2026, 6, 20), START, "UTC", now=START - 60 * MIN)
        yield db, day_id


async def start(db: Database, day_id: int, settings: Settings, clock: FakeClock,
                effects: list[Effect] | None = None) -> ProcedureRunner:
    async def sink(effect: Effect) -> None:
        if effects is not None:
            effects.append(effect)

    runner = ProcedureRunner(lambda s: DefenseSession(make_day(), s), Journal(db), day_id, sink,
                             settings, clock)
    await runner.start()
    return runner


def state(runner: ProcedureRunner) -> Snapshot:
    snapshot = runner.snapshot
    assert isinstance(snapshot, Snapshot)
    return snapshot


async def play(runner: ProcedureRunner, clock: FakeClock) -> None:
    for at, event in SCRIPT:
        clock.now = at
        await runner.submit(event)


async def test_the_settings_are_journaled_once_before_the_first_step(
        day: tuple[Database, int]) -> None:
    db, day_id = day
    clock = FakeClock(START - 90 * MIN)
    runner = await start(db, day_id, BEGAN_WITH, clock)
    assert [e.kind for e in await Journal(db).entries(day_id)
            if e.kind == SETTINGS_KIND] == []  # hosted, not begun: nothing fixed yet
    await play(runner, clock)
    await runner.stop()
    runner = await start(db, day_id, CHANGED, clock)
    clock.now = TALK_STARTS + MIN
    await runner.submit(ev.NextPhase(now=0, actor="chair"))
    await runner.stop()

    kinds = [e.kind for e in await Journal(db).entries(day_id)
             if e.kind in (SETTINGS_KIND, EVENT_KIND, DEADLINE_KIND)]
    assert kinds[0] == SETTINGS_KIND and kinds.count(SETTINGS_KIND) == 1
    assert journaled_settings(await Journal(db).entries(day_id)) == BEGAN_WITH


async def test_a_restart_under_a_changed_config_replays_the_same_day(
        day: tuple[Database, int]) -> None:
    db, day_id = day
    clock = FakeClock(START - 90 * MIN)
    first = await start(db, day_id, BEGAN_WITH, clock)
    await play(first, clock)
    before = first.snapshot
    deadline = first.next_deadline
    await first.stop()  # the crash

    effects: list[Effect] = []
    second = await start(db, day_id, CHANGED, clock, effects)
    assert second.settings == BEGAN_WITH
    assert second.snapshot == before
    assert second.snapshot.phase is Phase.TALK
    assert state(second).phase_ends_at == TALK_STARTS + 10 * MIN  # not 25
    assert second.next_deadline == deadline

    # s2 never came: absent 15 minutes after the opening (the journaled limit), not 40.
    clock.now = START + 15 * MIN
    await second.run_due()
    assert MarkAbsent(student="s2", clause="7.9") in effects
    assert dict(state(second).statuses)["s2"] is StudentStatus.ABSENT
    await second.stop()


async def test_a_day_not_begun_takes_the_config_it_begins_under(
        day: tuple[Database, int]) -> None:
    db, day_id = day
    clock = FakeClock(START - 90 * MIN)
    runner = await start(db, day_id, BEGAN_WITH, clock)
    await runner.stop()  # hosted once (someone opened a page), then the config changed
    runner = await start(db, day_id, CHANGED, clock)
    await play(runner, clock)
    assert state(runner).phase_ends_at == TALK_STARTS + 25 * MIN
    await runner.stop()
    assert journaled_settings(await Journal(db).entries(day_id)) == CHANGED


async def test_the_timeline_reads_the_journaled_settings(day: tuple[Database, int]) -> None:
    db, day_id = day
    clock = FakeClock(START - 90 * MIN)
    runner = await start(db, day_id, BEGAN_WITH, clock)
    await play(runner, clock)
    clock.now = START + 15 * MIN
    await runner.run_due()  # s2 marked absent at 15 min
    await runner.stop()
    entries = await Journal(db).entries(day_id)
    assert day_settings(entries, CHANGED) == BEGAN_WITH
    under_old = timeline(make_day(), BEGAN_WITH, entries)
    under_new = timeline(make_day(), CHANGED, entries)
    assert under_new == under_old
    assert under_new.defenses[0].student == "s1"


def entry(id_: int, kind: str, detail: dict[str, object]) -> JournalEvent:
    return JournalEvent(id_, 0.0, 1, None, kind, dict(detail), "", "")


def test_a_journal_from_before_settings_were_journaled_uses_the_default() -> None:
    old = [entry(1, EVENT_KIND, {"type": "ConsentOnFile", "now": 1.0, "student": "s1"})]
    assert journaled_settings(old) is None
    assert day_settings(old, CHANGED) == CHANGED


def test_settings_round_trip_and_refuse_what_they_do_not_know() -> None:
    assert settings_from_json(settings_to_json(CHANGED)) == CHANGED
    # A setting added later takes its default in an older journal.
    partial = {k: v for k, v in settings_to_json(CHANGED).items() if k != "queue_lock_minutes"}
    assert settings_from_json(partial) == dataclasses.replace(
        CHANGED, queue_lock_minutes=Settings().queue_lock_minutes)
    with pytest.raises(EventCodecError, match="unknown settings"):
        settings_from_json({**settings_to_json(CHANGED), "talk_seconds": 5})
    with pytest.raises(EventCodecError, match="absence_from"):
        settings_from_json({"absence_from": "whenever"})
    with pytest.raises(ReplayError, match="journal entry 7"):
        journaled_settings([entry(7, SETTINGS_KIND, {"talk_minutes": "ten"})])


def test_office_links_must_outlive_the_recordings(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("retention:\n  days: 60\ninvites:\n  office_valid_days_after: 40\n")
    with pytest.raises(ConfigError, match=r"invites\.office_valid_days_after.*retention\.days"):
        load_config(path)
    path.write_text("retention:\n  days: 40\ninvites:\n  office_valid_days_after: 40\n")
    assert load_config(path).retention.days == 40
