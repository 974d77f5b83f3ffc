"""The protocol (rules V5, V6): a whole day through the runner, then its protocol.

A real SQLite file, the day created through the roster, the procedure driven by a
`ProcedureRunner` with a fake clock (the only fake), real recording files. The
protocol is rebuilt from the journal and checked, rendered to HTML and PDF (the PDF
read back with pypdf). Synchronous tests at the end feed steps to the pure core.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zoneinfo
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pypdf
import pytest

from orchestrator import events as ev
from orchestrator.documents import DocumentKind
from orchestrator.effects import Effect
from orchestrator.model import DefenseDay, Grade, Phase, Role, Settings, StudentStatus
from orchestrator.protocol import (
    AbsenceKind,
    DayProtocol,
    OvertimeEntry,
    RecordingFile,
    SittingInfo,
    Span,
    StudentProtocol,
    approvers,
    build_protocol,
    canonical_json,
    content_hash,
)
from orchestrator.replay import ReplayError, Tick
from orchestrator.session import DefenseSession
from protocols.drafts import DAY, RecordingIndex, load_drafts
from protocols.render import (
    Endorsement,
    ProtocolRenderError,
    find_font,
    render_html,
    render_pdf,
)
from recordings.plan import day_folder
from server.config import Config
from server.procedure import ProcedureRunner
from storage.days import load_day
from storage.db import Database
from storage.invites import InviteStore
from storage.journal import Journal
from storage.roster import CommissionSpec, DaySpec, RosterStore, StudentSpec

from .orchestrator_helpers import make_day, on_file
from .timing import FakeClock

MIN = 60.0
ZONE = zoneinfo.ZoneInfo("Europe/Moscow")
START = datetime.datetime(2026, 6, 20, 10, 0, tzinfo=ZONE).timestamp()
SETTINGS = Config().procedure_settings()
EVIL_NAME = "Иванов Иван <script>alert(1)</script>"
QUESTIONS = ("Почему выбран метод <A> & B?", "Каковы ограничения модели?")
#: Short keys of the people of the day -> their names.
PEOPLE = {
    "chair": "Петров Пётр Петрович", "m1": "Сидорова Анна", "m2": "Кузнецов Иван",
    "m3": "Орлова Мария", "m4": "Белов Олег", "sec": "Смирнова Ольга",
    "s1": EVIL_NAME, "s2": "Васильева Елена", "sup": "Руководитель Роман",
}


@dataclass
class Day:
    """A created day: database ids (as the core's strings) and invite tokens by key."""

    day_id: int
    ids: dict[str, str]
    tokens: dict[str, str]
    effects: list[Effect] = field(default_factory=list)

    def key(self, person_id: str) -> str:
        return next(k for k, v in self.ids.items() if v == person_id)


async def create_day(db: Database, expires_at: float) -> Day:
    """The day through the roster (commission, two students) plus a supervisor's invite."""
    spec = DaySpec(
        title="Защиты ВКР, 09.03.01", date=datetime.date(2026, 6, 20),
        start=datetime.time(10, 0), timezone="Europe/Moscow", norm_control_required=False,
        commission=CommissionSpec(PEOPLE["chair"], tuple(PEOPLE[m] for m in
                                                         ("m1", "m2", "m3", "m4")), PEOPLE["sec"]),
        students=tuple(
            StudentSpec(PEOPLE[s], f"Тема работы {s}", "Руководитель Роман", "Рецензент Рита",
                        "Europe/Moscow", None, ()) for s in ("s1", "s2")),
    )
    created = await RosterStore(db).create_day(spec, expires_at=expires_at, now=START - 120 * MIN)
    keys = ["chair", "m1", "m2", "m3", "m4", "sec", "s1", "s2"]
    day = Day(created.day_id, {k: str(i.person_id) for k, i in zip(keys, created.invites)},
              {k: i.token for k, i in zip(keys, created.invites)})
    sup = await InviteStore(db).issue(day.day_id, Role.SUPERVISOR, PEOPLE["sup"], expires_at,
                                      now=START - 120 * MIN)
    day.ids["sup"], day.tokens["sup"] = str(sup.person_id), sup.token
    return day


async def start_runner(db: Database, day: Day, clock: FakeClock,
                       settings: Settings = SETTINGS) -> ProcedureRunner:
    loaded = await load_day(db, day.day_id)

    async def sink(effect: Effect) -> None:
        day.effects.append(effect)

    runner = ProcedureRunner(lambda s: DefenseSession(loaded.day, s),
                             Journal(db), day.day_id, sink, settings, clock)
    await runner.start()
    return runner


async def at(runner: ProcedureRunner, clock: FakeClock, when: float, *events: ev.Event) -> None:
    """Submit `events` at START + `when` seconds (the runner stamps the clock's time)."""
    clock.now = START + when
    for event in events:
        await runner.submit(event)


async def run_until_results(runner: ProcedureRunner, clock: FakeClock, day: Day) -> None:
    """s1 defends (a pause, two questions, questions overtime, a tie the chair breaks);
    s2 never connects and is marked absent; the results are announced."""
    i = day.ids
    await at(runner, clock, -60 * MIN,
             *(e for s in ("s1", "s2") for e in on_file(i[s])))
    await at(runner, clock, -5 * MIN, *(ev.ParticipantJoined(now=0, actor=i[p])
                                        for p in ("chair", "m1", "m2", "m3", "sec", "s1", "sup")))
    await at(runner, clock, 0, ev.OpenSitting(now=0, actor=i["sec"]))
    await at(runner, clock, 1, ev.RecordingStarted(now=0))
    await at(runner, clock, 2 * MIN,
             ev.IdentityDecided(now=0, actor=i["sec"], student=i["s1"], accepted=True,
                                comment="паспорт предъявлен"))
    await at(runner, clock, 3 * MIN, ev.AnnounceLimits(now=0, actor=i["chair"]))
    await at(runner, clock, 6 * MIN, ev.StartDefense(now=0, actor=i["sec"], student=i["s1"]))
    await at(runner, clock, 8 * MIN, ev.ParticipantLeft(now=0, actor=i["m3"]))  # quorum lost
    await at(runner, clock, 10 * MIN, ev.ParticipantJoined(now=0, actor=i["m3"]))
    clock.now = START + 15 * MIN + 1  # s2's 15 minutes from the start are over
    await runner.run_due()
    await at(runner, clock, 17 * MIN, ev.NextPhase(now=0, actor=i["sec"]))
    await at(runner, clock, 18 * MIN,
             ev.RecordQuestion(now=0, actor=i["sec"], student=i["s1"], text=QUESTIONS[0]))
    await at(runner, clock, 20 * MIN,
             ev.RecordQuestion(now=0, actor=i["sec"], student=i["s1"], text=QUESTIONS[1]))
    clock.now = START + 33 * MIN  # questions began at 17 min: 15 min passed at 32
    await runner.run_due()
    for minute in (34, 35, 36, 37, 37.5):
        await at(runner, clock, minute * MIN, ev.NextPhase(now=0, actor=i["sec"]))
    await at(runner, clock, 40 * MIN,
             ev.TellReturnTime(now=0, actor=i["sec"], return_at=START + 70 * MIN))
    await at(runner, clock, 41 * MIN, ev.StartClosedSitting(now=0, actor=i["sec"]))
    await at(runner, clock, 41 * MIN + 1, ev.RecordingStopped(now=0))
    s1 = i["s1"]
    await at(runner, clock, 43 * MIN, ev.CastVote(now=0, actor=i["chair"], student=s1,
                                                  grade=Grade.EXCELLENT),
             ev.CastVote(now=0, actor=i["m1"], student=s1, grade=Grade.EXCELLENT))
    await at(runner, clock, 44 * MIN, ev.CastVote(now=0, actor=i["m2"], student=s1,
                                                  grade=Grade.GOOD),
             ev.CastVote(now=0, actor=i["m3"], student=s1, grade=Grade.GOOD))
    await at(runner, clock, 45 * MIN, ev.AnnounceResults(now=0, actor=i["sec"]))
    await at(runner, clock, 45 * MIN + 1, ev.RecordingStarted(now=0))


async def close_sitting(runner: ProcedureRunner, clock: FakeClock, day: Day) -> None:
    await at(runner, clock, 47 * MIN, ev.CloseSitting(now=0, actor=day.ids["chair"]))
    await at(runner, clock, 47 * MIN + 1, ev.RecordingStopped(now=0))


def write_recordings(folder: Path) -> dict[str, bytes]:
    """Finished files of two takes, plus a file being written, a stray one, and the
    archive built from them (not part of the protocol)."""
    files = {"take-1/chair-video-1.webm": b"\x1aE\xdf\xa3" + b"v" * 5000,
             "take-2/s1-audio-1.mka": b"\x1aE\xdf\xa3" + b"a" * 3000}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "take-2" / "s1-video-2.webm.part").write_bytes(b"unfinished")
    (folder / "take-2" / "notes.txt").write_text("not a recording")
    (folder / "archive" / "raw").mkdir(parents=True)
    (folder / "archive" / "raw" / "chair-video-1.webm").write_bytes(b"a stream copy")
    return files


@dataclass
class Finished:
    db: Database
    day: Day
    protocol: DayProtocol
    recordings: Path
    files: dict[str, bytes]


@pytest.fixture
async def finished(tmp_path: Path) -> AsyncIterator[Finished]:
    """A closed day with its recordings; the database stays open for the test."""
    async with Database(tmp_path / "defense-room.sqlite3") as db:
        clock = FakeClock(START - 90 * MIN)
        day = await create_day(db, expires_at=START + 7 * 24 * 3600)
        runner = await start_runner(db, day, clock)
        try:
            await run_until_results(runner, clock, day)
            await close_sitting(runner, clock, day)
        finally:
            await runner.stop()
        recordings = day_folder(tmp_path / "recordings", day.day_id)
        files = write_recordings(recordings)
        drafts = await load_drafts(db, day.day_id, SETTINGS, recordings, RecordingIndex())
        yield Finished(db, day, drafts.protocol, recordings, files)


def t(minutes: float) -> float:
    return START + minutes * MIN


def endorsement(protocol: DayProtocol) -> Endorsement:
    return Endorsement(content_hash(protocol), (), tuple(p.name for p in approvers(protocol)),
                       None)


async def test_day_protocol_states_the_sitting(finished: Finished) -> None:
    p, ids = finished.protocol, finished.day.ids
    assert p.form == ("в форме видеоконференции с применением дистанционных образовательных "
                      "технологий")
    assert (p.opened_at, p.results_at, p.closed_at) == (START, t(45) + 1, t(47))
    assert p.return_at == t(70)
    assert p.ready
    voting = [ids[k] for k in ("chair", "m1", "m2", "m3")]
    assert [m.person_id for m in p.members_present] == voting
    assert [m.person_id for m in approvers(p)] == [ids[k] for k in ("m1", "m2", "m3")]
    attendance = {a.person.person_id: a.spans for a in p.attendance}
    assert ids["m4"] not in attendance and ids["s2"] not in attendance
    assert attendance[ids["m3"]] == (Span(START, t(8)), Span(t(10), t(47)))
    assert attendance[ids["chair"]] == (Span(START, t(47)),)  # clipped to the sitting
    assert [(e.phase, e.start, e.end) for e in p.phases] == [
        (Phase.OPENING, START, START + 1), (Phase.IDENTIFICATION, START + 1, t(3)),
        (Phase.ANNOUNCEMENT, t(3), t(6)), (Phase.TALK, t(6), t(17)),
        (Phase.QUESTIONS, t(17), t(34)), (Phase.SUPERVISOR, t(34), t(35)),
        (Phase.REVIEW, t(35), t(36)), (Phase.ANSWER, t(36), t(37)),
        (Phase.FINAL_WORD, t(37), t(37.5)), (Phase.BETWEEN_DEFENSES, t(37.5), t(41)),
        (Phase.CLOSED_SITTING, t(41), t(45)), (Phase.RESULTS, t(45), t(47)),
    ]
    names = {r.path: r for r in p.recordings}
    assert sorted(names) == ["take-1/chair-video-1.webm", "take-2/s1-audio-1.mka"]
    for path, data in finished.files.items():
        assert names[path] == RecordingFile(path, len(data), hashlib.sha256(data).hexdigest())


async def test_student_protocols_state_the_defense_and_the_absence(finished: Finished) -> None:
    ids = finished.day.ids
    s1, s2 = finished.protocol.students
    assert s1.student.name == EVIL_NAME and s1.info is not None
    assert s1.info.thesis_title == "Тема работы s1"
    assert s1.status is StudentStatus.DEFENDED
    assert [(e.at, e.accepted, e.by, e.comment) for e in s1.identity] == [
        (t(2), True, ids["sec"], "паспорт предъявлен")]
    assert (s1.started_at, s1.ended_at) == (t(6), t(37.5))
    assert [e.phase for e in s1.phases][0] is Phase.TALK and len(s1.phases) == 6
    voting = [ids[k] for k in ("chair", "m1", "m2", "m3")]
    assert [m.person_id for m in s1.members_present] == voting
    assert [m.person_id for m in s1.others_present] == [ids[k] for k in ("sec", "sup", "s1")]
    assert [(q.at, q.text) for q in s1.questions] == [(t(18), QUESTIONS[0]), (t(20), QUESTIONS[1])]
    assert s1.pauses == (Span(t(8), t(10)),)
    assert s1.overtime == (OvertimeEntry(t(33), Phase.QUESTIONS),)
    assert [(v.member.person_id, v.grade, v.at) for v in s1.votes] == [
        (ids["chair"], Grade.EXCELLENT, t(43)), (ids["m1"], Grade.EXCELLENT, t(43)),
        (ids["m2"], Grade.GOOD, t(44)), (ids["m3"], Grade.GOOD, t(44))]
    assert s1.grade is Grade.EXCELLENT and s1.decided_by_chair  # 2:2, the chair's side wins
    assert s1.results_at == t(45) + 1 and s1.ready
    assert s1.absence is None and s1.connection_losses == ()

    assert s2.status is StudentStatus.ABSENT
    assert s2.absence is not None
    assert (s2.absence.kind, s2.absence.at, s2.absence.clause) == (
        AbsenceKind.ABSENT, t(15) + 1, "7.9")
    assert s2.identity == () and s2.phases == () and s2.votes == () and s2.grade is None
    assert [m.person_id for m in s2.members_present] == voting
    assert s2.ready


async def test_same_journal_same_protocol_and_hash(finished: Finished) -> None:
    again = await load_drafts(finished.db, finished.day.day_id, SETTINGS, finished.recordings,
                              RecordingIndex())
    assert again.protocol == finished.protocol
    for which in again.names:
        assert again.draft(which).content_hash == hashlib.sha256(
            again.draft(which).content_json.encode()).hexdigest()
    first = again.draft(DAY)
    assert first.content_json == canonical_json(finished.protocol)
    # Someone leaving after the sitting closed changes nothing in the protocol ...
    clock = FakeClock(t(50))
    runner = await start_runner(finished.db, finished.day, clock)
    try:
        await at(runner, clock, 50 * MIN, ev.ParticipantLeft(now=0, actor=finished.day.ids["m1"]))
    finally:
        await runner.stop()
    after = await load_drafts(finished.db, finished.day.day_id, SETTINGS, finished.recordings,
                              RecordingIndex())
    assert after.draft(DAY).content_hash == first.content_hash
    assert after.source_id > first.source_id
    # ... while a new recording file does.
    (finished.recordings / "take-3").mkdir()
    (finished.recordings / "take-3" / "late.mkv").write_bytes(b"late")
    changed = await load_drafts(finished.db, finished.day.day_id, SETTINGS, finished.recordings,
                                RecordingIndex())
    assert changed.draft(DAY).content_hash != first.content_hash


async def test_html_escapes_and_shows_local_times(finished: Finished) -> None:
    s1 = finished.protocol.students[0]
    page = render_html(s1, endorsement(finished.protocol))
    assert "<script>" not in page
    assert "Иванов Иван &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Почему выбран метод &lt;A&gt; &amp; B?" in page
    assert "10:06:00" in page  # the talk began at 10:06 in Moscow ...
    assert "07:06:00" not in page  # ... which is 07:06 UTC
    assert "в форме видеоконференции с применением дистанционных образовательных технологий" in page
    assert "«отлично»" in page and "решающий голос председателя" in page
    assert "ПРОЕКТ" in page
    day_page = render_html(finished.protocol, endorsement(finished.protocol))
    assert "неявка (п. 7.9)" in day_page and "<script>" not in day_page
    for path in finished.files:
        assert path in day_page


async def test_pdf_text_has_the_cyrillic_content(finished: Finished) -> None:
    s1 = finished.protocol.students[0]
    mark = endorsement(finished.protocol)
    pdf = render_pdf(s1, Endorsement(content_hash(s1), mark.approvals, mark.missing, None))
    assert pdf.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    flat = " ".join(text.split())
    assert "Протокол заседания государственной экзаменационной комиссии" in flat
    assert "видеоконференции с применением дистанционных образовательных технологий" in flat
    assert EVIL_NAME in flat
    assert QUESTIONS[0] in flat
    assert "отлично" in flat and "Сидорова Анна" in flat
    assert content_hash(s1) in text.replace("\n", "")


def test_a_missing_font_names_the_package() -> None:
    assert find_font().name == "DejaVuSans.ttf"
    with pytest.raises(ProtocolRenderError, match=r"apt-get install fonts-dejavu-core"):
        find_font("NoSuchFont.ttf")


# -- the pure core, synchronously -----------------------------------------------------


def steps_moved_and_valid_reason() -> list[ev.Event | Tick]:
    """s1's connection fails for over 15 min and the chair moves the defense; s2 has a
    valid reason. People are those of `orchestrator_helpers.make_day`."""
    s0 = 10_000.0
    return [
        *(e for s in ("s1", "s2") for e in on_file(s, s0 - 3600)),
        *(ev.ParticipantJoined(now=s0 - 300, actor=p)
          for p in ("chair", "m1", "m2", "m3", "m4", "m5", "sec", "s1", "s2")),
        ev.OpenSitting(now=s0, actor="sec"),
        ev.RecordingStarted(now=s0 + 1),
        ev.IdentityDecided(now=s0 + 60, actor="sec", student="s1", accepted=True),
        ev.AnnounceLimits(now=s0 + 120, actor="chair"),
        ev.StartDefense(now=s0 + 180, actor="sec", student="s1"),
        ev.ParticipantLeft(now=s0 + 240, actor="s1"),
        Tick(s0 + 240 + 15 * 60),
        ev.MoveDefense(now=s0 + 1200, actor="chair", student="s1",
                       failure_description="связь с обучающимся не восстановилась",
                       new_date=s0 + 7 * 86_400),
        ev.DocumentOnFile(now=s0 + 1250, student="s2", kind=DocumentKind.ABSENCE_PROOF),
        ev.RecordValidReason(now=s0 + 1300, actor="sec", student="s2",
                             reason="болезнь, справка"),
    ]


SITTING = SittingInfo("Защиты", "1970-01-01", "UTC", 10_000.0)


def test_moved_defense_and_valid_reason() -> None:
    p = build_protocol(make_day(), Settings(), steps_moved_and_valid_reason(), SITTING, {})
    s1, s2 = p.students
    assert s1.status is StudentStatus.RESCHEDULED
    assert s1.absence is not None
    assert (s1.absence.kind, s1.absence.at, s1.absence.clause, s1.absence.description) == (
        AbsenceKind.MOVED, 11_200.0, "7.8", "связь с обучающимся не восстановилась")
    assert s1.connection_losses == (Span(10_240.0, None),)
    assert (s1.started_at, s1.ended_at) == (10_180.0, 11_200.0)
    assert s2.absence is not None
    assert (s2.absence.kind, s2.absence.description) == (
        AbsenceKind.VALID_REASON, "болезнь, справка")
    assert not p.ready and not s1.ready  # not closed, no results
    assert p.closed_at is None and p.phases[-1].phase is Phase.BETWEEN_DEFENSES
    page = render_html(s1, Endorsement(content_hash(s1), (), (), None))
    assert "перенесена председателем" in page and "связь с обучающимся" in page


def test_hash_is_canonical_and_covers_the_content() -> None:
    steps = steps_moved_and_valid_reason()
    one = build_protocol(make_day(), Settings(), steps, SITTING, {})
    two = build_protocol(make_day(), Settings(), list(steps), SITTING, {})
    assert canonical_json(one) == canonical_json(two)
    assert content_hash(one) == content_hash(two)
    other = build_protocol(make_day(), Settings(), steps[:-1], SITTING, {})
    assert content_hash(other) != content_hash(one)
    assert content_hash(one.students[0]) != content_hash(one)


def test_a_step_the_rules_refuse_names_itself() -> None:
    steps = [*steps_moved_and_valid_reason()[:4], ev.NextPhase(now=10_500.0, actor="s1")]
    with pytest.raises(ReplayError, match=r"step 4 \(NextPhase at 10500.0\)"):
        build_protocol(make_day(), Settings(), steps, SITTING, {})


# -- issue 13's ways out in the protocol (4.3, 4.8, 7.3, 7.8, 7.9, 7.12) ----------------

S0 = 10_000.0  # orchestrator_helpers.START
DAY_S = 86_400.0
#: The helpers' day, its times shown in Yekaterinburg (UTC+5): 10_000 s is 07:46:40 there.
ZONED = SittingInfo("Защиты", "1970-01-01", "Asia/Yekaterinburg", S0)
E, G, S, U = Grade.EXCELLENT, Grade.GOOD, Grade.SATISFACTORY, Grade.UNSATISFACTORY


def opened_steps(people: tuple[str, ...], *before_opening: ev.Event,
                 documents: bool = True) -> list[ev.Event | Tick]:
    """Consent (and the documents) on file, `people` connected, the sitting opened,
    both students identified and the limits announced at S0 + 2 min."""
    filed = [e for s in ("s1", "s2") for e in on_file(s, S0 - 3600)] if documents else [
        ev.ConsentOnFile(now=S0 - 3600, student=s) for s in ("s1", "s2")]
    return [
        *filed, *(ev.ParticipantJoined(now=S0 - 300, actor=p) for p in people),
        *before_opening,
        ev.OpenSitting(now=S0, actor="sec"), ev.RecordingStarted(now=S0 + 1),
        *(ev.IdentityDecided(now=S0 + 60, actor="sec", student=s, accepted=True)
          for s in ("s1", "s2")),
        ev.AnnounceLimits(now=S0 + 120, actor="chair"),
    ]


def defense_steps(student: str, now: float) -> list[ev.Event | Tick]:
    """A whole defense from `now`, a minute a phase; it ends at now + 6 min."""
    return [ev.StartDefense(now=now, actor="sec", student=student),
            *(ev.NextPhase(now=now + i * MIN, actor="sec") for i in range(1, 7))]


def closed_sitting_steps(now: float) -> list[ev.Event | Tick]:
    return [ev.TellReturnTime(now=now, actor="sec", return_at=now + 30 * MIN),
            ev.StartClosedSitting(now=now, actor="sec"), ev.RecordingStopped(now=now + 1)]


def results_steps(now: float) -> list[ev.Event | Tick]:
    return [ev.AnnounceResults(now=now, actor="sec"), ev.RecordingStarted(now=now + 1),
            ev.CloseSitting(now=now + MIN, actor="chair")]


def votes(now: float, student: str, grades: dict[str, Grade],
          in_person: tuple[str, ...] = ()) -> list[ev.Event | Tick]:
    """Each member's vote: cast from their page, or recorded by the secretary for those
    `in_person` (clause 4.8)."""
    return [ev.RecordVote(now=now, actor="sec", voter=m, student=student, grade=g)
            if m in in_person else ev.CastVote(now=now, actor=m, student=student, grade=g)
            for m, g in grades.items()]


def page_of(protocol: DayProtocol | StudentProtocol) -> str:
    return render_html(protocol, Endorsement(content_hash(protocol), (), (), None))


def as_json(protocol: DayProtocol | StudentProtocol) -> Any:
    """The protocol as its canonical JSON says it (what is approved and signed)."""
    return json.loads(canonical_json(protocol))["protocol"]


def test_7_12_protocol_records_every_round() -> None:
    everyone = ("chair", "m1", "m2", "m3", "m4", "m5", "sec", "s1", "s2")
    vote_at = S0 + 20 * MIN
    first = {"chair": U, "m1": G, "m2": G, "m3": S, "m4": S, "m5": E}  # no majority
    second = {"chair": G, "m1": G, "m2": G, "m3": S, "m4": S, "m5": G}
    steps = [
        *opened_steps(everyone), *defense_steps("s1", S0 + 3 * MIN),
        *defense_steps("s2", S0 + 10 * MIN), *closed_sitting_steps(S0 + 17 * MIN),
        *votes(vote_at, "s1", {"chair": E, "m1": E, "m2": E, "m3": E, "m4": G, "m5": G}),
        *votes(vote_at, "s2", first),
        ev.NewVoteRound(now=vote_at + MIN, actor="chair", student="s2"),
        *votes(vote_at + 2 * MIN, "s2", second),
        *results_steps(S0 + 25 * MIN),
    ]
    p = build_protocol(make_day(), Settings(), steps, ZONED, {})
    s1, s2 = p.students
    assert s1.earlier_rounds == () and s1.grade is Grade.EXCELLENT
    assert s2.grade is Grade.GOOD and not s2.decided_by_chair
    data = as_json(p)["students"][1]
    assert [(r["number"], r["ended_at"]) for r in data["earlier_rounds"]] == [(1, vote_at + MIN)]
    assert [(v["member"]["person_id"], v["grade"], v["at"], v["recorded_by"])
            for v in data["earlier_rounds"][0]["votes"]] == [
        (m, g.value, vote_at, None) for m, g in first.items()]
    # The last round stays where it was: `votes`.
    assert [(v["member"]["person_id"], v["grade"], v["at"]) for v in data["votes"]] == [
        (m, g.value, vote_at + 2 * MIN) for m, g in second.items()]
    assert canonical_json(p) == canonical_json(build_protocol(make_day(), Settings(),
                                                              list(steps), ZONED, {}))
    page = page_of(s2)
    assert "Голосование, тур 1: решение не принято" in page
    assert "повторное голосование объявлено 08:07:40" in page  # 02:47:40 UTC
    assert "Голосование, тур 2:" in page
    first_round, second_round = page.split("Голосование, тур 2:")
    assert "неудовлетворительно" in first_round and "неудовлетворительно" not in second_round
    assert "«хорошо»" in second_round
    assert "тур" not in page_of(s1)


def test_4_8_protocol_states_who_attended_how() -> None:
    # m3 and m4 sit in the university room from the start; m2's link fails during s1's
    # defense and m2 moves to the room; m5 never comes.
    room = ("m2", "m3", "m4")
    steps = [
        *opened_steps(("chair", "m1", "m2", "sec", "s1", "s2"),
                      *(ev.SetInPerson(now=S0 - 200, actor="sec", person=m, in_person=True)
                        for m in ("m3", "m4"))),
        ev.StartDefense(now=S0 + 3 * MIN, actor="sec", student="s1"),
        ev.ParticipantLeft(now=S0 + 4 * MIN, actor="m2"),
        ev.SetInPerson(now=S0 + 5 * MIN, actor="sec", person="m2", in_person=True),
        *(ev.NextPhase(now=S0 + (3 + i) * MIN, actor="sec") for i in range(1, 7)),
        *defense_steps("s2", S0 + 10 * MIN), *closed_sitting_steps(S0 + 17 * MIN),
        *(v for s in ("s1", "s2") for v in votes(
            S0 + 20 * MIN, s, {"chair": E, "m1": E, "m2": G, "m3": E, "m4": G}, room)),
        *results_steps(S0 + 25 * MIN),
    ]
    p = build_protocol(make_day(), Settings(), steps, ZONED, {})
    closed = S0 + 26 * MIN
    assert p.closed_at == closed
    how = {a["person"]["person_id"]: a for a in as_json(p)["commission_attendance"]}
    assert list(how) == ["chair", "m1", "m2", "m3", "m4", "m5", "sec"]
    assert {k: a["mode"] for k, a in how.items()} == {
        "chair": "remote", "m1": "remote", "m2": "both", "m3": "in_person",
        "m4": "in_person", "m5": "absent", "sec": "remote"}
    assert how["m2"]["remote"] == [{"start": S0, "end": S0 + 4 * MIN}]
    assert how["m2"]["in_person"] == [{"start": S0 + 5 * MIN, "end": closed}]
    assert how["m3"]["in_person"] == [{"start": S0, "end": closed}]  # clipped to the sitting
    assert how["m3"]["remote"] == [] and how["m5"]["in_person"] == []
    # Those in the room were present: they count, approve, and their votes say who typed them.
    present = ["chair", "m1", "m2", "m3", "m4"]
    assert [m.person_id for m in p.members_present] == present
    assert [m.person_id for m in approvers(p)] == present[1:]
    assert [m.person_id for m in p.students[0].members_present] == present
    assert "m3" not in {a.person.person_id for a in p.attendance}  # not on the video call
    assert [(v.member.person_id, v.recorded_by) for v in p.students[0].votes] == [
        ("chair", None), ("m1", None), ("m2", "sec"), ("m3", "sec"), ("m4", "sec")]
    assert p.failures == ()
    page = page_of(p)
    assert "На заседании (п. 4.8)" in page
    assert ("<td>M2</td><td>дистанционно и очно, в аудитории</td><td>07:51:40 – 08:12:40</td>"
            in page)
    assert "<td>M3</td><td>очно, в аудитории</td>" in page
    assert "<td>M5</td><td>отсутствовал(а)</td>" in page
    assert "<td>Chair</td><td>дистанционно</td>" in page
    assert "Технические сбои" not in page
    assert "очно, голос внесён секретарём Secretary" in page_of(p.students[0])


def test_7_8_protocol_has_the_new_date() -> None:
    # s1's link fails during the talk, then three members' links: after 15 minutes the
    # chair moves the rest of the day; the members come back afterwards.
    everyone = ("chair", "m1", "m2", "m3", "m4", "m5", "sec", "s1", "s2")
    t0, new_date = S0 + 3 * MIN, S0 + 7 * DAY_S
    why = "обрыв связи у обучающегося и у трёх членов комиссии"
    steps = [
        *opened_steps(everyone), ev.StartDefense(now=t0, actor="sec", student="s1"),
        ev.ParticipantLeft(now=t0 + MIN, actor="s1"),
        *(ev.ParticipantLeft(now=t0 + 3 * MIN, actor=m) for m in ("m3", "m4", "m5")),
        Tick(t0 + 16 * MIN),
        ev.MoveRestOfDay(now=t0 + 17 * MIN, actor="chair", failure_description=f" {why} ",
                         new_date=new_date),
        *(ev.ParticipantJoined(now=t0 + 20 * MIN, actor=m) for m in ("m3", "m4", "m5")),
        *closed_sitting_steps(t0 + 21 * MIN), *results_steps(t0 + 22 * MIN),
    ]
    p = build_protocol(make_day(), Settings(), steps, ZONED, {})
    data = as_json(p)
    assert [(f["what"], f["start"], f["end"]) for f in data["failures"]] == [
        (["student"], t0 + MIN, t0 + 3 * MIN),
        (["quorum", "student"], t0 + 3 * MIN, t0 + 17 * MIN),
        (["quorum"], t0 + 17 * MIN, t0 + 20 * MIN),  # moved: no student defends now
    ]
    lost = data["failures"][1]
    assert lost["quorum"] == {"present": 3, "total": 6}
    assert lost["student"]["person_id"] == "s1"
    assert lost["description"].startswith("quorum lost (3 of 6 members, 4 needed)")
    for student in data["students"]:
        assert student["status"] == "rescheduled"
        assert student["absence"] == {
            "kind": "moved", "at": t0 + 17 * MIN, "clause": "7.8", "description": why,
            "new_date": new_date, "proof_on_file": False}
    s1_page = page_of(p.students[0])
    # 10_000 s + 7 days is 08.01.1970 02:46 UTC, 07:46 in Yekaterinburg.
    assert "Новая дата защиты: 08.01.1970 07:46 (Asia/Yekaterinburg)." in s1_page
    assert f"перенесена председателем на другой день (п. 7.8). {why}" in s1_page
    assert "Итог</td><td>защита перенесена на 08.01.1970 07:46 (п. 7.8)" in s1_page
    day_page = page_of(p)
    assert "Технические сбои (п. 7.8)" in day_page
    rows = [
        "<td>потеряна связь с обучающимся: Student One</td><td>07:50:40</td><td>07:52:40</td>",
        "<td>нет кворума: присутствовали 3 из 6 членов комиссии, нужно не менее 4 (п. 7.2); "
        "потеряна связь с обучающимся: Student One</td><td>07:52:40</td><td>08:06:40</td>",
        "<td>нет кворума: присутствовали 3 из 6 членов комиссии, нужно не менее 4 (п. 7.2)"
        "</td><td>08:06:40</td><td>08:09:40</td>",
    ]
    for row in rows:
        assert row in day_page
    assert day_page.count("защита перенесена на 08.01.1970 07:46 (п. 7.8)") == 2
    pdf = render_pdf(p, Endorsement(content_hash(p), (), (), None))
    flat = " ".join("\n".join(page.extract_text() for page in
                              pypdf.PdfReader(io.BytesIO(pdf)).pages).split())
    assert "Технические сбои (п. 7.8)" in flat
    assert "потеряна связь с обучающимся: Student One" in flat
    assert "защита перенесена на 08.01.1970 07:46" in flat


def test_7_9_protocol_says_the_proof_is_on_file() -> None:
    p = build_protocol(make_day(), Settings(), steps_moved_and_valid_reason(), SITTING, {})
    moved, excused = (s.absence for s in p.students)
    assert moved is not None and excused is not None
    assert (moved.new_date, moved.proof_on_file) == (10_000.0 + 7 * DAY_S, False)
    assert (excused.kind, excused.new_date, excused.proof_on_file) == (
        AbsenceKind.VALID_REASON, None, True)
    page = page_of(p.students[1])
    assert "болезнь, справка" in page
    assert "Документ, подтверждающий уважительную причину, загружен." in page
    assert "подтверждающий" not in page_of(p.students[0])


def test_7_3_and_4_3_protocol_states_the_waiver_and_the_adjusted_time() -> None:
    day = make_day()
    day = DefenseDay(people=day.people, scheduled_start=S0, extra_time_percent=(("s1", 25.0),))
    reason = "ВКР передана членам комиссии на бумаге"
    steps = [
        *opened_steps(("chair", "m1", "m2", "m3", "m4", "m5", "sec", "s1", "s2"),
                      documents=False),
        ev.DocumentOnFile(now=S0 + 150, student="s1", kind=DocumentKind.PRESENTATION_PDF),
        ev.WaiveDocuments(now=S0 + 160, actor="chair", student="s1", reason=reason),
        *defense_steps("s1", S0 + 3 * MIN),
        # Uploaded afterwards: the protocol still says what the defense started without.
        ev.DocumentOnFile(now=S0 + 10 * MIN, student="s1", kind=DocumentKind.THESIS),
    ]
    p = build_protocol(day, Settings(), steps, ZONED, {})
    s1, s2 = as_json(p)["students"]
    assert s1["documents_waived"] == {"at": S0 + 160, "by": "chair", "reason": reason,
                                      "missing": ["thesis"]}
    assert s2["documents_waived"] is None
    assert (s1["extra_time_percent"], s1["limits"]) == (25.0, {
        "talk_minutes": 12.5, "questions_minutes": 18.75, "defense_minutes": 37.5})
    assert (s2["extra_time_percent"], s2["limits"]) == (0.0, {
        "talk_minutes": 10.0, "questions_minutes": 15.0, "defense_minutes": 30.0})
    page = page_of(p.students[0])
    assert ("председатель ГЭК Chair разрешил(а) начать защиту без необходимых документов. "
            f"Причина: {reason}. Не были загружены: ВКР.") in page
    assert ("доклад — до 12 мин 30 с, ответы на вопросы — до 18 мин 45 с, "
            "вся защита — до 37 мин 30 с") in page
    assert "<td>Увеличенное время (п. 4.3)</td><td>на 25 %</td>" in page
    other = page_of(p.students[1])
    assert "доклад — до 10 мин, ответы на вопросы — до 15 мин" in other
    assert "Увеличенное время" not in other and "Документы (п. 7.3)" not in other
