"""How long invite links work, beyond the default of the day plus
`invites.valid_days_after`.

- The chair's and the secretary's links last `invites.office_valid_days_after`:
  they sign protocols, hand the day over (R3) and open its recordings during the
  retention month (R1).
- When the results are announced, the students' links are extended to their
  appeal deadline, the end of the next working day (clause 8.2), so a weekend or a
  holiday never closes the door on an appeal.
- A student who appeals must still hold a working link when the decision reaches
  them, the next working day after the sitting (clause 8.11), and a while after:
  `extend_appellant` keeps their links until the end of that day plus
  `invites.appeal_valid_days_after`. The appeal service calls it twice: on filing,
  with the latest day the hearing's two working days allow (so the link covers the
  sitting and its decision even if nothing else happens), and when the decision is
  recorded, with its own day. Links are never shortened.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from orchestrator.appeals import filing_deadline
from orchestrator.model import Role
from orchestrator.workdays import WorkCalendar, local_date
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


def appellant_until(config: Config, delivery: float, timezone: str) -> float:
    """When the appellant's links stop working, for a decision delivered at `delivery`."""
    return expires_at_for_day(local_date(delivery, timezone), timezone,
                              config.invites.appeal_valid_days_after)


async def extend_appellant(invites: InviteStore, config: Config, person_ids: Iterable[int],
                           delivery: float, timezone: str, now: float) -> float:
    """Keep the links of `person_ids` (the student who appealed: their defense-day
    invite, and their invite to the sitting once there is one) working past the
    decision's `delivery` (clause 8.11). Returns until when."""
    until = appellant_until(config, delivery, timezone)
    for person_id in person_ids:
        await invites.extend_person(person_id, until, now=now)
    return until
