"""Tests for storage.journal: the hash chain, on a real SQLite file."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlite_utils

from storage.db import Database
from storage.errors import JournalTampered
from storage.invites import InviteStore, Role
from storage.journal import GENESIS_HASH, Journal, JournalEvent, event_hash, verify_chain
from storage.migrations import MIGRATIONS

NOW = datetime.datetime(2026, 11, 23, 9, 0, tzinfo=datetime.UTC).timestamp()
EXPIRES = NOW + 2 * 86400


@pytest.fixture
async def day_id(db: Database) -> int:
    store = InviteStore(db)
    return await store.create_day("Защиты", datetime.date(2026, 11, 23), NOW, "UTC", now=NOW)


@contextmanager
def attacker(path: Path) -> Iterator[sqlite3.Connection]:
    """Someone with the file: drops the append-only triggers and edits rows."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TRIGGER IF EXISTS journal_append_only")
        conn.execute("DROP TRIGGER IF EXISTS journal_no_delete")
        yield conn
        conn.commit()
    finally:
        conn.close()


def assert_chained(events: list[JournalEvent]) -> None:
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    prev = GENESIS_HASH
    for event in events:
        assert event.prev_hash == prev
        assert len(event.hash) == 64
        prev = event.hash


async def append_some(journal: Journal, day_id: int, count: int) -> list[JournalEvent]:
    return [
        await journal.append(day_id, None, "note", {"n": i, "text": "вопрос"}, NOW + i)
        for i in range(count)
    ]


async def assert_tampered(journal: Journal, event_id: int, words: str) -> None:
    with pytest.raises(JournalTampered, match=words) as info:
        await journal.verify()
    assert info.value.event_id == event_id
    assert f"journal event {event_id} " in str(info.value)


async def test_appended_events_chain_and_verify(db: Database, day_id: int) -> None:
    journal = Journal(db)
    appended = await append_some(journal, day_id, 4)
    events = await journal.entries()
    # create_day wrote the first event through the same chain.
    assert events[0].kind == "day_created"
    assert events[1:] == appended
    assert_chained(events)
    assert appended[2].detail == {"n": 2, "text": "вопрос"}
    await journal.verify()


async def test_hash_is_canonical_json_of_the_stored_row(db: Database, day_id: int) -> None:
    event = await Journal(db).append(day_id, None, "joined", {"b": 1, "a": "ё"}, NOW)
    row = await db.execute_read(
        lambda conn: conn.execute("SELECT detail FROM journal WHERE id = ?", [event.id]).fetchone()
    )
    canonical = (
        f'{{"at":{float(NOW)!r},"day_id":{day_id},"detail":"{{\\"a\\": \\"ё\\", \\"b\\": 1}}",'
        f'"id":{event.id},"kind":"joined","person_id":null,"prev_hash":"{event.prev_hash}"}}'
    )
    assert row[0] == '{"a": "ё", "b": 1}'
    assert event.hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def test_invite_store_events_share_the_chain(db: Database, day_id: int) -> None:
    store = InviteStore(db)
    issued = await store.issue(day_id, Role.STUDENT, "Иванов", EXPIRES, now=NOW + 1)
    await store.journal(day_id, issued.person_id, "joined", {}, NOW + 2)
    await store.revoke(issued.person_id, NOW + 3)
    events = await Journal(db).entries(day_id)
    assert [e.kind for e in events] == ["day_created", "invite_issued", "joined", "invite_revoked"]
    assert_chained(events)
    await Journal(db).verify()


async def test_chain_continues_after_restart(db_path: Path, db: Database, day_id: int) -> None:
    await append_some(Journal(db), day_id, 3)
    await db.stop()
    async with Database(db_path) as reopened:
        journal = Journal(reopened)
        await journal.verify()
        await append_some(journal, day_id, 3)
        events = await journal.entries()
        assert len(events) == 7
        assert_chained(events)
        await journal.verify()


async def test_entries_filter_by_day(db: Database, day_id: int) -> None:
    store = InviteStore(db)
    other = await store.create_day("Другой", datetime.date(2026, 11, 24), NOW, "UTC")
    journal = Journal(db)
    await journal.append(day_id, None, "a", {}, NOW)
    await journal.append(other, None, "b", {}, NOW)
    assert [e.kind for e in await journal.entries(other)] == ["day_created", "b"]
    assert [e.kind for e in await journal.entries(day_id)] == ["day_created", "a"]
    await journal.verify()


async def test_edited_detail_is_detected(db_path: Path, db: Database, day_id: int) -> None:
    journal = Journal(db)
    events = await append_some(journal, day_id, 5)
    target = events[2].id
    with attacker(db_path) as conn:
        conn.execute("UPDATE journal SET detail = '{\"n\": 99}' WHERE id = ?", [target])
    await assert_tampered(journal, target, "was changed")


async def test_edited_time_is_detected(db_path: Path, db: Database, day_id: int) -> None:
    journal = Journal(db)
    events = await append_some(journal, day_id, 3)
    with attacker(db_path) as conn:
        conn.execute("UPDATE journal SET at = at - 60 WHERE id = ?", [events[0].id])
    await assert_tampered(journal, events[0].id, "was changed")


async def test_deleted_event_is_a_broken_link(db_path: Path, db: Database, day_id: int) -> None:
    journal = Journal(db)
    events = await append_some(journal, day_id, 5)
    deleted, after = events[1].id, events[2].id
    with attacker(db_path) as conn:
        conn.execute("DELETE FROM journal WHERE id = ?", [deleted])
    await assert_tampered(journal, after, f"does not link to event {deleted - 1}, the event of"
                          f" day {day_id} before it")


async def test_deleted_first_event_is_detected(db_path: Path, db: Database, day_id: int) -> None:
    journal = Journal(db)
    await append_some(journal, day_id, 2)
    with attacker(db_path) as conn:
        conn.execute("DELETE FROM journal WHERE id = 1")
    await assert_tampered(journal, 2, f"does not link to the start of day {day_id}'s chain")


async def test_changed_hash_is_detected(db_path: Path, db: Database, day_id: int) -> None:
    journal = Journal(db)
    events = await append_some(journal, day_id, 4)
    target = events[1].id
    with attacker(db_path) as conn:
        conn.execute("UPDATE journal SET hash = ? WHERE id = ?", ["f" * 64, target])
    await assert_tampered(journal, target, "stored hash does not match")


async def test_rehashed_edit_breaks_the_next_link(
    db_path: Path, db: Database, day_id: int
) -> None:
    journal = Journal(db)
    events = await append_some(journal, day_id, 4)
    target = events[1]
    forged = event_hash(
        event_id=target.id,
        at=target.at,
        day_id=target.day_id,
        person_id=target.person_id,
        kind=target.kind,
        detail_json='{"n": 1000}',
        prev_hash=target.prev_hash,
    )
    with attacker(db_path) as conn:
        conn.execute(
            "UPDATE journal SET detail = '{\"n\": 1000}', hash = ? WHERE id = ?",
            [forged, target.id],
        )
    await assert_tampered(journal, events[2].id, "does not link to event")


async def test_row_inserted_around_the_journal_is_detected(
    db_path: Path, db: Database, day_id: int
) -> None:
    journal = Journal(db)
    await append_some(journal, day_id, 2)
    with attacker(db_path) as conn:
        conn.execute(
            "INSERT INTO journal (at, day_id, kind) VALUES (?, ?, 'forged')", [NOW, day_id]
        )
    # Appending goes on (the defense must not stop), but verify names the row.
    after = await journal.append(day_id, None, "note", {}, NOW + 10)
    await assert_tampered(journal, after.id - 1, "does not link|has no hash")


async def test_concurrent_appends_make_one_chain(db: Database, day_id: int) -> None:
    journal = Journal(db)
    appended = await asyncio.gather(
        *(journal.append(day_id, None, "note", {"n": i}, NOW + i) for i in range(50))
    )
    events = await journal.entries()
    assert len(events) == 51
    assert_chained(events)
    assert sorted(e.id for e in appended) == list(range(2, 52))
    await journal.verify()


def test_verify_chain_is_pure() -> None:
    rows: list[dict[str, object]] = []
    prev = GENESIS_HASH
    for i in range(1, 4):
        row: dict[str, object] = {
            "id": i,
            "at": NOW + i,
            "day_id": 1,
            "person_id": None,
            "kind": "k",
            "detail": "{}",
            "prev_hash": prev,
        }
        row["hash"] = event_hash(
            event_id=i,
            at=NOW + i,
            day_id=1,
            person_id=None,
            kind="k",
            detail_json="{}",
            prev_hash=prev,
        )
        prev = str(row["hash"])
        rows.append(row)
    assert verify_chain(rows) is None
    assert verify_chain([]) is None
    assert verify_chain([rows[0], rows[2]]) == 3
    assert verify_chain([{**rows[0], "kind": "x"}, *rows[1:]]) == 1


async def test_migration_chains_existing_rows(db_path: Path) -> None:
    conn = sqlite_utils.Database(sqlite3.connect(db_path))
    MIGRATIONS.apply(conn, stop_before="0002_journal_hash_chain")
    conn.execute(
        "INSERT INTO defense_days (title, date, starts_at, timezone, created_at)"
        " VALUES ('old', '2026-11-23', 0, 'UTC', 0)"
    )
    for i in range(3):
        conn.execute(
            "INSERT INTO journal (at, day_id, kind, detail) VALUES (?, 1, 'old', ?)",
            [NOW + i, f'{{"i": {i}}}'],
        )
    conn.conn.commit()
    conn.close()
    async with Database(db_path) as database:
        journal = Journal(database)
        await journal.verify()
        await journal.append(1, None, "new", {}, NOW + 5)
        events = await journal.entries()
        assert [e.kind for e in events] == ["old", "old", "old", "new"]
        assert_chained(events)
        await journal.verify()
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            await database.execute_write(lambda c: c.execute("UPDATE journal SET kind = 'x'"))
