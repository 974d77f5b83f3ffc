"""A small list of named deadlines, rebuilt from the state whenever it is asked for.

The session does not keep timer objects: it derives the deadlines from its state
(phase start, pauses, absence clocks) and remembers only which keys have fired. A
deadline carries a typed description of what comes due (`what`); whoever built the
list decides what that does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Deadline(Generic[T]):
    """`what` comes due at `at`; `key` names it among the fired ones and orders
    deadlines that fall due at the same moment."""

    at: float
    key: str
    what: T


class Deadlines(Generic[T]):
    """The deadlines of one moment's state, each saying what comes due (a `T`)."""

    def __init__(self) -> None:
        self._items: list[Deadline[T]] = []

    def add(self, at: float, key: str, what: T) -> None:
        self._items.append(Deadline(at, key, what))

    def drop(self, keys: Iterable[str]) -> None:
        gone = set(keys)
        self._items = [d for d in self._items if d.key not in gone]

    def earliest(self) -> float | None:
        return min((d.at for d in self._items), default=None)

    def due(self, now: float) -> Deadline[T] | None:
        """The earliest deadline at or before `now`, if any."""
        ready = [d for d in self._items if d.at <= now]
        return min(ready, key=lambda d: (d.at, d.key)) if ready else None
