"""The handler tables agree with the phase tables (Rule 1 of phases.py and
appeal_phases.py), and an event a core has no rule for is refused and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from orchestrator import events as ev
from orchestrator.appeal_phases import APPEAL_STAYS, APPEAL_TRANSITIONS, EveryoneNamed
from orchestrator.appeal_session import AppealSession
from orchestrator.codec import EVENT_TYPES
from orchestrator.errors import ForbiddenAction
from orchestrator.handlers import HandlerTable, on
from orchestrator.phases import STAYS, TRANSITIONS
from orchestrator.session import DefenseSession

from .orchestrator_helpers import START, appeal_day, drain, make_day, opened

APPEAL_EVENTS = (ev.OpenAppealSitting, ev.NameAnnounced, ev.DecideAppeal,
                 ev.CloseAppealSitting)


@dataclass(frozen=True, slots=True)
class Unheard(ev.Event):
    """An event no core has a rule for."""

    actor: str


def test_the_defense_handles_every_event_its_phase_table_names() -> None:
    named = {kind for _, kind in TRANSITIONS} | set(STAYS)
    assert DefenseSession(make_day()).event_types == named
    assert not named & set(APPEAL_EVENTS)


def test_the_appeal_handles_every_event_its_phase_table_names() -> None:
    named = {kind for _, kind in APPEAL_TRANSITIONS if kind is not EveryoneNamed}
    named |= {kind for kind in APPEAL_STAYS if issubclass(kind, ev.Event)}
    assert AppealSession(appeal_day()).event_types == named


def test_the_state_triggered_transition_is_no_event() -> None:
    # It is never journaled: replaying the NameAnnounced that completed the list
    # fires it again.
    assert not issubclass(EveryoneNamed, ev.Event)
    assert EveryoneNamed.__name__ not in EVENT_TYPES


@pytest.mark.parametrize(
    "event",
    [
        Unheard(now=START + 60, actor="sec"),
        ev.OpenAppealSitting(now=START + 60, actor="sec"),
        ev.NameAnnounced(now=START + 60, actor="sec", person="s1"),
        ev.DecideAppeal(now=START + 60, actor="sec", decision="upheld", reasoning="r"),
        ev.CloseAppealSitting(now=START + 60, actor="sec"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_defense_refuses_an_event_it_has_no_rule_for(event: ev.Event) -> None:
    s = opened(students_present=False)
    before, deadline = s.snapshot(), s.next_deadline()
    with pytest.raises(ForbiddenAction,
                       match=rf"cannot {type(event).__name__} in phase IDENTIFICATION"):
        s.handle(event)
    assert s.snapshot() == before and s.next_deadline() == deadline
    assert drain(s) == []


def test_the_appeal_refuses_an_event_it_has_no_rule_for() -> None:
    s = AppealSession(appeal_day())
    before = s.snapshot()
    with pytest.raises(ForbiddenAction, match=r"Unheard has no place in an appeal sitting"):
        s.handle(Unheard(now=START, actor="ac"))
    assert s.snapshot() == before and drain(s) == []


def test_a_handler_table_has_one_handler_per_event_class() -> None:
    def handler(event: ev.NextPhase) -> None:
        pass

    with pytest.raises(ValueError, match="two handlers for NextPhase"):
        HandlerTable(on(ev.NextPhase, handler), on(ev.NextPhase, handler))
    with pytest.raises(LookupError, match="no handler for CloseSitting"):
        HandlerTable(on(ev.NextPhase, handler)).dispatch(ev.CloseSitting(now=0, actor="chair"))
