"""People's contacts (issue 15, e-mail): an address and a mail language per person, from
the day file (``contacts:``, a student's own keys, the CSV's columns), ``POST
/api/days``, and ``PATCH /api/days/{day}/people/{person}``. Real server, real SQLite."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from server.config import ApiConfig
from server.dayfile import DayFileError, load_day_file, parse_day
from storage.clean_text import TextRefused
from storage.dayspec import ContactSpec, check_email
from storage.invites import hash_token
from web_ui.keys import INVITES

from .conftest import make_config, serving, url_of

ROOT = Path(__file__).resolve().parent.parent
ORGANIZER = "organizer-secret-token-for-contacts"


def day(**changes: Any) -> dict[str, Any]:
    start = datetime.date.today() + datetime.timedelta(days=3)
    body: dict[str, Any] = {
        "title": "Защиты", "date": start.isoformat(), "start": "10:00",
        "timezone": "Europe/Moscow",
        "commission": {"chair": "Председатель", "members": ["Член"], "secretary": "Секретарь"},
        "students": [
            {"name": "Иванов", "thesis_title": "Тема", "supervisor": "Руководитель",
             "reviewer": "Рецензент", "email": "ivanov@student.example", "language": "en"},
            {"name": "Петрова", "thesis_title": "Тема 2", "supervisor": "Руководитель",
             "reviewer": "Рецензент"},
        ],
        "contacts": {"Председатель": {"email": "chair@univ.example"},
                     "Руководитель": {"email": "sup@univ.example", "language": "en"}},
    }
    body.update(changes)
    return body


def test_the_example_day_files_give_the_same_contacts() -> None:
    yaml_day = load_day_file(ROOT / "examples" / "defense-day.yaml")
    csv_day = load_day_file(ROOT / "examples" / "defense-day-csv.yaml")
    for spec in (yaml_day, csv_day):
        assert spec.contact("Смирнова Анна Дмитриевна") == ContactSpec(
            "smirnova.anna@student.univ.example", "en")
        assert spec.contact("Иванов Иван Петрович") == ContactSpec(
            "ivanov.ivan@student.univ.example", "ru")
        assert spec.contact("Соколов Андрей Викторович") == ContactSpec(
            "sokolov@univ.example", "ru")
        assert spec.contact("Попов Артём Евгеньевич") is None


@pytest.mark.parametrize("address", [
    "a@b", "a..b@univ.example", "a b@univ.example", "@univ.example", "a@-univ.example",
    "иван@univ.example", "a@univ.example\nBcc: x@evil.example", "a@[127.0.0.1]",
    "x" * 65 + "@univ.example",
    "a@" + "b" * 250 + ".example", "\"a\"@univ.example", "a@univ.example>, b@c.example",
])
def test_an_address_that_is_not_plain_is_refused_naming_the_person(address: str) -> None:
    with pytest.raises(DayFileError) as caught:
        parse_day(day(contacts={"Председатель": {"email": address}}))
    assert "'Председатель'" in str(caught.value) and "contacts.Председатель.email" in str(
        caught.value)
    with pytest.raises(TextRefused, match="Иванов"):
        check_email(address, "'Иванов'")


@pytest.mark.parametrize("changes, words", [
    ({"contacts": {"Некто": {"email": "x@univ.example"}}}, "not invited"),
    ({"contacts": {"Председатель": {"email": "x@univ.example", "phone": "1"}}}, "phone"),
    ({"contacts": {"Председатель": {"language": "de"}}}, "must be one of ru, en"),
    ({"contacts": {"Иванов": {"email": "x@univ.example"}}}, "given with the student"),
    ({"contacts": ["Председатель"]}, "must be a mapping"),
])
def test_contacts_errors_say_what_is_wrong(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(DayFileError, match=words):
        parse_day(day(**changes))


def test_the_students_csv_takes_email_and_language_columns(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text(
        "name,thesis_title,supervisor,reviewer,email,language\n"
        "Иванов,Тема,Руководитель,Рецензент,ivanov@student.example,en\n"
        "Петрова,Тема 2,Руководитель,Рецензент,,\n", encoding="utf-8")
    (tmp_path / "day.yaml").write_text(
        "title: Защиты\ndate: 2026-06-15\nstart: '10:00'\ntimezone: Europe/Moscow\n"
        "commission: {chair: П, members: [Ч], secretary: С}\nstudents_csv: s.csv\n",
        encoding="utf-8")
    spec = load_day_file(tmp_path / "day.yaml")
    assert spec.contact("Иванов") == ContactSpec("ivanov@student.example", "en")
    assert spec.contact("Петрова") is None
    (tmp_path / "s.csv").write_text(
        "name,thesis_title,supervisor,reviewer,email\n"
        "Иванов,Тема,Руководитель,Рецензент,ivanov@student\n", encoding="utf-8")
    with pytest.raises(DayFileError, match=r"row 2, column 'email' \(of 'Иванов'\)"):
        load_day_file(tmp_path / "day.yaml")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[TestServer]:
    config = dataclasses.replace(make_config(tmp_path),
                                 api=ApiConfig(organizer_token_sha256=hash_token(ORGANIZER)))
    async with serving(config) as server:
        yield server


async def call(method: str, url: str, token: str | None, body: Any = None
               ) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, json=body, headers=headers) as r:
            return r.status, await r.json(content_type=None)


async def test_a_day_created_over_http_keeps_contacts_and_they_can_be_changed(
        served: TestServer) -> None:
    base = url_of(served)
    status, answer = await call("POST", f"{base}/api/days", ORGANIZER, day())
    assert status == 201, answer
    day_id = answer["day_id"]
    ids = {i["name"]: i["person_id"] for i in answer["invites"]}
    tokens = {i["name"]: i["link"].rsplit("/", 1)[1] for i in answer["invites"]}
    invites = served.app[INVITES]
    people = {p.name: p for p in await invites.list_people(day_id)}
    assert (people["Иванов"].email, people["Иванов"].language) == ("ivanov@student.example", "en")
    assert (people["Председатель"].email, people["Председатель"].language) == (
        "chair@univ.example", "ru")
    assert (people["Руководитель"].email, people["Руководитель"].language) == (
        "sup@univ.example", "en")
    assert (people["Петрова"].email, people["Петрова"].language) == (None, "ru")

    person = f"{base}/api/days/{day_id}/people/{ids['Петрова']}"
    # The secretary sets it; the journal says who and that there is an address, not which.
    status, answer = await call("PATCH", person, tokens["Секретарь"],
                                {"email": " petrova@student.example ", "language": "en"})
    assert status == 200, answer
    assert answer == {"person_id": ids["Петрова"], "day_id": day_id, "name": "Петрова",
                      "email": "petrova@student.example", "language": "en"}
    # The organizer clears the address; the language stays.
    status, answer = await call("PATCH", person, ORGANIZER, {"email": None})
    assert (status, answer["email"], answer["language"]) == (200, None, "en")
    journal = await invites.list_journal(day_id)
    changes = [e for e in journal if e.kind == "contact_set" and e.person_id == ids["Петрова"]]
    assert [e.detail for e in changes] == [
        {"has_email": True, "language": "en", "by": ids["Секретарь"]},
        {"has_email": False, "language": "en", "by": "organizer"}]
    assert not any("@" in str(e.detail) for e in journal), "an address reached the journal"

    # Refusals: a clear error, and nothing changed.
    status, answer = await call("PATCH", person, tokens["Секретарь"], {"email": "petrova@"})
    assert status == 400 and "'Петрова'" in answer["message"], answer
    status, answer = await call("PATCH", person, tokens["Секретарь"], {"language": "fr"})
    assert status == 400 and "ru, en" in answer["message"], answer
    status, answer = await call("PATCH", person, tokens["Секретарь"], {"phone": "1"})
    assert status == 400 and "phone" in answer["message"], answer
    status, answer = await call("PATCH", person, tokens["Секретарь"], {})
    assert status == 400, answer
    for who in ("Председатель", "Иванов", "Петрова"):
        status, answer = await call("PATCH", person, tokens[who], {"language": "ru"})
        assert status == 403, (who, answer)
    status, answer = await call("PATCH", person, None, {"language": "ru"})
    assert status == 401, answer
    status, answer = await call("PATCH", f"{base}/api/days/{day_id}/people/99999", ORGANIZER,
                                {"language": "ru"})
    assert status == 404, answer
    after = await invites.person(ids["Петрова"])
    assert after is not None and (after.email, after.language) == (None, "en")

    status, answer = await call("POST", f"{base}/api/days", ORGANIZER,
                                day(contacts={"Председатель": {"email": "no-at-sign"}}))
    assert status == 422 and "'Председатель'" in answer["message"], answer
