"""An appeal from the pages, start to end (section 8; issue 15, item 6).

A small day (the chair, two members, the secretary, one student) runs to its results
and close through the HTTP API with real aiortc peers. Then, in headless Chromium:
the student files an appeal from their personal page (phone), showing the deadline;
the chair writes the conclusion from theirs; the secretary schedules the appeal
sitting from theirs, gets the appeal commission's links, and sees who of the
sitting's people has fetched their link. The student fetches their link from their
page and joins the sitting (phone); the appeal chair joins from a page (desktop) and
an appeal member as an aiortc peer. The appeal chair runs the sitting from the
room's controls: the recording, the opening, each name said aloud, the decision
with its reasoning, the close. The student's pages do not show the decision before
its delivery on the next working day (8.11), in the room or on their page; the
appeal service's clock (the only fake) then moves past the delivery and the
student's page shows it. The secretary schedules the repeated defense. Each step
is saved as a screenshot at phone and desktop size, prefixed ``appeal-``.

Around it: the chair of the state commission, invited to the sitting, goes to it from
their page ("go to the sitting") and lands on the sitting's page as its chair. After
the close, the appeal member approves the sitting's protocol through the API with a
browser-like key and the appeal chair signs it with the button of the room's
protocols panel (8.9). The secretary downloads the evidence pack from their page: a
zip whose manifest lists the appeal's files, each with its hash, signed by the
server key (`defense-room verify`'s check passes).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import aiohttp

import pytest

from defense_room.verify import check_package
from server.appeal_service import AppealService
from storage.roster import CommissionSpec, RosterStore
from web_ui.client import RoomClient
from web_ui.keys import CONFIG, DATABASE, HOSTS

from .cdp import DESKTOP, MAX_SHOT_HEIGHT, PHONE, Cdp, Screen, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import RunningServer
from .media_helpers import joined
from .procedure_helpers import Api, day_spec
from .signing_helpers import BrowserKey, unzip
from .test_browser import enter, only_from_server
from .test_browser_signing import listed_server_key, press, protocols, refresh_protocols, run_the_day
from .timing import wait_until

pytestmark = pytest.mark.timeout(300)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
NAMES = ["chair", "m1", "m2", "sec", "student"]
COMMISSION = CommissionSpec(chair="Соколов Андрей", members=("Кузнецова Елена", "Морозов Дмитрий"),
                            secretary="Новикова Мария")
GROUNDS = "Во время доклада пропала связь, и мне не дали переподключиться."
REASONING = "Связь прерывалась более 15 минут; переподключение не было предоставлено."
CONCLUSION = "Процедура соблюдена, связь была устойчивой."
APPEAL_CHAIR = "Волков Павел"
APPEAL_MEMBER = "Зайцева Ольга"


class Shots:
    """Screenshots of the pages, each at desktop and phone size."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    async def take(self, tab: Tab, name: str, home: Screen, focus: str | None = None) -> None:
        """Both sizes; a page taller than a screenshot may be is shot from `focus` down."""
        for label, screen in (("desktop", DESKTOP), ("phone", PHONE)):
            path = self.folder / f"appeal-{name}-{label}.png"
            await tab.screenshot(path, screen)
            if focus and await tab.evaluate("document.documentElement.scrollHeight") > MAX_SHOT_HEIGHT:
                await tab.evaluate(f"document.querySelector({js(focus)}).scrollIntoView({{block: 'start'}})")
                await asyncio.sleep(0.3)
                shot = await tab.send("Page.captureScreenshot", {"format": "png"})
                path.write_bytes(base64.b64decode(shot["data"]))
            self.taken.append(path)
        await tab.emulate(home)


class ShiftedClock:
    """The wall clock, moved forward by `shift` seconds when the test says so: the
    appeal service's clock, the only fake (the delivery of the decision, 8.11)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


async def appeals(base_url: str, day_id: int, token: str) -> list[dict[str, Any]]:
    """The day's appeals as the secretary reads them."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{base_url}/api/days/{day_id}/appeals",
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()
        listed: list[dict[str, Any]] = (await response.json())["appeals"]
        return listed


async def approve_as_member(base_url: str, sitting: int, token: str) -> int:
    """The appeal member approves the sitting's protocol as their page would: a P-256
    key registered for the sitting, the statement over the draft's hash signed with it.
    Their person id."""
    key = BrowserKey()
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{base_url}/api/days/{sitting}"
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{base}/keys", json={"jwk": key.jwk}) as r:
            registered = await r.json()
            assert r.status == 200, registered
        async with session.get(f"{base}/protocols/appeal") as r:
            draft = await r.json()
            assert r.status == 200, draft
        body = key.endorse("approve", sitting, "appeal", draft["hash"],
                           person_id=registered["person_id"], key_id=registered["key_id"])
        async with session.post(f"{base}/protocols/appeal/approve", json=body) as r:
            answer = await r.json()
            assert r.status == 200, answer
    assert answer["protocol"]["status"] == "approved", answer
    person: int = registered["person_id"]
    return person


async def evidence_manifest(base_url: str, appeal_id: int, token: str) -> dict[str, Any]:
    """The evidence pack's manifest as the API lists it (JSON)."""
    async with aiohttp.ClientSession() as session, session.get(
            f"{base_url}/api/appeals/{appeal_id}/evidence",
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()
        listed: dict[str, Any] = await response.json()
        return listed


async def check_evidence(pack: Path, appeal_id: int, day_id: int, student: str,
                         listed: dict[str, Any], server_key: str) -> None:
    """The downloaded pack is a zip whose manifest lists the appeal's files (the
    defense's protocol, the grounds, the conclusion, the journal), each with its size
    and hash, and is signed by the server key."""
    assert zipfile.is_zipfile(pack), pack
    contents = unzip(pack)
    manifest = json.loads(contents["manifest.json"])
    assert (manifest["appeal"], manifest["day_id"], str(manifest["student"])) == (
        appeal_id, day_id, student), manifest
    paths = [f["path"] for f in manifest["files"]]
    assert set(contents) == {*paths, "manifest.json", "manifest.sig"}, (sorted(contents), paths)
    for entry in manifest["files"]:
        data = contents[entry["path"]]
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"]), entry
    assert {"protocol/protocol.json", "protocol/protocol.pdf", "conclusion.txt", "appeal.json",
            "journal.json"} <= set(paths), paths
    # Recordings only where a segment overlaps the defense: the story's defense, run
    # through the API (run_the_day), is over in a moment and may have none.
    assert all(p.startswith(("protocol/", "documents/", "recordings/")) or "/" not in p
               for p in paths), paths
    assert json.loads(contents["appeal.json"])["text"] == GROUNDS
    assert contents["conclusion.txt"].decode() == CONCLUSION
    # The same files as the API lists (the journal grows by each access to the pack).
    assert [f["path"] for f in listed["files"]] == paths, listed
    assert check_package(pack, server_key) == []


def js(value: object) -> str:
    return json.dumps(value)


async def set_value(tab: Tab, selector: str, value: str) -> None:
    await tab.wait_for(f"!!document.querySelector({js(selector)})", f"the field {selector}")
    await tab.evaluate(f"(() => {{ const e = document.querySelector({js(selector)});"
                       f" e.value = {js(value)}; e.dispatchEvent(new Event('input')); }})()")


async def reopen(tab: Tab, link: str) -> None:
    """Open the invite link again, as a person coming back to their page does."""
    await tab.send("Page.navigate", {"url": link})
    await tab.wait_for("!!document.querySelector('#home:not([hidden]) #enter-room')",
                       "the personal page", 30)


def procedure(what: str) -> str:
    return f"window.roomDebug?.state.procedure?.{what}"


async def test_an_appeal_in_the_pages(server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    started = time.monotonic()
    db, hosts = server.app[DATABASE], server.app[HOSTS]
    clock = ShiftedClock()
    hosts.appeals = AppealService(server.app[CONFIG], db, hosts.host, clock=clock)
    spec = dataclasses.replace(day_spec(time.time() + 60, students=1), commission=COMMISSION)
    created = await RosterStore(db).create_day(spec, expires_at=time.time() + 86400, now=time.time())
    day_id = created.day_id
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    ids = {n: str(i.person_id) for n, i in zip(NAMES, created.invites, strict=True)}
    link = {n: f"{server.base_url}/j/{tokens[n]}" for n in NAMES}
    api = {n: Api(server.base_url, day_id, tokens[n]) for n in NAMES}
    clients: list[RoomClient] = []
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    shots = Shots(folder)
    try:
        clients += [await joined(server.base_url, tokens[n]) for n in NAMES]
        await run_the_day(server, api, day_id, ids["student"])
        for client in clients:
            await client.close()
        clients.clear()

        async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
            assert browser.devtools_url is not None
            cdp = await Cdp.connect(browser.devtools_url)
            tabs: dict[str, Tab] = {}
            try:
                # The student files from their page, before the deadline it shows.
                student = tabs["student"] = await cdp.open_tab(link["student"], PHONE)
                await student.wait_for("!!document.querySelector('#appeal-file')", "the appeal form", 30)
                deadline = await student.evaluate("document.querySelector('#appeal-deadline').textContent")
                assert deadline.startswith("Подать апелляцию можно до "), deadline
                await shots.take(student, "01-student-form", PHONE, ".home-appeal")
                await student.click("#appeal-file")  # empty: refused on the page
                await student.wait_for("window.roomDebug.state.toast?.kind === 'error'", "the empty appeal refused")
                await set_value(student, "#appeal-text", GROUNDS)
                await student.click("#appeal-file")
                await student.wait_for("!!document.querySelector('#appeal-state')", "the appeal filed")
                assert not await student.evaluate("!!document.querySelector('#appeal-file')")
                await shots.take(student, "02-student-filed", PHONE, ".home-appeal")
                [appeal] = await appeals(server.base_url, day_id, tokens["sec"])
                assert appeal["text"] == GROUNDS and appeal["student"] == int(ids["student"])

                # The chair writes the conclusion on the procedure (8.3).
                chair = tabs["chair"] = await cdp.open_tab(link["chair"], DESKTOP)
                await chair.wait_for("!!document.querySelector('.appeal-conclusion-text')", "the conclusion form", 30)
                await shots.take(chair, "03-chair-conclusion-form", DESKTOP)
                await set_value(chair, ".appeal-conclusion-text", CONCLUSION)
                await chair.click(".appeal-conclude")
                await chair.wait_for("!!document.querySelector('.appeal-conclusion')", "the conclusion saved")
                assert not await chair.evaluate("!!document.querySelector('.appeal-conclusion-text')")
                await shots.take(chair, "04-chair-conclusion-written", DESKTOP)

                # The secretary schedules the sitting and gets the commission's links.
                sec = tabs["sec"] = await cdp.open_tab(link["sec"], DESKTOP)
                await sec.wait_for("!!document.querySelector('.appeal-schedule-go')", "the schedule form", 30)
                await set_value(sec, ".appeal-chair-name", APPEAL_CHAIR)
                await set_value(sec, ".appeal-members", APPEAL_MEMBER + "\n")
                await shots.take(sec, "05-secretary-schedule-form", DESKTOP, ".home-appeals")
                await sec.click(".appeal-schedule-go")
                await sec.wait_for("document.querySelectorAll('.appeal-link').length === 2", "the commission's links")
                given = await sec.evaluate(
                    "Object.fromEntries([...document.querySelectorAll('.appeal-links li')]"
                    ".map(li => [li.dataset.role, li.querySelector('.appeal-link').textContent]))")
                assert set(given) == {"appeal_chair", "appeal_member"}, given
                fetched = ("Object.fromEntries([...document.querySelectorAll('.appeal-people tr[data-role]')]"
                           ".map(tr => [tr.dataset.role, tr.dataset.fetched]))")
                assert await sec.evaluate(fetched) == {"appeal_chair": "no", "appeal_member": "no",
                                                       "student": "no", "chair": "no"}
                await shots.take(sec, "06-secretary-scheduled", DESKTOP, ".home-appeals")

                # The student sees the sitting's date and fetches their link to it.
                await reopen(student, link["student"])
                await student.wait_for("!!document.querySelector('#appeal-sitting-link')", "the sitting link button")
                await shots.take(student, "07-student-sitting-scheduled", PHONE, ".home-appeal")
                await student.click("#appeal-sitting-link")
                await student.wait_for("window.roomDebug?.state.me?.me.role === 'student'"
                                       " && window.roomDebug.state.me.day.id !== " + str(day_id),
                                       "the sitting's personal page", 30)
                await sec.click("#appeals-refresh")
                await sec.wait_for("document.querySelector('.appeal-people tr[data-role=student]')"
                                   "?.dataset.fetched === 'yes'", "the student's link shown as fetched")
                await shots.take(sec, "08-secretary-who-has-the-link", DESKTOP, ".home-appeals")

                # The chair of the state commission is invited to the sitting (8.5): their
                # page offers to go to it, and the tab lands on the sitting's page as its chair.
                [scheduled] = await appeals(server.base_url, day_id, tokens["sec"])
                sitting = scheduled["sitting_day_id"]
                assert sitting is not None and sitting != day_id, scheduled
                await reopen(chair, link["chair"])
                await chair.wait_for("!!document.querySelector('.home-appeals .appeal-sitting-link')",
                                     "the chair's way to the sitting", 30)
                await shots.take(chair, "08a-chair-sitting-scheduled", DESKTOP, ".home-appeals")
                await chair.click(".home-appeals .appeal-sitting-link")
                await chair.wait_for("window.roomDebug?.state.me?.me.role === 'chair'"
                                     f" && window.roomDebug.state.me.day.id === {sitting}",
                                     "the sitting's page, as its chair", 30)
                await chair.wait_for("!!document.querySelector('#home:not([hidden]) #enter-room')",
                                     "the sitting's personal page", 30)
                assert await chair.evaluate("location.pathname") == "/room"  # the link kept off the bar
                # The sitting's card says why the chair is there and what is appealed.
                await chair.wait_for(
                    f"document.querySelector('.appeal-sitting-about .appeal-text')?.textContent === {js(GROUNDS)}",
                    "the appeal's text on the chair's sitting page", 30)
                await shots.take(chair, "08b-chair-at-the-sitting-page", DESKTOP)
                await chair.close()

                # The appeal chair's page, then everyone in the sitting's room.
                appeal_chair = tabs["appeal_chair"] = await cdp.open_tab(given["appeal_chair"], DESKTOP)
                await appeal_chair.wait_for("!!document.querySelector('.appeal-sitting-about')", "the sitting's card", 30)
                # The appeal commission reads the appeal it hears on its own page.
                await appeal_chair.wait_for(
                    f"document.querySelector('.appeal-sitting-about .appeal-text')?.textContent === {js(GROUNDS)}",
                    "the appeal's text on the appeal chair's page", 30)
                await shots.take(appeal_chair, "09-appeal-chair-home", DESKTOP)
                await enter(appeal_chair)
                await enter(student)
                clients.append(await joined(server.base_url, given["appeal_member"].rsplit("/", 1)[1]))
                await appeal_chair.wait_for(f"{procedure('present')}?.length === 3", "three at the sitting", 30)
                await appeal_chair.wait_for("!!document.querySelector('.appeal-controls:not([hidden])')", "the controls")
                assert await appeal_chair.evaluate(
                    "!!document.querySelector('.appeal-controls .appeal-why')"), "opening waits for the recording"
                await shots.take(appeal_chair, "10-appeal-chair-waiting", DESKTOP)

                await appeal_chair.click(".appeal-controls [data-action=recording]")
                await appeal_chair.wait_for(procedure("recording"), "the recording on")
                await appeal_chair.click(".appeal-controls [data-action=open-appeal]")
                await appeal_chair.wait_for(f"{procedure('phase')} === 'appeal_naming'", "the naming")
                await shots.take(appeal_chair, "11-appeal-chair-naming", DESKTOP)
                to_name = await appeal_chair.evaluate(f"{procedure('to_name')}")
                assert len(to_name) == 3 and to_name[0] != ids["student"]  # the sitting's own ids
                for n, person in enumerate(to_name, 1):
                    await appeal_chair.click(f".appeal-controls li[data-person='{person}'] [data-action=name]")
                    await appeal_chair.wait_for(f"{procedure('named')}.length === {n}", f"name {n} said aloud")
                await appeal_chair.wait_for(f"{procedure('phase')} === 'appeal_hearing'", "the hearing")
                await student.wait_for("document.querySelector('#room').textContent"
                                       ".includes('Рассмотрение апелляции')", "the phase translated on the phone")
                await shots.take(student, "12-student-at-the-sitting", PHONE)
                await appeal_chair.click(".appeal-controls [data-action=decide]")  # nothing chosen
                await appeal_chair.wait_for("window.roomDebug.state.toast?.kind === 'error'", "the incomplete decision refused")
                assert await appeal_chair.evaluate(f"{procedure('decision')}") is None
                await appeal_chair.click(".appeal-controls input[value=upheld]")
                await set_value(appeal_chair, ".appeal-reasoning", REASONING)
                await shots.take(appeal_chair, "13-appeal-chair-decision-form", DESKTOP)
                await appeal_chair.click(".appeal-controls [data-action=decide]")
                await appeal_chair.wait_for(f"{procedure('decision')} === 'upheld'", "the decision")
                await appeal_chair.click(".appeal-controls [data-action=close-appeal]")
                await appeal_chair.wait_for(f"{procedure('phase')} === 'appeal_closed'", "the close")
                await appeal_chair.wait_for(f"!{procedure('recording')}", "the recording off")
                await shots.take(appeal_chair, "14-appeal-chair-closed", DESKTOP)
                # 8.11: in the room, the student does not see the decision before its delivery.
                await student.wait_for(f"{procedure('phase')} === 'appeal_closed'", "the close on the phone")
                assert await student.evaluate(f"{procedure('decision')}") is None
                assert await student.evaluate(f"{procedure('reasoning')}") is None

                # The sitting's protocol (8.9): the appeal member approves it (an aiortc
                # peer here, so through the API, with a key as a browser makes it), then
                # the appeal chair signs it with the button of the room's protocols panel.
                member = await approve_as_member(server.base_url, sitting,
                                                 given["appeal_member"].rsplit("/", 1)[1])
                await refresh_protocols(appeal_chair, ["appeal"], "button.primary")
                await press(appeal_chair, "appeal", "li.dataset.status === 'signed'")
                appeal_chair_id = int(await appeal_chair.evaluate("window.roomDebug.state.me.me.id"))
                listed = await protocols(server.base_url, sitting, given["appeal_chair"].rsplit("/", 1)[1])
                assert set(listed) == {"appeal"}, listed
                signed = listed["appeal"]
                assert signed["status"] == "signed" and signed["decision"] == "upheld", signed
                assert (signed["signed"]["person_id"], signed["signed"]["name"]) == (
                    appeal_chair_id, APPEAL_CHAIR), signed
                assert [(a["person_id"], a["name"]) for a in signed["approved_by"]] == [
                    (member, APPEAL_MEMBER)], signed
                assert not await appeal_chair.evaluate(
                    "!!document.querySelector('.protocols li[data-which=appeal] button.primary')")
                await shots.take(appeal_chair, "14a-appeal-chair-protocol-signed", DESKTOP, ".protocols")

                # On their page neither, until the next working day.
                await wait_until(lambda: appeals(server.base_url, day_id, tokens["sec"]),
                                 lambda a: a[0]["decision"] == "upheld", "the decision stored")
                await student.send("Page.navigate", {"url": link["student"]})
                await student.wait_for("!!document.querySelector('#appeal-decision-wait')", "the decision's date", 30)
                assert not await student.evaluate("!!document.querySelector('#appeal-decision')")
                assert REASONING not in await student.evaluate("document.body.textContent")
                # Nor does the results card say the grade is annulled (8.8) before then.
                await student.wait_for("!!document.querySelector('.student-results')", "the results card", 30)
                assert await student.evaluate(
                    "document.querySelector('.student-results').dataset.annulled") == "no"
                await shots.take(student, "15-student-decision-not-yet", PHONE, ".home-appeal")
                [stored] = await appeals(server.base_url, day_id, tokens["sec"])
                clock.shift = stored["delivery_at"] - time.time() + 60
                await reopen(student, link["student"])
                await student.wait_for("!!document.querySelector('#appeal-decision')", "the decision delivered")
                assert REASONING in await student.evaluate("document.body.textContent")
                await student.wait_for(
                    "document.querySelector('.student-results')?.dataset.annulled === 'yes'",
                    "the results card saying the grade is annulled")
                await shots.take(student, "16-student-decision-delivered", PHONE, ".home-appeal")

                # The secretary: the decision, and the repeated defense it calls for (8.8).
                await reopen(sec, link["sec"])
                await sec.wait_for("!!document.querySelector('.appeal-repeat-go')", "the repeat form", 30)
                assert await sec.evaluate(fetched) == {"appeal_chair": "no", "appeal_member": "no",
                                                       "student": "yes", "chair": "yes"}
                await sec.click(".appeal-repeat-go")
                await sec.wait_for("document.querySelectorAll('.appeal-link').length >= 5", "the repeat's links")
                [stored] = await appeals(server.base_url, day_id, tokens["sec"])
                assert stored["repeat_day_id"] is not None
                await shots.take(sec, "17-secretary-decided-repeat", DESKTOP, ".home-appeals")

                # The evidence pack (8.3, R2), downloaded from the secretary's page.
                downloads = tmp_path / "downloads"
                downloads.mkdir()
                await sec.send("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
                await sec.click(f".appeal[data-appeal='{appeal['appeal_id']}'] .appeal-evidence")
                [pack] = await wait_until(lambda: [p for p in downloads.iterdir() if p.suffix == ".zip"],
                                          bool, "the evidence pack downloaded", 30)
                assert pack.name == f"appeal-{appeal['appeal_id']}.zip", pack
                await check_evidence(pack, appeal["appeal_id"], day_id, ids["student"],
                                     await evidence_manifest(server.base_url, appeal["appeal_id"], tokens["sec"]),
                                     await listed_server_key(server.base_url, day_id, tokens["sec"]))

                only_from_server(server.base_url, tabs.values())
                for who, tab in tabs.items():
                    assert not tab.exceptions, (who, tab.exceptions)
                for tab in (student, appeal_chair):
                    await tab.evaluate("window.roomDebug?.link?.finish('test over')")
            finally:
                await cdp.close()
        assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
    finally:
        for client in clients:
            await client.close()
        for one in api.values():
            await one.close()
    REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in shots.taken:
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)
    print(f"\n{len(shots.taken)} screenshots in {folder} (copied to {REPO_ARTIFACTS}); "
          f"the story took {time.monotonic() - started:.0f} s")
