"""After the appeal sitting (clauses 8.8-8.11): the decision reaches the student, and
the sitting has its own protocol, approved and signed.

The earliest timeline the rules allow, walked with a fake clock (the only fake):
results on a Monday at 15:00, the appeal filed at 15:30 through the API, the sitting
scheduled at once for Tuesday 15:31 (a day's notice, 8.5), heard and decided on
Tuesday, the decision delivered on Wednesday at 00:00 (the next working day, 8.11).
Both days run through a `ProcedureRunner` on the app's own database, the appeal
service and the appeals API read the same fake clock; the database, the journal, the
invites and the app are real. The protocol is then read, approved and signed through
the HTTP API with the appeal roles. The dates are weeks ahead of today, so the
sitting's invite links also work by the wall clock of the protocol API.
"""

from __future__ import annotations

import datetime
import io
import zoneinfo
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from orchestrator import events as ev
from orchestrator.appeal_protocol import (
    AppealedDefense,
    AppealInfo,
    appeal_approvers,
    appeal_content_hash,
    build_appeal_protocol,
)
from orchestrator.appeal_session import AppealSession, AppealSnapshot
from orchestrator.appeals import Decision
from orchestrator.documents import NEEDED_TO_DEFEND
from orchestrator.effects import Effect
from orchestrator.model import Grade, Settings
from orchestrator.protocol import SittingInfo, Span
from orchestrator.session import DefenseSession
from server.appeal_service import AppealService
from server.config import Config
from server.procedure import ProcedureRunner
from storage.days import load_day
from storage.db import Database
from storage.invites import expires_at_for_day
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.app import create_app
from web_ui.keys import CONFIG, DATABASE, HOSTS, INVITES

from .conftest import make_config
from .orchestrator_helpers import START, appeal_day
from .procedure_helpers import TZ, day_spec
from .signing_helpers import BrowserKey
from .timing import FakeClock, wait_until

pytestmark = pytest.mark.timeout(120)
Client = TestClient[web.Request, web.Application]
ZONE = zoneinfo.ZoneInfo(TZ)
MIN = 60.0
GROUNDS = "Паспорт не был показан <крупно>, идентификация проведена формально"
REASONING = "Запись показывает паспорт рядом с лицом; нарушения процедуры нет"
APPEAL_CHAIR, APPEAL_MEMBERS = "Председатель АК Громов", ("Член АК Левина", "Член АК Титов")


def monday() -> datetime.date:
    """A Monday three to four weeks ahead: a whole working week, and links that still
    work by the wall clock while the test runs."""
    day = datetime.date.today() + datetime.timedelta(days=21)
    return day + datetime.timedelta(days=-day.weekday() % 7)


MONDAY = monday()


def at(days: int, hour: int, minute: int = 0, second: int = 0) -> float:
    """`days` after MONDAY at the given Moscow time."""
    moment = datetime.datetime.combine(MONDAY + datetime.timedelta(days=days),
                                       datetime.time(hour, minute, second), ZONE)
    return moment.timestamp()


RESULTS, FILED, SCHEDULED = at(0, 15), at(0, 15, 30), at(0, 15, 31)
SITTING, DECIDED, DELIVERY = at(1, 15, 31), at(1, 15, 50), at(2, 0)


@dataclass
class Heard:
    """The app after the sitting: tokens by key (defense day, then the sitting's)."""

    client: Client
    clock: FakeClock
    day_id: int
    sitting_day: int
    appeal_id: int
    tokens: dict[str, str]
    ids: dict[str, str]
    expiry_after_results: float
    expiry_after_filing: float

    async def call(self, method: str, url: str, who: str, body: Any = None
                   ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        async with self.client.request(method, url, json=body, headers=headers) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.read()

    async def expiry(self, who: str) -> float:
        invite = await self.client.app[INVITES].verify(self.tokens[who], now=self.clock())
        return invite.expires_at


async def play(runner: ProcedureRunner, clock: FakeClock,
               script: list[tuple[float, ev.Event]]) -> None:
    for when, event in script:
        clock.now = when
        await runner.submit(event)


async def run_defense(db: Database, day_id: int, i: dict[str, str], clock: FakeClock) -> None:
    """Monday: s1 defends, graded "good"; the results at 15:00 sharp, then the closing."""
    loaded = await load_day(db, day_id)
    runner = ProcedureRunner(lambda s: DefenseSession(loaded.day, s), Journal(db), day_id,
                             _ignore, Config().procedure_settings(), clock)
    await runner.start()
    start = at(0, 13)
    people = ("chair", "m1", "m2", "m3", "sec", "s1")
    try:
        await play(runner, clock, [
            (start - 60 * MIN, ev.ConsentOnFile(now=0, student=i["s1"])),
            *((start - 60 * MIN, ev.DocumentOnFile(now=0, student=i["s1"], kind=kind))
              for kind in NEEDED_TO_DEFEND),
            *((start - 5 * MIN, ev.ParticipantJoined(now=0, actor=i[p])) for p in people),
            (start, ev.OpenSitting(now=0, actor=i["sec"])),
            (start + 1, ev.RecordingStarted(now=0)),
            (start + 2 * MIN, ev.IdentityDecided(now=0, actor=i["sec"], student=i["s1"],
                                                 accepted=True)),
            (start + 3 * MIN, ev.AnnounceLimits(now=0, actor=i["chair"])),
            (start + 6 * MIN, ev.StartDefense(now=0, actor=i["sec"], student=i["s1"])),
            *((start + m * MIN, ev.NextPhase(now=0, actor=i["sec"]))
              for m in (16, 30, 31, 32, 33, 34)),
            (start + 40 * MIN, ev.TellReturnTime(now=0, actor=i["sec"], return_at=RESULTS)),
            (start + 41 * MIN, ev.StartClosedSitting(now=0, actor=i["sec"])),
            (start + 41 * MIN + 1, ev.RecordingStopped(now=0)),
            *((start + 43 * MIN, ev.CastVote(now=0, actor=i[m], student=i["s1"], grade=g))
              for m, g in (("chair", Grade.GOOD), ("m1", Grade.GOOD),
                           ("m2", Grade.EXCELLENT), ("m3", Grade.GOOD))),
            (RESULTS - 1, ev.AnnounceResults(now=0, actor=i["sec"])),
            (RESULTS, ev.RecordingStarted(now=0)),  # the results are out (7.13)
            (RESULTS + 5 * MIN, ev.CloseSitting(now=0, actor=i["chair"])),
            (RESULTS + 5 * MIN + 1, ev.RecordingStopped(now=0)),
            *((RESULTS + 6 * MIN, ev.ParticipantLeft(now=0, actor=i[p])) for p in people),
        ])
    finally:
        await runner.stop()


async def run_sitting(db: Database, day_id: int, i: dict[str, str], clock: FakeClock) -> None:
    """Tuesday: the appeal chair records, opens, names everyone aloud, decides, closes."""
    loaded = await load_day(db, day_id)
    runner = ProcedureRunner(lambda s: AppealSession(loaded.day), Journal(db), day_id,
                             _ignore, Settings(), clock)
    await runner.start()
    people = ("ac", "am1", "am2", "gek_chair", "student")
    try:
        await play(runner, clock, [
            *((SITTING - 6 * MIN, ev.ParticipantJoined(now=0, actor=i[p])) for p in people),
            (SITTING, ev.SetRecording(now=0, actor=i["ac"], on=True)),
            (SITTING + 1, ev.RecordingStarted(now=0)),
            (SITTING + MIN, ev.OpenAppealSitting(now=0, actor=i["ac"])),
        ])
        snapshot = runner.snapshot
        assert isinstance(snapshot, AppealSnapshot)
        for n, person in enumerate(snapshot.to_name):
            await play(runner, clock, [(SITTING + (2 + n) * MIN,
                                        ev.NameAnnounced(now=0, actor=i["ac"], person=person))])
        await play(runner, clock, [
            (DECIDED, ev.DecideAppeal(now=0, actor=i["ac"], decision="rejected",
                                      reasoning=REASONING)),
            (DECIDED + 2 * MIN, ev.CloseAppealSitting(now=0, actor=i["ac"])),
            (DECIDED + 2 * MIN + 1, ev.RecordingStopped(now=0)),
            *((DECIDED + 3 * MIN, ev.ParticipantLeft(now=0, actor=i[p])) for p in people),
        ])
    finally:
        await runner.stop()


async def _ignore(effect: Effect) -> None:
    pass  # the recorder and the room are not part of these tests


@pytest.fixture
async def heard(tmp_path: Path) -> AsyncIterator[Heard]:
    app = create_app(make_config(tmp_path))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        db, hosts, config = app[DATABASE], app[HOSTS], app[CONFIG]
        clock = FakeClock(at(0, 10))
        hosts.appeals = AppealService(config, db, hosts.host, clock=clock)
        created = await RosterStore(db).create_day(
            day_spec(at(0, 13), students=1),
            expires_at=expires_at_for_day(MONDAY, TZ, config.invites.valid_days_after),
            now=clock())
        names = ("chair", "m1", "m2", "m3", "sec", "s1")
        tokens = {n: i.token for n, i in zip(names, created.invites, strict=True)}
        ids = {n: str(i.person_id) for n, i in zip(names, created.invites, strict=True)}
        day_id = created.day_id
        await run_defense(db, day_id, ids, clock)
        # What the day host does when the results come out: links to the appeal deadline.
        await hosts.appeals.results_announced(await hosts.host(day_id))
        heard = Heard(client, clock, day_id, 0, 0, tokens, ids, 0.0, 0.0)
        heard.expiry_after_results = await heard.expiry("s1")

        clock.now = FILED
        code, body = await heard.call("POST", f"/api/days/{day_id}/appeals", "s1",
                                      {"text": GROUNDS})
        assert code == 201, body
        heard.appeal_id = body["appeal"]["appeal_id"]
        heard.expiry_after_filing = await heard.expiry("s1")
        one = f"/api/appeals/{heard.appeal_id}"
        code, body = await heard.call("POST", one + "/conclusion", "chair",
                                      {"text": "Процедура соблюдена."})
        assert code == 200, body
        clock.now = SCHEDULED
        code, body = await heard.call("POST", one + "/schedule", "sec", {
            "sitting_at": SITTING, "appeal_chair": APPEAL_CHAIR,
            "appeal_members": list(APPEAL_MEMBERS)})
        assert code == 201, body
        heard.sitting_day = body["day_id"]
        keys = iter(("ac", "am1", "am2", "student", "gek_chair"))
        for invite in body["invites"]:
            key = next(keys)
            tokens[key], ids[key] = invite["link"].rsplit("/", 1)[1], str(invite["person_id"])
        assert ids["student"] != ids["s1"]  # a link of its own to the sitting

        await run_sitting(db, heard.sitting_day, ids, clock)
        # Hosting the sitting day (as after a restart) hands its decision to the service.
        await hosts.host(heard.sitting_day)
        store = hosts.appeals.store
        await wait_until(lambda: store.get(heard.appeal_id), lambda a: a.decision is not None,
                         "the decision to be recorded", 5)
        yield heard


async def test_8_11_the_decision_reaches_the_student_on_the_next_working_day(
        heard: Heard) -> None:
    # Without more, the link would end with the appeal deadline (8.2): at the very
    # instant the decision is delivered.
    assert heard.expiry_after_results == DELIVERY
    # Filing keeps it past the latest delivery the hearing's two working days allow:
    # sitting by Wednesday, delivery Thursday, plus the configured days after.
    days = Config().invites.appeal_valid_days_after
    assert heard.expiry_after_filing == expires_at_for_day(
        MONDAY + datetime.timedelta(days=3), TZ, days)
    appeal = await heard.client.app[HOSTS].appeals.store.get(heard.appeal_id)
    assert (appeal.decided_at, appeal.delivery_at) == (DECIDED, DELIVERY)

    mine = f"/api/days/{heard.day_id}/appeals"
    heard.clock.now = DELIVERY - 1  # Tuesday 23:59:59: decided, not yet told (8.11)
    code, body = await heard.call("GET", mine, "s1")
    assert code == 200, body
    [seen] = body["appeals"]
    assert (seen["decision"], seen["reasoning"], seen["decided_at"]) == (None, None, None)

    heard.clock.now = DELIVERY  # Wednesday 00:00: the link still works and tells it
    assert await heard.expiry("s1") > DELIVERY
    code, body = await heard.call("GET", mine, "s1")
    assert code == 200, body
    [seen] = body["appeals"]
    assert (seen["decision"], seen["reasoning"]) == ("rejected", REASONING)
    assert seen["decided_at"] == DECIDED and seen["delivery_at"] == DELIVERY
    # The student's link to the sitting was extended too, to the delivery's day and the
    # configured days after (by default it ended with Wednesday).
    assert await heard.expiry("student") == expires_at_for_day(
        MONDAY + datetime.timedelta(days=2), TZ, days)

    # Not for ever: once the configured days after the delivery are over, it is refused.
    heard.clock.now = heard.expiry_after_filing
    code, body = await heard.call("GET", mine, "s1")
    assert code == 401 and body["error"] == "expired_token", body


async def test_8_9_appeal_sitting_has_a_protocol_signed_by_the_appeal_chair(
        heard: Heard) -> None:
    day, ids = heard.sitting_day, heard.ids
    base = f"/api/days/{day}/protocols"
    for who in ("ac", "am1", "gek_chair"):
        code, body = await heard.call("GET", base, who)
        assert code == 200, body
        [entry] = body["protocols"]
        assert (entry["which"], entry["kind"], entry["appeal_id"]) == (
            "appeal", "appeal", heard.appeal_id)
        assert entry["status"] == "draft" and entry["final"] is True
        assert entry["decision"] == "rejected"
        assert [m["name"] for m in entry["missing_approvals"]] == list(APPEAL_MEMBERS)
    for who in ("student", "s1", "sec"):  # not the student; the defense day's office
        code, body = await heard.call("GET", base, who)  # reads it at its sitting only
        assert code == 403, body
    code, body = await heard.call("GET", base + "/day", "ac")
    assert code == 404 and "'appeal'" in body["message"]

    code, body = await heard.call("GET", base + "/appeal", "ac")
    assert code == 200
    digest, p = body["hash"], body["content"]["protocol"]
    assert body["content"]["kind"] == "appeal"
    assert p["appeal"]["grounds"] == GROUNDS
    assert p["appeal"]["conclusion"] == "Процедура соблюдена."
    assert p["appeal"]["defense"]["grade"] == "good"
    assert p["appeal"]["defense"]["results_at"] == RESULTS
    assert p["appeal"]["filed_at"] == FILED
    order = [ids[k] for k in ("student", "ac", "am1", "am2")]
    assert [n["person"]["person_id"] for n in p["named"]] == order  # 8.7, in order
    assert [n["at"] for n in p["named"]] == [SITTING + k * MIN for k in range(2, 6)]
    assert (p["opened_at"], p["decided_at"], p["closed_at"]) == (
        SITTING + MIN, DECIDED, DECIDED + 2 * MIN)
    assert (p["decision"], p["reasoning"]) == ("rejected", REASONING)
    assert p["recording"] == [{"start": SITTING + 1, "end": DECIDED + 2 * MIN}]
    assert p["student_present"] is True
    assert [m["name"] for m in p["members_present"]] == [APPEAL_CHAIR, *APPEAL_MEMBERS]
    assert [ph["phase"] for ph in p["phases"]] == [
        "appeal_naming", "appeal_hearing", "appeal_decided"]

    code, page = await heard.call("GET", base + "/appeal?format=html", "gek_chair")
    assert code == 200
    assert "&lt;крупно&gt;".encode() in page and "<крупно>".encode() not in page
    assert "ПРОЕКТ".encode() in page and "(п. 8.7)".encode() in page
    code, pdf = await heard.call("GET", base + "/appeal?format=pdf", "am2")
    assert code == 200 and pdf.startswith(b"%PDF")
    text = " ".join(pg.extract_text() for pg in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "апелляционной комиссии" in text and "отклонена" in text

    keys: dict[str, tuple[BrowserKey, int]] = {}
    people: dict[str, int] = {}
    for who in ("ac", "am1", "am2"):
        key = BrowserKey()
        code, body = await heard.call("POST", f"/api/days/{day}/keys", who, {"jwk": key.jwk})
        assert code == 200, body
        people[who] = body["person_id"]
        keys[who] = (key, body["key_id"])
    code, _ = await heard.call("POST", f"/api/days/{day}/keys", "gek_chair",
                               {"jwk": BrowserKey().jwk})
    assert code == 403

    def signed(action: str, who: str) -> dict[str, Any]:
        key, key_id = keys[who]
        return key.endorse(action, day, "appeal", digest, person_id=people[who], key_id=key_id)

    code, body = await heard.call("POST", base + "/appeal/sign", "ac", signed("sign", "ac"))
    assert code == 409 and body["error"] == "approvals_missing"
    assert all(name in body["message"] for name in APPEAL_MEMBERS)
    assert "clause 8.8" in body["message"]
    for who in ("gek_chair", "am1"):  # the commission chair does not sign here
        code, body = await heard.call("POST", base + "/appeal/sign", who, signed("sign", "am1"))
        assert code == 403 and body["error"] == "role", body
    code, body = await heard.call("POST", base + "/appeal/approve", "ac",
                                  signed("approve", "ac"))
    assert code == 403 and body["error"] == "role"
    for who in ("am1", "am2"):
        code, body = await heard.call("POST", base + "/appeal/approve", who,
                                      signed("approve", who))
        assert code == 200, body
    assert body["protocol"]["status"] == "approved"

    code, body = await heard.call("POST", base + "/appeal/sign", "ac", signed("sign", "ac"))
    assert code == 200, body
    assert body["status"] == "signed" and body["hash"] == digest
    assert body["signed"]["person_id"] == int(ids["ac"])
    assert body["signed"]["name"] == APPEAL_CHAIR
    assert [a["name"] for a in body["approved_by"]] == list(APPEAL_MEMBERS)
    code, again = await heard.call("POST", base + "/appeal/sign", "ac", signed("sign", "ac"))
    assert code == 409 and again["error"] == "already_signed"
    code, page = await heard.call("GET", base + "/appeal?format=html", "am1")
    assert f"Подписан председателем апелляционной комиссии {APPEAL_CHAIR}".encode() in page
    assert "ПРОЕКТ".encode() not in page
    entries = await Journal(heard.client.app[DATABASE]).entries(day)
    [record] = [e.detail for e in entries if e.kind == "protocol_signed"]
    assert record["protocol"] == "appeal" and record["hash"] == digest
    assert record["approved_by"] == [int(ids["am1"]), int(ids["am2"])]


# -- the pure builder ---------------------------------------------------------------------

INFO = AppealInfo(appeal_id=7, grounds="нарушение", filed_at=START - 86_400, on_paper=True,
                  conclusion=None, defense=AppealedDefense(
                      day_id=1, title="Защиты", date="2026-06-19", student="Student One",
                      thesis_title="Тема", grade=None, results_at=START - 90_000))
SITTING_INFO = SittingInfo("Апелляция", "2026-06-20", "Europe/Moscow", START)


def sitting_steps(leave_after_close: bool) -> list[ev.Event]:
    """A sitting without the student (8.6): am2 comes late and leaves before the end."""
    steps: list[ev.Event] = [
        ev.ParticipantJoined(now=START, actor="ac"), ev.ParticipantJoined(now=START, actor="am1"),
        ev.SetRecording(now=START + 1, actor="ac", on=True), ev.RecordingStarted(now=START + 2),
        ev.OpenAppealSitting(now=START + 60, actor="ac"),
        ev.ParticipantJoined(now=START + 70, actor="am2"),
        *(ev.NameAnnounced(now=START + 80 + n, actor="ac", person=p)
          for n, p in enumerate(("s1", "ac", "am1", "am2"))),
        ev.ParticipantLeft(now=START + 300, actor="am2"),
        ev.DecideAppeal(now=START + 400, actor="ac", decision="upheld", reasoning="да"),
        ev.CloseAppealSitting(now=START + 500, actor="ac"),
    ]
    if leave_after_close:
        steps += [ev.RecordingStopped(now=START + 501),
                  ev.ParticipantLeft(now=START + 600, actor="am1")]
    return steps


def test_8_9_the_appeal_protocol_is_the_sitting_replayed() -> None:
    p = build_appeal_protocol(appeal_day(), sitting_steps(False), SITTING_INFO, INFO)
    assert p.ready and p.decision is Decision.UPHELD and p.reasoning == "да"
    assert [c.person_id for c in p.commission] == ["ac", "am1", "am2"]
    assert {c.person_id for c in p.invited} == {"chair", "s1"}
    assert not p.student_present  # heard without the student (8.6)
    assert [(n.person.person_id, n.at) for n in p.named] == [
        ("s1", START + 80), ("ac", START + 81), ("am1", START + 82), ("am2", START + 83)]
    spans = {a.person.person_id: a.spans for a in p.attendance}
    assert spans == {"ac": (Span(START + 60, START + 500),),
                     "am1": (Span(START + 60, START + 500),),
                     "am2": (Span(START + 70, START + 300),)}
    assert [m.person_id for m in appeal_approvers(p)] == ["am1", "am2"]
    assert p.recording == (Span(START + 2, START + 500),)
    # What happens after the closing is not part of it.
    later = build_appeal_protocol(appeal_day(), sitting_steps(True), SITTING_INFO, INFO)
    assert appeal_content_hash(later) == appeal_content_hash(p)
    # Before the closing it is a draft that nobody can approve yet.
    open_ = build_appeal_protocol(appeal_day(), sitting_steps(False)[:-1], SITTING_INFO, INFO)
    assert not open_.ready and open_.closed_at is None and open_.recording[0].end is None

