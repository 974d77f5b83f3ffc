"""How long invite links work, beyond the default of the day plus
`invites.valid_days_after`.

- The chair's and the secretary's links last `invites.office_valid_days_after`:
  they sign protocols, hand the day over (R3) and open its recordings during the
  retention month (R1).
- When the results are announced, the students' links are extended to their
  appeal deadline, the end of the next working day (clause 8.2), so a weekend or a
  holiday never closes the door on an appeal.
"""

from __future__ import annotations

import datetime

from orchestrator.appeals import filing_deadline
from orchestrator.model import Role
from orchestrator.workdays import WorkCalendar
from storage.invites import InviteStore, expires_at_for_day

from .config import Config

OFFICE = (Role.CHAIR, Role.SECRETARY)


async def extend_office(invites: InviteStore, config: Config, day_id: int,
                        date: datetime.date, timezone: str, now: float) -> None:
    until = expires_at_for_day(date, timezone, config.invites.office_valid_days_after)
    await invites.extend(day_id, OFFICE, until, now=now)


async def extend_students_to_appeal_deadline(
        invites: InviteStore, day_id: int, results_at: float, timezone: str,
        calendar: WorkCalendar, now: float) -> None:
    until = filing_deadline(results_at, timezone, calendar)
    await invites.extend(day_id, (Role.STUDENT,), until, now=now)
