"""Who may see a day's recordings (rules R1, A3).

The day's chair and secretary see every student's recordings through the retention
month. A member of the appeal commission sees a student's recordings while that
student's appeal, heard at the sitting they are invited to, holds them. A revoked
invite sees nothing, even through a link issued before it was revoked.
"""

from __future__ import annotations

from orchestrator.model import APPEAL_ROLES, OFFICE_ROLES, Role
from recordings.archive_store import ArchiveStore
from storage.appeals import AppealStore
from storage.db import Database
from storage.invites import InviteStore


class RecordingAccess:
    """Answers who may see which student's recordings; reads the database only."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def appeal_students(self, day_id: int, person_day: int, role: Role) -> frozenset[int]:
        """The students of `day_id` whose recordings a member of the appeal commission
        invited to sitting `person_day` may see: those whose appeal is heard there and
        still holds the recordings."""
        if role not in APPEAL_ROLES:
            return frozenset()
        holds = await ArchiveStore(self._db).active_holds(day_id)
        return frozenset(a.student_id for a in await AppealStore(self._db).for_day(day_id)
                         if a.sitting_day_id == person_day and (day_id, a.student_id) in holds)

    async def may_open(self, person_id: int, day_id: int, student_id: int) -> bool:
        """Whether `person_id` may still open a recording of `student_id` on `day_id`."""
        person = await InviteStore(self._db).person(person_id)
        if person is None or person.revoked:
            return False
        if person.day_id == day_id:
            return person.role in OFFICE_ROLES
        return student_id in await self.appeal_students(day_id, person.day_id, person.role)
