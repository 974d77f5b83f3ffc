"""Appeals (section 8): deadlines in working days, the appeal sitting, the repeat."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest

from orchestrator import events as ev
from orchestrator.appeal_phases import (
    APPEAL_TRANSITIONS,
    EveryoneNamed,
    Trigger,
    next_appeal_phase,
)
from orchestrator.appeal_session import AppealPhase, AppealSession
from orchestrator.appeals import (
    AppealRefused,
    Decision,
    Defense,
    check_filing,
    check_repeat_date,
    check_schedule,
    decision_delivery,
    filing_deadline,
)
from orchestrator.effects import AppealDecided, Broadcast, StartRecording, StopRecording
from orchestrator.errors import ForbiddenAction, NotAllowedForRole
from orchestrator.model import DefenseDay, Person, Role, StudentStatus
from orchestrator.session import DefenseSession
from orchestrator.workdays import WorkCalendar

from .orchestrator_helpers import COMMISSION, MIN, START, appeal_day, drain, join, on_file

TZ = "Europe/Moscow"
MSK = zoneinfo.ZoneInfo(TZ)
# 2026-06-11 is a Thursday; 12 June (Friday) is Russia Day, a public holiday.
CAL = WorkCalendar(holidays=frozenset({datetime.date(2026, 6, 12)}))


def at(day: int, hour: int, minute: int = 0) -> float:
    return datetime.datetime(2026, 6, day, hour, minute, tzinfo=MSK).timestamp()


def test_8_2_deadline_is_the_end_of_the_next_working_day_over_weekend_and_holiday() -> None:
    # Results on Thursday: Friday is a holiday, then the weekend: Monday 15th.
    assert filing_deadline(at(11, 16), TZ, CAL) == at(16, 0)
    # Results on Monday: Tuesday.
    assert filing_deadline(at(15, 16), TZ, CAL) == at(17, 0)
    # Without the holiday, Thursday's results are appealed by the end of Friday.
    assert filing_deadline(at(11, 16), TZ, WorkCalendar()) == at(13, 0)


def test_8_2_late_appeal_refused_with_the_deadline() -> None:
    defense = Defense(results_at=at(11, 16), timezone=TZ, repeat=False)
    assert check_filing(defense, at(15, 23, 59), CAL, already_filed=False) == at(16, 0)
    with pytest.raises(AppealRefused, match=r"was 2026-06-16 00:00 .*\(clause 8\.2\)"):
        check_filing(defense, at(16, 0), CAL, already_filed=False)


def test_8_1_one_appeal_after_the_results_only() -> None:
    with pytest.raises(AppealRefused, match=r"not been announced \(clause 8\.2\)"):
        check_filing(Defense(None, TZ, False), at(11, 16), CAL, already_filed=False)
    with pytest.raises(AppealRefused, match=r"already been filed \(clause 8\.1\)"):
        check_filing(Defense(at(11, 16), TZ, False), at(11, 17), CAL, already_filed=True)


def test_8_12_no_appeal_against_a_repeated_defense() -> None:
    with pytest.raises(AppealRefused, match=r"repeated defense is not accepted \(clause 8\.12\)"):
        check_filing(Defense(at(11, 16), TZ, repeat=True), at(11, 17), CAL, already_filed=False)


def test_8_4_hearing_within_two_working_days_and_8_5_invited_a_day_before() -> None:
    filed = at(11, 18)  # Thursday; Friday holiday, weekend: Monday and Tuesday
    check_schedule(filed, at(16, 10), now=at(11, 18), timezone=TZ, calendar=CAL, decided=False)
    with pytest.raises(AppealRefused, match=r"by 2026-06-17 00:00.*\(clause 8\.4\)"):
        check_schedule(filed, at(17, 10), now=at(11, 18), timezone=TZ, calendar=CAL,
                       decided=False)
    with pytest.raises(AppealRefused, match=r"less than a day away.*\(clause 8\.5\)"):
        check_schedule(filed, at(16, 10), now=at(15, 12), timezone=TZ, calendar=CAL,
                       decided=False)


def test_8_11_decision_reaches_the_student_the_next_working_day() -> None:
    assert decision_delivery(at(11, 15), TZ, CAL) == at(15, 0)


def test_8_8_repeat_before_the_end_of_studies() -> None:
    end = datetime.date(2026, 6, 30)
    check_repeat_date(at(25, 10), at(16, 12), end, TZ)
    with pytest.raises(AppealRefused, match=r"end of studies, 2026-06-30 \(clause 8\.8\)"):
        check_repeat_date(datetime.datetime(2026, 7, 1, 10, tzinfo=MSK).timestamp(),
                          at(16, 12), end, TZ)


# -- the appeal sitting ---------------------------------------------------------------

def test_8_7_the_sitting_opens_only_with_the_recording_on() -> None:
    s = AppealSession(appeal_day())
    with pytest.raises(ForbiddenAction, match=r"recording on first \(clause 8\.7\)"):
        s.handle(ev.OpenAppealSitting(now=START, actor="ac"))
    assert s.phase is AppealPhase.WAITING
    with pytest.raises(NotAllowedForRole):
        s.handle(ev.SetRecording(now=START, actor="chair", on=True))
    s.handle(ev.SetRecording(now=START, actor="ac", on=True))
    assert StartRecording() in drain(s)
    s.handle(ev.RecordingStarted(now=START + 1))
    s.handle(ev.OpenAppealSitting(now=START + 2, actor="ac"))
    assert s.snapshot().phase is AppealPhase.NAMING


def test_8_7_names_said_aloud_before_the_decision_and_8_6_without_the_student() -> None:
    s = AppealSession(appeal_day())
    s.handle(ev.ParticipantJoined(now=START, actor="ac"))
    s.handle(ev.RecordingStarted(now=START))
    s.handle(ev.OpenAppealSitting(now=START, actor="ac"))
    assert s.snapshot().to_name == ("s1", "ac", "am1", "am2")
    s.handle(ev.NameAnnounced(now=START + 1, actor="ac", person="s1"))
    with pytest.raises(ForbiddenAction, match="Appeal Chair, Appeal Member 1, Appeal Member 2"):
        s.handle(ev.DecideAppeal(now=START + 2, actor="ac", decision="upheld", reasoning="x"))
    for person in ("ac", "am1", "am2"):
        s.handle(ev.NameAnnounced(now=START + 3, actor="ac", person=person))
    assert s.phase is AppealPhase.HEARING  # the student never joined (8.6)
    with pytest.raises(ForbiddenAction, match="'rejected' or 'upheld'"):
        s.handle(ev.DecideAppeal(now=START + 4, actor="ac", decision="maybe", reasoning="x"))
    with pytest.raises(NotAllowedForRole):
        s.handle(ev.DecideAppeal(now=START + 4, actor="am1", decision="upheld", reasoning="x"))
    with pytest.raises(ForbiddenAction, match=r"recorded until the decision \(clause 8\.10\)"):
        s.handle(ev.SetRecording(now=START + 4, actor="ac", on=False))
    s.handle(ev.DecideAppeal(now=START + 5, actor="ac", decision="upheld",
                             reasoning="identity was not established on the recording"))
    assert s.snapshot().decision is Decision.UPHELD
    s.handle(ev.CloseAppealSitting(now=START + 6, actor="ac"))
    assert StopRecording() in drain(s)
    assert s.snapshot().phase is AppealPhase.CLOSED


def test_the_appeal_sitting_refuses_defense_commands() -> None:
    s = AppealSession(appeal_day())
    with pytest.raises(ForbiddenAction, match="no place in an appeal sitting"):
        s.handle(ev.NextPhase(now=START, actor="ac"))


def test_8_8_the_decision_is_an_effect_the_host_carries_out() -> None:
    s = appeal_in(AppealPhase.HEARING)
    with pytest.raises(ForbiddenAction, match=r"needs its reasoning \(clause 8\.9\)"):
        s.handle(ev.DecideAppeal(now=START + 9, actor="ac", decision="rejected", reasoning=" "))
    assert drain(s) == []
    s.handle(ev.DecideAppeal(now=START + 10, actor="ac", decision="rejected",
                             reasoning=" the procedure was followed "))
    effects = drain(s)
    assert effects[0] == AppealDecided(Decision.REJECTED, START + 10)
    assert isinstance(effects[-1], Broadcast) and effects[-1].snapshot == s.snapshot()
    assert s.snapshot().reasoning == "the procedure was followed"
    s.handle(ev.CloseAppealSitting(now=START + 11, actor="ac"))
    assert not any(isinstance(e, AppealDecided) for e in drain(s))


# -- the appeal sitting's phase table (appeal_phases.py) -------------------------------

#: The chair's steps through a sitting, the student absent (8.6).
SITTING: tuple[ev.Event, ...] = (
    ev.SetRecording(now=START, actor="ac", on=True),
    ev.RecordingStarted(now=START + 1),
    ev.OpenAppealSitting(now=START + 2, actor="ac"),
    *(ev.NameAnnounced(now=START + 3, actor="ac", person=p) for p in ("s1", "ac", "am1", "am2")),
    ev.DecideAppeal(now=START + 4, actor="ac", decision="upheld", reasoning="r"),
    ev.CloseAppealSitting(now=START + 5, actor="ac"),
)


def appeal_in(phase: AppealPhase) -> AppealSession:
    """An appeal sitting walked through `SITTING` until it reaches `phase`."""
    s = AppealSession(appeal_day())
    for event in SITTING:
        if s.phase is phase:
            break
        s.handle(event)
    assert s.phase is phase
    drain(s)
    return s


def test_the_sitting_moves_through_its_table_only() -> None:
    s = AppealSession(appeal_day())
    seen = [s.phase]
    for event in SITTING:
        s.handle(event)
        if s.phase is not seen[-1]:
            seen.append(s.phase)
    assert seen == [AppealPhase.WAITING, AppealPhase.NAMING, AppealPhase.HEARING,
                    AppealPhase.DECIDED, AppealPhase.CLOSED]
    assert set(APPEAL_TRANSITIONS.values()) == set(seen[1:])


@pytest.mark.parametrize(("phase", "trigger", "following"), [
    (AppealPhase.WAITING, ev.OpenAppealSitting, AppealPhase.NAMING),
    (AppealPhase.NAMING, EveryoneNamed, AppealPhase.HEARING),
    (AppealPhase.NAMING, ev.NameAnnounced, AppealPhase.NAMING),
    (AppealPhase.HEARING, ev.DecideAppeal, AppealPhase.DECIDED),
    (AppealPhase.DECIDED, ev.CloseAppealSitting, AppealPhase.CLOSED),
    *((phase, ev.SetRecording, phase) for phase in AppealPhase),
    *((phase, ev.ParticipantJoined, phase) for phase in AppealPhase),
    (AppealPhase.CLOSED, ev.RecordingStopped, AppealPhase.CLOSED),
])
def test_legal_transitions(phase: AppealPhase, trigger: Trigger,
                           following: AppealPhase) -> None:
    assert next_appeal_phase(phase, trigger) is following


DECIDE = ev.DecideAppeal(now=START + 9, actor="ac", decision="upheld", reasoning="r")
ILLEGAL: tuple[tuple[AppealPhase, ev.Event, str], ...] = (
    (AppealPhase.WAITING, ev.NameAnnounced(now=START + 9, actor="ac", person="s1"),
     "cannot announce a name in phase WAITING"),
    (AppealPhase.WAITING, DECIDE, "cannot decide the appeal in phase WAITING"),
    (AppealPhase.NAMING, ev.OpenAppealSitting(now=START + 9, actor="ac"),
     "cannot open the sitting in phase NAMING"),
    (AppealPhase.NAMING, ev.CloseAppealSitting(now=START + 9, actor="ac"),
     "cannot close the sitting in phase NAMING"),
    (AppealPhase.NAMING, DECIDE, "cannot decide before naming aloud: Student One, Appeal Chair"),
    (AppealPhase.HEARING, ev.NameAnnounced(now=START + 9, actor="ac", person="s1"),
     "cannot announce a name in phase HEARING"),
    (AppealPhase.HEARING, ev.CloseAppealSitting(now=START + 9, actor="ac"),
     "cannot close the sitting in phase HEARING"),
    (AppealPhase.DECIDED, DECIDE, "cannot decide the appeal in phase DECIDED"),
    (AppealPhase.CLOSED, ev.OpenAppealSitting(now=START + 9, actor="ac"),
     "cannot open the sitting in phase CLOSED"),
    (AppealPhase.CLOSED, ev.CloseAppealSitting(now=START + 9, actor="ac"),
     "cannot close the sitting in phase CLOSED"),
)


@pytest.mark.parametrize(("phase", "event", "message"), ILLEGAL,
                         ids=lambda v: v.name if isinstance(v, AppealPhase) else None)
def test_an_illegal_event_raises_and_changes_nothing(phase: AppealPhase, event: ev.Event,
                                                     message: str) -> None:
    s = appeal_in(phase)
    if phase is AppealPhase.NAMING:  # some names said: a refusal keeps them
        s.handle(ev.NameAnnounced(now=START + 8, actor="ac", person="am2"))
        drain(s)
    before = s.snapshot()
    with pytest.raises(ForbiddenAction, match=rf"{message}.*\(clause 8\.7\)"):
        s.handle(event)
    assert s.snapshot() == before and s.phase is phase
    assert drain(s) == []


def test_the_table_refuses_what_it_does_not_list() -> None:
    with pytest.raises(ForbiddenAction, match=r"cannot CastVote in phase HEARING"):
        next_appeal_phase(AppealPhase.HEARING, ev.CastVote)
    with pytest.raises(ForbiddenAction, match=r"cannot EveryoneNamed in phase HEARING"):
        next_appeal_phase(AppealPhase.HEARING, EveryoneNamed)


# -- the repeated defense ----------------------------------------------------------------

def test_8_8_repeated_defense_needs_an_appeal_commission_member() -> None:
    people = (
        Person("chair", "Chair", Role.CHAIR),
        *(Person(m, m, Role.MEMBER) for m in COMMISSION[1:]),
        Person("sec", "Secretary", Role.SECRETARY),
        Person("am1", "Appeal Member", Role.APPEAL_MEMBER),
        Person("s1", "Student One", Role.STUDENT),
    )
    s = DefenseSession(DefenseDay(people=people, scheduled_start=START, repeat=True))
    for event in on_file("s1", START - MIN):
        s.handle(event)
    join(s, START - MIN, *COMMISSION, "sec", "s1")
    s.handle(ev.OpenSitting(now=START, actor="sec"))
    s.handle(ev.RecordingStarted(now=START + 1))
    s.handle(ev.IdentityDecided(now=START + 2, actor="sec", student="s1", accepted=True))
    s.handle(ev.AnnounceLimits(now=START + 3, actor="sec"))
    with pytest.raises(ForbiddenAction, match=r"appeal commission present \(clause 8\.8\)"):
        s.handle(ev.StartDefense(now=START + 4, actor="sec", student="s1"))
    join(s, START + 5, "am1")
    s.handle(ev.StartDefense(now=START + 6, actor="sec", student="s1"))
    assert s.status("s1") is StudentStatus.DEFENDING
