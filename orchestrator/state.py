"""`DayState`: what a defense day holds besides its clocks, and the checks that read it.

One `DefenseSession` owns a `DayState` and is the only code that writes it; the
clocks (phase and defense start, pauses, grace periods) belong to the session's
`Timekeeper` (deadlines.py). Callers read both through the session's properties.

The lookups and `require_*` checks raise an `OrchestratorError` that names the
offending value (and the clause), and change nothing: a handler runs them first and
writes afterwards.
"""

from __future__ import annotations

from .documents import NEEDED_TO_DEFEND, DocumentKind
from .errors import ForbiddenAction, UnknownPerson
from .model import (
    APPEAL_ROLES,
    RESOLVED_STATUSES,
    DefenseDay,
    Grade,
    Person,
    Phase,
    StudentStatus,
)
from .quorum import Quorum, count_quorum


class DayState:
    """The phase, the queue, who is where, consent, votes and results of one day."""

    __slots__ = ("day", "phase", "queue", "status", "present", "in_person", "lobby",
                 "consent", "documents", "waived", "recording", "current", "votes",
                 "past_rounds", "results", "results_at", "return_at", "questions",
                 "moved", "failure", "recording_failure")

    def __init__(self, day: DefenseDay) -> None:
        self.day = day
        self.phase = Phase.WAITING
        self.queue: list[str] = list(day.students)
        self.status: dict[str, StudentStatus] = {s: StudentStatus.WAITING for s in self.queue}
        #: Who is connected with their own media.
        self.present: set[str] = set()
        #: Commission members attending in person around the room's device (4.8).
        self.in_person: set[str] = set()
        #: Who waits outside the closed sitting (clause 7.12).
        self.lobby: set[str] = set()
        #: Students whose consent to personal-data processing is on file (clause 6.6).
        self.consent: set[str] = set()
        #: student -> the kinds of document on file (B1, B2, 7.9).
        self.documents: dict[str, set[DocumentKind]] = {}
        #: student -> why the chair let the defense start without its documents.
        self.waived: dict[str, str] = {}
        #: Whether the recorder has confirmed that it records.
        self.recording = False
        #: The student whose defense is under way.
        self.current: str | None = None
        #: student -> voter -> grade (clause 7.12).
        self.votes: dict[str, dict[str, Grade]] = {}
        #: student -> the earlier rounds of its vote, which decided nothing (7.12).
        self.past_rounds: dict[str, list[dict[str, Grade]]] = {}
        #: The grades, once announced with the recording on (clause 7.13), and when.
        self.results: tuple[tuple[str, Grade], ...] | None = None
        self.results_at: float | None = None
        #: When the students were told to come back for the results (clause 7.7).
        self.return_at: float | None = None
        #: (student, time, text) of every question typed in (clause 7.14).
        self.questions: list[tuple[str, float, str]] = []
        #: student -> (new date, what failed) of a moved defense (clause 7.8).
        self.moved: dict[str, tuple[float, str]] = {}
        #: What stops the sitting now, in words; "" when nothing does (clause 7.8).
        self.failure = ""
        #: Why the recording broke, in words, until it runs again; "" when it did not.
        self.recording_failure = ""

    @property
    def attending(self) -> set[str]:
        """Who takes part: connected, or marked in the university room (4.8)."""
        return self.present | self.in_person

    @property
    def quorum(self) -> Quorum:
        return count_quorum(self.day.voting_members, self.attending)

    # -- lookups ------------------------------------------------------------------------

    def person(self, person_id: str) -> Person:
        person = self.day.person(person_id)
        if person is None:
            raise UnknownPerson(f"no person {person_id!r} on this defense day")
        return person

    def student(self, student: str) -> StudentStatus:
        """The status of `student`, who must be in the queue."""
        status = self.status.get(student)
        if status is None:
            raise UnknownPerson(f"{student!r} is not a student in the queue")
        return status

    # -- checks -------------------------------------------------------------------------

    def require_consent(self, student: str, action: str) -> None:
        if student not in self.consent:
            raise ForbiddenAction(
                f"cannot {action}: no consent to personal-data processing on file", "6.6"
            )

    def require_recording(self, action: str, clause: str) -> None:
        if not self.recording:
            raise ForbiddenAction(
                f"cannot {action}: the recording is off; the secretary turns it on first",
                clause,
            )

    def require_group_done(self, action: str) -> None:
        pending = [s for s in self.queue if self.status[s] not in RESOLVED_STATUSES]
        if pending:
            raise ForbiddenAction(
                f"cannot {action}: defenses of {', '.join(pending)} pending", "7.7"
            )

    def require_documents(self, student: str, action: str) -> None:
        if student in self.waived:
            return
        missing = [k.value for k in NEEDED_TO_DEFEND
                   if k not in self.documents.get(student, set())]
        if missing:
            raise ForbiddenAction(
                f"cannot {action}: {', '.join(missing)} not on file; upload them, or the "
                "chair lets the defense start without them and says why", "7.3")

    def require_appeal_witness(self, action: str) -> None:
        if self.day.repeat and not any(
                p.role in APPEAL_ROLES for p in self.day.people if p.person_id in self.attending):
            raise ForbiddenAction(
                f"cannot {action}: a repeated defense needs the chair or a member of the "
                "appeal commission present", "8.8")

    def require_quorum(self, action: str) -> None:
        q = self.quorum
        if not q.reached:
            raise ForbiddenAction(
                f"cannot {action}: {q.present} of {q.total} members present, "
                f"{q.required} needed",
                "7.2",
            )
