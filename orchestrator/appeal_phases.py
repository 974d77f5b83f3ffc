"""The phase machine of an appeal sitting (clauses 8.6-8.10).

Theory of operation
-------------------

The appeal commission sits once, on one appeal. The sitting moves in one direction
only:

    WAITING -OpenAppealSitting-> NAMING -EveryoneNamed-> HEARING
    -DecideAppeal-> DECIDED -CloseAppealSitting-> CLOSED

The rules are those of a defense day (phases.py):

Rule 1: `APPEAL_TRANSITIONS` is the only place where the phase changes. A trigger
whose (phase, type) pair is in it moves the phase; an event whose type lists the
current phase in `APPEAL_STAYS` is legal and keeps the phase; anything else is
illegal.

Rule 2: an illegal event raises and changes nothing. The session checks that the
event belongs in an appeal sitting at all, then the right (`CHAIR_COMMANDS`), then
this table, then the guards of the rule (recording on, a reasoned decision), and
only then applies the event.

Rule 3: presence and recorder confirmations are facts, legal in every phase. So is
the chair's `SetRecording`; its guards say when the recording may go off (8.10).

Rule 4: one transition is triggered by the state, not by an event (h11 calls these
state-triggered transitions): once the last name has been said aloud (8.7), NAMING
moves on to HEARING. Its trigger is `EveryoneNamed`, which the session fires as
soon as nobody is left to name; only the `NameAnnounced` that completes the list
can bring that about. It is not an event and is never journaled: replaying that
`NameAnnounced` fires it again.
"""

from __future__ import annotations

from . import events as ev
from .appeal_model import AppealPhase
from .errors import ForbiddenAction


class EveryoneNamed:
    """The trigger of rule 4: every name on the list has been said aloud."""


Trigger = type[ev.Event] | type[EveryoneNamed]

_ALL = frozenset(AppealPhase)

APPEAL_TRANSITIONS: dict[tuple[AppealPhase, Trigger], AppealPhase] = {
    (AppealPhase.WAITING, ev.OpenAppealSitting): AppealPhase.NAMING,
    (AppealPhase.NAMING, EveryoneNamed): AppealPhase.HEARING,
    (AppealPhase.HEARING, ev.DecideAppeal): AppealPhase.DECIDED,
    (AppealPhase.DECIDED, ev.CloseAppealSitting): AppealPhase.CLOSED,
}

APPEAL_STAYS: dict[Trigger, frozenset[AppealPhase]] = {
    ev.ParticipantJoined: _ALL,
    ev.ParticipantLeft: _ALL,
    ev.RecordingStarted: _ALL,
    ev.RecordingStopped: _ALL,
    ev.RecordingFailed: _ALL,
    ev.SetRecording: _ALL,
    ev.NameAnnounced: frozenset({AppealPhase.NAMING}),
}

#: The commands of the sitting; only the chair of the appeal commission gives them.
CHAIR_COMMANDS: frozenset[type[ev.Event]] = frozenset({
    ev.OpenAppealSitting, ev.NameAnnounced, ev.DecideAppeal, ev.CloseAppealSitting,
    ev.SetRecording,
})

#: What each phase-bound command does, for error messages.
APPEAL_ACTIONS: dict[Trigger, str] = {
    ev.OpenAppealSitting: "open the sitting",
    ev.NameAnnounced: "announce a name",
    ev.DecideAppeal: "decide the appeal",
    ev.CloseAppealSitting: "close the sitting",
}


def next_appeal_phase(phase: AppealPhase, trigger: Trigger) -> AppealPhase:
    """The phase after `trigger`, or raise `ForbiddenAction` if `phase` forbids it."""
    following = APPEAL_TRANSITIONS.get((phase, trigger))
    if following is not None:
        return following
    if phase in APPEAL_STAYS.get(trigger, frozenset()):
        return phase
    action = APPEAL_ACTIONS.get(trigger, trigger.__name__)
    raise ForbiddenAction(f"cannot {action} in phase {phase.name}", "8.7")
