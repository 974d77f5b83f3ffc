"""A stored defense day as the procedure core sees it.

The core knows people by string ids; here they are the database ids of the
``people`` rows. Students come in queue order: roster students by their queue
position, then students invited without a roster row (in order of invitation).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.model import DefenseDay, Person, Role

from .appeals import AppealStore, DayKind
from .db import Database
from .invites import DefenseDay as StoredDay
from .invites import InviteStore
from .roster import RosterStore, RosterStudent


@dataclass(frozen=True, slots=True)
class LoadedDay:
    """The stored day, the core's view of it, and the roster behind both."""

    stored: StoredDay
    day: DefenseDay
    students: dict[str, RosterStudent]
    kind: DayKind = DayKind.DEFENSE
    appeal_id: int | None = None

    def name(self, person_id: str) -> str:
        person = self.day.person(person_id)
        return person.name if person is not None else person_id


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
        repeat=kind is DayKind.REPEAT,
        # Clause 4.3: only the students who have some, in queue order.
        extra_time_percent=tuple((student_id, s.extra_time_percent)
                                 for student_id, s in roster.items() if s.extra_time_percent),
    )
    return LoadedDay(stored=stored, day=day, students=roster, kind=kind, appeal_id=appeal_id)
