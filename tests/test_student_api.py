"""The student's own page over HTTP (issue 15, item 4): their consents, given by
them alone, counting for B1 like the paper one, the e-library choice kept across a
restart and closed once the defense day is over; the overview of their documents
and place; malformed bodies refused with a sentence."""

from __future__ import annotations

import datetime
import time
import zoneinfo
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.config import Config
from storage.journal import Journal
from storage.roster import CommissionSpec, DaySpec, RosterStore, StudentSpec
from web_ui.keys import DATABASE

from .conftest import make_config, serving, url_of
from .procedure_helpers import small_pdf

TZ = "Europe/Moscow"
NAMES = ["chair", "m1", "m2", "sec", "s1", "s2"]


def spec(starts_at: float) -> DaySpec:
    moment = datetime.datetime.fromtimestamp(starts_at, zoneinfo.ZoneInfo(TZ))
    return DaySpec(
        title="Защиты ВКР", date=moment.date(), start=moment.time().replace(second=0, microsecond=0),
        timezone=TZ, norm_control_required=False,
        commission=CommissionSpec(chair="Соколов", members=("Кузнецова", "Морозов"),
                                  secretary="Новикова"),
        students=tuple(StudentSpec(name=f"Студент {n}", thesis_title=f"Тема {n}",
                                   supervisor="Лебедев", reviewer="Орлова",
                                   timezone="Asia/Vladivostok", consent_at=None,
                                   documents=()) for n in (1, 2)))


async def call(method: str, url: str, token: str, body: Any = None, *,
               data: bytes | None = None, raw_json: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    if data is not None:
        kwargs = {"data": data}
        headers["Content-Type"] = "application/pdf"
    if raw_json is not None:
        kwargs = {"data": raw_json}
        headers["Content-Type"] = "application/json"
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, headers=headers, **kwargs) as r:
            return r.status, await r.json()


class Day:
    def __init__(self, base: str, day_id: int, tokens: dict[str, str], ids: dict[str, int]):
        self.base, self.day_id, self.tokens, self.ids = base, day_id, tokens, ids

    def url(self, path: str) -> str:
        return f"{self.base}/api/days/{self.day_id}{path}"

    def student(self, who: str, path: str) -> str:
        return self.url(f"/students/{self.ids[who]}{path}")


async def make_day(app: Any, base: str, starts_at: float) -> Day:
    created = await RosterStore(app[DATABASE]).create_day(
        spec(starts_at), expires_at=time.time() + 86400 * 3, now=time.time())
    return Day(base, created.day_id,
               {n: i.token for n, i in zip(NAMES, created.invites, strict=True)},
               {n: i.person_id for n, i in zip(NAMES, created.invites, strict=True)})


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


async def test_the_student_consents_and_it_counts_for_b1(config: Config,
                                                         isolated_network: None) -> None:
    async with serving(config) as server:
        day = await make_day(server.app, url_of(server), time.time() + 3 * 86400)
        status, before = await call("GET", day.url("/readiness"), day.tokens["sec"])
        assert status == 200 and not before["students"][0]["consent_on_file"]
        status, overview = await call("GET", day.student("s1", "/overview"), day.tokens["s1"])
        assert status == 200, overview
        assert overview["consents"] == {"personal_data": None, "elibrary": None}
        assert overview["consent_open"] and overview["uploads"]["open"]
        assert overview["queue"] == {"position": 1, "of": 2, "status": "waiting",
                                     "current": False}
        assert overview["moved"] == {"new_date": None, "rescheduled": False}
        assert overview["results"] == {"announced_at": None, "grade": None}

        status, given = await call("POST", day.student("s1", "/consents"), day.tokens["s1"],
                                   {"personal_data": True, "elibrary": True})
        assert status == 200, given
        personal, library = given["consents"]["personal_data"], given["consents"]["elibrary"]
        assert personal["choice"] is True and personal["how"] == "page"
        assert library["choice"] is True and library["how"] == "page"
        assert abs(personal["at"] - time.time()) < 30
        status, after = await call("GET", day.url("/readiness"), day.tokens["sec"])
        s1 = next(s for s in after["students"] if s["person_id"] == day.ids["s1"])
        s2 = next(s for s in after["students"] if s["person_id"] == day.ids["s2"])
        assert s1["consent_on_file"] and not s2["consent_on_file"]
        assert "no consent to personal-data processing on file" not in s1["reasons"]

        # The e-library choice changes; personal-data consent stays as first given.
        status, changed = await call("POST", day.student("s1", "/consents"), day.tokens["s1"],
                                     {"elibrary": False})
        assert status == 200, changed
        assert changed["consents"]["elibrary"]["choice"] is False
        assert changed["consents"]["personal_data"] == personal
        entries = await Journal(server.app[DATABASE]).entries(day.day_id)
        said = [e.detail for e in entries if e.kind == "student_consent"]
        assert said == [{"personal_data": True, "elibrary": True, "how": "page",
                         "by": day.ids["s1"]},
                        {"elibrary": False, "how": "page", "by": day.ids["s1"]}], said


async def test_only_the_student_gives_their_consent(config: Config,
                                                    isolated_network: None) -> None:
    async with serving(config) as server:
        day = await make_day(server.app, url_of(server), time.time() + 3 * 86400)
        other = await make_day(server.app, url_of(server), time.time() + 3 * 86400)
        path = day.student("s1", "/consents")
        for who, token in (("the other student", day.tokens["s2"]),
                           ("the secretary", day.tokens["sec"]),
                           ("the chair", day.tokens["chair"]),
                           ("a student of another day", other.tokens["s1"])):
            status, refused = await call("POST", path, token, {"personal_data": True})
            assert status == 403, (who, refused)
            assert refused["error"] in ("not_yours", "role", "other_day"), (who, refused)
            status, refused = await call("GET", day.student("s1", "/overview"), token)
            assert status == 403, (who, refused)
        status, refused = await call("POST", path, "not-a-token", {"personal_data": True})
        assert status == 401, refused
        status, readiness = await call("GET", day.url("/readiness"), day.tokens["sec"])
        assert not any(s["consent_on_file"] for s in readiness["students"]), readiness
        # The secretary keeps the paper consent; the page shows it as paper.
        status, paper = await call("POST", day.student("s2", "/consent"), day.tokens["sec"], {})
        assert status == 200, paper
        status, overview = await call("GET", day.student("s2", "/overview"), day.tokens["s2"])
        assert overview["consents"]["personal_data"]["how"] == "paper", overview


async def test_malformed_consents_are_refused_clearly(config: Config,
                                                      isolated_network: None) -> None:
    async with serving(config) as server:
        day = await make_day(server.app, url_of(server), time.time() + 3 * 86400)
        path, token = day.student("s1", "/consents"), day.tokens["s1"]
        for body, status, says in (
                ({}, 400, "personal_data"),
                ({"elibrary": "yes"}, 400, "elibrary"),
                ({"personal_data": 1}, 400, "personal_data"),
                ({"personal_data": True, "paper": True}, 400, "paper"),
                ({"personal_data": False}, 422, "ask the secretary")):
            got, refused = await call("POST", path, token, body)
            assert got == status, (body, refused)
            assert says in refused["message"], (body, refused)
        got, refused = await call("POST", path, token, raw_json='{"elibrary": true,')
        assert got == 400 and refused["error"] == "malformed", refused
        got, refused = await call("POST", path, token, raw_json='[true]')
        assert got == 400, refused
        status, overview = await call("GET", day.student("s1", "/overview"), token)
        assert overview["consents"] == {"personal_data": None, "elibrary": None}


async def test_the_elibrary_choice_survives_a_restart(tmp_path: Path,
                                                      isolated_network: None) -> None:
    config = make_config(tmp_path)
    async with serving(config) as server:
        day = await make_day(server.app, url_of(server), time.time() + 3 * 86400)
        status, _ = await call("POST", day.student("s1", "/consents"), day.tokens["s1"],
                               {"personal_data": True, "elibrary": False})
        assert status == 200
    async with serving(config) as server:
        day.base = url_of(server)
        status, overview = await call("GET", day.student("s1", "/overview"), day.tokens["s1"])
        assert status == 200, overview
        assert overview["consents"]["elibrary"]["choice"] is False
        assert overview["consents"]["personal_data"]["how"] == "page"


async def test_overview_lists_documents_and_closes_after_the_day(
        config: Config, isolated_network: None) -> None:
    async with serving(config) as server:
        day = await make_day(server.app, url_of(server), time.time() + 3 * 86400)
        pdf = small_pdf("Thesis")
        status, put = await call("PUT", day.student("s1", "/files/thesis"), day.tokens["s1"],
                                 data=pdf)
        assert status == 201, put
        status, overview = await call("GET", day.student("s1", "/overview"), day.tokens["s1"])
        docs = {d["kind"]: d for d in overview["documents"]}
        assert docs["thesis"]["file"]["size"] == len(pdf) and docs["thesis"]["file"]["by_me"]
        assert docs["thesis"]["upload"] and docs["presentation_pdf"]["upload"]
        assert docs["presentation_pdf"]["file"] is None
        assert not docs["supervisor_review"]["upload"]
        assert overview["uploads"]["max_mb"] == config.documents.max_upload_mb

        # A day that is over: uploads and the e-library choice are closed, with why.
        past = await make_day(server.app, url_of(server), time.time() - 2 * 86400)
        status, overview = await call("GET", past.student("s1", "/overview"), past.tokens["s1"])
        assert status == 200, overview
        assert not overview["uploads"]["open"] and "is over" in overview["uploads"]["closed"]
        assert not overview["consent_open"]
        status, refused = await call("POST", past.student("s1", "/consents"), past.tokens["s1"],
                                     {"elibrary": True})
        assert status == 409 and refused["error"] == "consent_closed", refused
        status, given = await call("POST", past.student("s1", "/consents"), past.tokens["s1"],
                                   {"personal_data": True})
        assert status == 200, given
