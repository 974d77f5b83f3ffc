"""An appeal end to end through the HTTP API, with real aiortc peers (section 8):
results, the appeal and its hold, the evidence pack verified file by file and
signature by signature, the appeal sitting (no start with the recording off),
an upheld decision annulling the grade, the repeated defense that needs a member
of the appeal commission present, and no appeal against the repeat."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from defense_room.verify import check_package
from orchestrator.appeals import filing_deadline
from orchestrator.workdays import WorkCalendar
from recordings.archive_store import ArchiveStore
from storage.db import Database
from storage.invites import InviteStore
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .conftest import RunningServer
from .media_helpers import joined
from .procedure_helpers import Api, day_spec
from .signing_helpers import BrowserKey, one_byte_changed, rezip, signed_with_another_key, unzip
from .timing import wait_until

pytestmark = pytest.mark.timeout(240)
NAMES = ["chair", "m1", "m2", "m3", "sec", "s1"]
#: Each person's browser key, by their invite token.
BROWSER_KEYS: dict[str, BrowserKey] = {}


class Http:
    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession()

    async def call(self, method: str, path: str, token: str, body: Any = None
                   ) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body,
                                        headers={"Authorization": f"Bearer {token}"}) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.read()


async def join(server: RunningServer, tokens: list[str]) -> list[RoomClient]:
    return [await joined(server.base_url, token) for token in tokens]


async def defend(api: dict[str, Api], student: str, present: int) -> None:
    """From the opening to the closed sitting's results for one student."""
    sec, chair = api["sec"], api["chair"]
    await wait_until(sec.snapshot, lambda s: len(s["present"]) >= present, "everyone present")
    await sec.act("open-sitting")
    await wait_until(sec.snapshot, lambda s: s["recording"], "recording")
    await sec.act("identity", student=student, accepted=True)
    await chair.act("announce-limits")


async def finish(api: dict[str, Api], student: str) -> None:
    sec = api["sec"]
    for _ in range(6):
        await sec.act("next-phase")
    await sec.act("return-time", return_at=time.time() + 600)
    await sec.act("closed-sitting")
    await wait_until(sec.snapshot, lambda s: not s["recording"], "recording off")
    for who, grade in (("chair", "good"), ("m1", "good"), ("m2", "excellent"),
                       ("m3", "good")):
        await api[who].act("vote", student=student, grade=grade)
    await sec.act("announce-results")
    await wait_until(sec.snapshot, lambda s: s["results_at"] is not None, "results announced")


async def sign_protocol(http: Http, day_id: int, tokens: dict[str, str], ids: dict[str, str],
                        student: str) -> None:
    """Members approve and the chair signs, each with their own browser key (V6);
    `student` is a person id or "day"."""
    path = f"/api/days/{day_id}/protocols/{student}"
    status, draft = await http.call("GET", path, tokens["sec"])
    assert status == 200, draft
    by_id = {}
    for name in ("chair", "m1", "m2", "m3"):
        # One browser key per person: a further one would wait for the secretary (S14).
        key = BROWSER_KEYS.setdefault(tokens[name], BrowserKey())
        status, reg = await http.call("POST", f"/api/days/{day_id}/keys", tokens[name],
                                      {"jwk": key.jwk})
        assert status == 200 and reg["approved"], reg
        by_id[name] = (key, reg["key_id"])
    for missing in draft["missing_approvals"]:
        name = next(n for n in ("m1", "m2", "m3") if ids[n] == str(missing["person_id"]))
        key, key_id = by_id[name]
        body = key.endorse("approve", day_id, student, draft["hash"], person_id=ids[name],
                           key_id=key_id)
        assert (await http.call("POST", path + "/approve", tokens[name], body))[0] == 200
    key, key_id = by_id["chair"]
    body = key.endorse("sign", day_id, student, draft["hash"], person_id=ids["chair"],
                       key_id=key_id)
    status, signed = await http.call("POST", path + "/sign", tokens["chair"], body)
    assert status == 200, signed


async def test_an_appeal_from_results_to_the_repeated_defense(
        server: RunningServer, tmp_path: Path) -> None:
    db = server.app[DATABASE]
    created = await RosterStore(db).create_day(
        day_spec(time.time() + 60, students=1), expires_at=time.time() + 86400, now=time.time())
    day_id = created.day_id
    tokens = dict(zip(NAMES, (i.token for i in created.invites), strict=True))
    ids = {n: str(i.person_id) for n, i in zip(NAMES, created.invites, strict=True)}
    student = ids["s1"]
    http = Http(server.base_url)
    api = {n: Api(server.base_url, day_id, t) for n, t in tokens.items()}
    clients = await join(server, list(tokens.values()))
    try:
        await defend(api, student, present=6)
        await api["sec"].act("start-defense", student=student)
        await finish(api, student)
        await api["sec"].act("close-sitting")
        # The student's link now lasts until the appeal deadline (8.2).
        state = await api["sec"].snapshot()
        deadline = filing_deadline(state["results_at"], "Europe/Moscow", WorkCalendar())
        invites = InviteStore(db)
        await wait_until(lambda: expiry(invites, tokens["s1"]), lambda at: at == deadline,
                         f"the student's link to last until {deadline}", 5)
        await sign_protocol(http, day_id, tokens, ids, student)

        # A1: the student files; a second filing is refused; the recordings are held.
        status, filed = await http.call("POST", f"/api/days/{day_id}/appeals", tokens["s1"],
                                        {"text": "Меня не идентифицировали по паспорту"})
        assert status == 201, filed
        appeal = filed["appeal"]
        status, again = await http.call("POST", f"/api/days/{day_id}/appeals", tokens["s1"],
                                        {"text": "ещё раз"})
        assert status == 409 and again["clause"] == "8.1"
        holds = await ArchiveStore(db).active_holds(day_id)
        assert (day_id, int(student)) in holds
        one = f"/api/appeals/{appeal['appeal_id']}"
        assert (await http.call("POST", one + "/conclusion", tokens["m1"], {"text": "x"}))[0] == 403
        status, _ = await http.call("POST", one + "/conclusion", tokens["chair"],
                                    {"text": "Процедура соблюдена."})
        assert status == 200

        # A2: the evidence pack, every file and signature verified; one byte changed fails.
        status, listed = await http.call("GET", one + "/evidence", tokens["sec"])
        assert status == 200 and listed["journal"]["verified"] is True
        paths = {f["path"] for f in listed["files"]}
        assert {"protocol/protocol.json", "protocol/protocol.pdf", "protocol/signatures.json",
                "conclusion.txt", "journal.json"} <= paths
        status, pack = await http.call("GET", one + "/evidence?format=zip", tokens["chair"])
        assert status == 200
        good = tmp_path / "pack.zip"
        good.write_bytes(pack)
        assert check_package(good) == []
        assert_tampering_is_named(good, tmp_path)

        # A3: the sitting within two working days, invited a day ahead.
        soon = {"sitting_at": time.time() + 3600, "appeal_chair": "Председатель АК",
                "appeal_members": ["Член АК"]}
        status, refused = await http.call("POST", one + "/schedule", tokens["sec"], soon)
        assert status == 409 and refused["clause"] == "8.5"
        status, sitting = await http.call("POST", one + "/schedule", tokens["sec"],
                                          {**soon, "sitting_at": time.time() + 86_460})
        assert status == 201, sitting
        roles = {i["role"]: i["link"].rsplit("/", 1)[1] for i in sitting["invites"]}
        assert set(roles) == {"appeal_chair", "appeal_member", "student", "chair"}
        await http.call("GET", one + "/evidence", roles["appeal_member"])
        assert (await http.call("GET", one, roles["appeal_member"]))[0] == 200
        assert (await http.call("GET", one, tokens["s1"]))[0] == 403
        # The student's own page shows their link to the sitting (8.5).
        status, mine = await http.call("POST", one + "/my-invite", tokens["s1"])
        assert status == 200 and mine["sitting_at"] == sitting["appeal"]["sitting_at"]
        async with http.session.get(mine["link"]) as page:
            assert page.status == 200
        async with http.session.get(f"{server.base_url}/j/{roles['student']}") as page:
            assert page.status == 403  # the link given to the secretary was replaced
    finally:
        for client in clients:
            await client.close()

    # A4: the appeal sitting (without the student, 8.6).
    sitting_day = sitting["day_id"]
    ac = Api(server.base_url, sitting_day, roles["appeal_chair"])
    appeal_clients = await join(server, [roles["appeal_chair"], roles["appeal_member"]])
    try:
        refused_open = await ac.refused("open-appeal")
        assert refused_open.status == 409 and refused_open.body["clause"] == "8.7"
        await ac.act("recording", on=True)
        await wait_until(ac.snapshot, lambda s: s["recording"], "the sitting's recording")
        state = await ac.act("open-appeal")
        for person in state["to_name"]:
            state = await ac.act("name", person=person)
        assert state["phase"] == "appeal_hearing"
        await ac.act("decide", decision="upheld", reasoning="Личность не была установлена")
        await wait_until(ac.snapshot, lambda s: s["decision"] == "upheld", "the decision")
        await wait_until(lambda: http.call("GET", one, roles["appeal_chair"]),
                         lambda answer: answer[1]["appeal"]["decision"] == "upheld",
                         "the appeal to show the decision", 5)
        await ac.act("close-appeal")
    finally:
        for client in appeal_clients:
            await client.close()
        await ac.close()
    entries = await Journal(db).entries(day_id)
    assert any(e.kind == "result_annulled" and e.detail["student"] == int(student)
               for e in entries)
    assert (day_id, int(student)) not in await ArchiveStore(db).active_holds(day_id)
    await check_handover(http, db, day_id, tokens, ids, tmp_path)
    _, mine = await http.call("GET", f"/api/days/{day_id}/appeals", tokens["s1"])
    assert mine["appeals"][0]["decision"] is None  # told on the next working day (8.11)
    assert mine["appeals"][0]["delivery_at"] > time.time()

    # The repeated defense's people keep their e-mail and language.
    roster = RosterStore(db)
    await roster.set_contact(int(student), now=time.time(), by="organizer",
                             email="s1@student.example", language="en")
    await roster.set_contact(int(ids["chair"]), now=time.time(), by="organizer",
                             email="chair@university.example")
    # A5: the repeated defense needs an appeal commission member; no appeal against it.
    status, repeat = await http.call("POST", one + "/repeat", tokens["sec"],
                                     {"starts_at": time.time() + 3600})
    assert status == 201, repeat
    repeat_day = repeat["day_id"]
    contacts = {(p.role.value, p.email, p.language)
                for p in await InviteStore(db).list_people(repeat_day) if p.email}
    assert contacts == {("student", "s1@student.example", "en"),
                        ("chair", "chair@university.example", "ru")}, contacts
    by_role: dict[str, list[str]] = {}
    for invite in repeat["invites"]:
        by_role.setdefault(invite["role"], []).append(invite["link"].rsplit("/", 1)[1])
    rtokens = {"chair": by_role["chair"][0], "m1": by_role["member"][0],
               "m2": by_role["member"][1], "m3": by_role["member"][2],
               "sec": by_role["secretary"][0], "s1": by_role["student"][0]}
    rapi = {n: Api(server.base_url, repeat_day, t) for n, t in rtokens.items()}
    rclients = await join(server, list(rtokens.values()))
    try:
        rstudent = rclients[-1].participant_id
        await defend(rapi, rstudent, present=6)
        refused_start = await rapi["sec"].refused("start-defense", student=rstudent)
        assert refused_start.status == 409 and refused_start.body["clause"] == "8.8"
        rclients += await join(server, [by_role["appeal_member"][0]])
        await wait_until(rapi["sec"].snapshot, lambda s: len(s["present"]) == 7,
                         "the appeal member")
        await rapi["sec"].act("start-defense", student=rstudent)
        await finish(rapi, rstudent)
        status, late = await http.call("POST", f"/api/days/{repeat_day}/appeals", rtokens["s1"],
                                       {"text": "и эту тоже"})
        assert status == 409 and late["clause"] == "8.12"
    finally:
        for client in rclients:
            await client.close()
        for a in (*api.values(), *rapi.values()):
            await a.close()
        await http.session.close()


async def check_handover(http: Http, db: Database, day_id: int, tokens: dict[str, str],
                         ids: dict[str, str], tmp_path: Path) -> None:
    """R3: only a fully signed day is handed over; the package verifies."""
    path = f"/api/days/{day_id}/handover"
    status, refused = await http.call("POST", path, tokens["sec"], {"to": "registrar"})
    assert status == 409 and "day's protocol" in refused["message"]
    await sign_protocol(http, day_id, tokens, ids, "day")
    assert (await http.call("POST", path, tokens["chair"], {"to": "registrar"}))[0] == 403
    for to in ("registrar", "archive"):
        status, record = await http.call("POST", path, tokens["sec"], {"to": to})
        assert status == 201, record
    status, package = await http.call("GET", record["download"], tokens["chair"])
    assert status == 200
    target = tmp_path / "handover.zip"
    target.write_bytes(package)
    assert check_package(target) == []
    contents = unzip(target)
    statement_json = json.loads(contents["statement.json"])
    assert {"statement.pdf", "statement.csv", "protocols/day/signatures.json",
            f"protocols/{ids['s1']}/protocol.pdf"} <= set(contents)
    [row] = statement_json["grades"]
    assert row["grade"] == "good" and row["annulled"] is True
    records = [e.detail for e in await Journal(db).entries(day_id) if e.kind == "handover"]
    assert [r["to"] for r in records] == ["registrar", "archive"]


async def expiry(invites: InviteStore, token: str) -> float:
    return (await invites.verify(token, time.time())).expires_at


def assert_tampering_is_named(good: Path, tmp_path: Path) -> None:
    contents = unzip(good)
    changed = one_byte_changed(contents, "protocol/protocol.pdf")
    assert check_package(rezip(changed, tmp_path / "bad.zip")) == [
        "protocol/protocol.pdf: altered (its SHA-256 differs from the manifest)"]
    # A signature made with another key, with the manifest redone to hide it.
    forged = signed_with_another_key(contents, "protocol/signatures.json", 0)
    problems = check_package(rezip(forged, tmp_path / "forged.zip"))
    assert len(problems) == 2 and "signatures.json[0] (approve by person" in problems[0]
    assert "does not match" in problems[0]
    assert problems[1].startswith("protocol: no valid approval by member")
