"""Rights of each role, and illegal events that must change nothing."""

from __future__ import annotations

import pytest

from orchestrator import events as ev
from orchestrator.errors import ForbiddenAction, NotAllowedForRole, OrchestratorError, UnknownPerson
from orchestrator.model import Grade, Phase
from orchestrator.session import DefenseSession

from .orchestrator_helpers import MIN, START, announced, closed_sitting, drain, make_day


def test_student_cannot_vote() -> None:
    s, now = closed_sitting()
    with pytest.raises(NotAllowedForRole, match="student"):
        s.handle(ev.CastVote(now=now, actor="s1", student="s1", grade=Grade.EXCELLENT))


def test_secretary_cannot_vote() -> None:
    s, now = closed_sitting()
    with pytest.raises(NotAllowedForRole, match="secretary"):
        s.handle(ev.CastVote(now=now, actor="sec", student="s1", grade=Grade.EXCELLENT))


def test_student_cannot_move_phases() -> None:
    s = announced()
    s.handle(ev.StartDefense(now=START + 6 * MIN, actor="sec", student="s1"))
    with pytest.raises(NotAllowedForRole):
        s.handle(ev.NextPhase(now=START + 7 * MIN, actor="s1"))
    with pytest.raises(NotAllowedForRole):
        s.handle(ev.NextPhase(now=START + 7 * MIN, actor="m1"))
    assert s.phase is Phase.TALK


@pytest.mark.parametrize("actor", ["s1", "m1", "chair", "sup"])
def test_only_secretary_controls_recording(actor: str) -> None:
    s = DefenseSession(make_day())
    with pytest.raises(NotAllowedForRole):
        s.handle(ev.OpenSitting(now=START, actor=actor))
    assert s.phase is Phase.WAITING


def test_only_secretary_reorders_queue() -> None:
    s = DefenseSession(make_day())
    with pytest.raises(NotAllowedForRole):
        s.handle(ev.ReorderQueue(now=START - 60 * MIN, actor="chair", order=("s2", "s1")))


def test_7_8_only_chair_moves_a_defense() -> None:
    s = announced()
    s.handle(ev.StartDefense(now=START + 6 * MIN, actor="sec", student="s1"))
    with pytest.raises(NotAllowedForRole):
        s.handle(ev.MoveDefense(now=START + 30 * MIN, actor="sec", student="s1",
                                failure_description="x", new_date=START + 86_400))


def test_unknown_person_is_refused() -> None:
    s = DefenseSession(make_day())
    with pytest.raises(UnknownPerson):
        s.handle(ev.ParticipantJoined(now=START, actor="intruder"))
    assert s.present == frozenset()


def test_errors_share_one_root() -> None:
    assert issubclass(ForbiddenAction, OrchestratorError)
    assert issubclass(NotAllowedForRole, OrchestratorError)
    assert issubclass(UnknownPerson, OrchestratorError)


def test_illegal_event_leaves_state_unchanged() -> None:
    s = announced()
    s.handle(ev.StartDefense(now=START + 6 * MIN, actor="sec", student="s1"))
    drain(s)
    before = s.snapshot()
    deadline = s.next_deadline()
    illegal: list[ev.Event] = [
        ev.StartClosedSitting(now=START + 7 * MIN, actor="sec"),
        ev.CastVote(now=START + 7 * MIN, actor="m1", student="s1", grade=Grade.GOOD),
        ev.MoveDefense(now=START + 7 * MIN, actor="chair", student="s1", failure_description="x",
                       new_date=START + 86_400),
        ev.StartDefense(now=START + 7 * MIN, actor="sec", student="s2"),
        ev.ReorderQueue(now=START + 7 * MIN, actor="sec", order=("s2", "s1")),
        ev.NextPhase(now=START + 7 * MIN, actor="s2"),
        ev.AnnounceResults(now=START + 7 * MIN, actor="sec"),
    ]
    for event in illegal:
        with pytest.raises(OrchestratorError):
            s.handle(event)
        assert s.snapshot() == before, event
        assert s.next_deadline() == deadline
        assert s.next_effect() is None
