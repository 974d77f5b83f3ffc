"""Shared builders for the orchestrator tests: a defense or appeal day, a session in a
given phase."""

from __future__ import annotations

from typing import Protocol

from orchestrator import events as ev
from orchestrator.documents import NEEDED_TO_DEFEND
from orchestrator.effects import Effect
from orchestrator.model import DefenseDay, Person, Role, Settings
from orchestrator.session import DefenseSession

START = 10_000.0
MIN = 60.0
COMMISSION = ("chair", "m1", "m2", "m3", "m4", "m5")
STUDENTS = ("s1", "s2")


def make_day() -> DefenseDay:
    people = (
        Person("chair", "Chair", Role.CHAIR),
        *(Person(m, m.upper(), Role.MEMBER) for m in COMMISSION[1:]),
        Person("sec", "Secretary", Role.SECRETARY),
        Person("s1", "Student One", Role.STUDENT),
        Person("s2", "Student Two", Role.STUDENT),
        Person("sup", "Supervisor", Role.SUPERVISOR),
        Person("rev", "Reviewer", Role.REVIEWER),
    )
    return DefenseDay(people=people, scheduled_start=START)


def appeal_day() -> DefenseDay:
    """An appeal sitting: the appeal commission, the commission's chair, the student."""
    return DefenseDay(people=(
        Person("ac", "Appeal Chair", Role.APPEAL_CHAIR),
        Person("am1", "Appeal Member 1", Role.APPEAL_MEMBER),
        Person("am2", "Appeal Member 2", Role.APPEAL_MEMBER),
        Person("chair", "Commission Chair", Role.CHAIR),
        Person("s1", "Student One", Role.STUDENT),
    ), scheduled_start=START)


def on_file(student: str, now: float = 0.0) -> list[ev.Event]:
    """What the server feeds for a student ready to defend: consent and documents."""
    return [ev.ConsentOnFile(now=now, student=student),
            *(ev.DocumentOnFile(now=now, student=student, kind=kind)
              for kind in NEEDED_TO_DEFEND)]


class Core(Protocol):
    """Either procedure core, as far as its effects go."""

    def next_effect(self) -> Effect | None: ...


def drain(session: Core) -> list[Effect]:
    out: list[Effect] = []
    while (effect := session.next_effect()) is not None:
        out.append(effect)
    return out


def join(session: DefenseSession, now: float, *people: str) -> None:
    for person in people:
        session.handle(ev.ParticipantJoined(now=now, actor=person))


def opened(settings: Settings | None = None, students_present: bool = True) -> DefenseSession:
    """A session in IDENTIFICATION at START, the commission present."""
    s = DefenseSession(make_day(), settings)
    for student in STUDENTS:
        for event in on_file(student, START - 60 * MIN):
            s.handle(event)
    join(s, START - 5 * MIN, *COMMISSION, "sec", "sup", "rev")
    if students_present:
        join(s, START - 5 * MIN, *STUDENTS)
    s.handle(ev.OpenSitting(now=START, actor="sec"))
    s.handle(ev.RecordingStarted(now=START + 1))
    drain(s)
    return s


def announced(settings: Settings | None = None) -> DefenseSession:
    """Both students identified and the limits announced, at START + 5 min."""
    s = opened(settings)
    for student in STUDENTS:
        s.handle(ev.IdentityDecided(now=START + 2 * MIN, actor="sec", student=student, accepted=True))
    s.handle(ev.AnnounceLimits(now=START + 5 * MIN, actor="chair"))
    drain(s)
    return s


def defend(s: DefenseSession, student: str, now: float) -> float:
    """Run a whole defense of `student` from `now`, one minute a phase; return the end."""
    s.handle(ev.StartDefense(now=now, actor="sec", student=student))
    for _ in range(6):
        now += MIN
        s.handle(ev.NextPhase(now=now, actor="sec"))
    drain(s)
    return now


def closed_sitting() -> tuple[DefenseSession, float]:
    """Both students defended, the closed sitting started and the recording stopped."""
    s = announced()
    now = defend(s, "s1", START + 6 * MIN)
    now = defend(s, "s2", now + MIN)
    now += MIN
    s.handle(ev.TellReturnTime(now=now, actor="sec", return_at=now + 30 * MIN))
    s.handle(ev.StartClosedSitting(now=now, actor="sec"))
    s.handle(ev.RecordingStopped(now=now + 1))
    drain(s)
    return s, now + 2
