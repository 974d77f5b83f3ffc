"""`HandlerTable`: which method applies each class of event.

Both procedure cores dispatch through one, written as rows
``on(ev.OpenSitting, self._open_sitting)``. `on` is generic, so mypy checks every
row: a handler takes exactly the event class it is listed under. Lookup is by the
exact class, as in the phase tables. The table is data, so the tests compare it with
the phase tables (`kinds`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .events import Event

E = TypeVar("E", bound=Event)

#: One row of a `HandlerTable`; build it with `on`, which checks that the two fit.
Row = tuple[type[Event], Callable[[Any], None]]


def on(kind: type[E], handler: Callable[[E], None]) -> Row:
    """The row that sends events of class `kind` to `handler`."""
    return kind, handler


class HandlerTable:
    """Event class -> handler, from `on` rows; one handler per class."""

    def __init__(self, *rows: Row) -> None:
        self._rows: dict[type[Event], Callable[[Any], None]] = {}
        for kind, handler in rows:
            if kind in self._rows:
                raise ValueError(f"two handlers for {kind.__name__}")
            self._rows[kind] = handler

    @property
    def kinds(self) -> frozenset[type[Event]]:
        """The event classes the table has a handler for."""
        return frozenset(self._rows)

    def __contains__(self, kind: object) -> bool:
        return kind in self._rows

    def dispatch(self, event: Event) -> None:
        """Apply `event` with its handler; `LookupError` if its class has none."""
        handler = self._rows.get(type(event))
        if handler is None:
            raise LookupError(f"no handler for {type(event).__name__}")
        handler(event)
