"""Outputs of the procedure cores: effects the caller carries out, in order.

Every effect asks the caller to do something. What only records what happened is
not an effect: the journal holds the events themselves, and the protocol is built
by replaying them (protocol.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from .appeal_model import AppealSnapshot
from .appeals import Decision
from .model import Grade, Phase, Snapshot


@dataclass(frozen=True, slots=True)
class Effect:
    pass


@dataclass(frozen=True, slots=True)
class StartRecording(Effect):
    """Turn recording on and feed `RecordingStarted` back when it runs."""


@dataclass(frozen=True, slots=True)
class StopRecording(Effect):
    """Turn recording off and feed `RecordingStopped` back when it has stopped."""


@dataclass(frozen=True, slots=True)
class Broadcast(Effect):
    """Send the new state to everyone in the room: a defense's `Snapshot` or an
    appeal sitting's `AppealSnapshot`."""

    snapshot: Snapshot | AppealSnapshot


@dataclass(frozen=True, slots=True)
class Notice(Effect):
    """A message for the room, e.g. that the procedure is paused."""

    text: str
    clause: str


@dataclass(frozen=True, slots=True)
class MoveToLobby(Effect):
    person: str


@dataclass(frozen=True, slots=True)
class AdmitFromLobby(Effect):
    person: str


@dataclass(frozen=True, slots=True)
class Warn(Effect):
    """A limit is near. `phase` is None for the limit of the whole defense."""

    phase: Phase | None
    seconds_left: float


@dataclass(frozen=True, slots=True)
class Overtime(Effect):
    """A limit has passed; the defense goes on, flagged (clause 7.5)."""

    phase: Phase | None


@dataclass(frozen=True, slots=True)
class MarkAbsent(Effect):
    student: str
    clause: str


@dataclass(frozen=True, slots=True)
class Reschedule(Effect):
    """Absent for a valid reason (7.9) or moved after a failure (7.8): the defense
    goes to another day, `new_date` where the chair set one; tell the student."""

    student: str
    reason: str
    clause: str
    new_date: float | None = None


@dataclass(frozen=True, slots=True)
class PublishResults(Effect):
    grades: tuple[tuple[str, Grade], ...]


@dataclass(frozen=True, slots=True)
class AppealDecided(Effect):
    """The appeal commission has decided (clause 8.8): store the decision, once, and
    end the hold on the defense's recordings."""

    decision: Decision
    decided_at: float
