"""Opening, queue, identification, phases, limits and quorum (clauses 7.2, 7.4-7.6)."""

from __future__ import annotations

import pytest

from orchestrator import events as ev
from orchestrator.effects import Broadcast, Notice, Overtime, StartRecording, Warn
from orchestrator.errors import ForbiddenAction
from orchestrator.model import Phase, Snapshot, StudentStatus
from orchestrator.session import DefenseSession

from .orchestrator_helpers import (
    COMMISSION,
    MIN,
    START,
    STUDENTS,
    announced,
    drain,
    join,
    make_day,
    opened,
)


def test_7_4_secretary_reorders_queue_before_lock() -> None:
    s = DefenseSession(make_day())
    s.handle(ev.ReorderQueue(now=START - 31 * MIN, actor="sec", order=("s2", "s1")))
    assert s.queue == ("s2", "s1")
    assert any(isinstance(e, Broadcast) for e in drain(s))


def test_7_4_queue_locks_30_min_before_start() -> None:
    s = DefenseSession(make_day())
    assert s.queue_locked_at == START - 30 * MIN
    with pytest.raises(ForbiddenAction, match=r"clause 7\.4"):
        s.handle(ev.ReorderQueue(now=START - 30 * MIN, actor="sec", order=("s2", "s1")))
    assert s.queue == STUDENTS


def test_7_4_reorder_must_keep_the_same_students() -> None:
    s = DefenseSession(make_day())
    with pytest.raises(ForbiddenAction, match="not the same students"):
        s.handle(ev.ReorderQueue(now=START - 60 * MIN, actor="sec", order=("s1",)))


def test_7_5_opening_starts_recording() -> None:
    s = DefenseSession(make_day())
    s.handle(ev.OpenSitting(now=START, actor="sec"))
    effects = drain(s)
    assert StartRecording() in effects
    assert s.phase is Phase.OPENING
    assert s.phase_started_at == START


def test_7_5_identification_needs_recording() -> None:
    s = DefenseSession(make_day())
    s.handle(ev.ConsentOnFile(now=START - MIN, student="s1"))
    join(s, START - MIN, *COMMISSION, "sec", "s1")
    s.handle(ev.OpenSitting(now=START, actor="sec"))
    with pytest.raises(ForbiddenAction, match=r"cannot identify a student in phase OPENING \(clause 7\.5\)"):
        s.handle(ev.IdentityDecided(now=START + 1, actor="sec", student="s1", accepted=True))
    s.handle(ev.RecordingStarted(now=START + 2))
    assert s.phase is Phase.IDENTIFICATION and s.recording
    s.handle(ev.IdentityDecided(now=START + 3, actor="sec", student="s1", accepted=True))
    assert s.status("s1") is StudentStatus.IDENTIFIED


def test_7_5_identification_in_queue_order() -> None:
    s = opened()
    with pytest.raises(ForbiddenAction, match="before s1"):
        s.handle(ev.IdentityDecided(now=START + MIN, actor="sec", student="s2", accepted=True))
    s.handle(ev.IdentityDecided(now=START + MIN, actor="sec", student="s1", accepted=False))
    assert s.status("s1") is StudentStatus.WAITING
    s.handle(ev.IdentityDecided(now=START + 2 * MIN, actor="sec", student="s1", accepted=True))
    s.handle(ev.IdentityDecided(now=START + 3 * MIN, actor="sec", student="s2", accepted=True))
    assert s.status("s2") is StudentStatus.IDENTIFIED


def test_7_5_late_student_does_not_block_identification() -> None:
    s = opened(students_present=False)
    join(s, START + MIN, "s2")
    s.handle(ev.IdentityDecided(now=START + 2 * MIN, actor="sec", student="s2", accepted=True))
    assert s.status("s2") is StudentStatus.IDENTIFIED


def test_7_5_defense_needs_identification() -> None:
    s = opened()
    s.handle(ev.IdentityDecided(now=START + MIN, actor="sec", student="s1", accepted=True))
    s.handle(ev.AnnounceLimits(now=START + 2 * MIN, actor="sec"))
    with pytest.raises(ForbiddenAction, match="not identified"):
        s.handle(ev.StartDefense(now=START + 3 * MIN, actor="sec", student="s2"))
    s.handle(ev.StartDefense(now=START + 3 * MIN, actor="sec", student="s1"))
    assert s.phase is Phase.TALK and s.current_student == "s1"


def test_7_5_defense_needs_announced_limits() -> None:
    s = opened()
    s.handle(ev.IdentityDecided(now=START + MIN, actor="sec", student="s1", accepted=True))
    with pytest.raises(ForbiddenAction, match="phase IDENTIFICATION"):
        s.handle(ev.StartDefense(now=START + 2 * MIN, actor="sec", student="s1"))
    s.handle(ev.AnnounceLimits(now=START + 2 * MIN, actor="chair"))
    assert Notice("time limits: talk 10 min, questions 15 min, defense 30 min", "7.5") in drain(s)
    assert s.phase is Phase.ANNOUNCEMENT


def test_7_4_defenses_in_queue_order() -> None:
    s = announced()
    with pytest.raises(ForbiddenAction, match=r"before s1 \(clause 7\.4\)"):
        s.handle(ev.StartDefense(now=START + 6 * MIN, actor="sec", student="s2"))


def test_7_6_phase_order() -> None:
    s = announced()
    now = START + 6 * MIN
    s.handle(ev.StartDefense(now=now, actor="sec", student="s1"))
    seen = [s.phase]
    for _ in range(6):
        now += MIN
        s.handle(ev.NextPhase(now=now, actor="chair"))
        seen.append(s.phase)
    assert seen == [
        Phase.TALK, Phase.QUESTIONS, Phase.SUPERVISOR, Phase.REVIEW,
        Phase.ANSWER, Phase.FINAL_WORD, Phase.BETWEEN_DEFENSES,
    ]
    assert s.status("s1") is StudentStatus.DEFENDED
    assert s.current_student is None
    assert s.phase_started_at == now


def test_7_5_limits_warn_and_flag_overtime() -> None:
    s = announced()
    t0 = START + 6 * MIN
    s.handle(ev.StartDefense(now=t0, actor="sec", student="s1"))
    drain(s)
    assert s.phase_ends_at == t0 + 10 * MIN
    assert s.defense_ends_at == t0 + 30 * MIN
    assert s.next_deadline() == t0 + 9 * MIN

    s.handle_deadline(t0 + 9 * MIN - 1)
    assert drain(s) == []
    s.handle_deadline(t0 + 9 * MIN)
    assert drain(s) == [Warn(Phase.TALK, 60.0)]
    assert s.next_deadline() == t0 + 10 * MIN

    s.handle_deadline(t0 + 10 * MIN)
    effects = drain(s)
    assert Overtime(Phase.TALK) in effects
    assert any(isinstance(e, Broadcast) and isinstance(e.snapshot, Snapshot)
               and e.snapshot.phase_overtime for e in effects)
    assert s.phase_overtime and s.phase is Phase.TALK
    assert s.next_deadline() == t0 + 29 * MIN

    s.handle(ev.NextPhase(now=t0 + 11 * MIN, actor="sec"))
    assert not s.phase_overtime
    assert s.phase_ends_at == t0 + 26 * MIN
    assert s.next_deadline() == t0 + 25 * MIN
    drain(s)
    s.handle_deadline(t0 + 30 * MIN)
    # Warnings whose limit has already passed are dropped; the overtime is not.
    timed = [e for e in drain(s) if isinstance(e, (Warn, Overtime))]
    assert timed == [Overtime(Phase.QUESTIONS), Overtime(None)]
    assert s.defense_overtime and s.phase_overtime
    assert s.next_deadline() is None


def test_7_2_no_defense_without_quorum() -> None:
    s = announced()
    # 6 voting members: 4 needed. The secretary does not count.
    for member in ("m3", "m4", "m5"):
        s.handle(ev.ParticipantLeft(now=START + 5 * MIN, actor=member))
    assert s.quorum.present == 3 and s.quorum.required == 4 and not s.quorum.reached
    with pytest.raises(ForbiddenAction, match=r"3 of 6 members present, 4 needed \(clause 7\.2\)"):
        s.handle(ev.StartDefense(now=START + 6 * MIN, actor="sec", student="s1"))
    join(s, START + 7 * MIN, "m3")
    s.handle(ev.StartDefense(now=START + 8 * MIN, actor="sec", student="s1"))
    assert s.phase is Phase.TALK


def test_7_2_losing_quorum_pauses_and_shifts_deadlines() -> None:
    s = announced()
    t0 = START + 6 * MIN
    s.handle(ev.StartDefense(now=t0, actor="sec", student="s1"))
    s.handle(ev.ParticipantLeft(now=t0 + MIN, actor="m5"))
    assert not s.paused
    drain(s)
    s.handle(ev.ParticipantLeft(now=t0 + 2 * MIN, actor="m4"))
    s.handle(ev.ParticipantLeft(now=t0 + 2 * MIN, actor="m3"))
    assert s.paused
    effects = drain(s)
    assert any(isinstance(e, Notice) and e.clause == "7.2" for e in effects)
    # The limits wait; only the failure clock of clause 7.8 runs.
    assert s.next_deadline() == t0 + 17 * MIN
    with pytest.raises(ForbiddenAction, match="paused"):
        s.handle(ev.NextPhase(now=t0 + 3 * MIN, actor="sec"))
    join(s, t0 + 7 * MIN, "m3")
    assert not s.paused
    assert s.pauses == ((t0 + 2 * MIN, t0 + 7 * MIN),)
    assert s.phase_ends_at == t0 + 15 * MIN
    assert s.defense_ends_at == t0 + 35 * MIN
    assert s.next_deadline() == t0 + 14 * MIN


def test_secretary_does_not_count_towards_quorum() -> None:
    s = DefenseSession(make_day())
    join(s, START, "sec", "chair", "m1", "m2")
    assert s.quorum.present == 3
