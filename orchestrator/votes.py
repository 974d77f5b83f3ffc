"""The grade decided by an open vote (clause 7.12).

"Decisions are taken by a simple majority of the votes of the commission members
taking part in the sitting; on an equal number of votes the chair has the deciding
vote." A grade wins with more than half of the votes cast. The chair's vote
decides where the votes are equal: the chair's grade has exactly half (3 for, 3
against), or grades tie for the most votes and the chair voted one of them (2:2:1
with the chair in a 2). Otherwise the vote is undecided (2:2:1 with the chair in
the 1, 2:1:1 of four) and the commission votes again in a new round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from .model import Grade


def decide(votes: Mapping[str, Grade], chair: str) -> Grade | None:
    """Return the grade decided by `votes` (voter id -> grade), or None if undecided."""
    tally = Counter(votes.values())
    if not tally:
        return None
    ranked = tally.most_common()
    grade, top = ranked[0]
    if 2 * top > len(votes):
        return grade
    casting = votes.get(chair)
    if casting is None:
        return None
    if 2 * tally[casting] == len(votes):
        return casting
    tied = [g for g, count in ranked if count == top]
    return casting if len(tied) > 1 and casting in tied else None
