"""Events to plain JSON and back, for the journal and for replaying it; snapshots
to JSON for the participants.

An event becomes `{"type": <class name>, <field>: <value>, ...}`: enums by their
value, tuples as lists. Decoding checks the type name and every field against the
event class's annotations, and raises `EventCodecError` naming what is wrong; it
never guesses. Every subclass of `Event` in `events.py` is supported without a
list to keep up to date: a new field type that the codec cannot handle fails
`tests/test_orchestrator_codec.py`.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any

from . import events as ev
from .appeal_session import AppealSnapshot
from .model import Settings, Snapshot


class EventCodecError(ValueError):
    """An event cannot be encoded, or a JSON object is not a valid event."""


def _event_classes() -> dict[str, type[ev.Event]]:
    return {
        name: obj
        for name, obj in vars(ev).items()
        if isinstance(obj, type) and issubclass(obj, ev.Event) and obj is not ev.Event
    }


#: Every event class by its name, as it appears in the "type" key.
EVENT_TYPES: typing.Final[dict[str, type[ev.Event]]] = _event_classes()

_HINTS: dict[type[ev.Event], dict[str, Any]] = {
    cls: typing.get_type_hints(cls) for cls in EVENT_TYPES.values()
}


def event_to_json(event: ev.Event) -> dict[str, Any]:
    """The event as a JSON-ready dict with a "type" key."""
    cls = type(event)
    if EVENT_TYPES.get(cls.__name__) is not cls:
        raise EventCodecError(f"cannot encode {cls.__name__}: not an event of orchestrator.events")
    data: dict[str, Any] = {"type": cls.__name__}
    for field in dataclasses.fields(event):
        data[field.name] = _encode(getattr(event, field.name), f"{cls.__name__}.{field.name}")
    return data


def event_from_json(data: object) -> ev.Event:
    """The event encoded in `data`; `EventCodecError` if it is not a valid one."""
    if not isinstance(data, dict):
        raise EventCodecError(f"an event must be a JSON object, got {type(data).__name__}")
    name = data.get("type")
    cls = EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise EventCodecError(f"unknown event type {name!r}")
    hints = _HINTS[cls]
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    # A field added later with a default may be absent from older journal entries.
    missing = [f.name for f in fields
               if f.name not in data and f.default is dataclasses.MISSING]
    extra = sorted(k for k in data if k != "type" and k not in names)
    if missing or extra:
        raise EventCodecError(
            f"bad fields for {name}: missing {missing or 'none'}, unknown {extra or 'none'}"
        )
    values = {n: _decode(data[n], hints[n], f"{name}.{n}") for n in names if n in data}
    return cls(**values)


_SETTINGS_HINTS: dict[str, Any] = typing.get_type_hints(Settings)


def settings_to_json(settings: Settings) -> dict[str, Any]:
    """The procedure settings as journaled when a day's procedure begins."""
    return {f.name: _encode(getattr(settings, f.name), f"Settings.{f.name}")
            for f in dataclasses.fields(Settings)}


def settings_from_json(data: object) -> Settings:
    """Settings journaled by `settings_to_json`; a field added later takes its default."""
    if not isinstance(data, dict):
        raise EventCodecError(f"settings must be a JSON object, got {type(data).__name__}")
    extra = sorted(k for k in data if k not in _SETTINGS_HINTS)
    if extra:
        raise EventCodecError(f"unknown settings {extra}")
    return Settings(**{n: _decode(v, _SETTINGS_HINTS[n], f"Settings.{n}")
                       for n, v in data.items()})


def _encode(value: object, where: str) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_encode(v, where) for v in value]
    if isinstance(value, (str, bool, int, float)):
        return value
    raise EventCodecError(f"cannot encode {where} = {value!r}: unsupported type")


def _decode(value: object, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise EventCodecError(f"cannot decode {where}: unsupported annotation {hint!r}")
        if not isinstance(value, list):
            raise EventCodecError(f"{where} must be a list, got {value!r}")
        return tuple(_decode(v, args[0], where) for v in value)
    if origin is not None or isinstance(hint, types.UnionType):
        raise EventCodecError(f"cannot decode {where}: unsupported annotation {hint!r}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except (ValueError, TypeError):
            raise EventCodecError(f"{where} = {value!r} is not a {hint.__name__}") from None
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        raise EventCodecError(f"cannot decode {where}: unsupported annotation {hint!r}")
    raise EventCodecError(f"{where} must be {hint.__name__}, got {value!r}")


def snapshot_to_json(snapshot: Snapshot | AppealSnapshot) -> dict[str, Any]:
    """The state as participants receive it: absolute times (unix seconds), never
    countdowns, so every page computes what is left from its own clock."""
    if isinstance(snapshot, AppealSnapshot):
        return snapshot.to_json()
    q = snapshot.quorum
    return {
        "kind": "defense",
        "phase": snapshot.phase.value,
        "current_student": snapshot.current_student,
        "queue": list(snapshot.queue),
        "statuses": {student: status.value for student, status in snapshot.statuses},
        "present": sorted(snapshot.present),
        "quorum": {"present": q.present, "total": q.total, "required": q.required,
                   "reached": q.reached},
        "recording": snapshot.recording,
        "paused": snapshot.paused,
        "phase_started_at": snapshot.phase_started_at,
        "phase_ends_at": snapshot.phase_ends_at,
        "defense_ends_at": snapshot.defense_ends_at,
        "phase_overtime": snapshot.phase_overtime,
        "defense_overtime": snapshot.defense_overtime,
        "return_at": snapshot.return_at,
        "consented": sorted(snapshot.consented),
        "lobby": sorted(snapshot.lobby),
        "results_at": snapshot.results_at,
        "in_person": sorted(snapshot.in_person),
        "moved": dict(snapshot.moved),
        "vote_rounds": dict(snapshot.vote_rounds),
        "failure_since": snapshot.failure_since,
        "failure": snapshot.failure,
        "recording_failure": snapshot.recording_failure,
    }
