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
import zoneinfo
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pypdf
import pytest

from orchestrator import events as ev
from orchestrator.documents import DocumentKind
from orchestrator.effects import Effect
from orchestrator.model import Grade, Phase, Role, Settings, StudentStatus
from orchestrator.protocol import (
    AbsenceKind,
    DayProtocol,
    OvertimeEntry,
    RecordingFile,
    SittingInfo,
    Span,
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
