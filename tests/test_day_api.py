"""Defense days over HTTP: created by the organizer, kept by the secretary (B1, B3)."""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from server.config import ApiConfig
from storage.invites import hash_token
from web_ui.keys import HOSTS

from .conftest import make_config, serving, url_of

ORGANIZER = "organizer-secret-token-for-tests"


def day_body(**changes: Any) -> dict[str, Any]:
    start = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3)
    body: dict[str, Any] = {
        "title": "Защиты <ВКР>", "date": start.date().isoformat(), "start": "10:00",
        "timezone": "Europe/Moscow",
        "commission": {"chair": "Председатель", "members": ["Член 1", "Член 2"],
                       "secretary": "Секретарь"},
        "students": [
            {"name": "Иванов", "thesis_title": "Тема 1", "supervisor": "Руководитель",
             "reviewer": "Рецензент", "consent": True, "consent_date": "2026-01-10"},
            {"name": "Петрова", "thesis_title": "Тема 2", "supervisor": "Руководитель",
             "reviewer": "Рецензент", "timezone": "Asia/Yekaterinburg"},
        ],
        "observers": ["Наблюдатель"],
    }
    body.update(changes)
    return body


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[TestServer]:
    config = dataclasses.replace(make_config(tmp_path),
                                 api=ApiConfig(organizer_token_sha256=hash_token(ORGANIZER)))
    async with serving(config) as server:
        yield server


@pytest.fixture
def base_url(served: TestServer) -> str:
    return url_of(served)


async def call(method: str, url: str, token: str | None = None,
               body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, json=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)


async def create(base_url: str) -> tuple[int, dict[str, str], dict[str, int]]:
    status, answer = await call("POST", f"{base_url}/api/days", ORGANIZER, day_body())
    assert status == 201, answer
    tokens = {i["name"]: i["link"].rsplit("/", 1)[1] for i in answer["invites"]}
    ids = {i["name"]: i["person_id"] for i in answer["invites"]}
    return answer["day_id"], tokens, ids


async def test_the_organizer_creates_a_day_and_the_links_work(base_url: str) -> None:
    assert (await call("POST", f"{base_url}/api/days", None, day_body()))[0] == 401
    assert (await call("POST", f"{base_url}/api/days", "guess", day_body()))[0] == 401
    status, answer = await call("POST", f"{base_url}/api/days", ORGANIZER,
                                day_body(timezone="Mars/Olympus"))
    assert status == 422 and "'timezone'" in answer["message"]
    csv_day = day_body(students_csv="s.csv")
    del csv_day["students"]
    status, answer = await call("POST", f"{base_url}/api/days", ORGANIZER, csv_day)
    assert status == 422 and "only for day files" in answer["message"]

    day_id, tokens, _ = await create(base_url)
    # The office's links outlast the day (R1, R3); the others end with it.
    _, state = await call("GET", f"{base_url}/api/days/{day_id}/state", tokens["Секретарь"])
    assert state["state"]["phase"] == "waiting"
    # Rule P1: the supervisor and the reviewer both students share, and the observer.
    assert set(tokens) == {"Председатель", "Член 1", "Член 2", "Секретарь", "Иванов", "Петрова",
                           "Руководитель", "Рецензент", "Наблюдатель"}
    for name, role in (("Руководитель", "supervisor"), ("Рецензент", "reviewer"),
                       ("Наблюдатель", "observer")):
        status, me = await call("GET", f"{base_url}/api/me", tokens[name])
        assert status == 200 and me["me"]["role"] == role, me
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/j/{tokens['Петрова']}") as r:
            assert r.status == 200
    status, state = await call("GET", f"{base_url}/api/days/{day_id}/state", tokens["Иванов"])
    assert status == 200 and len(state["state"]["queue"]) == 2


async def test_creating_days_over_http_is_off_without_an_organizer_token(
        tmp_path: Path) -> None:
    async with serving(make_config(tmp_path)) as server:
        status, answer = await call("POST", f"{url_of(server)}/api/days", ORGANIZER, day_body())
        assert status == 403 and "day import" in answer["message"]


async def test_the_secretary_keeps_the_roster_and_the_queue_shows_local_times(
        base_url: str) -> None:
    day_id, tokens, ids = await create(base_url)
    sec, member = tokens["Секретарь"], tokens["Член 1"]
    day = f"{base_url}/api/days/{day_id}"
    petrova = f"{day}/students/{ids['Петрова']}"

    status, queue = await call("GET", f"{day}/queue", sec)
    assert status == 200 and not queue["locked"]
    local = {q["name"]: q["sitting_starts_local"] for q in queue["queue"]}
    assert local["Иванов"].endswith("T10:00+03:00")
    assert local["Петрова"].endswith("T12:00+05:00")

    assert (await call("PATCH", petrova, member, {"timezone": "Europe/Moscow"}))[0] == 403
    assert (await call("PATCH", petrova, sec, {"grade": "A"}))[0] == 400
    status, answer = await call("PATCH", petrova, sec, {"timezone": "Nowhere/City"})
    assert status == 422 and "time zone" in answer["message"]
    assert (await call("PATCH", f"{day}/students/{ids['Член 1']}", sec, {"reviewer": "X"}))[0] == 404
    assert (await call("PATCH", petrova, sec, {"timezone": "Asia/Vladivostok"}))[0] == 200
    _, queue = await call("GET", f"{day}/queue", sec)
    assert {q["name"]: q["sitting_starts_local"] for q in queue["queue"]}["Петрова"].endswith(
        "T17:00+10:00")

    # Consent reaches the running procedure at once (B1, clause 6.6).
    _, state = await call("GET", f"{day}/state", sec)
    assert str(ids["Петрова"]) not in state["state"]["consented"]
    status, _ = await call("POST", f"{petrova}/consent", sec, {"consent_at": time.time() + 3600})
    assert status == 422
    assert (await call("POST", f"{petrova}/consent", sec, {}))[0] == 200
    _, state = await call("GET", f"{day}/state", sec)
    assert str(ids["Петрова"]) in state["state"]["consented"]

    assert (await call("POST", f"{petrova}/documents", sec, {"kind": "diary"}))[0] == 400
    assert (await call("POST", f"{petrova}/documents", sec, {"kind": "thesis"}))[0] == 201
    status, report = await call("GET", f"{day}/readiness", sec)
    assert status == 200
    entry = next(s for s in report["students"] if s["name"] == "Петрова")
    assert "thesis" not in entry["missing"] and entry["consent_on_file"]


async def test_the_secretary_adds_a_supervisor_reviewer_or_observer_until_the_sitting_opens(
        base_url: str) -> None:
    day_id, tokens, _ = await create(base_url)
    sec = tokens["Секретарь"]
    people = f"{base_url}/api/days/{day_id}/people"
    assert (await call("POST", people, tokens["Член 1"], {"name": "Гость", "role": "observer"})
            )[0] == 403
    status, answer = await call("POST", people, sec, {"name": "Новый член", "role": "member"})
    assert status == 400
    assert answer["message"].startswith("'role' must be one of supervisor, reviewer, observer")
    status, answer = await call("POST", people, sec, {"name": " ", "role": "observer"})
    assert status == 400 and "'name'" in answer["message"]
    status, answer = await call("POST", people, sec, {"name": "Руководитель", "role": "supervisor"})
    assert status == 409 and "already invited" in answer["message"]

    # The day is hosted (its state was read) before the reviewer is added.
    assert (await call("GET", f"{base_url}/api/days/{day_id}/state", sec))[0] == 200
    status, added = await call("POST", people, sec, {"name": "Второй рецензент",
                                                    "role": "reviewer"})
    assert status == 201, added
    assert set(added) == {"person_id", "role", "name", "link"}
    assert (added["role"], added["name"]) == ("reviewer", "Второй рецензент")
    token = added["link"].rsplit("/j/", 1)[1]
    status, me = await call("GET", f"{base_url}/api/me", token)
    assert status == 200 and me["me"]["id"] == str(added["person_id"])
    assert (await call("GET", f"{base_url}/api/days/{day_id}/state", token))[0] == 200

    status, _ = await call("POST", f"{base_url}/api/days/{day_id}/actions/open-sitting", sec)
    assert status == 200
    status, answer = await call("POST", people, sec, {"name": "Поздний", "role": "observer"})
    assert status == 409 and "has opened" in answer["message"]


async def test_4_3_adjusted_time_is_set_before_the_day_and_shown_in_the_queue(
        served: TestServer) -> None:
    base_url = url_of(served)
    day_id, tokens, ids = await create(base_url)
    sec = tokens["Секретарь"]
    day = f"{base_url}/api/days/{day_id}"
    petrova = f"{day}/students/{ids['Петрова']}"
    for wrong in (150, -1, "10", True):
        status, answer = await call("PATCH", petrova, sec, {"extra_time_percent": wrong})
        assert status == 400 and "extra_time_percent" in answer["message"], answer
    status, queue = await call("GET", f"{day}/queue", sec)  # hosts the day
    assert {q["name"]: q["extra_time_percent"] for q in queue["queue"]} == {
        "Иванов": 0, "Петрова": 0}
    assert (await call("PATCH", petrova, sec, {"extra_time_percent": 25}))[0] == 200
    _, queue = await call("GET", f"{day}/queue", sec)
    assert {q["name"]: q["extra_time_percent"] for q in queue["queue"]}["Петрова"] == 25
    # The hosted procedure has it too: its timers will use it.
    host = served.app[HOSTS].get(day_id)
    assert host is not None
    assert host.loaded.day.extra_time_percent == ((str(ids["Петрова"]), 25.0),)

    assert (await call("POST", f"{day}/actions/open-sitting", sec))[0] == 200
    status, answer = await call("PATCH", petrova, sec, {"extra_time_percent": 50})
    assert status == 409 and answer["clause"] == "4.3", answer
    assert answer["message"] == (f"the sitting of day {day_id} has opened: a student's adjusted"
                                 " time is set before the day (clause 4.3)")
    assert (await call("PATCH", petrova, sec, {"thesis_title": "Новая тема"}))[0] == 200
    _, queue = await call("GET", f"{day}/queue", sec)
    assert {q["name"]: q["extra_time_percent"] for q in queue["queue"]}["Петрова"] == 25
