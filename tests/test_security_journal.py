"""Issue 14, S6 and S7 (runner): the journal's chain per day, its rows never deleted,
and a journal write that fails never leaves the served state ahead of the journal.

Real SQLite files, the real app and the real runner; only the clock is fake (in the
runner tests). A journal write is made to fail by a trigger that RAISEs for one
event, as a full disk or a lost lock would fail it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from aiohttp.test_utils import TestClient, TestServer

from orchestrator import events as ev
from orchestrator.effects import Warn
from orchestrator.model import Phase, Settings
from orchestrator.replay import EVENT_KIND, replay
from orchestrator.session import DefenseSession
from server.procedure import JournalUnavailable, Unjournalable
from storage.chain import GENESIS_HASH, event_hash
from storage.db import Database
from storage.errors import JournalTampered
from storage.invites import InviteStore
from storage.journal import Journal
from storage.migrations import MIGRATIONS
from storage.roster import CreatedDay, RosterStore
from web_ui.app import create_app

from .conftest import make_config
from .orchestrator_helpers import START, make_day
from .procedure_helpers import day_spec
from .test_procedure_runner import SCRIPT, TALK_WARNING, Server, boot, play_script
from .timing import FakeClock

NOW = time.time()


def fail_journal_when(db_path: Path, condition: str) -> None:
    """Make every journal insert matching `condition` (SQL on NEW) fail, as a full disk
    would; `heal_journal` undoes it."""
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"CREATE TRIGGER test_journal_fails BEFORE INSERT ON journal WHEN {condition}"
                     " BEGIN SELECT RAISE(ABORT, 'disk I/O error (made by the test)'); END")


def heal_journal(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TRIGGER test_journal_fails")


def tamper(db_path: Path, sql: str, params: list[Any]) -> None:
    """Someone with the file: drops the journal's triggers and changes rows."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("DROP TRIGGER IF EXISTS journal_append_only")
        conn.execute("DROP TRIGGER IF EXISTS journal_no_delete")
        conn.execute(sql, params)


# -- S6: one chain per day -------------------------------------------------------------


@dataclasses.dataclass
class TwoDays:
    data: Path
    first: CreatedDay
    second: CreatedDay

    @property
    def db_path(self) -> Path:
        return self.data / "defense-room.sqlite3"


@pytest.fixture
async def two_days(tmp_path: Path) -> TwoDays:
    data = tmp_path / "data"
    async with Database(data / "defense-room.sqlite3") as db:
        roster = RosterStore(db)
        first = await roster.create_day(day_spec(NOW + 3600, students=1),
                                        expires_at=NOW + 86400, now=NOW)
        second = await roster.create_day(day_spec(NOW + 3600, students=1),
                                         expires_at=NOW + 86400, now=NOW)
    return TwoDays(data, first, second)


@dataclasses.dataclass
class Secretary:
    client: TestClient[Any, Any]
    day: CreatedDay

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.day.invites[4].token}"}

    async def state(self) -> tuple[int, dict[str, Any]]:
        async with self.client.get(f"/api/days/{self.day.day_id}/state",
                                   headers=self.headers) as r:
            return r.status, await r.json()

    async def in_person(self, member: int, value: bool) -> tuple[int, dict[str, Any]]:
        """The secretary marks member `member` (1..3) as in the room: a procedure event
        anyone may journal before the sitting opens."""
        async with self.client.post(
                f"/api/days/{self.day.day_id}/actions/in-person", headers=self.headers,
                json={"person": str(self.day.invites[member].person_id),
                      "in_person": value}) as r:
            return r.status, await r.json()


@pytest.fixture
async def app_of(two_days: TwoDays, tmp_path: Path,
                 isolated_network: None) -> AsyncIterator[TestClient[Any, Any]]:
    config = dataclasses.replace(make_config(tmp_path), data_dir=two_days.data)
    async with TestClient(TestServer(create_app(config), host="127.0.0.1", port=0)) as client:
        yield client


async def test_s6_one_damaged_day_does_not_stop_the_others(
        two_days: TwoDays, tmp_path: Path, isolated_network: None) -> None:
    config = dataclasses.replace(make_config(tmp_path), data_dir=two_days.data)
    async with TestClient(TestServer(create_app(config), host="127.0.0.1", port=0)) as client:
        for day in (two_days.first, two_days.second):
            status, body = await Secretary(client, day).in_person(1, True)
            assert status == 200, body
    first_id, second_id = two_days.first.day_id, two_days.second.day_id

    # Day 1's first event (its day_created) is altered by someone with the file.
    with sqlite3.connect(two_days.db_path) as conn:
        victim = conn.execute("SELECT MIN(id) FROM journal WHERE day_id = ?",
                              [first_id]).fetchone()[0]
    tamper(two_days.db_path, "UPDATE journal SET detail = '{\"title\": \"forged\"}' WHERE id = ?",
           [victim])

    async with TestClient(TestServer(create_app(config), host="127.0.0.1", port=0)) as client:
        first, second = Secretary(client, two_days.first), Secretary(client, two_days.second)
        # Both days were under way, so both were resumed at startup: only day 1 failed.
        status, body = await first.state()
        assert status == 503, body
        assert f"journal event {victim} of day {first_id} was changed" in body["message"]
        status, body = await second.state()
        assert status == 200, body
        assert body["state"]["in_person"], body
        status, body = await second.in_person(2, True)
        assert status == 200, body
        assert len(body["state"]["in_person"]) == 2

    async with Database(two_days.db_path) as db:
        journal = Journal(db)
        await journal.verify(second_id)
        with pytest.raises(JournalTampered, match=f"event {victim} of day {first_id}"):
            await journal.verify(first_id)
        assert set(await journal.broken_days()) == {first_id}
        with pytest.raises(JournalTampered, match=f"day {first_id}"):
            await journal.verify()


async def test_s6_deleting_an_event_breaks_only_its_days_chain(db: Database, db_path: Path) -> None:
    journal, invites = Journal(db), InviteStore(db)
    days = [await invites.create_day(f"Day {n}", datetime.date(2026, 6, n),
                                     START, "UTC", now=START) for n in (1, 2)]
    appended = [await journal.append(days[i % 2], None, "note", {"n": i}, START + i)
                for i in range(6)]
    deleted = appended[2]  # day 1's second note; day 2's events sit between
    tamper(db_path, "DELETE FROM journal WHERE id = ?", [deleted.id])
    broken = await journal.broken_days()
    assert list(broken) == [days[0]]
    assert broken[days[0]].event_id == appended[4].id
    assert f"does not link to event {appended[0].id}" in str(broken[days[0]])
    await journal.verify(days[1])


async def test_s6_delete_is_refused(db: Database) -> None:
    journal = Journal(db)
    day_id = await InviteStore(db).create_day("Day", datetime.date(2026, 6, 1),
                                              START, "UTC", now=START)
    await journal.append(day_id, None, "note", {}, START)
    with pytest.raises(sqlite3.IntegrityError, match="journal rows are never deleted"):
        await db.execute_write(lambda conn: conn.execute("DELETE FROM journal"))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await db.execute_write(lambda conn: conn.execute("UPDATE journal SET kind = 'x'"))
    assert len(await journal.entries(day_id)) == 2
    await journal.verify(day_id)


async def test_s6_starting_a_day_reads_only_that_days_events(db: Database) -> None:
    journal = Journal(db)
    invites = InviteStore(db)
    busy = await invites.create_day("Busy", datetime.date(2026, 6, 1), START,
                                    "UTC", now=START)
    quiet = await invites.create_day("Quiet", datetime.date(2026, 6, 2), START,
                                     "UTC", now=START)
    for i in range(30):
        await journal.append(busy, None, "note", {"n": i}, START + i)
    assert [e.kind for e in await journal.verified_entries(quiet)] == ["day_created"]
    # Both the day's read and the append's look-up of the day's head go by the index on
    # day_id, which is ordered by id within a day: no scan, no sort of other days.
    for sql in ("SELECT * FROM journal WHERE day_id = ? ORDER BY id",
                "SELECT id, hash FROM journal WHERE day_id = ? ORDER BY id DESC LIMIT 1"):
        plan = " ".join(str(row["detail"]) for row in
                        await db.query(f"EXPLAIN QUERY PLAN {sql}", [quiet]))
        assert "USING INDEX journal_day_id" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def old_global_chain(rows: list[tuple[int, float, int, str, str]]) -> list[tuple[Any, ...]]:
    """Rows as the journal wrote them before 0012: one chain over every day."""
    prev, out = GENESIS_HASH, []
    for event_id, at, day_id, kind, detail in rows:
        digest = event_hash(event_id=event_id, at=at, day_id=day_id, person_id=None, kind=kind,
                            detail_json=detail, prev_hash=prev)
        out.append((event_id, at, day_id, None, kind, detail, prev, digest))
        prev = digest
    return out


async def test_s6_migration_rechains_by_day_and_keeps_damage_found_before(db_path: Path) -> None:
    conn = sqlite_utils.Database(sqlite3.connect(db_path))
    MIGRATIONS.apply(conn, stop_before="0012_day_chains")
    for day in (1, 2, 3):
        conn.execute("INSERT INTO defense_days (id, title, date, starts_at, timezone, created_at)"
                     " VALUES (?, 'old', '2026-06-01', 0, 'UTC', 0)", [day])
    rows = old_global_chain([(i, START + i, 1 + i % 3, "old", json.dumps({"i": i}))
                             for i in range(1, 13)])
    conn.conn.executemany("INSERT INTO journal (id, at, day_id, person_id, kind, detail,"
                          " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.conn.commit()
    conn.close()
    # Altered while the journal was still one chain: event 5 is day 3's.
    tamper(db_path, "UPDATE journal SET detail = '{\"i\": 500}' WHERE id = 5", [])

    async with Database(db_path) as database:
        journal = Journal(database)
        broken = await journal.broken_days()
        assert list(broken) == [3] and broken[3].event_id == 5
        assert "was changed" in str(broken[3])
        await journal.verify(1)
        await journal.verify(2)
        # New events chain on each day's head.
        for day in (1, 2, 3):
            await journal.append(day, None, "new", {}, START + 100)
        await journal.verify(1)
        await journal.verify(2)
        assert set(await journal.broken_days()) == {3}
        entries = await journal.entries(1)
        assert entries[0].prev_hash == GENESIS_HASH
        assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
        with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
            await database.execute_write(lambda c: c.execute("DELETE FROM journal WHERE id = 1"))


# -- S7: the runner never serves a state the journal lacks --------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START - 600)


@pytest.fixture
async def runner_server(db_path: Path, clock: FakeClock) -> AsyncIterator[tuple[Server, int]]:
    async with Database(db_path) as db:
        day_id = await InviteStore(db).create_day(
            "Defenses", datetime.date(2026, 6, 20), START, "UTC", now=START - 3600)
    server = await boot(db_path, day_id, clock)
    try:
        yield server, day_id
    finally:
        await server.stop()


async def journal_state(server: Server, day_id: int) -> object:
    """The state the journal holds: its steps replayed into a fresh session."""
    session = DefenseSession(make_day(), Settings())
    for _ in replay(session, await server.journal.entries(day_id)):
        pass
    return session.snapshot()


async def test_s7_journal_failure_leaves_state_unchanged(
        runner_server: tuple[Server, int], db_path: Path, clock: FakeClock) -> None:
    server, day_id = runner_server
    for at, event in SCRIPT[:-3]:  # up to the identity check
        clock.now = at
        await server.runner.submit(event)
    before = server.runner.snapshot
    entries = await server.journal.entries(day_id)
    server.effects.clear()
    fail_journal_when(db_path, "json_extract(NEW.detail, '$.comment') = 'failing'")

    clock.now += 60
    with pytest.raises(JournalUnavailable, match="could not journal IdentityDecided"):
        await server.runner.submit(ev.IdentityDecided(now=0, actor="sec", student="s1",
                                                      accepted=True, comment="failing"))
    assert await server.journal.entries(day_id) == entries
    assert server.runner.snapshot == before == await journal_state(server, day_id)
    assert server.effects == []
    assert server.runner.running

    # The failure was transient: the same day goes on once the journal writes again.
    heal_journal(db_path)
    await server.runner.submit(ev.IdentityDecided(now=0, actor="sec", student="s1",
                                                  accepted=True, comment="ok"))
    after = server.runner.snapshot
    assert after != before
    assert after == await journal_state(server, day_id)
    assert [e.detail.get("comment") for e in await server.journal.entries(day_id)
            if e.kind == EVENT_KIND][-1] == "ok"
    await server.journal.verify(day_id)


async def test_s7_a_deadline_that_fails_to_journal_fires_later(
        runner_server: tuple[Server, int], db_path: Path, clock: FakeClock) -> None:
    server, day_id = runner_server
    await play_script(server, clock)
    before = server.runner.snapshot
    server.effects.clear()
    fail_journal_when(db_path, "NEW.kind = 'procedure_deadline'")
    clock.now = TALK_WARNING + 1
    with pytest.raises(JournalUnavailable, match="could not journal the deadlines"):
        await server.runner.run_due()
    assert server.runner.snapshot == before == await journal_state(server, day_id)
    assert server.effects == []  # nobody was warned of a step the journal lacks
    assert server.runner.timer_armed  # a retry, backed off

    heal_journal(db_path)
    await server.runner.run_due()
    assert server.effects == [Warn(Phase.TALK, 59.0)]
    assert server.runner.snapshot == await journal_state(server, day_id)


async def test_s7_lone_surrogate_is_refused_before_the_session_sees_it(
        runner_server: tuple[Server, int], clock: FakeClock) -> None:
    server, day_id = runner_server
    for at, event in SCRIPT[:-3]:
        clock.now = at
        await server.runner.submit(event)
    before = server.runner.snapshot
    entries = await server.journal.entries(day_id)
    with pytest.raises(Unjournalable, match="IdentityDecided cannot be journaled.*surrogate"):
        await server.runner.submit(ev.IdentityDecided(now=0, actor="sec", student="s1",
                                                      accepted=False, comment="\ud800"))
    assert server.runner.snapshot == before
    assert await server.journal.entries(day_id) == entries
    await server.runner.submit(ev.IdentityDecided(now=0, actor="sec", student="s1",
                                                  accepted=True))
    assert server.runner.snapshot != before


async def test_s7_lone_surrogate_is_400_and_the_day_goes_on(
        two_days: TwoDays, app_of: TestClient[Any, Any]) -> None:
    sec = Secretary(app_of, two_days.first)
    student = two_days.first.invites[5].person_id
    for path, raw in (("actions/identity", '{"student": "%s", "accepted": false,'
                        ' "comment": "\\ud800"}' % student),
                       (f"students/{student}", '{"thesis_title": "\\udfff"}'),
                       ("appeals", '{"text": "\\ud800", "student": %s}' % student)):
        method = app_of.patch if path.startswith("students/") else app_of.post
        async with method(f"/api/days/{two_days.first.day_id}/{path}", data=raw,
                          headers={**sec.headers, "Content-Type": "application/json"}) as r:
            answer = await r.json()
            assert r.status == 400, (path, answer)
            assert "not valid Unicode" in answer["message"], answer
    status, body = await sec.in_person(1, True)
    assert status == 200, body
    status, body = await sec.state()
    assert status == 200 and body["state"]["in_person"], body


async def test_s7_a_failed_write_over_http_is_503_and_the_next_one_works(
        two_days: TwoDays, app_of: TestClient[Any, Any]) -> None:
    sec = Secretary(app_of, two_days.first)
    status, before = await sec.state()
    assert status == 200, before
    member = two_days.first.invites[2].person_id
    fail_journal_when(two_days.db_path,
                      f"json_extract(NEW.detail, '$.person') = '{member}'")
    status, body = await sec.in_person(2, True)
    assert status == 503 and body["error"] == "journal_unavailable", body
    status, after = await sec.state()
    assert status == 200 and after["state"] == before["state"]
    heal_journal(two_days.db_path)
    status, body = await sec.in_person(2, True)
    assert status == 200 and str(member) in body["state"]["in_person"], body
