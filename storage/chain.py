"""The journal's hash chains, one per defense day, as pure functions (no database).

Every journal row stores `prev_hash`, the hash of the row of the same day before it
(the first of a day links to `GENESIS_HASH`), and `hash`, the SHA-256 of its own
content together with `prev_hash` (`event_hash`). A day's chain is checked from that
day's rows alone, so damage in one day is reported for that day and never stops
another, and checking a day costs what the day holds, not the whole history.
`day_breaks` finds the first row of each day that breaks its chain.

Until migration 0012 the journal was one chain over all days (ids in order);
`rechain_by_day` turns such rows into day chains without hiding any damage they hold.
`storage.journal` appends rows; `storage.migrations` hashes the rows already there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import JournalTampered

GENESIS_HASH = "0" * 64
"""The `prev_hash` of the first event of each day."""

#: Prefixes `rechain_by_day` gives the hashes of rows that were already damaged in
#: the one-chain journal: they are not hex, so they can never verify.
CHANGED_BEFORE_DAY_CHAINS = "changed-before-day-chains:"
UNLINKED_BEFORE_DAY_CHAINS = "unlinked-before-day-chains:"


def event_hash(
    *,
    event_id: int,
    at: float,
    day_id: int,
    person_id: int | None,
    kind: str,
    detail_json: str,
    prev_hash: str | None,
) -> str:
    """SHA-256 hex of the canonical JSON of an event and the previous hash.

    Canonical: sorted keys, no whitespace, non-ASCII kept as is, UTF-8.
    `detail_json` is hashed as the stored text, not re-encoded, so the hash
    covers exactly the bytes in the database. This is the chain's format:
    changing it needs a new migration that re-hashes the journal.
    """
    payload = {
        "id": event_id,
        # REAL columns read back as float; hash the float so that an `at`
        # given as int hashes the same before and after the round trip.
        "at": float(at),
        "day_id": day_id,
        "person_id": person_id,
        "kind": kind,
        "detail": detail_json,
        "prev_hash": prev_hash,
    }
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _row_hash(row: Mapping[str, Any], prev_hash: str | None) -> str:
    return event_hash(event_id=row["id"], at=row["at"], day_id=row["day_id"],
                      person_id=row["person_id"], kind=row["kind"], detail_json=row["detail"],
                      prev_hash=prev_hash)


def verify_chain(rows: Iterable[Mapping[str, Any]]) -> int | None:
    """The id of the first event that breaks its day's chain, or None if none does.

    `rows` are journal rows ordered by id (one day's or all of them), as mappings
    with the columns id, at, day_id, person_id, kind, detail (the stored text),
    prev_hash, hash.
    """
    broken = first_break(rows)
    return None if broken is None else broken.event_id


def first_break(rows: Iterable[Mapping[str, Any]]) -> JournalTampered | None:
    """The break with the lowest event id in `rows` (as in `verify_chain`), as an error."""
    return min(day_breaks(rows).values(), key=lambda e: e.event_id, default=None)


def day_breaks(rows: Iterable[Mapping[str, Any]]) -> dict[int, JournalTampered]:
    """The first break of each day's chain in `rows` (ordered by id), by day id.

    A day missing from the answer has an intact chain, whatever other days hold.
    """
    heads: dict[int, tuple[int | None, str]] = {}
    broken: dict[int, JournalTampered] = {}
    for row in rows:
        day_id = row["day_id"]
        if day_id in broken:
            continue
        prev_id, prev_hash = heads.get(day_id, (None, GENESIS_HASH))
        problem = _problem(row, prev_id, prev_hash)
        if problem is not None:
            broken[day_id] = problem
        else:
            heads[day_id] = (row["id"], row["hash"])
    return broken


def _problem(row: Mapping[str, Any], prev_id: int | None, prev_hash: str) -> JournalTampered | None:
    event_id, day_id = row["id"], row["day_id"]
    if row["prev_hash"] != prev_hash:
        after = (f"the start of day {day_id}'s chain" if prev_id is None
                 else f"event {prev_id}, the event of day {day_id} before it")
        return JournalTampered(
            event_id,
            f"journal event {event_id} of day {day_id} does not link to {after}: its"
            f" prev_hash does not match, so an event of day {day_id} was deleted or changed",
        )
    if row["hash"] is None:
        return JournalTampered(
            event_id,
            f"journal event {event_id} of day {day_id} has no hash: it was not written"
            " through the journal",
        )
    if row["hash"] != _row_hash(row, row["prev_hash"]):
        return JournalTampered(
            event_id,
            f"journal event {event_id} of day {day_id} was changed after it was written:"
            " its stored hash does not match its content",
        )
    return None


@dataclass(frozen=True, slots=True)
class Relinked:
    """A row's new place in its day's chain (`rechain_by_day`)."""

    event_id: int
    prev_hash: str
    hash: str


def rechain_by_day(rows: Iterable[Mapping[str, Any]]) -> list[Relinked]:
    """New links for rows of the one-chain journal (all of them, ordered by id).

    Each row is checked against the old chain by what is stored, so damage is
    charged to one row: its own hash (it was changed) or its link to the row stored
    before it (a row before it was deleted, or that row's hash was changed). A
    damaged row keeps showing it: a changed one gets a hash that never verifies
    (`CHANGED_BEFORE_DAY_CHAINS`), an unlinked one a prev_hash that never links
    (`UNLINKED_BEFORE_DAY_CHAINS`). An intact row gets its day's chain. Re-hashing
    therefore never vouches for a row the old chain did not.
    """
    relinked: list[Relinked] = []
    old_prev: str | None = GENESIS_HASH
    heads: dict[int, str] = {}
    for row in rows:
        stored_prev, stored_hash = row["prev_hash"], row["hash"]
        linked = stored_prev == old_prev
        intact = stored_hash is not None and stored_hash == _row_hash(row, stored_prev)
        old_prev = stored_hash
        head = heads.get(row["day_id"], GENESIS_HASH)
        prev_hash = head if linked else f"{UNLINKED_BEFORE_DAY_CHAINS}{stored_prev}"
        digest = (_row_hash(row, prev_hash) if intact
                  else f"{CHANGED_BEFORE_DAY_CHAINS}{stored_hash}")
        heads[row["day_id"]] = digest
        relinked.append(Relinked(row["id"], prev_hash, digest))
    return relinked
