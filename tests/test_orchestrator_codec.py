"""orchestrator.codec: every event class round-trips through plain JSON."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import pytest

from orchestrator import events as ev
from orchestrator.codec import EVENT_TYPES, EventCodecError, event_from_json, event_to_json
from orchestrator.documents import DocumentKind
from orchestrator.model import Grade

#: One sample value per field type used by the events. A new field type needs a
#: sample here and, if the codec cannot handle it, codec support.
SAMPLES: dict[Any, object] = {
    float: 12_345.678,
    str: "s1",
    bool: True,
    Grade: Grade.GOOD,
    DocumentKind: DocumentKind.THESIS,
    tuple[str, ...]: ("s2", "s1"),
}

ALL_EVENTS = sorted(
    (
        obj
        for obj in vars(ev).values()
        if isinstance(obj, type) and issubclass(obj, ev.Event) and obj is not ev.Event
    ),
    key=lambda cls: cls.__name__,
)


def sample(cls: type[ev.Event]) -> ev.Event:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        assert hint in SAMPLES, f"no sample value for {cls.__name__}.{field.name}: {hint!r}"
        values[field.name] = SAMPLES[hint]
    return cls(**values)


def test_codec_knows_every_event_class() -> None:
    assert sorted(EVENT_TYPES) == [cls.__name__ for cls in ALL_EVENTS]


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda cls: cls.__name__)
def test_round_trip_through_json_text(cls: type[ev.Event]) -> None:
    event = sample(cls)
    data = event_to_json(event)
    assert data["type"] == cls.__name__
    text = json.dumps(data, allow_nan=False, sort_keys=True)
    assert event_from_json(json.loads(text)) == event


def test_enums_by_value_and_tuples_as_lists() -> None:
    vote = ev.CastVote(now=1.0, actor="m1", student="s1", grade=Grade.EXCELLENT)
    assert event_to_json(vote) == {
        "type": "CastVote", "now": 1.0, "actor": "m1", "student": "s1", "grade": "excellent",
    }
    order = ev.ReorderQueue(now=2.0, actor="sec", order=("s2", "s1"))
    assert event_to_json(order)["order"] == ["s2", "s1"]
    decoded = event_from_json({"type": "ReorderQueue", "now": 2, "actor": "sec", "order": ["s2"]})
    assert decoded == ev.ReorderQueue(now=2.0, actor="sec", order=("s2",))
    assert isinstance(decoded.now, float)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([], "must be a JSON object"),
        ({"now": 1.0}, "unknown event type None"),
        ({"type": "Event", "now": 1.0}, "unknown event type 'Event'"),
        ({"type": "Explode", "now": 1.0}, "unknown event type 'Explode'"),
        ({"type": "NextPhase", "now": 1.0}, r"missing \['actor'\]"),
        ({"type": "NextPhase", "now": 1.0, "actor": "a", "x": 1}, r"unknown \['x'\]"),
        ({"type": "NextPhase", "now": "soon", "actor": "a"}, "NextPhase.now must be float"),
        ({"type": "NextPhase", "now": True, "actor": "a"}, "NextPhase.now must be float"),
        ({"type": "NextPhase", "now": 1.0, "actor": 7}, "NextPhase.actor must be str"),
        (
            {"type": "IdentityDecided", "now": 1.0, "actor": "a", "student": "s", "accepted": 1},
            "accepted must be bool",
        ),
        (
            {"type": "CastVote", "now": 1.0, "actor": "a", "student": "s", "grade": "A+"},
            "'A\\+' is not a Grade",
        ),
        ({"type": "ReorderQueue", "now": 1.0, "actor": "a", "order": "s1"}, "must be a list"),
        ({"type": "ReorderQueue", "now": 1.0, "actor": "a", "order": [1]}, "order must be str"),
    ],
)
def test_bad_input_is_rejected_clearly(data: object, words: str) -> None:
    with pytest.raises(EventCodecError, match=words):
        event_from_json(data)


def test_foreign_event_class_is_not_encoded() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class NextPhase(ev.Event):  # same name, not the real class
        actor: str

    with pytest.raises(EventCodecError, match="not an event of orchestrator.events"):
        event_to_json(NextPhase(now=1.0, actor="a"))
