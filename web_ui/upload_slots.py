"""How many document uploads run at once (finding S9).

An upload holds a socket, a temporary file and a thread hop per chunk for as long as
the client takes to send it. `UploadSlots` caps them per invite (one person's link)
and for the whole server; a request over either cap is refused at once, before its
body is read, rather than queued: a waiting upload would hold its socket anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

#: Seconds a refused client is told to wait (Retry-After) before trying again.
RETRY_AFTER_S = 5


class UploadsBusy(Exception):
    """No upload slot for this request; `per_token` tells which cap was hit."""

    def __init__(self, per_token: bool, limit: int) -> None:
        if per_token:
            message = (f"this link already has {limit} upload(s) in progress; try again"
                       " when one has finished")
        else:
            message = (f"the server is taking {limit} uploads at once already; try again"
                       f" in {RETRY_AFTER_S} s")
        super().__init__(message)
        self.per_token = per_token
        self.limit = limit


class UploadSlots:
    """Counts the uploads in progress, per person and in all; see the module doc."""

    def __init__(self, per_token: int, at_once: int) -> None:
        self._per_token = per_token
        self._at_once = at_once
        self._by_person: dict[int, int] = {}
        self._total = 0

    @property
    def in_progress(self) -> int:
        return self._total

    @contextlib.contextmanager
    def take(self, person_id: int) -> Iterator[None]:
        """Hold a slot for `person_id`'s upload for the block; UploadsBusy if none."""
        held = self._by_person.get(person_id, 0)
        if held >= self._per_token:
            raise UploadsBusy(True, self._per_token)
        if self._total >= self._at_once:
            raise UploadsBusy(False, self._at_once)
        self._by_person[person_id] = held + 1
        self._total += 1
        try:
            yield
        finally:
            self._total -= 1
            left = self._by_person[person_id] - 1
            if left:
                self._by_person[person_id] = left
            else:
                del self._by_person[person_id]
