"""The phase machine of a defense day.

Theory of operation
-------------------

A defense day is one sitting of the commission with a group of students. It moves
through the phases in one direction only:

    WAITING -OpenSitting-> OPENING -RecordingStarted-> IDENTIFICATION
    -AnnounceLimits-> ANNOUNCEMENT -StartDefense-> TALK -NextPhase-> QUESTIONS
    -> SUPERVISOR -> REVIEW -> ANSWER -> FINAL_WORD -NextPhase-> BETWEEN_DEFENSES
    -StartDefense-> TALK ... BETWEEN_DEFENSES -StartClosedSitting-> CLOSED_SITTING
    -AnnounceResults-> RESULTS -CloseSitting-> CLOSED

A failure of more than the limit (clause 7.8) lets the chair move the defense under
way (`MoveDefense`) or every defense not yet decided (`MoveRestOfDay`); from a
defense phase both go to BETWEEN_DEFENSES, from elsewhere the phase stays, and the
day goes on to its end with the students it has left. An undecided vote starts a
new round (`NewVoteRound`) inside the closed sitting.

Rule 1: `TRANSITIONS` is the only place where the phase changes. An event whose
(phase, type) pair is in it moves the phase; an event whose type lists the current
phase in `STAYS` is legal and keeps the phase; anything else is illegal.

Rule 2: an illegal event raises (`ForbiddenAction`, or `NotAllowedForRole` when
the actor lacks the right) and changes nothing. The session checks the role, then
this table, then the guards of the rule (quorum, recording, queue order, ...), and
only then applies the event.

Rule 3: presence and recorder confirmations are facts, not commands: they are legal
in every phase.

Rule 4: time never moves the phase. Deadlines only warn, flag overtime, mark
students absent and open the right to move a failed defense; people decide the
rest.
"""

from __future__ import annotations

from .errors import ForbiddenAction
from .events import (
    AnnounceLimits,
    AnnounceResults,
    CallStudent,
    CastVote,
    CloseSitting,
    ConsentOnFile,
    DocumentOnFile,
    Event,
    IdentityDecided,
    MoveDefense,
    MoveRestOfDay,
    NewVoteRound,
    NextPhase,
    OpenSitting,
    ParticipantJoined,
    ParticipantLeft,
    RecordingFailed,
    RecordingStarted,
    RecordingStopped,
    RecordQuestion,
    RecordValidReason,
    RecordVote,
    ReorderQueue,
    SetInPerson,
    SetRecording,
    StartClosedSitting,
    TellReturnTime,
    StartDefense,
    WaiveDocuments,
)
from .model import Phase, Role

#: The phases of one student's defense, in the order of clause 7.6.
DEFENSE_PHASES: tuple[Phase, ...] = (
    Phase.TALK,
    Phase.QUESTIONS,
    Phase.SUPERVISOR,
    Phase.REVIEW,
    Phase.ANSWER,
    Phase.FINAL_WORD,
)

_ALL = frozenset(Phase)

TRANSITIONS: dict[tuple[Phase, type[Event]], Phase] = {
    (Phase.WAITING, OpenSitting): Phase.OPENING,
    (Phase.OPENING, RecordingStarted): Phase.IDENTIFICATION,
    (Phase.IDENTIFICATION, AnnounceLimits): Phase.ANNOUNCEMENT,
    (Phase.ANNOUNCEMENT, StartDefense): Phase.TALK,
    (Phase.BETWEEN_DEFENSES, StartDefense): Phase.TALK,
    **{
        (phase, NextPhase): following
        for phase, following in zip(
            DEFENSE_PHASES, DEFENSE_PHASES[1:] + (Phase.BETWEEN_DEFENSES,)
        )
    },
    **{(phase, MoveDefense): Phase.BETWEEN_DEFENSES for phase in DEFENSE_PHASES},
    **{(phase, MoveRestOfDay): Phase.BETWEEN_DEFENSES for phase in DEFENSE_PHASES},
    (Phase.ANNOUNCEMENT, StartClosedSitting): Phase.CLOSED_SITTING,
    (Phase.BETWEEN_DEFENSES, StartClosedSitting): Phase.CLOSED_SITTING,
    (Phase.CLOSED_SITTING, AnnounceResults): Phase.RESULTS,
    (Phase.RESULTS, CloseSitting): Phase.CLOSED,
}

_BEFORE_DEFENSES = frozenset(
    {Phase.WAITING, Phase.OPENING, Phase.IDENTIFICATION, Phase.ANNOUNCEMENT}
)

STAYS: dict[type[Event], frozenset[Phase]] = {
    ParticipantJoined: _ALL,
    ParticipantLeft: _ALL,
    RecordingStarted: _ALL,
    RecordingStopped: _ALL,
    RecordingFailed: _ALL,
    ConsentOnFile: _ALL,
    DocumentOnFile: _ALL,
    WaiveDocuments: _ALL - {Phase.CLOSED_SITTING, Phase.RESULTS, Phase.CLOSED},
    SetInPerson: _ALL - {Phase.CLOSED},
    MoveRestOfDay: frozenset({Phase.OPENING, Phase.IDENTIFICATION, Phase.ANNOUNCEMENT,
                              Phase.BETWEEN_DEFENSES, Phase.CLOSED_SITTING}),
    # Late students are identified when they come, still in queue order.
    IdentityDecided: frozenset(
        {Phase.IDENTIFICATION, Phase.ANNOUNCEMENT, Phase.BETWEEN_DEFENSES}
    ),
    CallStudent: frozenset({Phase.ANNOUNCEMENT, Phase.BETWEEN_DEFENSES}),
    # The queue also locks by time (clause 7.4); see DefenseSession.
    ReorderQueue: _BEFORE_DEFENSES,
    RecordValidReason: _ALL - {Phase.CLOSED_SITTING, Phase.RESULTS, Phase.CLOSED},
    CastVote: frozenset({Phase.CLOSED_SITTING}),
    RecordVote: frozenset({Phase.CLOSED_SITTING}),
    NewVoteRound: frozenset({Phase.CLOSED_SITTING}),
    # Which phases allow on or off is checked by DefenseSession (clauses 7.5-7.13).
    SetRecording: _ALL,
    RecordQuestion: frozenset(DEFENSE_PHASES),
    TellReturnTime: frozenset({Phase.ANNOUNCEMENT, Phase.BETWEEN_DEFENSES}),
}

#: Phases that must be on the recording (clauses 7.5, 7.11, 7.13): turning it off
#: is refused, and procedure steps in them wait until it runs.
RECORDED_PHASES = frozenset(
    {Phase.IDENTIFICATION, Phase.ANNOUNCEMENT, *DEFENSE_PHASES, Phase.BETWEEN_DEFENSES,
     Phase.RESULTS}
)

#: What each command does, for error messages, and the clause that orders it.
ACTIONS: dict[type[Event], tuple[str, str]] = {
    OpenSitting: ("open the sitting", "7.5"),
    RecordingStarted: ("confirm the recording", "7.5"),
    IdentityDecided: ("identify a student", "7.5"),
    AnnounceLimits: ("announce the time limits", "7.5"),
    CallStudent: ("call a student", "7.4"),
    StartDefense: ("start a defense", "7.5"),
    NextPhase: ("move to the next phase", "7.6"),
    ReorderQueue: ("reorder the queue", "7.4"),
    RecordValidReason: ("record a valid reason", "7.9"),
    MoveDefense: ("move a defense to another day", "7.8"),
    MoveRestOfDay: ("move the rest of the day to another day", "7.8"),
    WaiveDocuments: ("let a defense start without its documents", "7.3"),
    SetInPerson: ("mark attendance in person", "4.8"),
    RecordVote: ("record an in-person vote", "4.8"),
    NewVoteRound: ("start a new round of voting", "7.12"),
    StartClosedSitting: ("start the closed sitting", "7.7"),
    CastVote: ("start the vote", "7.12"),
    AnnounceResults: ("announce the results", "7.13"),
    CloseSitting: ("close the sitting", "7.13"),
    SetRecording: ("turn the recording on or off", "7.11"),
    RecordQuestion: ("record a question", "7.14"),
    TellReturnTime: ("tell the students when to come back", "7.7"),
}

#: Who may issue each command (clauses 7.1, 7.4, 7.5, 7.8, 7.12). Events missing
#: here are facts from the media layer or the recorder.
RIGHTS: dict[type[Event], frozenset[Role]] = {
    OpenSitting: frozenset({Role.SECRETARY}),
    IdentityDecided: frozenset({Role.SECRETARY}),
    AnnounceLimits: frozenset({Role.CHAIR, Role.SECRETARY}),
    CallStudent: frozenset({Role.CHAIR, Role.SECRETARY}),
    StartDefense: frozenset({Role.CHAIR, Role.SECRETARY}),
    NextPhase: frozenset({Role.CHAIR, Role.SECRETARY}),
    ReorderQueue: frozenset({Role.SECRETARY}),
    RecordValidReason: frozenset({Role.CHAIR, Role.SECRETARY}),
    MoveDefense: frozenset({Role.CHAIR}),
    MoveRestOfDay: frozenset({Role.CHAIR}),
    WaiveDocuments: frozenset({Role.CHAIR}),
    SetInPerson: frozenset({Role.SECRETARY}),
    RecordVote: frozenset({Role.SECRETARY}),
    NewVoteRound: frozenset({Role.CHAIR, Role.SECRETARY}),
    StartClosedSitting: frozenset({Role.SECRETARY}),
    CastVote: frozenset({Role.CHAIR, Role.MEMBER}),
    AnnounceResults: frozenset({Role.SECRETARY}),
    CloseSitting: frozenset({Role.CHAIR, Role.SECRETARY}),
    SetRecording: frozenset({Role.SECRETARY}),
    RecordQuestion: frozenset({Role.SECRETARY}),
    TellReturnTime: frozenset({Role.SECRETARY}),
}


def next_phase(phase: Phase, event: Event) -> Phase:
    """The phase after `event`, or raise `ForbiddenAction` if `phase` forbids it."""
    kind = type(event)
    following = TRANSITIONS.get((phase, kind))
    if following is not None:
        return following
    if phase in STAYS.get(kind, frozenset()):
        return phase
    action, clause = ACTIONS.get(kind, (kind.__name__, "7.5"))
    raise ForbiddenAction(f"cannot {action} in phase {phase.name}", clause)
