"""Who a participant of a room is, as the media layer knows them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParticipantInfo:
    id: str
    name: str
    role: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "role": self.role}
