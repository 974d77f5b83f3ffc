"""Replaying a day's journal through a fresh procedure: the one replay loop.

The journal holds the procedure's inputs and nothing derived from them:

- ``procedure_settings`` (once, before the first step): the `Settings` the day
  began with, so a config change after a crash or before the signing does not
  change what a replay gives;
- ``procedure_event``: every accepted event (detail = `event_to_json(event)`);
- ``procedure_deadline``: every firing of deadlines (detail ``{"now": t}``).

Feeding the steps in journal order into a fresh session rebuilds the same state,
phase times included. Three readers do that, all through `replay`: the runner after
a restart, the protocol drafts and the recording timeline. Each reads what it needs
from the session between steps; `replay` yields after every step with the effects
it produced (a replay carries none of them out: they happened before).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .codec import EventCodecError, event_from_json, event_to_json, settings_from_json
from .effects import Effect
from .errors import OrchestratorError
from .events import Event
from .model import Settings

EVENT_KIND = "procedure_event"
DEADLINE_KIND = "procedure_deadline"
SETTINGS_KIND = "procedure_settings"
#: The journal kinds that are steps of the procedure.
STEP_KINDS = (EVENT_KIND, DEADLINE_KIND)


@dataclass(frozen=True, slots=True)
class Tick:
    """Deadlines fired at `now` (a ``procedure_deadline`` journal entry)."""

    now: float


Step = Event | Tick


class Entry(Protocol):
    """What a replay reads of a journal entry (`storage.journal.JournalEvent`)."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> dict[str, Any]: ...


class Replayable(Protocol):
    """A procedure core: `DefenseSession` or `AppealSession`."""

    def handle(self, event: Event) -> None: ...

    def handle_deadline(self, now: float) -> None: ...

    def next_effect(self) -> Effect | None: ...


class ReplayError(OrchestratorError):
    """A journaled step is unreadable, or refused on replay: the journal does not
    match the rules. The message names the entry (or the step's index)."""

    code = "journal_unusable"
    status_hint = 500


@dataclass(frozen=True, slots=True)
class Replayed:
    """One step as replayed: the journal entry it came from (None for a bare step)
    and the effects the session produced."""

    entry_id: int | None
    step: Step
    effects: tuple[Effect, ...]


def journal_entry(step: Step) -> tuple[str, dict[str, Any]]:
    """The (kind, detail) a step is journaled as; `step_of` reads it back."""
    if isinstance(step, Tick):
        return DEADLINE_KIND, {"now": step.now}
    return EVENT_KIND, event_to_json(step)


def step_of(entry: Entry) -> Step | None:
    """The step a journal entry holds; None for an entry that is not a step."""
    try:
        if entry.kind == EVENT_KIND:
            return event_from_json(entry.detail)
        if entry.kind == DEADLINE_KIND:
            return Tick(float(entry.detail["now"]))
    except (EventCodecError, KeyError, TypeError, ValueError) as exc:
        raise ReplayError(f"journal entry {entry.id} ({entry.kind}) is unreadable: {exc}"
                          ) from exc
    return None


def apply(session: Replayable, step: Step) -> tuple[Effect, ...]:
    """Feed one step into `session`; the effects it produced, in order."""
    if isinstance(step, Tick):
        session.handle_deadline(step.now)
    else:
        session.handle(step)
    return tuple(iter(session.next_effect, None))


def replay(session: Replayable, source: Iterable[Entry | Step]) -> Iterator[Replayed]:
    """Feed `source` into `session` in order, yielding after each step.

    `source` is a day's journal entries (those that are not steps are skipped) or
    bare steps. `ReplayError` names the first entry or step that fails.
    """
    for index, item in enumerate(source):
        if isinstance(item, Event | Tick):
            step, entry_id = item, None
            where = f"step {index} ({type(step).__name__} at {step.now})"
        else:
            found = step_of(item)
            if found is None:
                continue
            step, entry_id = found, item.id
            where = f"journal entry {item.id} ({item.kind}, {type(step).__name__})"
        try:
            effects = apply(session, step)
        except OrchestratorError as exc:
            raise ReplayError(f"{where} is refused on replay: {exc}") from exc
        yield Replayed(entry_id, step, effects)


def last_step_id(entries: Iterable[Entry]) -> int:
    """The id of the last step in `entries` (0: none): what a draft was built from."""
    return max((e.id for e in entries if e.kind in STEP_KINDS), default=0)


def journaled_settings(entries: Iterable[Entry]) -> Settings | None:
    """The settings the day's procedure began with, if they are journaled."""
    for entry in entries:
        if entry.kind == SETTINGS_KIND:
            try:
                return settings_from_json(entry.detail)
            except EventCodecError as exc:
                raise ReplayError(
                    f"journal entry {entry.id} ({entry.kind}) is unreadable: {exc}") from exc
    return None


def day_settings(entries: Iterable[Entry], default: Settings) -> Settings:
    """The settings to replay a day with: the journaled ones, else `default` (a day
    that has not begun, or one journaled before settings were)."""
    found = journaled_settings(entries)
    return default if found is None else found
