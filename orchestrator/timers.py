"""A small list of named deadlines, rebuilt from the state whenever it is asked for.

The session does not keep timer objects: it derives the deadlines from its state
(phase start, pauses, absence clocks) and remembers only which keys have fired.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float
    key: str
    action: Callable[..., None]
    args: tuple[Any, ...]

    def fire(self, now: float) -> None:
        self.action(self.key, now, *self.args)


class Deadlines:
    def __init__(self) -> None:
        self._items: list[Deadline] = []

    def add(self, at: float, key: str, action: Callable[..., None], *args: Any) -> None:
        self._items.append(Deadline(at, key, action, args))

    def drop(self, keys: Iterable[str]) -> None:
        gone = set(keys)
        self._items = [d for d in self._items if d.key not in gone]

    def earliest(self) -> float | None:
        return min((d.at for d in self._items), default=None)

    def due(self, now: float) -> Deadline | None:
        """The earliest deadline at or before `now`, if any."""
        ready = [d for d in self._items if d.at <= now]
        return min(ready, key=lambda d: (d.at, d.key)) if ready else None
