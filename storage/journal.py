"""The journal: an append-only, hash-chained log of what happened at a defense.

In a dispute the evidence is the stored record of who sent what when (rule
R2), so the record has to show when it was altered. Every event stores
`prev_hash`, the hash of the event of the same day before it (ordered by id; a
day's first event links to `GENESIS_HASH`), and `hash`, the SHA-256 of its own
content together with `prev_hash` (see `event_hash`). Changing an event's
content breaks its own hash; deleting an event breaks the link of the day's
next one. `verify(day_id)` reads only that day's events (`storage.chain`), so
a damaged day is reported as that day and never stops the others, and starting
a day costs what the day holds. SQLite triggers refuse UPDATE and DELETE (no
retention rule deletes journal rows); the chain shows what was done around them.

What the chain cannot show on its own: deleting a day's newest events (nothing
links to them yet), or someone who rewrites every hash after an edit. Both
need the day's head hash (`JournalEvent.hash` of its last event) kept somewhere
the database file's owner cannot reach, e.g. printed in the signed protocol.

Reading the last hash and inserting the next event must be one transaction,
so events are appended only by `append_event` inside `Database.execute_write`
(the single writer thread). `Journal.append` does that; `InviteStore` calls
`append_event` inside its own writes so that, e.g., a day and its
`day_created` event commit together.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from orchestrator import events as ev
from orchestrator.replay import EVENT_KIND

from .chain import GENESIS_HASH, day_breaks, event_hash, first_break, verify_chain
from .db import Database
from .errors import JournalTampered, StorageError

__all__ = ["GENESIS_HASH", "Journal", "JournalEvent", "append_event", "encode_detail",
           "event_hash", "procedure_logged", "verify_chain"]

logger = logging.getLogger(__name__)

_COLUMNS = "id, at, day_id, person_id, kind, detail, prev_hash, hash"


@dataclass(frozen=True, slots=True)
class JournalEvent:
    """One event of the journal, with its place in the hash chain.

    `prev_hash` and `hash` are empty only for a row that was not written
    through this module; `Journal.verify` reports such a row.
    """

    id: int
    at: float
    day_id: int
    person_id: int | None
    kind: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def encode_detail(detail: dict[str, Any]) -> str:
    """The JSON text stored (and hashed) as an event's detail.

    Raises TypeError or ValueError for a detail that is not plain JSON, or holds
    a string that is not valid Unicode (a lone surrogate, which neither SQLite
    nor the hash could encode), so that the caller learns it before it acts.
    """
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"a journal detail holds a string that is not valid Unicode:"
                         f" {text[max(0, exc.start - 20):exc.start]!r} is followed by"
                         f" U+{ord(text[exc.start]):04X}, a lone surrogate") from None
    return text


def append_event(
    conn: sqlite_utils.Database,
    *,
    at: float,
    day_id: int,
    person_id: int | None,
    kind: str,
    detail_json: str,
) -> JournalEvent:
    """Append one event, chained to the day's newest one; return it.

    Call only inside `Database.execute_write`: the read of the last hash and
    the insert must share the writer's transaction.
    """
    newest = conn.execute("SELECT MAX(id) FROM journal").fetchone()[0]
    event_id = 1 if newest is None else newest + 1
    # journal_day_id holds (day_id, id) in order: this is one index lookup.
    last = conn.execute("SELECT id, hash FROM journal WHERE day_id = ? ORDER BY id DESC"
                        " LIMIT 1", [day_id]).fetchone()
    if last is None:
        prev_hash = GENESIS_HASH
    else:
        prev_hash = last[1]
        if prev_hash is None:
            # Keep recording (the defense goes on); verify() names that row.
            logger.warning("journal event %s has no hash; chaining to it anyway", last[0])
            prev_hash = ""
    # The id is part of the hash, so it is chosen here rather than by SQLite
    # (a row cannot be updated afterwards). It is what SQLite would pick.
    at = float(at)
    digest = event_hash(
        event_id=event_id,
        at=at,
        day_id=day_id,
        person_id=person_id,
        kind=kind,
        detail_json=detail_json,
        prev_hash=prev_hash,
    )
    conn.execute(
        f"INSERT INTO journal ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [event_id, at, day_id, person_id, kind, detail_json, prev_hash, digest],
    )
    return JournalEvent(
        id=event_id,
        at=at,
        day_id=day_id,
        person_id=person_id,
        kind=kind,
        # Parsed back from the stored text, so it is exactly what was hashed.
        detail=json.loads(detail_json),
        prev_hash=prev_hash,
        hash=digest,
    )


def procedure_logged(conn: sqlite_utils.Database, day_id: int, event: type[ev.Event]) -> bool:
    """Whether the procedure of day `day_id` has journaled an `event` (e.g. `OpenSitting`).

    Inside `Database.execute_write` the answer holds for the rest of that write: the
    procedure journals through the same writer thread, so a change made there cannot
    slip in after the event it depends on.
    """
    row = conn.execute(
        "SELECT 1 FROM journal WHERE day_id = ? AND kind = ?"
        " AND json_extract(detail, '$.type') = ? LIMIT 1",
        [day_id, EVENT_KIND, event.__name__]).fetchone()
    return row is not None


class Journal:
    """Appends events to the journal, lists them and checks the hash chain."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(
        self,
        day_id: int,
        person_id: int | None,
        kind: str,
        detail: dict[str, Any],
        now: float,
    ) -> JournalEvent:
        """Append an event at time `now` and return it with its hashes."""
        if not kind:
            raise StorageError("a journal event needs a non-empty kind")
        # Serialise here so a non-JSON detail fails in the caller's task.
        detail_json = encode_detail(detail)

        def write(conn: sqlite_utils.Database) -> JournalEvent:
            return append_event(
                conn,
                at=now,
                day_id=day_id,
                person_id=person_id,
                kind=kind,
                detail_json=detail_json,
            )

        return await self._db.execute_write(write)

    async def settle(self) -> None:
        """Return once every write queued before this call has committed or failed, so
        that a read after it sees them (the writer takes jobs in order)."""
        await self._db.execute_write(_nothing)

    async def entries(self, day_id: int | None = None) -> list[JournalEvent]:
        """Events in id order: of one day (its chain), or all of them."""
        if day_id is None:
            rows = await self._db.query(f"SELECT {_COLUMNS} FROM journal ORDER BY id")
        else:
            rows = await self._db.query(
                f"SELECT {_COLUMNS} FROM journal WHERE day_id = ? ORDER BY id", [day_id])
        return [_event(row) for row in rows]

    async def verified_entries(self, day_id: int) -> list[JournalEvent]:
        """A day's events, read once and checked against its chain; JournalTampered
        names the day's first bad event. Costs what the day holds, nothing more."""
        rows = await self._db.query(
            f"SELECT {_COLUMNS} FROM journal WHERE day_id = ? ORDER BY id", [day_id])
        broken = first_break(rows)
        if broken is not None:
            logger.warning("journal verification of day %s failed: %s", day_id, broken)
            raise broken
        return [_event(row) for row in rows]

    async def days_under_way(self) -> list[int]:
        """Days whose procedure has begun (a journaled procedure event) and whose
        sitting has not closed (no journaled `CloseSitting`)."""
        rows = await self._db.query(
            "SELECT DISTINCT day_id FROM journal WHERE kind = ? AND day_id IS NOT NULL"
            " AND day_id NOT IN (SELECT day_id FROM journal WHERE kind = ? AND day_id IS NOT"
            " NULL AND json_extract(detail, '$.type') = ?) ORDER BY day_id",
            [EVENT_KIND, EVENT_KIND, ev.CloseSitting.__name__])
        return [int(row["day_id"]) for row in rows]

    async def verify(self, day_id: int | None = None) -> None:
        """Check one day's chain, or every day's; JournalTampered names the first bad
        event (and, for every day, how many other days are damaged)."""
        if day_id is not None:
            await self.verified_entries(day_id)
            return
        broken = await self.broken_days()
        if broken:
            first = min(broken.values(), key=lambda e: e.event_id)
            others = len(broken) - 1
            if others:
                first = JournalTampered(first.event_id, f"{first}; and {others} other day"
                                        f"{'s' if others > 1 else ''} damaged: days"
                                        f" {', '.join(map(str, sorted(broken)))}")
            logger.warning("journal verification failed: %s", first)
            raise first

    async def broken_days(self) -> dict[int, JournalTampered]:
        """Every day whose chain is broken, with its first bad event."""

        def read(conn: sqlite_utils.Database) -> dict[int, JournalTampered]:
            # Hash in the reader thread, streaming rows: the whole journal need not
            # sit in memory or on the event loop.
            return day_breaks(conn.query(f"SELECT {_COLUMNS} FROM journal ORDER BY id"))

        return await self._db.execute_read(read)


def _nothing(conn: sqlite_utils.Database) -> None:
    return None


def _event(row: dict[str, Any]) -> JournalEvent:
    return JournalEvent(
        id=row["id"],
        at=row["at"],
        day_id=row["day_id"],
        person_id=row["person_id"],
        kind=row["kind"],
        detail=json.loads(row["detail"]),
        prev_hash=row["prev_hash"] or "",
        hash=row["hash"] or "",
    )
