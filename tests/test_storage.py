"""Tests for storage.db and storage.migrations on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from storage.db import Database
from storage.errors import DatabaseNotRunningError, StorageError
from storage.migrations import MIGRATIONS


def our_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("sqlite-"))


def add_day(title: str) -> Callable[[sqlite_utils.Database], int]:
    def write(conn: sqlite_utils.Database) -> int:
        cursor = conn.execute(
            "INSERT INTO defense_days (title, date, starts_at, timezone, created_at)"
            " VALUES (?, '2026-11-23', 0, 'UTC', 0)",
            [title],
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    return write


def count_days(conn: sqlite_utils.Database) -> int:
    return int(conn.execute("SELECT count(*) FROM defense_days").fetchone()[0])


async def test_start_creates_folder_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "db.sqlite3"
    async with Database(path) as database:
        assert database.running
        tables = await database.execute_read(lambda conn: sorted(conn.table_names()))
        mode = await database.execute_write(lambda conn: conn.journal_mode)
        foreign_keys = await database.execute_write(
            lambda conn: conn.execute("PRAGMA foreign_keys").fetchone()[0]
        )
    assert path.exists()
    assert {"_migrations", "defense_days", "documents", "journal", "people", "students",
            "protocols", "protocol_approvals"} <= set(tables)
    assert mode == "wal"
    assert foreign_keys == 1


async def test_migrations_run_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    for _ in range(2):
        async with Database(path) as database:
            rows = await database.execute_read(
                lambda conn: list(conn.query("SELECT name, applied_at FROM _migrations"))
            )
    assert [row["name"] for row in rows] == [m.name for m in MIGRATIONS._migrations]
    assert rows[0]["name"] == "0001_initial_schema"
    assert rows[0]["applied_at"]


async def test_writes_share_one_thread(db: Database) -> None:
    idents = await asyncio.gather(
        *(db.execute_write(lambda conn: threading.get_ident()) for _ in range(20))
    )
    assert len(set(idents)) == 1
    assert idents[0] != threading.get_ident()


async def test_concurrent_writes_all_commit(db: Database) -> None:
    ids = await asyncio.gather(*(db.execute_write(add_day(f"day {i}")) for i in range(100)))
    assert sorted(ids) == list(range(1, 101))
    assert await db.execute_read(count_days) == 100


async def test_failed_write_rolls_back_and_raises(db: Database) -> None:
    def write(conn: sqlite_utils.Database) -> None:
        add_day("half done")(conn)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await db.execute_write(write)
    assert await db.execute_read(count_days) == 0
    await db.execute_write(add_day("next"))
    assert await db.execute_read(count_days) == 1


async def test_foreign_keys_are_enforced(db: Database) -> None:
    def write(conn: sqlite_utils.Database) -> None:
        conn.execute(
            "INSERT INTO people (day_id, role, name, token_hash, expires_at, created_at)"
            " VALUES (999, 'chair', 'x', 'h', 0, 0)"
        )

    with pytest.raises(sqlite3.IntegrityError):
        await db.execute_write(write)


async def test_journal_is_append_only(db: Database) -> None:
    await db.execute_write(add_day("d"))
    await db.execute_write(
        lambda conn: conn.execute(
            "INSERT INTO journal (at, day_id, kind, detail) VALUES (1, 1, 'k', '{}')"
        )
    )
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        await db.execute_write(lambda conn: conn.execute("UPDATE journal SET kind = 'forged'"))


async def test_reads_are_read_only(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await db.execute_read(add_day("sneaky"))


async def test_reads_see_committed_writes(db: Database) -> None:
    for i in range(3):
        await db.execute_write(add_day(f"day {i}"))
        assert await db.execute_read(count_days) == i + 1


async def test_stop_finishes_queued_writes(tmp_path: Path) -> None:
    database = Database(tmp_path / "db.sqlite3")
    await database.start()
    tasks = [asyncio.create_task(database.execute_write(add_day(f"d{i}"))) for i in range(10)]
    await asyncio.sleep(0)  # let every task enqueue its write
    await database.stop()
    assert all(task.done() and task.exception() is None for task in tasks)
    async with Database(tmp_path / "db.sqlite3") as again:
        assert await again.execute_read(count_days) == 10


async def test_cancelled_caller_does_not_cancel_the_write(db: Database) -> None:
    gate = threading.Event()

    def slow(conn: sqlite_utils.Database) -> int:
        gate.wait(5)
        return add_day("committed anyway")(conn)

    task = asyncio.create_task(db.execute_write(slow))
    await asyncio.sleep(0)  # one turn of the loop: the write is queued
    task.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Queued behind `slow`, so it runs after the cancelled write committed.
    assert await db.execute_write(count_days) == 1


async def test_stop_is_idempotent_and_final(tmp_path: Path) -> None:
    before = our_threads()
    database = Database(tmp_path / "db.sqlite3")
    await database.start()
    assert len(our_threads()) > len(before)
    await database.execute_read(count_days)
    await database.stop()
    await database.stop()
    assert not database.running
    assert our_threads() == before
    with pytest.raises(DatabaseNotRunningError):
        await database.execute_write(count_days)
    with pytest.raises(DatabaseNotRunningError):
        await database.execute_read(count_days)


async def test_stop_before_start_is_harmless(tmp_path: Path) -> None:
    await Database(tmp_path / "db.sqlite3").stop()


async def test_start_twice_is_an_error(db: Database) -> None:
    with pytest.raises(StorageError, match="already started"):
        await db.start()


async def test_failed_start_cleans_up(tmp_path: Path) -> None:
    before = our_threads()
    (tmp_path / "db.sqlite3").mkdir()  # a folder where the file should be
    database = Database(tmp_path / "db.sqlite3")
    with pytest.raises(sqlite3.OperationalError):
        await database.start()
    assert not database.running
    assert our_threads() == before


async def test_reads_do_not_wait_for_a_long_write(db: Database) -> None:
    started, release = threading.Event(), threading.Event()

    def long_write(conn: sqlite_utils.Database) -> None:
        add_day("pending")(conn)
        started.set()
        release.wait(5)

    write = asyncio.create_task(db.execute_write(long_write))
    await asyncio.to_thread(started.wait, 5)
    t0 = time.monotonic()
    # WAL: the reader sees the last committed state without blocking.
    assert await db.execute_read(count_days) == 0
    assert time.monotonic() - t0 < 2
    release.set()
    await write
    assert await db.execute_read(count_days) == 1


def open_files_under(folder: Path) -> list[str]:
    fd_dir = Path("/proc/self/fd")
    targets = []
    for fd in fd_dir.iterdir():
        try:
            targets.append(str(fd.readlink()))
        except OSError:  # closed between listing and reading
            continue
    return [t for t in targets if t.startswith(str(folder))]


async def test_stop_closes_every_file(tmp_path: Path) -> None:
    database = Database(tmp_path / "db.sqlite3")
    await database.start()
    await asyncio.gather(*(database.execute_write(add_day(f"d{i}")) for i in range(5)))
    await asyncio.gather(*(database.execute_read(count_days) for _ in range(8)))
    assert open_files_under(tmp_path)  # the writer holds the file open
    await database.stop()
    assert open_files_under(tmp_path) == []
