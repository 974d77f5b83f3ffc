"""The SQLite database: one writer thread, short-lived read connections.

SQLite allows one writer at a time, so every write goes through a single
thread that owns the only writing connection and takes jobs from a queue; the
event loop awaits a future for each job (the model is Datasette's
`_send_to_write_thread`). That keeps writes ordered, never blocks the event
loop, and never hits "database is locked" between our own writers. Several
processes (``serve --workers N``) may each hold such a writer: every write
transaction takes SQLite's write lock before its first statement (`_immediate`)
and waits up to the busy timeout for another process's transaction to end.

Reads run in a small thread pool, each on its own read-only connection. In
WAL mode readers see the last committed state and never wait for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

import sqlite_utils

from .errors import DatabaseNotRunningError, StorageError
from .migrations import apply_migrations

logger = logging.getLogger(__name__)

T = TypeVar("T")

_BUSY_TIMEOUT_S = 5.0
_READ_THREADS = 4
#: The database holds names, the journal and signatures: only the server's user reads it
#: (its -wal and -shm files take the database file's mode from SQLite).
FOLDER_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class _Job(Generic[T]):
    fn: Callable[[sqlite_utils.Database], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop
    transactional: bool
    # The last job: the writer closes its connection before resolving it.
    stop: bool = False

    def resolve(self, result: T | None, error: BaseException | None) -> None:
        """Hand the outcome to the event loop; called from the writer thread."""
        try:
            self.loop.call_soon_threadsafe(_set_outcome, self.future, result, error)
        except RuntimeError:
            # The loop is closed: nobody is left to receive the outcome.
            logger.debug("dropping write outcome, event loop is closed")


def _set_outcome(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Database:
    """A SQLite file with one writer thread and read-only reader connections.

    Use `await start()` before anything else and `await stop()` at the end
    (or `async with Database(path) as db:`).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._queue: queue.Queue[_Job[Any]] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._reads_in_flight: set[asyncio.Future[Any]] = set()
        self._running = False

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def running(self) -> bool:
        """True between a successful `start()` and `stop()`."""
        return self._running

    async def start(self) -> None:
        """Create the parent folder, open the file and apply migrations."""
        if self._running or self._writer is not None:
            raise StorageError(f"database {self._path} is already started")
        _private_files(self._path)
        self._queue = queue.Queue()
        self._writer = threading.Thread(
            target=self._write_loop,
            name=f"sqlite-writer:{self._path.name}",
            # A write is committed before its caller hears of it, so a
            # daemon writer never loses an acknowledged write if the process
            # exits without stop(); it just must not block that exit.
            daemon=True,
        )
        self._writer.start()
        self._readers = ThreadPoolExecutor(
            max_workers=_READ_THREADS, thread_name_prefix="sqlite-reader"
        )
        self._running = True
        try:
            applied = await self._submit(apply_migrations, transactional=False)
        except BaseException:
            await self.stop()
            raise
        logger.info(
            "database %s started, migrations applied: %s",
            self._path,
            ", ".join(applied) or "none",
        )

    async def stop(self) -> None:
        """Finish queued writes, close every connection, end the threads.

        Idempotent; safe to call after a failed `start()`.
        """
        writer, readers = self._writer, self._readers
        if writer is None and readers is None:
            return
        self._running = False
        self._writer = None
        self._readers = None
        if writer is not None:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()
            self._queue.put(_Job(_noop, done, loop, transactional=False, stop=True))
            await done
            # The thread resolved `done` as its last act, so this is brief.
            writer.join()
        if readers is not None:
            if self._reads_in_flight:
                await asyncio.wait(self._reads_in_flight)
            readers.shutdown(wait=True)
        logger.info("database %s stopped", self._path)

    async def __aenter__(self) -> Database:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def execute_write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` in the writer thread, inside one transaction.

        The transaction commits when `fn` returns and rolls back when it
        raises; the exception is re-raised here. Cancelling the caller does
        not cancel the write: it still runs and commits.
        """
        return await self._submit(fn, transactional=True)

    async def execute_read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run `fn(db)` in a reader thread on a read-only connection.

        The connection is closed when `fn` returns, so `fn` must return
        materialised data (a list, not the generator `db.query()` gives).
        """
        readers = self._readers
        if not self._running or readers is None:
            raise DatabaseNotRunningError(f"database {self._path} is not running")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(readers, self._read, fn)
        self._reads_in_flight.add(future)
        future.add_done_callback(self._reads_in_flight.discard)
        return await future

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one SELECT, as dicts, read in a reader thread."""
        return await self.execute_read(lambda db: list(db.query(sql, params)))

    async def _submit(self, fn: Callable[[sqlite_utils.Database], T], *, transactional: bool) -> T:
        if not self._running:
            raise DatabaseNotRunningError(f"database {self._path} is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop, transactional))
        return await future

    def _write_loop(self) -> None:
        db: sqlite_utils.Database | None = None
        try:
            while True:
                job = self._queue.get()
                if job.stop:
                    if db is not None:
                        db.close()
                        db = None
                    job.resolve(None, None)
                    return
                try:
                    if db is None:
                        db = _open_writer(self._path)
                    if job.transactional:
                        with _immediate(db):
                            result = job.fn(db)
                    else:
                        result = job.fn(db)
                except BaseException as exc:  # handed to the awaiting task
                    job.resolve(None, exc)
                else:
                    job.resolve(result, None)
        finally:
            if db is not None:
                db.close()

    def _read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        # A fresh connection per read costs microseconds and means no
        # connection is ever shared between threads or left open.
        uri = self._path.resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S)
        try:
            db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
            return fn(db)
        finally:
            conn.close()


def _private_files(path: Path) -> None:
    """Create the database's folder and file private to this user, and make them so if
    an older version left them readable by others (S19)."""
    folder = path.parent
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _restrict(folder, FOLDER_MODE)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.is_file():
            _restrict(file, FILE_MODE)


def _restrict(path: Path, mode: int) -> None:
    current = path.stat().st_mode & 0o777
    if current & ~mode:
        path.chmod(mode)
        logger.warning("%s was readable by others (mode %o); now %o", path, current, mode)


@contextlib.contextmanager
def _immediate(db: sqlite_utils.Database) -> Iterator[None]:
    """One write transaction that holds SQLite's write lock from its first statement.

    Several server processes (``serve --workers N``) write the same file. A deferred
    transaction that reads first (the journal reads the day's last hash, then
    inserts) could find another process's commit in between and fail at once with
    "database is locked"; BEGIN IMMEDIATE waits for the lock (the busy timeout)
    before it reads, so each transaction sees the file as the previous one left it.
    Nested ``db.atomic()`` blocks inside become savepoints.
    """
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.conn.execute("COMMIT")
    except BaseException:
        db.rollback()  # a no-op once an error has ended the transaction already
        raise


def _noop(db: sqlite_utils.Database) -> None:
    return None


def _open_writer(path: Path) -> sqlite_utils.Database:
    # check_same_thread stays on: this connection never leaves the writer.
    conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S)
    try:
        # Plugins are off so that an installed sqlite-utils plugin cannot
        # change how our connection behaves.
        db = sqlite_utils.Database(conn, execute_plugins=False)
        db.enable_wal()
        db.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return db
