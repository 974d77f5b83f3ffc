"""`DayLookup`: the day an invite token or an appeal belongs to, for the front.

Reads SQLite (the front's own read connections) and remembers the answers: a
token's day and an appeal's day never change (a reissued link is a new token of
the same person, on the same day).
"""

from __future__ import annotations

from typing import TypeVar

from storage.db import Database
from storage.invites import hash_token

#: Lookups remembered; past this the memory starts afresh.
CACHE_SIZE = 10_000
K = TypeVar("K")


class DayLookup:
    """Invite token or appeal -> its day, read from SQLite (and remembered)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._tokens: dict[str, int] = {}
        self._appeals: dict[int, int] = {}

    async def day_of_token(self, token: str) -> int | None:
        digest = hash_token(token)
        day = self._tokens.get(digest)
        if day is None:
            rows = await self._db.query("SELECT day_id FROM people WHERE token_hash = ?", [digest])
            if not rows:
                return None  # not an invite (the organizer's token, a wrong one)
            day = _remember(self._tokens, digest, int(rows[0]["day_id"]))
        return day

    async def day_of_appeal(self, appeal_id: int) -> int | None:
        day = self._appeals.get(appeal_id)
        if day is None:
            rows = await self._db.query("SELECT day_id FROM appeals WHERE id = ?", [appeal_id])
            if not rows:
                return None
            day = _remember(self._appeals, appeal_id, int(rows[0]["day_id"]))
        return day


def _remember(cache: dict[K, int], key: K, day: int) -> int:
    if len(cache) >= CACHE_SIZE:
        cache.clear()  # rare, and every entry is cheap to read again
    cache[key] = day
    return day
