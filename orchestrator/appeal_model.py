"""The appeal sitting's phases and what everyone at it sees.

The counterparts of `Phase` and `Snapshot` (model.py) for `AppealSession`. They
live apart from the session so that effects.py can name `AppealSnapshot`: a
`Broadcast` carries either snapshot.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .appeals import Decision


class AppealPhase(enum.Enum):
    WAITING = "appeal_waiting"
    NAMING = "appeal_naming"
    HEARING = "appeal_hearing"
    DECIDED = "appeal_decided"
    CLOSED = "appeal_closed"


@dataclass(frozen=True, slots=True)
class AppealSnapshot:
    """What everyone at the appeal sitting sees."""

    phase: AppealPhase
    present: frozenset[str]
    recording: bool
    to_name: tuple[str, ...]  # still to be said aloud, in order
    named: tuple[str, ...]
    decision: Decision | None
    reasoning: str | None
    opened_at: float | None
    decided_at: float | None
    # What the day host reads of any procedure's snapshot.
    lobby: frozenset[str] = frozenset()
    consented: frozenset[str] = frozenset()
    current_student: str | None = None
    #: Why the recording broke (it is off, 8.7), until it runs again; "" if it did not.
    recording_failure: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "appeal", "phase": self.phase.value, "present": sorted(self.present),
            "recording": self.recording, "to_name": list(self.to_name),
            "named": list(self.named),
            "decision": self.decision.value if self.decision else None,
            "reasoning": self.reasoning,
            "opened_at": self.opened_at, "decided_at": self.decided_at,
            "lobby": [], "consented": [], "current_student": None,
            "recording_failure": self.recording_failure,
        }
