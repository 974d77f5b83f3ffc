"""The ways out the procedure core gives where a day used to be stranded (issue 13):
new rounds of voting, absence after the opening, failures on any side, attendance in
the university room, the documents a defense needs and adjusted time."""

from __future__ import annotations

import pytest

from orchestrator import events as ev
from orchestrator.documents import DocumentKind
from orchestrator.effects import MarkAbsent, Notice, PublishResults, Reschedule
from orchestrator.errors import ForbiddenAction
from orchestrator.model import DefenseDay, Grade, Phase, Settings, StudentStatus
from orchestrator.session import DefenseSession

from .orchestrator_helpers import (
    MIN,
    START,
    announced,
    closed_sitting,
    drain,
    join,
    make_day,
    opened,
)

E, G, S, U = Grade.EXCELLENT, Grade.GOOD, Grade.SATISFACTORY, Grade.UNSATISFACTORY
DAY = 86_400.0
VOTERS = ("chair", "m1", "m2", "m3", "m4", "m5")


def _vote(s: DefenseSession, now: float, student: str, grades: dict[str, Grade]) -> None:
    for member, grade in grades.items():
        s.handle(ev.CastVote(now=now, actor=member, student=student, grade=grade))


def _results(s: DefenseSession, now: float) -> tuple[tuple[str, Grade], ...]:
    s.handle(ev.AnnounceResults(now=now, actor="sec"))
    drain(s)
    s.handle(ev.RecordingStarted(now=now + 1))
    published = [e for e in drain(s) if isinstance(e, PublishResults)]
    assert len(published) == 1
    return published[0].grades


# -- 7.12: simple majority, the chair's casting vote, new rounds ------------------------

def test_7_12_no_majority_leads_to_a_new_round_and_the_protocol_keeps_both() -> None:
    s, now = closed_sitting()
    _vote(s, now, "s1", dict.fromkeys(VOTERS, E))
    # 2:2:2 with the chair's grade among the tied: the chair's vote decides.
    _vote(s, now, "s2", {"chair": G, "m1": G, "m2": S, "m3": S, "m4": E, "m5": E})
    s2 = closed_sitting()[0]
    # 2:2:1 with the chair in the 1: undecided; results refused, a new round allowed.
    _vote(s2, now, "s1", dict.fromkeys(VOTERS, E))
    s2.handle(ev.ParticipantLeft(now=now, actor="m5"))
    _vote(s2, now, "s2", {"chair": U, "m1": G, "m2": G, "m3": S, "m4": S})
    with pytest.raises(ForbiddenAction, match=r"no majority.*new round \(clause 7\.12\)"):
        s2.handle(ev.AnnounceResults(now=now + 1, actor="sec"))
    with pytest.raises(ForbiddenAction, match="this round decided"):
        s2.handle(ev.NewVoteRound(now=now + 1, actor="chair", student="s1"))
    s2.handle(ev.NewVoteRound(now=now + 2, actor="chair", student="s2"))
    assert Notice("no majority for s2: round 2 of the vote", "7.12") in drain(s2)
    assert s2.snapshot().vote_rounds == (("s2", 2),)
    assert s2.votes("s2") == {}
    # A member may vote again in the new round.
    _vote(s2, now + 60, "s2", {"chair": G, "m1": G, "m2": G, "m3": S, "m4": S})
    assert s2.vote_rounds("s2") == (
        {"chair": U, "m1": G, "m2": G, "m3": S, "m4": S},
        {"chair": G, "m1": G, "m2": G, "m3": S, "m4": S},
    )
    assert _results(s2, now + 120) == (("s1", E), ("s2", G))
    assert _results(s, now + 120)[1] == ("s2", G)


def test_7_12_a_round_not_over_cannot_be_restarted() -> None:
    s, now = closed_sitting()
    _vote(s, now, "s1", {"chair": E, "m1": G})
    with pytest.raises(ForbiddenAction, match=r"not over, m2, m3, m4, m5 to vote"):
        s.handle(ev.NewVoteRound(now=now, actor="sec", student="s1"))


# -- 7.9: gone after the opening --------------------------------------------------------

def test_7_9_a_student_who_leaves_after_the_opening_is_marked_absent() -> None:
    s = announced()  # both students identified
    s.handle(ev.ParticipantLeft(now=START + 6 * MIN, actor="s1"))
    # s1, gone, no longer holds up s2.
    s.handle(ev.StartDefense(now=START + 7 * MIN, actor="sec", student="s2"))
    s.handle_deadline(START + 21 * MIN - 1)
    assert s.status("s1") is StudentStatus.IDENTIFIED
    s.handle_deadline(START + 21 * MIN)
    assert MarkAbsent("s1", "7.9") in drain(s)
    assert s.status("s1") is StudentStatus.ABSENT


def test_7_9_back_in_time_is_not_absent() -> None:
    s = opened()
    s.handle(ev.ParticipantLeft(now=START + 2 * MIN, actor="s2"))
    join(s, START + 16 * MIN, "s2")
    s.handle_deadline(START + 60 * MIN)
    assert s.status("s2") is StudentStatus.WAITING


# -- 7.8: a failure on any side --------------------------------------------------------

def test_7_8_the_commission_losing_quorum_lets_the_chair_move_the_rest_of_the_day() -> None:
    s = announced()
    t0 = START + 6 * MIN
    s.handle(ev.StartDefense(now=t0, actor="sec", student="s1"))
    for member in ("m3", "m4", "m5"):
        s.handle(ev.ParticipantLeft(now=t0 + MIN, actor=member))
    assert s.paused and s.snapshot().failure_since == t0 + MIN
    assert s.snapshot().failure.startswith("quorum lost (3 of 6 members, 4 needed)")
    with pytest.raises(ForbiddenAction, match=r"lasted 840 s, less than 900 s"):
        s.handle(ev.MoveRestOfDay(now=t0 + 15 * MIN, actor="chair",
                                  failure_description="members' links", new_date=t0 + DAY))
    s.handle_deadline(t0 + 16 * MIN)
    assert any(isinstance(e, Notice) and e.clause == "7.8" and "quorum lost" in e.text
               for e in drain(s))
    with pytest.raises(ForbiddenAction, match=r"it has passed"):
        s.handle(ev.MoveRestOfDay(now=t0 + 16 * MIN, actor="chair",
                                  failure_description="members' links", new_date=t0))
    s.handle(ev.MoveRestOfDay(now=t0 + 16 * MIN, actor="chair",
                              failure_description="members' links", new_date=t0 + DAY))
    effects = drain(s)
    assert Reschedule("s1", "members' links", "7.8", t0 + DAY) in effects
    assert Reschedule("s2", "members' links", "7.8", t0 + DAY) in effects
    assert s.phase is Phase.BETWEEN_DEFENSES
    assert s.snapshot().moved == (("s1", t0 + DAY), ("s2", t0 + DAY))
    assert s.moved("s1") == (t0 + DAY, "members' links")
    # The day goes on to its end with nobody left to grade.
    s.handle(ev.TellReturnTime(now=t0 + 17 * MIN, actor="sec", return_at=t0 + 18 * MIN))
    s.handle(ev.StartClosedSitting(now=t0 + 17 * MIN, actor="sec"))
    s.handle(ev.RecordingStopped(now=t0 + 17 * MIN))
    assert _results(s, t0 + 18 * MIN) == ()


def test_7_8_the_secretarys_link_failing_counts() -> None:
    s = announced()
    s.handle(ev.ParticipantLeft(now=START + 6 * MIN, actor="sec"))
    assert s.snapshot().failure == "the secretary is not connected"
    join(s, START + 10 * MIN, "sec")
    assert s.snapshot().failure_since is None


def test_7_8_the_new_date_stays_within_the_attestation_period() -> None:
    end = START + 10 * DAY
    s = announced(Settings(attestation_period_end=end))
    t0 = START + 6 * MIN
    s.handle(ev.StartDefense(now=t0, actor="sec", student="s1"))
    s.handle(ev.ParticipantLeft(now=t0, actor="s1"))
    s.handle_deadline(t0 + 15 * MIN)
    with pytest.raises(ForbiddenAction, match="after the end of the attestation period"):
        s.handle(ev.MoveDefense(now=t0 + 15 * MIN, actor="chair", student="s1",
                                failure_description="no video", new_date=end + 1))
    s.handle(ev.MoveDefense(now=t0 + 15 * MIN, actor="chair", student="s1",
                            failure_description="no video", new_date=end))
    assert s.status("s1") is StudentStatus.RESCHEDULED


# -- 4.8: members in the university room ------------------------------------------------

def test_4_8_members_in_the_room_count_for_quorum_and_their_votes_are_recorded() -> None:
    s, now = closed_sitting()
    for member in ("m3", "m4", "m5"):
        s.handle(ev.ParticipantLeft(now=now, actor=member))
    assert not s.quorum.reached
    with pytest.raises(ForbiddenAction, match="only the commission"):
        s.handle(ev.SetInPerson(now=now, actor="sec", person="s1", in_person=True))
    for member in ("m3", "m4"):
        s.handle(ev.SetInPerson(now=now, actor="sec", person=member, in_person=True))
    assert s.quorum.reached and s.in_person == {"m3", "m4"}
    with pytest.raises(ForbiddenAction, match=r"not marked as attending in person"):
        s.handle(ev.RecordVote(now=now, actor="sec", voter="m1", student="s1", grade=E))
    for student in ("s1", "s2"):
        _vote(s, now, student, {"chair": E, "m1": E, "m2": G})
        for member in ("m3", "m4"):
            s.handle(ev.RecordVote(now=now, actor="sec", voter=member, student=student,
                                   grade=E))
    assert s.votes("s1") == {"chair": E, "m1": E, "m2": G, "m3": E, "m4": E}
    assert _results(s, now + 60) == (("s1", E), ("s2", E))


# -- 7.3: documents, 4.3: adjusted time -------------------------------------------------

def _bare_day(extra: tuple[tuple[str, float], ...] = ()) -> DefenseSession:
    day = make_day()
    s = DefenseSession(DefenseDay(people=day.people, scheduled_start=START,
                                  extra_time_percent=extra))
    for student in ("s1", "s2"):
        s.handle(ev.ConsentOnFile(now=START - DAY, student=student))
    join(s, START - MIN, *VOTERS, "sec", "s1", "s2")
    s.handle(ev.OpenSitting(now=START, actor="sec"))
    s.handle(ev.RecordingStarted(now=START + 1))
    s.handle(ev.IdentityDecided(now=START + MIN, actor="sec", student="s1", accepted=True))
    s.handle(ev.AnnounceLimits(now=START + 2 * MIN, actor="chair"))
    return s


def test_7_3_no_defense_without_thesis_and_presentation_unless_the_chair_waives() -> None:
    s = _bare_day()
    s.handle(ev.DocumentOnFile(now=START, student="s1", kind=DocumentKind.THESIS))
    with pytest.raises(ForbiddenAction, match=r"presentation_pdf not on file.*clause 7\.3"):
        s.handle(ev.StartDefense(now=START + 3 * MIN, actor="chair", student="s1"))
    with pytest.raises(ForbiddenAction, match="say why"):
        s.handle(ev.WaiveDocuments(now=START + 3 * MIN, actor="chair", student="s1",
                                   reason=" "))
    s.handle(ev.WaiveDocuments(now=START + 3 * MIN, actor="chair", student="s1",
                               reason="shown from the student's screen"))
    s.handle(ev.StartDefense(now=START + 4 * MIN, actor="chair", student="s1"))
    assert s.documents_waived("s1") == "shown from the student's screen"


def test_4_3_adjusted_time_lengthens_the_limits_of_that_student_only() -> None:
    s = _bare_day(extra=(("s1", 50.0),))
    for kind in (DocumentKind.THESIS, DocumentKind.PRESENTATION_PDF):
        for student in ("s1", "s2"):
            s.handle(ev.DocumentOnFile(now=START, student=student, kind=kind))
    t0 = START + 3 * MIN
    s.handle(ev.StartDefense(now=t0, actor="chair", student="s1"))
    assert s.phase_ends_at == t0 + 15 * MIN
    assert s.defense_ends_at == t0 + 45 * MIN
    now = defend_rest(s, t0)
    s.handle(ev.IdentityDecided(now=now, actor="sec", student="s2", accepted=True))
    s.handle(ev.StartDefense(now=now, actor="chair", student="s2"))
    assert s.phase_ends_at == now + 10 * MIN
    assert s.defense_ends_at == now + 30 * MIN


def defend_rest(s: DefenseSession, now: float) -> float:
    for _ in range(6):
        now += MIN
        s.handle(ev.NextPhase(now=now, actor="chair"))
    return now

