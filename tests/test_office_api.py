"""The department office's API (web_ui/office_api.py): the days, a day's people with
their link state, a day from an uploaded day file and CSV, and the invite sheet."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pypdf
import pytest
from aiohttp.test_utils import TestServer

from server.config import ApiConfig
from storage.invites import hash_token

from .conftest import make_config, serving, url_of
from .test_day_api import day_body

ORGANIZER = "organizer-secret-token-for-office-tests"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
async def served(tmp_path: Path, isolated_network: None) -> AsyncIterator[TestServer]:
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
            if r.content_type == "application/pdf":
                return r.status, await r.read()
            return r.status, await r.json(content_type=None)


async def create(base_url: str, **changes: Any) -> dict[str, Any]:
    status, answer = await call("POST", f"{base_url}/api/days", ORGANIZER, day_body(**changes))
    assert status == 201, answer
    return dict(answer)


def read_qr(image: Any) -> str:
    """The text of the QR code in `image`. OpenCV's classic detector misses about one
    code in twenty that its ArUco-based one reads (and a phone does): both are tried."""
    for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
        decoded, _, _ = detector.detectAndDecode(image)
        if decoded:
            return str(decoded)
    return ""


def token_of(invite: dict[str, Any]) -> str:
    return str(invite["link"]).rsplit("/j/", 1)[1]


async def test_only_the_organizer_lists_days_and_prints(base_url: str) -> None:
    day = await create(base_url)
    secretary = next(i for i in day["invites"] if i["role"] == "secretary")
    tokens = [token_of(i) for i in day["invites"]]
    for token in (None, "wrong", token_of(secretary)):
        status, answer = await call("GET", f"{base_url}/api/days", token)
        assert status == 401, answer
        for what in ("sheet", "email"):
            status, answer = await call("POST", f"{base_url}/api/days/{day['day_id']}/"
                                        f"invitations/{what}", token, {"tokens": tokens})
            # A working link is known but not allowed; anything else is not known.
            assert status == (403 if token == token_of(secretary) else 401), answer
        status, answer = await call("POST", f"{base_url}/api/days/import", token,
                                    {"day": "title: x"})
        assert status == 401, answer
    status, answer = await call("GET", f"{base_url}/api/days", ORGANIZER)
    assert status == 200
    assert [(d["id"], d["people"], d["students"]) for d in answer["days"]] == [
        (day["day_id"], len(day["invites"]), 2)]


async def test_people_for_the_organizer_and_the_days_secretary_only(base_url: str) -> None:
    day = await create(base_url)
    other = await create(base_url)
    by_role = {i["role"]: i for i in day["invites"]}
    url = f"{base_url}/api/days/{day['day_id']}/people"
    status, answer = await call("GET", url, ORGANIZER)
    assert status == 200, answer
    people = {p["name"]: p for p in answer["people"]}
    assert people["Петрова"]["timezone"] == "Asia/Yekaterinburg"
    assert people["Председатель"]["timezone"] == "Europe/Moscow"
    assert {p["state"] for p in answer["people"]} == {"active"}
    assert all(p["delivered"] == {} for p in answer["people"])
    status, answer = await call("GET", url, token_of(by_role["secretary"]))
    assert status == 200, answer
    other_secretary = next(i for i in other["invites"] if i["role"] == "secretary")
    status, answer = await call("GET", url, token_of(other_secretary))
    assert status == 403 and answer["error"] == "other_day", answer
    status, answer = await call("GET", url, token_of(by_role["chair"]))
    assert status == 403 and answer["error"] == "role", answer


async def test_the_sheet_has_a_page_per_person_with_a_working_qr_link(base_url: str) -> None:
    day = await create(base_url)
    picked = [i for i in day["invites"] if i["role"] in ("student", "chair")]
    status, pdf = await call("POST", f"{base_url}/api/days/{day['day_id']}/invitations/sheet",
                             ORGANIZER, {"tokens": [token_of(i) for i in picked]})
    assert status == 200, pdf
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == len(picked) == 3
    for page, invite in zip(reader.pages, picked, strict=True):
        text = page.extract_text()
        assert invite["name"] in text and invite["link"] in text.replace("\n", ""), text
        image = cv2.imdecode(np.frombuffer(page.images[0].data, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert image is not None
        decoded = read_qr(image)
        assert decoded == invite["link"]
    # The student in Yekaterinburg reads the start in their own time, in Russian.
    petrova = next(i for i, p in enumerate(picked) if p["name"] == "Петрова")
    assert "12:00 (Asia/Yekaterinburg, UTC+05:00)" in reader.pages[petrova].extract_text()
    status, answer = await call("GET", f"{base_url}/api/days/{day['day_id']}/people", ORGANIZER)
    delivered = {p["id"]: p["delivered"] for p in answer["people"]}
    assert all("sheet" in delivered[i["person_id"]] for i in picked)
    assert sum(1 for d in delivered.values() if d) == len(picked)


async def test_the_sheet_refuses_links_that_do_not_work_or_belong_elsewhere(
        base_url: str) -> None:
    day = await create(base_url)
    other = await create(base_url)
    url = f"{base_url}/api/days/{day['day_id']}/invitations/sheet"
    student = next(i for i in day["invites"] if i["role"] == "student")
    status, answer = await call("POST", url, ORGANIZER, {"tokens": [token_of(other["invites"][0])]})
    assert status == 422 and f"is for day {other['day_id']}" in answer["message"], answer
    status, answer = await call("POST", url, ORGANIZER, {"tokens": ["not-a-token"]})
    assert status == 422 and "link 1 of 1 does not work" in answer["message"], answer
    status, answer = await call("POST", url, ORGANIZER, {"tokens": []})
    assert status == 400, answer
    status, answer = await call("POST", url, ORGANIZER, {"tokens": [token_of(student)] * 2})
    assert status == 400 and "a second time" in answer["message"], answer
    # A reissued link: the old token no longer prints, the new one does.
    status, fresh = await call("POST", f"{base_url}/api/days/{day['day_id']}/people/"
                               f"{student['person_id']}/reissue", ORGANIZER, {})
    assert status == 200, fresh
    status, answer = await call("POST", url, ORGANIZER, {"tokens": [token_of(student)]})
    assert status == 422, answer
    status, pdf = await call("POST", url, ORGANIZER, {"tokens": [token_of(fresh)]})
    assert status == 200 and len(pypdf.PdfReader(io.BytesIO(pdf)).pages) == 1


async def test_email_when_mail_is_off_is_refused_and_sends_nothing(base_url: str) -> None:
    day = await create(base_url)
    status, answer = await call("GET", f"{base_url}/api/days/{day['day_id']}/people", ORGANIZER)
    assert answer["mail"]["enabled"] is False
    status, answer = await call("POST", f"{base_url}/api/days/{day['day_id']}/invitations/email",
                                ORGANIZER, {"tokens": [token_of(day["invites"][0])]})
    assert status == 409 and answer["error"] == "mail_off", answer
    assert "mail.enabled" in answer["message"]


async def test_import_of_the_example_day_file_with_its_csv(base_url: str) -> None:
    yaml_text = (EXAMPLES / "defense-day.yaml").read_text(encoding="utf-8")
    csv_text = (EXAMPLES / "students.csv").read_text(encoding="utf-8")
    status, answer = await call("POST", f"{base_url}/api/days/import", ORGANIZER,
                                {"day": yaml_text})
    assert status == 201, answer
    assert sum(1 for i in answer["invites"] if i["role"] == "student") == 3
    # The same day with its students in the uploaded CSV instead.
    head = yaml_text.split("\nstudents:", 1)[0]
    status, answer = await call("POST", f"{base_url}/api/days/import", ORGANIZER,
                                {"day": head, "students": csv_text})
    assert status == 201, answer
    status, days = await call("GET", f"{base_url}/api/days", ORGANIZER)
    assert [d["students"] for d in days["days"]] == [3, 3]


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"day": "title: [unclosed"}, 422, "not valid YAML"),
    ({"day": "students_csv: /etc/passwd\ntitle: x"}, 422, "names a file on the server"),
    ({"day": "- a list"}, 422, "must be a mapping"),
    ({"day": ""}, 400, "'day' must hold the day file"),
    ({"day": "x" * (256 * 1024 + 1)}, 413, "is larger than"),
    ({"day": "title: x", "path": "/etc/passwd"}, 400, "unknown field"),
])
async def test_malformed_uploads_get_clear_errors(base_url: str, body: dict[str, Any],
                                                  status: int, says: str) -> None:
    got, answer = await call("POST", f"{base_url}/api/days/import", ORGANIZER, body)
    assert got == status and says in answer["message"], answer


async def test_an_uploaded_csv_error_names_the_csv_row_not_a_server_path(base_url: str) -> None:
    head = (EXAMPLES / "defense-day.yaml").read_text(encoding="utf-8").split("\nstudents:")[0]
    csv_text = ("name,thesis_title,supervisor,reviewer,consent\n"
                "Иванов,Тема,Лебедев,Орлова,maybe\n")
    status, answer = await call("POST", f"{base_url}/api/days/import", ORGANIZER,
                                {"day": head, "students": csv_text})
    assert status == 422, answer
    assert answer["message"].startswith("students.csv: row 2, column 'consent'"), answer
    assert "/tmp" not in answer["message"] and "day-upload" not in answer["message"]
    status, answer = await call("POST", f"{base_url}/api/days/import", ORGANIZER,
                                {"day": head + "\nstudents: []", "students": csv_text})
    assert status == 422 and "in one of the two" in answer["message"], answer


async def test_the_office_page_is_served_without_caching(base_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/office") as response:
            page = await response.text()
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "/static/office.js" in page
