"""Which worker process owns which defense day.

With ``defense-room serve --workers N`` every day belongs to exactly one worker:
day ``d`` to worker ``d % N``. The rule needs no shared state and gives the same
answer after any restart, so the front routes a request by arithmetic and a
restarted worker resumes exactly the days it had. The owner alone hosts the day:
its room (media), its procedure (the only writer of the day's journal) and its
recording. Worker 0 also runs what must run once per machine (the retention
sweep, the mail outbox).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ServerError


def owner_of(day_id: int, workers: int) -> int:
    """The index of the worker that owns `day_id` among `workers` workers."""
    if workers < 1:
        raise ValueError(f"a server has at least one worker, not {workers}")
    return day_id % workers


class NotThisWorker(ServerError):
    """A request for a day that another worker owns reached this one directly
    (not through the front)."""

    code = "other_worker"
    status_hint = 421  # Misdirected Request: the front sends it where it belongs


@dataclass(frozen=True, slots=True)
class Ownership:
    """This process's share of the days: worker `index` of `count`."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"worker {self.index} of {self.count} does not exist")

    @property
    def alone(self) -> bool:
        """One process serves everything (no front, as before workers existed)."""
        return self.count == 1

    @property
    def runs_machine_services(self) -> bool:
        """Whether this worker runs the services that must run once per machine."""
        return self.index == 0

    def owns(self, day_id: int) -> bool:
        return owner_of(day_id, self.count) == self.index

    def check(self, day_id: int) -> None:
        """Raise `NotThisWorker` unless this worker owns `day_id`."""
        if not self.owns(day_id):
            raise NotThisWorker(
                f"defense day {day_id} is hosted by worker {owner_of(day_id, self.count)} "
                f"of {self.count}, not by this one (worker {self.index}); reach it "
                "through the server's public address")

    def describe(self) -> str:
        return f"worker {self.index} of {self.count}"


#: The single process of ``--workers 1``: it owns every day.
SINGLE = Ownership()
