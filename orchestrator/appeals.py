"""The rules of an appeal's life around its sitting (section 8; rules A1-A5).

Filing (8.1, 8.2, 8.12): only against a defense whose results were announced, not
against a repeated defense, once, and by the end of the next working day after
the results. The hearing (8.4, 8.5): within two working days of filing, with the
invitation sent at least one day before. The decision (8.8, 8.11): rejected, or
upheld — then the result is annulled and the defense is repeated, in the
presence of a member of the appeal commission, before the end of studies; the
student learns it on the next working day.

Pure: every function takes `now` and the calendar; refusals raise
`AppealRefused` with the clause, and change nothing.
"""

from __future__ import annotations

import datetime
import enum
import zoneinfo
from dataclasses import dataclass

from .errors import ForbiddenAction
from .workdays import WorkCalendar, end_of, local_date, start_of

DAY_S = 86_400.0


class AppealRefused(ForbiddenAction):
    """The appeal rules forbid this now; the message cites the clause."""


class Decision(enum.Enum):
    REJECTED = "rejected"
    UPHELD = "upheld"


@dataclass(frozen=True, slots=True)
class Defense:
    """The defense an appeal is about."""

    results_at: float | None  # when the results were announced; None: not yet
    timezone: str
    repeat: bool  # a repeated defense after an upheld appeal (8.12)


def filing_deadline(results_at: float, timezone: str, calendar: WorkCalendar) -> float:
    """The end of the next working day after the day the results were announced."""
    return end_of(calendar.next_working_day(local_date(results_at, timezone)), timezone)


def _local(moment: float, timezone: str) -> str:
    return datetime.datetime.fromtimestamp(moment, zoneinfo.ZoneInfo(timezone)).strftime(
        "%Y-%m-%d %H:%M")


def check_filing(defense: Defense, now: float, calendar: WorkCalendar, *,
                 already_filed: bool) -> float:
    """Refuse a filing the rules forbid; return the deadline it met."""
    if defense.repeat:
        raise AppealRefused("an appeal against a repeated defense is not accepted", "8.12")
    if defense.results_at is None:
        raise AppealRefused("the results of this defense have not been announced", "8.2")
    if already_filed:
        raise AppealRefused("an appeal against this defense has already been filed", "8.1")
    deadline = filing_deadline(defense.results_at, defense.timezone, calendar)
    if now >= deadline:
        raise AppealRefused(
            f"the deadline for an appeal was {_local(deadline, defense.timezone)} "
            f"({defense.timezone}): the end of the next working day after the results",
            "8.2")
    return deadline


def hearing_deadline(filed_at: float, timezone: str, calendar: WorkCalendar) -> float:
    """The end of the second working day after the day of filing."""
    return end_of(calendar.add_working_days(local_date(filed_at, timezone), 2), timezone)


def check_schedule(filed_at: float, sitting_at: float, now: float, timezone: str,
                   calendar: WorkCalendar, *, decided: bool) -> None:
    """The sitting is within two working days of filing; invitations go out now, so it
    must be at least a day away (8.4, 8.5)."""
    if decided:
        raise AppealRefused("the appeal has been decided", "8.9")
    latest = hearing_deadline(filed_at, timezone, calendar)
    if sitting_at >= latest:
        raise AppealRefused(
            f"the sitting must take place by {_local(latest, timezone)}: within two "
            "working days of filing", "8.4")
    if sitting_at < now + DAY_S:
        raise AppealRefused(
            f"the sitting at {_local(sitting_at, timezone)} is less than a day away: the "
            "student and the members are invited at least one day before", "8.5")


def decision_delivery(decided_at: float, timezone: str, calendar: WorkCalendar) -> float:
    """When the decision is made known to the student: the next working day (8.11)."""
    return start_of(calendar.next_working_day(local_date(decided_at, timezone)), timezone)


def latest_delivery(filed_at: float, timezone: str, calendar: WorkCalendar) -> float:
    """When the decision reaches the student at the latest, if the sitting keeps to its
    deadline: the working day after the last day it may take place (8.4, 8.11)."""
    last_sitting_day = calendar.add_working_days(local_date(filed_at, timezone), 2)
    return start_of(calendar.next_working_day(last_sitting_day), timezone)


def check_repeat_date(repeat_at: float, now: float, end_of_studies: datetime.date,
                      timezone: str) -> None:
    """A repeated defense takes place before the end of studies (8.8)."""
    if repeat_at <= now:
        raise AppealRefused("the repeated defense must be in the future", "8.8")
    if repeat_at >= end_of(end_of_studies, timezone):
        raise AppealRefused(
            f"the repeated defense must take place by the end of studies, "
            f"{end_of_studies.isoformat()}", "8.8")
