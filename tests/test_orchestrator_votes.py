"""Closed sitting, vote and results (clauses 7.7, 7.12, 7.13)."""

from __future__ import annotations

import pytest

from orchestrator import events as ev
from orchestrator.effects import (
    AdmitFromLobby,
    MoveToLobby,
    PublishResults,
    StartRecording,
    StopRecording,
)
from orchestrator.errors import ForbiddenAction
from orchestrator.model import Grade, Phase
from orchestrator.session import DefenseSession
from orchestrator.votes import decide

from .orchestrator_helpers import MIN, START, announced, closed_sitting, defend, drain, join

E, G, S, U = Grade.EXCELLENT, Grade.GOOD, Grade.SATISFACTORY, Grade.UNSATISFACTORY


def test_7_7_closed_sitting_only_after_all_defenses() -> None:
    s = announced()
    now = defend(s, "s1", START + 6 * MIN)
    with pytest.raises(ForbiddenAction, match=r"defenses of s2 pending \(clause 7\.7\)"):
        s.handle(ev.StartClosedSitting(now=now, actor="sec"))


def test_7_12_closed_sitting_stops_recording_and_empties_room() -> None:
    s = announced()
    now = defend(s, "s1", START + 6 * MIN)
    now = defend(s, "s2", now)
    s.handle(ev.TellReturnTime(now=now, actor="sec", return_at=now + 20 * MIN))
    s.handle(ev.StartClosedSitting(now=now, actor="sec"))
    effects = drain(s)
    assert StopRecording() in effects
    moved = {e.person for e in effects if isinstance(e, MoveToLobby)}
    assert moved == {"s1", "s2", "sup", "rev"}
    assert s.phase is Phase.CLOSED_SITTING
    join(s, now + 1, "s1")
    assert MoveToLobby("s1") in drain(s)


def test_7_12_no_vote_while_recording() -> None:
    s = announced()
    now = defend(s, "s1", START + 6 * MIN)
    now = defend(s, "s2", now)
    s.handle(ev.TellReturnTime(now=now, actor="sec", return_at=now + 20 * MIN))
    s.handle(ev.StartClosedSitting(now=now, actor="sec"))
    with pytest.raises(ForbiddenAction, match=r"recording is on \(clause 7\.12\)"):
        s.handle(ev.CastVote(now=now + 1, actor="m1", student="s1", grade=E))
    s.handle(ev.RecordingStopped(now=now + 2))
    drain(s)
    s.handle(ev.CastVote(now=now + 3, actor="m1", student="s1", grade=E))
    assert s.votes("s1") == {"m1": E}
    assert drain(s) == []  # the room sees no votes, only the results (clause 7.13)


def test_7_12_vote_only_in_closed_sitting() -> None:
    s = announced()
    now = defend(s, "s1", START + 6 * MIN)
    with pytest.raises(ForbiddenAction, match=r"cannot start the vote in phase BETWEEN_DEFENSES \(clause 7\.12\)"):
        s.handle(ev.CastVote(now=now, actor="m1", student="s1", grade=E))


def test_7_12_one_vote_per_member_and_present_only() -> None:
    s, now = closed_sitting()
    s.handle(ev.CastVote(now=now, actor="m1", student="s1", grade=E))
    with pytest.raises(ForbiddenAction, match="second vote"):
        s.handle(ev.CastVote(now=now, actor="m1", student="s1", grade=G))
    s.handle(ev.ParticipantLeft(now=now, actor="m5"))
    with pytest.raises(ForbiddenAction, match="not present"):
        s.handle(ev.CastVote(now=now, actor="m5", student="s1", grade=G))
    assert s.votes("s1") == {"m1": E}


def test_7_2_no_vote_without_quorum() -> None:
    s, now = closed_sitting()
    for member in ("m3", "m4", "m5"):
        s.handle(ev.ParticipantLeft(now=now, actor=member))
    with pytest.raises(ForbiddenAction, match=r"cannot start the vote: 3 of 6 .*\(clause 7\.2\)"):
        s.handle(ev.CastVote(now=now, actor="m1", student="s1", grade=E))


def test_7_12_simple_majority_of_present_members() -> None:
    assert decide({"chair": S, "m1": E, "m2": E, "m3": E, "m4": G}, chair="chair") is E
    # 2 of 5 is no majority, and 2 of 4 with the chair not among them neither.
    assert decide({"chair": S, "m1": E, "m2": E, "m3": G, "m4": U}, chair="chair") is None
    assert decide({"chair": S, "m1": E, "m2": E, "m3": G}, chair="chair") is None


def test_7_12_half_for_half_against_the_chair_decides() -> None:
    assert decide({"chair": G, "m1": G, "m2": G, "m3": S, "m4": S, "m5": E},
                  chair="chair") is G


def test_7_12_chair_decides_tie() -> None:
    assert decide({"chair": G, "m1": E, "m2": E, "m3": G}, chair="chair") is G
    assert decide({"chair": E, "m1": E, "m2": G, "m3": G}, chair="chair") is E


def test_7_12_chair_vote_counts_like_any_other_and_casts_only_on_tie() -> None:
    # The chair's vote is counted: good 2, excellent 2 (with the chair's) tie, and the
    # chair's grade decides the tie.
    assert decide({"chair": E, "m1": G, "m2": G, "m3": E, "m4": S}, chair="chair") is E
    # With a majority the chair's vote is one vote among the others.
    assert decide({"chair": S, "m1": G, "m2": G, "m3": G}, chair="chair") is G
    # A tie the chair's grade is not part of stays undecided.
    assert decide({"chair": S, "m1": E, "m2": E, "m3": G, "m4": G}, chair="chair") is None


def _vote(s: DefenseSession, now: float, student: str, grades: dict[str, Grade]) -> None:
    for member, grade in grades.items():
        s.handle(ev.CastVote(now=now, actor=member, student=student, grade=grade))


def test_7_13_results_need_recording() -> None:
    s, now = closed_sitting()
    _vote(s, now, "s1", {"chair": E, "m1": E, "m2": E, "m3": G, "m4": G, "m5": E})
    # Good 3 (the chair's among them), satisfactory 2, excellent 1: good.
    _vote(s, now, "s2", {"chair": G, "m1": S, "m2": S, "m3": G, "m4": G, "m5": E})
    drain(s)
    s.handle(ev.AnnounceResults(now=now + MIN, actor="sec"))
    effects = drain(s)
    assert effects[0] == StartRecording()
    assert {e.person for e in effects if isinstance(e, AdmitFromLobby)} == {"s1", "s2", "sup", "rev"}
    assert s.phase is Phase.RESULTS
    assert s.results is None
    with pytest.raises(ForbiddenAction, match=r"clause 7\.13"):
        s.handle(ev.CloseSitting(now=now + MIN, actor="chair"))
    s.handle(ev.RecordingStarted(now=now + MIN + 1))
    expected = (("s1", E), ("s2", G))
    assert PublishResults(expected) in drain(s)
    assert s.results == expected
    s.handle(ev.CloseSitting(now=now + 2 * MIN, actor="chair"))
    assert StopRecording() in drain(s)
    assert s.phase is Phase.CLOSED


def test_7_12_results_wait_for_every_present_member() -> None:
    s, now = closed_sitting()
    _vote(s, now, "s1", {"chair": E, "m1": E, "m2": E, "m3": G, "m4": G, "m5": E})
    _vote(s, now, "s2", {"chair": G, "m1": S})
    with pytest.raises(ForbiddenAction, match=r"m2, m3, m4, m5 did not vote for s2 \(clause 7\.12\)"):
        s.handle(ev.AnnounceResults(now=now + MIN, actor="sec"))
    assert s.phase is Phase.CLOSED_SITTING
