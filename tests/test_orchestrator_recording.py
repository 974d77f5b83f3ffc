"""Recording rules (clauses 7.5, 7.11-7.13), questions (7.14) and the return time (7.7)."""

from __future__ import annotations

import pytest

from orchestrator import events as ev
from orchestrator.effects import Broadcast, StartRecording, StopRecording
from orchestrator.errors import ForbiddenAction, NotAllowedForRole
from orchestrator.model import Phase, StudentStatus
from orchestrator.session import DefenseSession

from .orchestrator_helpers import (
    MIN,
    START,
    announced,
    closed_sitting,
    defend,
    drain,
    join,
    make_day,
    opened,
)


@pytest.mark.parametrize("actor", ["s1", "m1", "chair", "sup", "rev"])
@pytest.mark.parametrize("on", [True, False])
def test_7_5_only_the_secretary_switches_recording(actor: str, on: bool) -> None:
    s = DefenseSession(make_day())
    with pytest.raises(NotAllowedForRole, match="SetRecording"):
        s.handle(ev.SetRecording(now=START, actor=actor, on=on))
    assert drain(s) == []


def test_7_5_secretary_turns_recording_on_before_the_procedure() -> None:
    s = DefenseSession(make_day())
    s.handle(ev.SetRecording(now=START - MIN, actor="sec", on=True))
    assert drain(s) == [StartRecording()]
    s.handle(ev.RecordingStarted(now=START - MIN + 1))
    with pytest.raises(ForbiddenAction, match=r"it is on \(clause 7\.5\)"):
        s.handle(ev.SetRecording(now=START - MIN + 2, actor="sec", on=True))
    s.handle(ev.SetRecording(now=START - MIN + 3, actor="sec", on=False))
    assert drain(s)[-1] == StopRecording()


@pytest.mark.parametrize("phase_steps", [0, 1, 3, 6])
def test_7_11_recording_cannot_be_turned_off_during_the_procedure(phase_steps: int) -> None:
    s = announced()
    now = START + 6 * MIN
    s.handle(ev.StartDefense(now=now, actor="sec", student="s1"))
    for _ in range(phase_steps):
        now += MIN
        s.handle(ev.NextPhase(now=now, actor="sec"))
    drain(s)
    phase = s.phase
    with pytest.raises(ForbiddenAction, match=r"whole procedure is recorded \(clause 7\.11\)"):
        s.handle(ev.SetRecording(now=now + 1, actor="sec", on=False))
    assert s.phase is phase and s.recording and drain(s) == []


def test_7_5_identification_refused_while_recording_is_off() -> None:
    s = opened()
    s.handle(ev.RecordingStopped(now=START + MIN))  # the recorder failed
    with pytest.raises(ForbiddenAction, match=r"recording is off.*\(clause 7\.5\)"):
        s.handle(ev.IdentityDecided(now=START + 2 * MIN, actor="sec", student="s1", accepted=True))
    s.handle(ev.SetRecording(now=START + 3 * MIN, actor="sec", on=True))
    assert drain(s)[-1] == StartRecording()
    s.handle(ev.RecordingStarted(now=START + 3 * MIN + 1))
    s.handle(ev.IdentityDecided(now=START + 4 * MIN, actor="sec", student="s1", accepted=True))
    assert s.status("s1") is StudentStatus.IDENTIFIED


def test_7_11_phases_wait_for_a_failed_recording() -> None:
    s = announced()
    s.handle(ev.StartDefense(now=START + 6 * MIN, actor="sec", student="s1"))
    s.handle(ev.RecordingStopped(now=START + 7 * MIN))
    with pytest.raises(ForbiddenAction, match=r"recording is off.*\(clause 7\.11\)"):
        s.handle(ev.NextPhase(now=START + 8 * MIN, actor="sec"))
    assert s.phase is Phase.TALK


def test_7_11_defense_refused_while_recording_is_off() -> None:
    s = announced()
    s.handle(ev.RecordingStopped(now=START + 6 * MIN))
    with pytest.raises(ForbiddenAction, match=r"recording is off.*\(clause 7\.11\)"):
        s.handle(ev.StartDefense(now=START + 7 * MIN, actor="sec", student="s1"))
    assert s.status("s1") is StudentStatus.IDENTIFIED


def test_7_12_recording_cannot_be_turned_on_in_the_closed_sitting() -> None:
    s, now = closed_sitting()
    with pytest.raises(ForbiddenAction, match=r"not recorded \(clause 7\.12\)"):
        s.handle(ev.SetRecording(now=now, actor="sec", on=True))
    assert not s.recording and drain(s) == []


def test_7_14_questions_are_kept_for_the_current_student() -> None:
    s = announced()
    s.handle(ev.StartDefense(now=START + 6 * MIN, actor="sec", student="s1"))
    s.handle(ev.NextPhase(now=START + 16 * MIN, actor="sec"))
    s.handle(ev.RecordQuestion(now=START + 17 * MIN, actor="sec", student="s1",
                               text="  Why this method?  "))
    assert s.questions("s1") == ((START + 17 * MIN, "Why this method?"),)
    with pytest.raises(ForbiddenAction, match="s2: not defending now"):
        s.handle(ev.RecordQuestion(now=START + 18 * MIN, actor="sec", student="s2", text="?"))
    with pytest.raises(ForbiddenAction, match="empty question"):
        s.handle(ev.RecordQuestion(now=START + 18 * MIN, actor="sec", student="s1", text=" "))
    with pytest.raises(NotAllowedForRole):
        s.handle(ev.RecordQuestion(now=START + 18 * MIN, actor="m1", student="s1", text="?"))
    assert len(s.questions("s1")) == 1


def test_7_7_students_are_told_when_to_come_back_before_the_closed_sitting() -> None:
    s = announced()
    now = defend(s, "s1", START + 6 * MIN)
    with pytest.raises(ForbiddenAction, match=r"s2 pending \(clause 7\.7\)"):
        s.handle(ev.TellReturnTime(now=now, actor="sec", return_at=now + 30 * MIN))
    now = defend(s, "s2", now)
    with pytest.raises(ForbiddenAction, match=r"come back for the results first \(clause 7\.7\)"):
        s.handle(ev.StartClosedSitting(now=now, actor="sec"))
    with pytest.raises(ForbiddenAction, match="has passed"):
        s.handle(ev.TellReturnTime(now=now, actor="sec", return_at=now - 1))
    s.handle(ev.TellReturnTime(now=now, actor="sec", return_at=now + 30 * MIN))
    assert s.snapshot().return_at == now + 30 * MIN
    s.handle(ev.StartClosedSitting(now=now + 1, actor="sec"))
    assert s.phase is Phase.CLOSED_SITTING


def test_6_6_no_identification_or_defense_without_consent() -> None:
    s = DefenseSession(make_day())
    join(s, START - MIN, "chair", "m1", "m2", "m3", "m4", "m5", "sec", "s1", "s2")
    s.handle(ev.ConsentOnFile(now=START - MIN, student="s2"))
    s.handle(ev.OpenSitting(now=START, actor="sec"))
    s.handle(ev.RecordingStarted(now=START + 1))
    with pytest.raises(ForbiddenAction, match=r"s1: no consent .* \(clause 6\.6\)"):
        s.handle(ev.IdentityDecided(now=START + 2, actor="sec", student="s1", accepted=True))
    assert s.status("s1") is StudentStatus.WAITING
    s.handle(ev.ConsentOnFile(now=START + 3, student="s1"))
    s.handle(ev.IdentityDecided(now=START + 4, actor="sec", student="s1", accepted=True))
    assert s.status("s1") is StudentStatus.IDENTIFIED


def test_every_visible_change_is_broadcast_once() -> None:
    """A recording confirmed, someone joining: pages learn it without asking."""
    s = DefenseSession(make_day())
    s.handle(ev.ParticipantJoined(now=START, actor="m1"))
    [only] = drain(s)
    assert isinstance(only, Broadcast) and "m1" in only.snapshot.present
    s.handle(ev.SetRecording(now=START, actor="sec", on=True))
    assert drain(s) == [StartRecording()]  # nothing visible changed yet
    s.handle(ev.RecordingStarted(now=START + 1))
    broadcasts = [e for e in drain(s) if isinstance(e, Broadcast)]
    assert len(broadcasts) == 1 and broadcasts[0].snapshot.recording
    s.handle(ev.OpenSitting(now=START + 2, actor="sec"))
    assert len([e for e in drain(s) if isinstance(e, Broadcast)]) == 1  # not twice
