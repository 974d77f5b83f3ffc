"""Working days (clauses 8.2, 8.4, 8.8, 8.11): the calendar appeal deadlines count in.

A working day is a date that is neither a weekend day nor a listed public
holiday. Deadlines "by the end of a working day" are returned as the instant the
next calendar day starts in the sitting's time zone, so `now < deadline` reads as
"still in time". Pure: dates and zone names in, unix times out.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    #: ISO weekday numbers that are not working days (Monday 1 ... Sunday 7).
    weekend: frozenset[int] = frozenset({6, 7})
    holidays: frozenset[datetime.date] = field(default_factory=frozenset)

    def is_working(self, day: datetime.date) -> bool:
        return day.isoweekday() not in self.weekend and day not in self.holidays

    def next_working_day(self, day: datetime.date) -> datetime.date:
        """The first working day strictly after `day`."""
        if len(self.weekend) >= 7:
            raise ValueError("a calendar with no working weekday")
        candidate = day + datetime.timedelta(days=1)
        while not self.is_working(candidate):
            candidate += datetime.timedelta(days=1)
        return candidate

    def add_working_days(self, day: datetime.date, count: int) -> datetime.date:
        """The `count`-th working day after `day`."""
        for _ in range(count):
            day = self.next_working_day(day)
        return day


def local_date(moment: float, timezone: str) -> datetime.date:
    return datetime.datetime.fromtimestamp(moment, zoneinfo.ZoneInfo(timezone)).date()


def end_of(day: datetime.date, timezone: str) -> float:
    """The instant `day` ends (the next day starts) in `timezone`."""
    following = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(),
                                          zoneinfo.ZoneInfo(timezone))
    return following.timestamp()


def start_of(day: datetime.date, timezone: str) -> float:
    return datetime.datetime.combine(day, datetime.time(), zoneinfo.ZoneInfo(timezone)).timestamp()
