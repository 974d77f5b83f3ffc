"""The journal's hash chain, as pure functions (no database).

Every journal row stores `prev_hash`, the hash of the row before it (the first
links to `GENESIS_HASH`), and `hash`, the SHA-256 of its own content together with
`prev_hash` (`event_hash`). `verify_chain` finds the first row that breaks it.
`storage.journal` appends rows; `storage.migrations` hashed the rows that existed
before the chain did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import JournalTampered

GENESIS_HASH = "0" * 64
"""The `prev_hash` of the first event in the journal."""


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


def verify_chain(rows: Iterable[Mapping[str, Any]]) -> int | None:
    """The id of the first event that breaks the chain, or None if none does.

    `rows` are all journal rows ordered by id, as mappings with the columns
    id, at, day_id, person_id, kind, detail (the stored text), prev_hash, hash.
    """
    broken = first_break(rows)
    return None if broken is None else broken.event_id


def first_break(rows: Iterable[Mapping[str, Any]]) -> JournalTampered | None:
    """The first break of the chain in `rows` (as in `verify_chain`) as an error."""
    prev_id: int | None = None
    prev_hash: str = GENESIS_HASH
    for row in rows:
        event_id = row["id"]
        if row["prev_hash"] != prev_hash:
            return JournalTampered(event_id, _link_message(event_id, prev_id))
        if row["hash"] is None:
            return JournalTampered(
                event_id,
                f"journal event {event_id} has no hash: it was not written through the journal",
            )
        expected = event_hash(
            event_id=event_id,
            at=row["at"],
            day_id=row["day_id"],
            person_id=row["person_id"],
            kind=row["kind"],
            detail_json=row["detail"],
            prev_hash=row["prev_hash"],
        )
        if row["hash"] != expected:
            return JournalTampered(
                event_id,
                f"journal event {event_id} was changed after it was written:"
                " its stored hash does not match its content",
            )
        prev_id, prev_hash = event_id, row["hash"]
    return None


def _link_message(event_id: int, prev_id: int | None) -> str:
    first_missing = 1 if prev_id is None else prev_id + 1
    after = "the start of the journal" if prev_id is None else f"event {prev_id}"
    if event_id > first_missing:
        missing = (
            f"event {first_missing} is missing"
            if event_id == first_missing + 1
            else f"events {first_missing}..{event_id - 1} are missing"
        )
        return f"journal event {event_id} does not link to {after}: {missing} (deleted)"
    return (
        f"journal event {event_id} does not link to {after}:"
        " its prev_hash does not match, so an event was deleted or changed"
    )
