"""Quorum of the commission (clause 7.2): at least two thirds of its voting members."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quorum:
    present: int
    total: int

    @property
    def required(self) -> int:
        """The smallest whole number of members that is at least two thirds."""
        return -(-2 * self.total // 3)

    @property
    def reached(self) -> bool:
        return self.total > 0 and self.present >= self.required


def count_quorum(voting_members: frozenset[str], present: Iterable[str]) -> Quorum:
    return Quorum(present=len(voting_members.intersection(present)), total=len(voting_members))
