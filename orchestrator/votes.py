"""The grade decided by an open vote (clause 7.12).

A simple majority of the members present decides. The chair's vote is a casting
vote: it is left out of the count and decides only when the members' votes tie.
When the chair did not vote, or voted for none of the tied grades, the vote is
undecided and the commission has to settle it before results are announced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from .model import Grade


def decide(votes: Mapping[str, Grade], chair: str) -> Grade | None:
    """Return the grade decided by `votes` (voter id -> grade), or None if undecided."""
    tally = Counter(grade for voter, grade in votes.items() if voter != chair)
    casting = votes.get(chair)
    if not tally:
        return casting
    ranked = tally.most_common()
    top = ranked[0][1]
    tied = [grade for grade, count in ranked if count == top]
    if len(tied) == 1:
        return tied[0]
    return casting if casting in tied else None
