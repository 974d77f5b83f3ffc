"""Inputs of the defense procedure: typed events, each stamped with `now` (seconds).

`actor` is the person id of whoever acts. Presence comes from the media layer and
recording confirmations from the recorder; everything else is a command from a
person in the room.
"""

from __future__ import annotations

from dataclasses import dataclass

from .documents import DocumentKind
from .model import Grade


@dataclass(frozen=True, slots=True)
class Event:
    now: float


@dataclass(frozen=True, slots=True)
class ParticipantJoined(Event):
    actor: str


@dataclass(frozen=True, slots=True)
class ParticipantLeft(Event):
    actor: str


@dataclass(frozen=True, slots=True)
class RecordingStarted(Event):
    """The recorder confirms that the recording runs."""


@dataclass(frozen=True, slots=True)
class RecordingStopped(Event):
    """The recorder confirms that the recording has stopped."""


@dataclass(frozen=True, slots=True)
class RecordingFailed(Event):
    """The recording broke or could not start (a write error, too little free disk
    space): it is off, as after `RecordingStopped`, until it is turned on again
    (clause 7.11). `reason` says what failed, in words."""

    reason: str


@dataclass(frozen=True, slots=True)
class ConsentOnFile(Event):
    """The student's consent to personal-data processing is on file (clause 6.6)."""

    student: str


@dataclass(frozen=True, slots=True)
class DocumentOnFile(Event):
    """A document of the student's is on file (B1, B2; clause 7.9 for the proof of
    a valid reason)."""

    student: str
    kind: DocumentKind


@dataclass(frozen=True, slots=True)
class WaiveDocuments(Event):
    """The chair lets a defense start without the required documents, saying why."""

    actor: str
    student: str
    reason: str


@dataclass(frozen=True, slots=True)
class SetInPerson(Event):
    """The secretary marks a commission member as attending in person, in the
    university room around one device, or no longer (clause 4.8)."""

    actor: str
    person: str
    in_person: bool


@dataclass(frozen=True, slots=True)
class OpenSitting(Event):
    actor: str


@dataclass(frozen=True, slots=True)
class IdentityDecided(Event):
    """The secretary's decision on a student's identity (clause 7.5); the automatic
    face check only advises, and its score never reaches the journal."""

    actor: str
    student: str
    accepted: bool
    comment: str = ""


@dataclass(frozen=True, slots=True)
class AnnounceLimits(Event):
    actor: str


@dataclass(frozen=True, slots=True)
class CallStudent(Event):
    """The secretary calls the student to their defense (starts the 'from_call' clock)."""

    actor: str
    student: str


@dataclass(frozen=True, slots=True)
class StartDefense(Event):
    actor: str
    student: str


@dataclass(frozen=True, slots=True)
class NextPhase(Event):
    actor: str


@dataclass(frozen=True, slots=True)
class ReorderQueue(Event):
    actor: str
    order: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RecordValidReason(Event):
    actor: str
    student: str
    reason: str


@dataclass(frozen=True, slots=True)
class MoveDefense(Event):
    """After a failure of more than the limit (clause 7.8) the chair moves the
    defense under way to `new_date`, within the attestation period."""

    actor: str
    student: str
    failure_description: str
    new_date: float


@dataclass(frozen=True, slots=True)
class MoveRestOfDay(Event):
    """After a failure of more than the limit (clause 7.8) the chair moves every
    defense not yet decided today to `new_date`."""

    actor: str
    failure_description: str
    new_date: float


@dataclass(frozen=True, slots=True)
class SetRecording(Event):
    """The secretary turns recording on or off (clauses 7.5, 7.11-7.13)."""

    actor: str
    on: bool


@dataclass(frozen=True, slots=True)
class RecordQuestion(Event):
    """The secretary types in a question asked of the current student (protocol, 7.14)."""

    actor: str
    student: str
    text: str


@dataclass(frozen=True, slots=True)
class TellReturnTime(Event):
    """After the group's defenses the students are told when to come back (clause 7.7)."""

    actor: str
    return_at: float


@dataclass(frozen=True, slots=True)
class StartClosedSitting(Event):
    actor: str


@dataclass(frozen=True, slots=True)
class CastVote(Event):
    """`actor` votes `grade` for `student`."""

    actor: str
    student: str
    grade: Grade


@dataclass(frozen=True, slots=True)
class RecordVote(Event):
    """The secretary records the open vote of `voter`, a member attending in person
    (clause 4.8)."""

    actor: str
    voter: str
    student: str
    grade: Grade


@dataclass(frozen=True, slots=True)
class NewVoteRound(Event):
    """The vote for `student` gave no simple majority and no tie the chair breaks:
    the commission discusses and votes again (clause 7.12)."""

    actor: str
    student: str


@dataclass(frozen=True, slots=True)
class AnnounceResults(Event):
    actor: str


@dataclass(frozen=True, slots=True)
class CloseSitting(Event):
    actor: str


# -- the appeal sitting (section 8; AppealSession) ----------------------------------


@dataclass(frozen=True, slots=True)
class OpenAppealSitting(Event):
    """The appeal chair opens the sitting; the recording must already run (8.7)."""

    actor: str


@dataclass(frozen=True, slots=True)
class NameAnnounced(Event):
    """The appeal chair has said `person`'s full name aloud (8.7)."""

    actor: str
    person: str


@dataclass(frozen=True, slots=True)
class DecideAppeal(Event):
    """The appeal commission's decision (8.8): "rejected" or "upheld"."""

    actor: str
    decision: str
    reasoning: str


@dataclass(frozen=True, slots=True)
class CloseAppealSitting(Event):
    actor: str
