"""Absence and technical failures (clauses 7.8, 7.9)."""

from __future__ import annotations

import pytest

from orchestrator import events as ev
from orchestrator.documents import DocumentKind
from orchestrator.effects import Broadcast, MarkAbsent, Notice, Reschedule
from orchestrator.errors import ForbiddenAction
from orchestrator.model import AbsenceFrom, Phase, Settings, StudentStatus

from .orchestrator_helpers import MIN, START, announced, drain, join, opened

DAY = 86_400.0
PROOF = DocumentKind.ABSENCE_PROOF


def test_7_9_absent_after_15_min() -> None:
    s = opened(students_present=False)
    assert s.next_deadline() == START + 15 * MIN
    join(s, START + 10 * MIN, "s1")
    assert [type(e) for e in drain(s)] == [Broadcast]  # s1 present: everyone sees it
    s.handle_deadline(START + 15 * MIN - 1)
    assert drain(s) == []
    s.handle_deadline(START + 15 * MIN)
    effects = drain(s)
    assert MarkAbsent("s2", "7.9") in effects
    assert s.status("s2") is StudentStatus.ABSENT
    assert s.status("s1") is StudentStatus.WAITING
    assert s.next_deadline() is None


def test_7_9_valid_reason_reschedules_instead() -> None:
    s = opened(students_present=False)
    with pytest.raises(ForbiddenAction, match=r"proves it is not on file.*\(clause 7\.9\)"):
        s.handle(ev.RecordValidReason(now=START + 4 * MIN, actor="sec", student="s2",
                                      reason="hospital"))
    s.handle(ev.DocumentOnFile(now=START + 4 * MIN, student="s2", kind=PROOF))
    s.handle(ev.RecordValidReason(now=START + 5 * MIN, actor="sec", student="s2", reason="hospital"))
    assert Reschedule("s2", "hospital", "7.9") in drain(s)
    s.handle_deadline(START + 15 * MIN)
    effects = drain(s)
    assert MarkAbsent("s1", "7.9") in effects
    assert not any(isinstance(e, MarkAbsent) and e.student == "s2" for e in effects)
    assert s.status("s2") is StudentStatus.RESCHEDULED


def test_7_9_valid_reason_after_marked_absent() -> None:
    s = opened(students_present=False)
    s.handle_deadline(START + 15 * MIN)
    drain(s)
    s.handle(ev.DocumentOnFile(now=START + 19 * MIN, student="s1", kind=PROOF))
    drain(s)
    s.handle(ev.RecordValidReason(now=START + 20 * MIN, actor="chair", student="s1", reason="flood"))
    assert drain(s)[0] == Reschedule("s1", "flood", "7.9")
    assert s.status("s1") is StudentStatus.RESCHEDULED


def test_7_9_absence_counted_from_call() -> None:
    s = opened(Settings(absence_from=AbsenceFrom.CALL), students_present=False)
    assert s.next_deadline() is None
    join(s, START + MIN, "s1")
    s.handle(ev.IdentityDecided(now=START + 2 * MIN, actor="sec", student="s1", accepted=True))
    s.handle(ev.AnnounceLimits(now=START + 3 * MIN, actor="sec"))
    s.handle(ev.CallStudent(now=START + 40 * MIN, actor="sec", student="s2"))
    assert s.next_deadline() == START + 55 * MIN
    s.handle_deadline(START + 55 * MIN)
    assert MarkAbsent("s2", "7.9") in drain(s)


def test_7_9_absent_student_cannot_defend() -> None:
    s = opened(students_present=False)
    s.handle_deadline(START + 15 * MIN)
    join(s, START + 16 * MIN, "s1")
    with pytest.raises(ForbiddenAction, match="status is absent"):
        s.handle(ev.IdentityDecided(now=START + 17 * MIN, actor="sec", student="s1", accepted=True))


def test_7_8_move_defense_after_15_min_failure() -> None:
    s = announced()
    t0 = START + 6 * MIN
    s.handle(ev.StartDefense(now=t0, actor="sec", student="s1"))
    s.handle(ev.ParticipantLeft(now=t0 + 2 * MIN, actor="s1"))
    drain(s)
    assert s.next_deadline() == t0 + 9 * MIN  # talk warning comes first
    with pytest.raises(ForbiddenAction, match=r"less than 900 s \(clause 7\.8\)"):
        s.handle(ev.MoveDefense(now=t0 + 17 * MIN - 1, actor="chair", student="s1",
                                failure_description="no video", new_date=START + DAY))
    s.handle_deadline(t0 + 17 * MIN)
    assert any(isinstance(e, Notice) and e.clause == "7.8" for e in drain(s))
    s.handle(ev.MoveDefense(now=t0 + 17 * MIN, actor="chair", student="s1",
                            failure_description="no video", new_date=START + DAY))
    assert Reschedule("s1", "no video", "7.8", START + DAY) in drain(s)
    assert s.status("s1") is StudentStatus.RESCHEDULED
    assert s.phase is Phase.BETWEEN_DEFENSES and s.current_student is None


def test_7_8_reconnection_resets_the_failure_clock() -> None:
    s = announced()
    t0 = START + 6 * MIN
    s.handle(ev.StartDefense(now=t0, actor="sec", student="s1"))
    s.handle(ev.ParticipantLeft(now=t0 + MIN, actor="s1"))
    join(s, t0 + 5 * MIN, "s1")
    s.handle(ev.ParticipantLeft(now=t0 + 6 * MIN, actor="s1"))
    with pytest.raises(ForbiddenAction, match=r"clause 7\.8"):
        s.handle(ev.MoveDefense(now=t0 + 17 * MIN, actor="chair", student="s1",
                                failure_description="no audio", new_date=START + DAY))
    s.handle(ev.MoveDefense(now=t0 + 21 * MIN, actor="chair", student="s1",
                            failure_description="no audio", new_date=START + DAY))
    assert s.status("s1") is StudentStatus.RESCHEDULED


@pytest.mark.parametrize(("grace", "said"), [(20, "20 min"), (20.0, "20 min"), (15, "15 min"),
                                             (7.5, "7.5 min")])
def test_7_8_the_failure_notice_states_the_configured_grace(grace: float, said: str) -> None:
    # Journaled settings come back as floats: 20.0 still reads "20 min".
    s = announced(Settings(failure_grace_minutes=grace))
    t0 = START + 6 * MIN
    s.handle(ev.StartDefense(now=t0, actor="sec", student="s1"))
    s.handle(ev.ParticipantLeft(now=t0 + MIN, actor="s1"))
    drain(s)
    s.handle_deadline(t0 + MIN + grace * MIN - 1)
    assert not any(isinstance(e, Notice) and e.clause == "7.8" for e in drain(s))
    s.handle_deadline(t0 + MIN + grace * MIN)
    notices = [e for e in drain(s) if isinstance(e, Notice) and e.clause == "7.8"]
    assert notices == [Notice(f"the connection of s1 is lost for {said}: the chair may "
                              "move the defense or the rest of the day", "7.8")]
