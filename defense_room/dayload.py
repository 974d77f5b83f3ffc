"""A stored defense day as the procedure core sees it.

The core knows people by string ids; here they are the database ids of the
``people`` rows. Students come in queue order: roster students by their queue
position, then students invited without a roster row (in order of invitation).
"""

from __future__ import annotations

from dataclasses import dataclass

from defense_room.config import Config
from orchestrator.model import DefenseDay, Person, Role, Settings
from storage.appeals import AppealStore
from storage.db import Database
from storage.invites import DefenseDay as StoredDay
from storage.invites import InviteStore
from storage.roster import RosterStore, RosterStudent


@dataclass(frozen=True, slots=True)
class LoadedDay:
    """The stored day, the core's view of it, and the roster behind both."""

    stored: StoredDay
    day: DefenseDay
    students: dict[str, RosterStudent]
    #: "defense", "appeal" (an appeal sitting) or "repeat" (a repeated defense).
    kind: str = "defense"
    appeal_id: int | None = None

    def name(self, person_id: str) -> str:
        person = self.day.person(person_id)
        return person.name if person is not None else person_id


def settings_from(config: Config) -> Settings:
    return Settings(
        talk_minutes=config.phases.talk_minutes,
        questions_minutes=config.phases.questions_minutes,
        defense_max_minutes=config.phases.defense_max_minutes,
        warning_before_s=config.phases.warning_before_s,
        absence_grace_minutes=config.absence.grace_minutes,
        absence_from=config.absence.counted_from,
        failure_grace_minutes=config.absence.grace_minutes,
        queue_lock_minutes=config.queue.lock_minutes,
    )


async def load_day(db: Database, day_id: int) -> LoadedDay:
    """The day `day_id`; `storage.errors.NotFoundError` if there is none."""
    invites = InviteStore(db)
    stored = await invites.get_day(day_id)
    # Revoked people stay: the journal may name them, and a revoked token cannot
    # join anyway.
    people = await invites.list_people(day_id)
    roster = {str(s.person_id): s for s in await RosterStore(db).list_students(day_id)}
    students = [p for p in people if p.role is Role.STUDENT]
    rank = {pid: i for i, pid in enumerate(roster)}
    students.sort(key=lambda p: (rank.get(str(p.person_id), len(rank)), p.person_id))
    others = [p for p in people if p.role is not Role.STUDENT]
    kind, appeal_id = await AppealStore(db).day_kind(day_id)
    day = DefenseDay(
        people=tuple(
            Person(str(p.person_id), p.name, p.role) for p in (*others, *students)
        ),
        scheduled_start=stored.starts_at,
        repeat=kind == "repeat",
    )
    return LoadedDay(stored=stored, day=day, students=roster, kind=kind, appeal_id=appeal_id)
