"""Model-based test of the defense procedure core: no state it can reach is a dead end.

A hypothesis state machine drives a small day with anything people and networks
do: anyone joins or leaves, the clock jumps, anyone sends any command with any
arguments, members vote any grade, and the procedure also moves on (one step of
the `finish` policy) so that deep states are reached. After every step two things
must hold:

- a command is either applied or refused with the core's own refusal
  (`OrchestratorError`); nothing else is ever raised;
- from the state reached, `finish` takes a copy of the day to CLOSED using only
  commands the people with the right may give (from their page, whether or not
  their media is connected), the recorder's confirmations and the passing of
  time. Nobody who left is assumed to come back: a day must end even when a
  student or members are gone for good (clauses 7.8, 7.9).

The appeal sitting gets the same treatment (`AppealSittingMachine`): whatever was
said, decided or switched, the appeal chair can still take it to its close.

Run on the code before issue 13, the defense machine found the three dead ends
the rules audit reported: the commission short of quorum for good (nothing could
move the day, 7.8), a student who left after the opening (never absent, 7.9), and
a 2:2:1 vote with the chair in the 1 (no result and no new round, 7.12).
"""

from __future__ import annotations

import copy
import typing

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from orchestrator import events as ev
from orchestrator.documents import NEEDED_TO_DEFEND, DocumentKind
from orchestrator.effects import StartRecording, StopRecording
from orchestrator.errors import OrchestratorError
from orchestrator.model import DefenseDay, Grade, Person, Phase, Role, StudentStatus
from orchestrator.appeal_session import AppealPhase, AppealSession
from orchestrator.session import DefenseSession

from .orchestrator_helpers import appeal_day

START = 100_000.0
VOTERS = ("chair", "m1", "m2", "m3", "m4")
STUDENTS = ("s1", "s2")
PEOPLE = (*VOTERS, "sec", *STUDENTS, "sup")
#: The longest a finished day may take, in steps of `finish`.
MAX_STEPS = 400


def small_day() -> DefenseDay:
    return DefenseDay(people=(
        Person("chair", "Chair", Role.CHAIR),
        *(Person(m, m.upper(), Role.MEMBER) for m in VOTERS[1:]),
        Person("sec", "Secretary", Role.SECRETARY),
        *(Person(s, s.upper(), Role.STUDENT) for s in STUDENTS),
        Person("sup", "Supervisor", Role.SUPERVISOR),
    ), scheduled_start=START)


def recorder(s: DefenseSession | AppealSession, now: float) -> None:
    """Carry out the effects; the recorder confirms what it is asked to do."""
    while (effect := s.next_effect()) is not None:
        if isinstance(effect, StartRecording):
            s.handle(ev.RecordingStarted(now=now))
        elif isinstance(effect, StopRecording):
            s.handle(ev.RecordingStopped(now=now))


def progress_commands(s: DefenseSession, now: float) -> list[ev.Event]:
    """What the chair and the secretary try next to move the day on, in order."""
    statuses = {student: s.status(student) for student in s.queue}
    out: list[ev.Event] = [
        ev.OpenSitting(now=now, actor="sec"),
        ev.SetRecording(now=now, actor="sec", on=True),
    ]
    out += [ev.IdentityDecided(now=now, actor="sec", student=x, accepted=True)
            for x in s.queue if statuses[x] is StudentStatus.WAITING]
    out.append(ev.AnnounceLimits(now=now, actor="chair"))
    out += [ev.StartDefense(now=now, actor="chair", student=x)
            for x in s.queue if statuses[x] is StudentStatus.IDENTIFIED]
    out.append(ev.NextPhase(now=now, actor="chair"))
    out += moving_commands(s, now)
    out.append(ev.StartClosedSitting(now=now, actor="sec"))
    if s.return_at is None:
        out.append(ev.TellReturnTime(now=now, actor="sec", return_at=now + 600))
    out += [ev.CastVote(now=now, actor=v, student=x, grade=Grade.GOOD)
            for x in s.queue if statuses[x] is StudentStatus.DEFENDED
            for v in VOTERS if v not in s.votes(x)]
    out += new_round_commands(s, now)
    out.append(ev.AnnounceResults(now=now, actor="sec"))
    out.append(ev.CloseSitting(now=now, actor="chair"))
    return out


def moving_commands(s: DefenseSession, now: float) -> list[ev.Event]:
    """The chair's ways out of a failure (clause 7.8)."""
    out: list[ev.Event] = []
    if s.current_student is not None:
        out.append(ev.MoveDefense(now=now, actor="chair", student=s.current_student,
                                  failure_description="the link failed",
                                  new_date=now + 86_400))
    out.append(ev.MoveRestOfDay(now=now, actor="chair", failure_description="no quorum",
                                new_date=now + 86_400))
    return out


def new_round_commands(s: DefenseSession, now: float) -> list[ev.Event]:
    """The commission's way out of an undecided vote (clause 7.12)."""
    return [ev.NewVoteRound(now=now, actor="chair", student=x) for x in s.queue]


def finish(s: DefenseSession, now: float) -> tuple[bool, str]:
    """Drive `s` to CLOSED; (False, why) where no allowed command or deadline helps."""
    for _ in range(MAX_STEPS):
        recorder(s, now)
        if s.phase is Phase.CLOSED:
            return True, ""
        if not step(s, now):
            due = s.next_deadline()
            if due is None:
                snap = s.snapshot()
                return False, (f"stuck in {s.phase.name}: statuses "
                               f"{dict(snap.statuses)}, present {sorted(snap.present)}, "
                               f"paused {snap.paused}, votes "
                               f"{ {x: s.votes(x) for x in s.queue} }")
            now = max(now, due)
            s.handle_deadline(now)
        now += 1
    return False, f"no end after {MAX_STEPS} steps, in {s.phase.name}"


def step(s: DefenseSession, now: float) -> bool:
    """Apply the first of the progress commands the core accepts."""
    for command in progress_commands(s, now):
        try:
            s.handle(command)
        except OrchestratorError:
            continue
        return True
    return False


class DefenseDayMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = DefenseSession(small_day())
        self.now = START - 600
        for student in STUDENTS:
            self.s.handle(ev.ConsentOnFile(now=self.now, student=student))
            for kind in NEEDED_TO_DEFEND:
                self.s.handle(ev.DocumentOnFile(now=self.now, student=student, kind=kind))
        for person in PEOPLE:
            self.s.handle(ev.ParticipantJoined(now=self.now, actor=person))

    def apply(self, event: ev.Event) -> None:
        try:
            self.s.handle(event)
        except OrchestratorError:
            pass
        recorder(self.s, self.now)

    @rule(person=st.sampled_from(PEOPLE), joined=st.booleans())
    def presence(self, person: str, joined: bool) -> None:
        kind = ev.ParticipantJoined if joined else ev.ParticipantLeft
        self.apply(kind(now=self.now, actor=person))

    @rule(seconds=st.sampled_from([1.0, 59.0, 300.0, 901.0, 1801.0, 7200.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.s.handle_deadline(self.now)
        recorder(self.s, self.now)

    @rule(steps=st.integers(1, 12))
    def procedure_moves_on(self, steps: int) -> None:
        for _ in range(steps):
            self.now += 1
            step(self.s, self.now)
            recorder(self.s, self.now)

    @rule(voter=st.sampled_from(VOTERS), student=st.sampled_from(STUDENTS),
          grade=st.sampled_from(Grade))
    def vote(self, voter: str, student: str, grade: Grade) -> None:
        self.apply(ev.CastVote(now=self.now, actor=voter, student=student, grade=grade))

    @rule(student=st.sampled_from(STUDENTS),
          grades=st.lists(st.sampled_from(Grade), min_size=len(VOTERS),
                          max_size=len(VOTERS)))
    def everyone_votes(self, student: str, grades: list[Grade]) -> None:
        for voter, grade in zip(VOTERS, grades):
            self.apply(ev.CastVote(now=self.now, actor=voter, student=student, grade=grade))

    @rule(data=st.data())
    def any_command(self, data: st.DataObject) -> None:
        self.apply(data.draw(any_event(self.now)))

    @invariant()
    def the_day_can_end(self) -> None:
        ok, why = finish(copy.deepcopy(self.s), self.now)
        assert ok, why


def any_event(now: float) -> st.SearchStrategy[ev.Event]:
    """Any command of the defense core, from anyone, about anyone."""
    someone = st.sampled_from((*PEOPLE, "nobody"))
    values: dict[object, st.SearchStrategy[typing.Any]] = {
        str: someone, bool: st.booleans(), Grade: st.sampled_from(Grade),
        DocumentKind: st.sampled_from(DocumentKind),
        float: st.sampled_from([now - 60, now, now + 60, now + 86_400 * 3]),
        tuple[str, ...]: st.permutations(STUDENTS).map(tuple),
    }
    commands = [cls for cls in vars(ev).values()
                if isinstance(cls, type) and issubclass(cls, ev.Event)
                and "actor" in cls.__dataclass_fields__
                and cls.__module__ == ev.__name__
                and cls not in APPEAL_EVENTS]

    def build(cls: type[ev.Event]) -> st.SearchStrategy[ev.Event]:
        hints = typing.get_type_hints(cls)
        fields = {name: values.get(hint, someone) for name, hint in hints.items()
                  if name != "now"}
        return st.builds(cls, now=st.just(now), **fields)

    return st.one_of([build(cls) for cls in commands])


APPEAL_EVENTS = {ev.OpenAppealSitting, ev.NameAnnounced, ev.DecideAppeal,
                 ev.CloseAppealSitting}

TestDefenseDay = DefenseDayMachine.TestCase
TestDefenseDay.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])


# -- the appeal sitting (section 8) ---------------------------------------------------

APPEAL_PEOPLE = ("ac", "am1", "am2", "chair", "s1")


def appeal_commands(s: AppealSession, now: float) -> list[ev.Event]:
    """What the appeal chair tries next, in order; nobody need be connected (8.6)."""
    return [
        ev.SetRecording(now=now, actor="ac", on=True),
        ev.OpenAppealSitting(now=now, actor="ac"),
        *(ev.NameAnnounced(now=now, actor="ac", person=p) for p in s.snapshot().to_name),
        ev.DecideAppeal(now=now, actor="ac", decision="rejected", reasoning="no breach"),
        ev.CloseAppealSitting(now=now, actor="ac"),
    ]


def appeal_step(s: AppealSession, now: float) -> bool:
    for command in appeal_commands(s, now):
        try:
            s.handle(command)
        except OrchestratorError:
            continue
        return True
    return False


def finish_appeal(s: AppealSession, now: float) -> tuple[bool, str]:
    for _ in range(MAX_STEPS):
        recorder(s, now)
        if s.phase is AppealPhase.CLOSED:
            return True, ""
        if not appeal_step(s, now):
            return False, f"stuck in {s.phase.name}: {s.snapshot()}"
        now += 1
    return False, f"no end after {MAX_STEPS} steps, in {s.phase.name}"


class AppealSittingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = AppealSession(appeal_day())
        self.now = START

    def apply(self, event: ev.Event) -> None:
        try:
            self.s.handle(event)
        except OrchestratorError:
            pass
        recorder(self.s, self.now)

    @rule(person=st.sampled_from(APPEAL_PEOPLE), joined=st.booleans())
    def presence(self, person: str, joined: bool) -> None:
        kind = ev.ParticipantJoined if joined else ev.ParticipantLeft
        self.apply(kind(now=self.now, actor=person))

    @rule(steps=st.integers(1, 4))
    def sitting_moves_on(self, steps: int) -> None:
        for _ in range(steps):
            self.now += 1
            appeal_step(self.s, self.now)
            recorder(self.s, self.now)

    @rule(command=st.sampled_from(sorted(APPEAL_EVENTS | {ev.SetRecording},
                                         key=lambda c: c.__name__)),
          actor=st.sampled_from((*APPEAL_PEOPLE, "nobody")),
          word=st.sampled_from(("rejected", "upheld", "maybe", "", *APPEAL_PEOPLE)),
          on=st.booleans())
    def any_command(self, command: type[ev.Event], actor: str, word: str, on: bool) -> None:
        fields: dict[str, typing.Any] = {"now": self.now, "actor": actor}
        for name in typing.get_type_hints(command):
            if name in ("person", "decision", "reasoning"):
                fields[name] = word
            elif name == "on":
                fields[name] = on
        self.apply(command(**fields))

    @invariant()
    def the_sitting_can_end(self) -> None:
        ok, why = finish_appeal(copy.deepcopy(self.s), self.now)
        assert ok, why


TestAppealSitting = AppealSittingMachine.TestCase
TestAppealSitting.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
