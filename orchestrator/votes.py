"""The grade decided by an open vote (clause 7.12).

"Decisions are taken by a simple majority of the votes of the commission members
taking part in the sitting; on an equal number of votes the chair has the deciding
vote." The chair votes like every member and is counted; the chair's vote becomes a
casting vote only when the leading grades tie. A tie the chair's grade is not part of
(e.g. 2:2:1 with the chair in the 1) stays undecided: the commission has to settle it
before results are announced. The grade with the most votes wins; a grade needs no
absolute majority when several grades are in play.
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
    top = ranked[0][1]
    tied = [grade for grade, count in ranked if count == top]
    if len(tied) == 1:
        return tied[0]
    casting = votes.get(chair)
    return casting if casting in tied else None
