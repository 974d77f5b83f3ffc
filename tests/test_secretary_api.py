"""The secretary's preparation reads (web_ui/secretary_api.py) and who may do the
secretary's actions (issue 15, items 3 and 5).

A day five days ahead: student 1 has no consent and no reviewer's review on file,
student 2 has everything. ``GET .../preparation`` gives each document's date (the
earliest filing decides lateness), the file on record and the verdict;
``GET .../handovers`` says why the day cannot be handed over yet. A member's token,
and a student's, are refused every one of the secretary's actions, and nothing they
tried changed the day.
"""

from __future__ import annotations

import datetime
import time
import zoneinfo
from typing import Any

import pytest

from orchestrator.documents import DocumentKind
from storage.roster import DaySpec, DocumentSpec, RosterStore, StudentSpec
from web_ui.keys import DATABASE

from .conftest import RunningServer
from .procedure_helpers import COMMISSION, TZ, small_pdf
from .test_appeals import Http

pytestmark = pytest.mark.timeout(60)

#: The invites of `prep_spec`, in the order the roster issues them.
NAMES = ["chair", "m1", "m2", "m3", "sec", "s1", "s2"]
#: What student 1 has on file; student 2 has every kind of `ALL_ON_FILE`.
S1_ON_FILE = (DocumentKind.THESIS, DocumentKind.PRESENTATION_PDF, DocumentKind.PLAGIARISM_REPORT,
              DocumentKind.SUPERVISOR_REVIEW)
ALL_ON_FILE = (*S1_ON_FILE, DocumentKind.REVIEWER_REVIEW)


def prep_spec(days_ahead: int = 5) -> DaySpec:
    """A day `days_ahead` days from now at 10:00 Moscow time; student 1 not ready (no
    consent, no reviewer's review), student 2 ready, both filed ten days before."""
    zone = zoneinfo.ZoneInfo(TZ)
    day = datetime.datetime.now(zone).date() + datetime.timedelta(days=days_ahead)
    filed = datetime.datetime.now(zone) - datetime.timedelta(days=1)

    def student(n: int, consent: bool, kinds: tuple[DocumentKind, ...]) -> StudentSpec:
        return StudentSpec(name=f"Студент {n}", thesis_title=f"Тема {n}", supervisor="Лебедев",
                           reviewer="Орлова", timezone=TZ, consent_at=filed if consent else None,
                           documents=tuple(DocumentSpec(k, filed) for k in kinds))

    return DaySpec(title="Защиты ВКР", date=day, start=datetime.time(10, 0), timezone=TZ,
                   norm_control_required=False, commission=COMMISSION,
                   students=(student(1, False, S1_ON_FILE), student(2, True, ALL_ON_FILE)))


async def create(server: RunningServer, spec: DaySpec) -> tuple[int, dict[str, str], dict[str, str]]:
    created = await RosterStore(server.app[DATABASE]).create_day(
        spec, expires_at=time.time() + 30 * 86400, now=time.time())
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    ids = {n: str(i.person_id) for n, i in zip(NAMES, created.invites, strict=True)}
    return created.day_id, tokens, ids


def by_id(prep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(s["person_id"]): s for s in prep["students"]}


async def test_preparation_and_handovers_for_the_secretary(server: RunningServer) -> None:
    day_id, tokens, ids = await create(server, prep_spec())
    http = Http(server.base_url)
    try:
        status, prep = await http.call("GET", f"/api/days/{day_id}/preparation", tokens["sec"])
        assert status == 200, prep
        students = by_id(prep)
        s1, s2 = students[ids["s1"]], students[ids["s2"]]
        assert s1["can_defend"] is False and s1["consent_on_file"] is False
        assert s1["consent_at"] is None
        assert s1["missing"] == ["reviewer_review"]
        assert set(s1["documents"]) == {k.value for k in S1_ON_FILE}
        thesis = s1["documents"]["thesis"]
        # Recorded on paper (the day file): a date, no file.
        assert thesis["file"] is None and thesis["records"] == 1 and thesis["late"] is False
        assert thesis["first_at"] < prep["deadline"] < time.time() + 5 * 86400
        assert s2["can_defend"] is True and s2["missing"] == [] and s2["consent_on_file"]
        assert (s1["timezone"], s1["extra_time_percent"], s1["reviewer"]) == (TZ, 0.0, "Орлова")

        # An uploaded review: the file on record, its version, and lateness by its date.
        path = f"/api/days/{day_id}/students/{ids['s1']}/files/reviewer_review"
        async with http.session.put(server.base_url + path, data=small_pdf("Review"),
                                    headers={"Authorization": f"Bearer {tokens['sec']}",
                                             "Content-Type": "application/pdf"}) as r:
            uploaded = await r.json()
            assert r.status == 201, uploaded
        status, prep = await http.call("GET", f"/api/days/{day_id}/preparation", tokens["sec"])
        review = by_id(prep)[ids["s1"]]["documents"]["reviewer_review"]
        assert review["file"]["sha256"] == uploaded["sha256"] and review["versions"] == 1
        assert review["late"] is False
        assert by_id(prep)[ids["s1"]]["missing"] == []

        status, handovers = await http.call("GET", f"/api/days/{day_id}/handovers", tokens["sec"])
        assert status == 200, handovers
        assert handovers == {"ready": False, "reason": "the day's protocol is not signed yet",
                             "handovers": []}
    finally:
        await http.session.close()


def secretary_actions(day_id: int, ids: dict[str, str]) -> list[tuple[str, str, Any]]:
    day = f"/api/days/{day_id}"
    student = f"{day}/students/{ids['s1']}"
    return [
        ("GET", f"{day}/preparation", None),
        ("GET", f"{day}/handovers", None),
        ("PATCH", student, {"timezone": "Asia/Tokyo", "extra_time_percent": 50}),
        ("POST", f"{student}/consent", {"consent_at": time.time() - 60}),
        ("POST", f"{student}/documents", {"kind": "reviewer_review"}),
        ("POST", f"{day}/people", {"name": "Гость", "role": "observer"}),
        ("POST", f"{day}/handover", {"to": "archive"}),
        ("POST", f"{day}/actions/queue", {"order": [ids["s2"], ids["s1"]]}),
    ]


@pytest.mark.parametrize("who", ["m1", "chair", "s2"])
async def test_others_cannot_do_the_secretarys_actions(server: RunningServer, who: str) -> None:
    day_id, tokens, ids = await create(server, prep_spec())
    http = Http(server.base_url)
    try:
        _, before = await http.call("GET", f"/api/days/{day_id}/preparation", tokens["sec"])
        _, queue_before = await http.call("GET", f"/api/days/{day_id}/queue", tokens["sec"])
        for method, path, body in secretary_actions(day_id, ids):
            status, answer = await http.call(method, path, tokens[who], body)
            assert status == 403, (who, method, path, status, answer)
            assert isinstance(answer, dict) and answer.get("message"), (method, path, answer)
        # The upload of a file, too.
        path = f"/api/days/{day_id}/students/{ids['s1']}/files/reviewer_review"
        async with http.session.put(server.base_url + path, data=small_pdf("Review"),
                                    headers={"Authorization": f"Bearer {tokens[who]}",
                                             "Content-Type": "application/pdf"}) as r:
            assert r.status == 403, await r.text()
        # Nothing they tried changed the day.
        _, after = await http.call("GET", f"/api/days/{day_id}/preparation", tokens["sec"])
        assert after["students"] == before["students"]
        _, queue_after = await http.call("GET", f"/api/days/{day_id}/queue", tokens["sec"])
        assert [e["student"] for e in queue_after["queue"]] == [
            e["student"] for e in queue_before["queue"]]
        status, people = await http.call("GET", "/api/me", tokens["sec"])
        assert status == 200 and all(p["name"] != "Гость" for p in people["people"])
    finally:
        await http.session.close()


async def test_preparation_of_another_day_is_refused(server: RunningServer) -> None:
    day_id, tokens, _ = await create(server, prep_spec())
    other_id, other_tokens, _ = await create(server, prep_spec(6))
    http = Http(server.base_url)
    try:
        status, answer = await http.call("GET", f"/api/days/{other_id}/preparation", tokens["sec"])
        assert status == 403 and answer["error"] == "other_day", answer
        status, answer = await http.call("GET", f"/api/days/{day_id}/handovers", "not-a-token")
        assert status == 401, answer
    finally:
        await http.session.close()
