"""The secretary prepares a day and hands one over from their personal page (issue 15,
items 3 and 5), in headless Chromium.

Before the day (five days ahead) the secretary opens their link and sees student 1
not ready (no consent, no reviewer's review), records the consent received on paper,
records the reviewer's review received on paper three days ago (the readiness table
gives that date) and sees the student turn ready, uploads its scan as a real PDF and
opens it from the readiness table (the window the page opens holds the PDF's bytes); edits
the student's time zone and adjusted time and sees the queue show the sitting's
start on the student's clock; reorders the queue; invites an observer (the link is
shown once). On another day that ran to its close (aiortc peers, the procedure over
the API) and whose protocols are signed, the page first says why it cannot hand over
yet, then hands over to the registrar and the archive; the package downloaded from
the page has the SHA-256 the API journaled. The header's recordings link opens the
recordings page, which lists the day's recording. Each step is saved at phone and
desktop size under artifacts/screenshots/secretary-*.png.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import os
import shutil
import time
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from media.testing import FrameNumberTrack, ToneTrack
from storage.roster import RosterStore
from web_ui.keys import DATABASE

from .cdp import DESKTOP, PHONE, Cdp, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import RunningServer
from .procedure_helpers import TZ, Api, day_spec, small_pdf
from .media_helpers import joined
from .test_appeals import Http, defend, finish, sign_protocol
from .test_browser import only_from_server
from .test_browser_signing import wait_for_final_recordings
from .test_secretary_api import NAMES, create, prep_spec
from .timing import wait_until

pytestmark = pytest.mark.timeout(240)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
#: The invites of `day_spec(..., students=1)`.
DAY_NAMES = ["chair", "m1", "m2", "m3", "sec", "s1"]


async def shots(tab: Tab, folder: Path, name: str) -> None:
    """The page at desktop and phone size, saved and copied to artifacts/, back at desktop."""
    for screen, size in ((PHONE, "phone"), (DESKTOP, "desktop")):
        shot = await tab.screenshot(folder / f"secretary-{name}-{size}.png", screen)
        REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)
    await tab.emulate(DESKTOP)


async def personal_page(tab: Tab) -> None:
    await tab.wait_for("!!document.querySelector('#home:not([hidden]) #enter-room')",
                       "the personal page", 30)
    await tab.wait_for("document.querySelectorAll('#sec-readiness .sec-student').length > 0",
                       "the readiness of the students")


async def choose(tab: Tab, selector: str, value: str) -> None:
    """Pick `value` in a select (or type it into an input) as a person would."""
    await tab.wait_for(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
        f" if (!e || (e.tagName === 'SELECT' && ![...e.options].some(o => o.value === {json.dumps(value)})))"
        f" return false; e.value = {json.dumps(value)};"
        " e.dispatchEvent(new Event('input', {bubbles: true}));"
        " e.dispatchEvent(new Event('change', {bubbles: true})); return true; })()",
        f"{value!r} in {selector}")


async def set_file(tab: Tab, selector: str, path: Path) -> None:
    """Fill a file input as the browser's file chooser would (CDP DOM.setFileInputFiles)."""
    document = await tab.send("DOM.getDocument", {"depth": 0})
    node = await tab.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"],
                                                "selector": selector})
    assert node["nodeId"], selector
    await tab.send("DOM.setFileInputFiles", {"nodeId": node["nodeId"], "files": [str(path)]})


async def press(tab: Tab, selector: str) -> None:
    """Click at `selector` with the mouse, as a person does: a click the browser trusts,
    so the page may open a window (a script's `click()` would be a blocked pop-up)."""
    x, y = await tab.wait_for(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
        " if (!e || e.disabled) return false; e.scrollIntoView({block: 'center'});"
        " const r = e.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;"
        " return e.contains(document.elementFromPoint(x, y)) ? [x, y] : false; })()",
        f"{selector!r} in view, not covered")
    for kind in ("mousePressed", "mouseReleased"):
        await tab.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                    "button": "left", "clickCount": 1})


async def opened_window(tab: Tab, selector: str) -> bytes:
    """Press `selector`, which opens a window on a blob: URL; the bytes it shows.

    The page's policy (connect-src 'self') lets no script read a blob: back, so the new
    window is found among the browser's targets (opened by `tab`) and its document's
    content read through DevTools; the window is closed again."""
    opened: list[dict[str, Any]] = []

    def seen(method: str, params: dict[str, Any], session_id: str | None) -> None:
        info = params.get("targetInfo", {})
        if (method == "Target.targetInfoChanged" and info.get("openerId") == tab.target_id
                and str(info.get("url", "")).startswith("blob:")):
            opened.append(info)

    tab.cdp.on_event(seen)
    await tab.cdp.send("Target.setDiscoverTargets", {"discover": True})
    try:
        await press(tab, selector)
        window = (await wait_until(lambda: opened, bool,
                                   "the window the page opened", 20))[0]
    finally:
        await tab.cdp.send("Target.setDiscoverTargets", {"discover": False})
    session = (await tab.cdp.send("Target.attachToTarget",
                                  {"targetId": window["targetId"], "flatten": True}))["sessionId"]
    try:
        await tab.cdp.send("Page.enable", {}, session)

        async def content() -> bytes:
            tree = await tab.cdp.send("Page.getFrameTree", {}, session)
            frame = tree["frameTree"]["frame"]
            try:
                got = await tab.cdp.send("Page.getResourceContent",
                                         {"frameId": frame["id"], "url": frame["url"]}, session)
            except AssertionError:  # not loaded yet
                return b""
            text = str(got["content"])
            return base64.b64decode(text) if got.get("base64Encoded") else text.encode()

        return await wait_until(content, bool, "the opened window's content", 20)
    finally:
        await tab.cdp.send("Target.closeTarget", {"targetId": window["targetId"]})


def row_state(student: str, item: str) -> str:
    return (f"document.querySelector('#sec-readiness .sec-student[data-student=\"{student}\"]"
            f" tr[data-item=\"{item}\"]')?.dataset.state")


def ready(student: str) -> str:
    return (f"document.querySelector('#sec-readiness .sec-student[data-student=\"{student}\"]')"
            "?.dataset.ready")


async def test_the_secretary_prepares_a_day_and_hands_one_over(
        server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    started = time.monotonic()
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    day_id, tokens, ids = await create(server, prep_spec())
    s1, s2 = ids["s1"], ids["s2"]
    review = tmp_path / "reviewer-review.pdf"
    review.write_bytes(small_pdf("Reviewer's review of thesis 1"))
    http = Http(server.base_url)
    clients: list[Any] = []
    api: dict[str, Api] = {}
    try:
        async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
            assert browser.devtools_url is not None
            cdp = await Cdp.connect(browser.devtools_url)
            tabs: list[Tab] = []
            try:
                tab = await cdp.open_tab(f"{server.base_url}/j/{tokens['sec']}", DESKTOP)
                tabs.append(tab)
                await prepare(tab, http, day_id, tokens, s1, s2, review, folder)
                only_from_server(server.base_url, tabs)
                assert not tab.exceptions, tab.exceptions

                # Another day, run to its close; its secretary hands it over.
                spec = day_spec(time.time() + 60, students=1)
                created = await RosterStore(server.app[DATABASE]).create_day(
                    spec, expires_at=time.time() + 30 * 86400, now=time.time())
                day2 = created.day_id
                tokens2 = {n: i.token for n, i in zip(DAY_NAMES, created.invites, strict=True)}
                ids2 = {n: str(i.person_id) for n, i in zip(DAY_NAMES, created.invites, strict=True)}
                api = {n: Api(server.base_url, day2, t) for n, t in tokens2.items()}
                # The student and the chair send a picture and a tone, so that the
                # defense is recorded and its file built when the sitting closes.
                for who, token in tokens2.items():
                    tracks = [FrameNumberTrack(), ToneTrack()] if who in ("s1", "chair") else None
                    clients.append(await joined(server.base_url, token, tracks))
                await defend(api, ids2["s1"], present=6)
                await api["sec"].act("start-defense", student=ids2["s1"])
                await finish(api, ids2["s1"])
                await api["sec"].act("close-sitting")
                await wait_for_final_recordings(server, day2)
                for client in clients:
                    await client.close()

                tab2 = await cdp.open_tab(f"{server.base_url}/j/{tokens2['sec']}", DESKTOP)
                tabs.append(tab2)
                await hand_over(tab2, http, day2, tokens2, ids2, tmp_path, folder)
                only_from_server(server.base_url, tabs)
                await recordings_page(cdp, tab2, tabs, server.base_url, ids2["s1"], folder)
                for one in tabs:
                    assert not one.exceptions, one.exceptions
            finally:
                await cdp.close()
        assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
    finally:
        for client in clients:
            await client.close()
        for person in api.values():
            await person.close()
        await http.session.close()
    print(f"\nscreenshots: {folder} (copied to {REPO_ARTIFACTS}); "
          f"the test took {time.monotonic() - started:.0f} s")


async def prepare(tab: Tab, http: Http, day_id: int, tokens: dict[str, str], s1: str, s2: str,
                  review: Path, folder: Path) -> None:
    sec = tokens["sec"]
    await personal_page(tab)
    assert await tab.evaluate(ready(s1)) == "false"
    assert await tab.evaluate(ready(s2)) == "true"
    assert await tab.evaluate(row_state(s1, "consent")) == "missing"
    assert await tab.evaluate(row_state(s1, "reviewer_review")) == "missing"
    assert await tab.evaluate(row_state(s1, "thesis")) == "ok"
    # Red for what is missing, in Russian.
    text = await tab.evaluate(
        f"document.querySelector('.sec-student[data-student=\"{s1}\"]').innerText")
    assert "Не готов" in text and "нет" in text, text
    await shots(tab, folder, "01-not-ready")

    # Consent received on paper, dated today.
    await choose(tab, "#sec-consent select", s1)
    await tab.click("#sec-record-consent")
    await tab.wait_for(f"{row_state(s1, 'consent')} === 'ok'", "the consent on file")

    # The reviewer's review came on paper three days ago (the browser's calendar): the
    # table gives that date, in the day's zone, and the student is ready.
    await choose(tab, "#sec-documents select[name=doc-student]", s1)
    await choose(tab, "#sec-documents select[name=doc-kind]", "reviewer_review")
    zone = zoneinfo.ZoneInfo(await tab.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone"))
    paper_day = datetime.datetime.now(zone).date() - datetime.timedelta(days=3)
    await choose(tab, "#sec-documents [name=doc-paper-date]", paper_day.isoformat())
    await tab.click("#sec-record-paper")
    await tab.wait_for(f"{row_state(s1, 'reviewer_review')} === 'ok'", "the paper review on file")
    await tab.wait_for(f"{ready(s1)} === 'true'", "student 1 ready")
    status, prep = await http.call("GET", f"/api/days/{day_id}/preparation", sec)
    mine = next(s for s in prep["students"] if str(s["person_id"]) == s1)
    paper = mine["documents"]["reviewer_review"]
    # Noon of the chosen day on the browser's clock (a date has no time of its own).
    noon = datetime.datetime.combine(paper_day, datetime.time(12, 0), zone)
    assert paper["first_at"] == noon.timestamp() and paper["file"] is None, paper
    assert mine["consent_on_file"] and mine["can_defend"], mine
    when = datetime.datetime.fromtimestamp(paper["first_at"], zoneinfo.ZoneInfo(TZ))
    row = await tab.evaluate(f"document.querySelector('.sec-student[data-student=\"{s1}\"]"
                             " tr[data-item=reviewer_review]').innerText")
    assert f"есть, {when:%d.%m.%Y, %H:%M}" in row and "на бумаге" in row, (row, when)
    await shots(tab, folder, "01b-paper-recorded")

    # Its scan, uploaded as a PDF through the page's file input: the first date stays.
    await set_file(tab, "#sec-doc-file", review)
    await tab.wait_for("document.querySelector('#sec-doc-file').files.length === 1", "the file chosen")
    await tab.click("#sec-upload")
    opener = f".sec-student[data-student=\"{s1}\"] [data-open=reviewer_review]"
    await tab.wait_for(f"!!document.querySelector('{opener}')", "the review offered to open")
    assert await tab.evaluate(row_state(s1, "reviewer_review")) == "ok"
    assert await tab.evaluate(ready(s1)) == "true"
    status, prep = await http.call("GET", f"/api/days/{day_id}/preparation", sec)
    mine = next(s for s in prep["students"] if str(s["person_id"]) == s1)
    on_file = mine["documents"]["reviewer_review"]["file"]
    assert on_file["sha256"] == hashlib.sha256(review.read_bytes()).hexdigest(), on_file
    assert mine["documents"]["reviewer_review"]["first_at"] == noon.timestamp()
    row = await tab.evaluate(f"document.querySelector('.sec-student[data-student=\"{s1}\"]"
                             " tr[data-item=reviewer_review]').innerText")
    assert f"{when:%d.%m.%Y, %H:%M}" in row and "на бумаге" not in row, row
    await shots(tab, folder, "02-ready")
    # "Открыть": the window the page opens shows the very PDF uploaded.
    assert await opened_window(tab, opener) == review.read_bytes()

    # Time zone and adjusted time; the queue shows the start on the student's clock.
    await choose(tab, "#sec-students select[name=edit-student]", s1)
    await tab.wait_for("document.querySelector('#sec-students [name=timezone]').value"
                       " === 'Europe/Moscow'", "the form filled with student 1")
    await choose(tab, "#sec-students [name=timezone]", "Asia/Yekaterinburg")
    await choose(tab, "#sec-students [name=extra_time_percent]", "25")
    await tab.click("#sec-save-student")
    local = (f"(document.querySelector('#sec-queue li[data-student=\"{s1}\"] .sec-local')"
             "?.textContent ?? '')")
    await tab.wait_for(f"{local}.includes('Asia/Yekaterinburg')", "the new zone in the queue")
    shown = await tab.evaluate(local)
    # The day starts at 10:00 in Moscow: 12:00 in Yekaterinburg.
    assert "12:00" in shown and "25%" in shown, shown
    status, queue = await http.call("GET", f"/api/days/{day_id}/queue", sec)
    entry = next(e for e in queue["queue"] if e["student"] == s1)
    assert entry["timezone"] == "Asia/Yekaterinburg" and entry["extra_time_percent"] == 25.0
    # The form keeps showing what was saved.
    assert await tab.evaluate("[document.querySelector('#sec-students [name=timezone]').value,"
                              " document.querySelector('#sec-students [name=extra_time_percent]').value]"
                              ) == ["Asia/Yekaterinburg", "25"]
    await shots(tab, folder, "03-student-edited")

    # The queue reordered: student 1 moves down.
    order = "[...document.querySelectorAll('#sec-queue li')].map(li => li.dataset.student).join(',')"
    assert await tab.evaluate(order) == f"{s1},{s2}"
    await tab.click(f"#sec-queue li[data-student=\"{s1}\"] button[data-move=down]")
    await tab.wait_for(f"{order} === '{s2},{s1}'", "the new order on the page")
    status, queue = await http.call("GET", f"/api/days/{day_id}/queue", sec)
    assert [e["student"] for e in queue["queue"]] == [s2, s1], queue

    # An observer not in the day file: the link is shown once.
    await choose(tab, "#sec-students [name=guest-name]", "Наблюдатель Иванов")
    await choose(tab, "#sec-students [name=guest-role]", "observer")
    await tab.click("#sec-invite")
    link = await tab.wait_for("document.querySelector('#sec-guest-link:not([hidden]) input')?.value",
                              "the observer's link")
    assert link.startswith("http") and "/j/" in link, link
    await shots(tab, folder, "04-queue-and-guest")

    # The English switch re-renders the cards.
    await tab.click("#lang")
    await tab.wait_for("document.querySelector('#sec-queue h3').textContent.startsWith('Order')",
                       "the page in English")
    await shots(tab, folder, "05-english")
    await tab.click("#lang")


async def hand_over(tab: Tab, http: Http, day_id: int, tokens: dict[str, str],
                    ids: dict[str, str], tmp_path: Path, folder: Path) -> None:
    await tab.wait_for("document.querySelector('#sec-handover')?.dataset.ready === 'false'",
                       "the hand-over card, not ready", 30)
    reason = await tab.evaluate("document.querySelector('#sec-handover .sec-handover-status').textContent")
    assert "протокол заседания ещё не подписан" in reason, reason
    assert await tab.evaluate("document.querySelector('#sec-handover .sec-handover-buttons').hidden"), \
        "the hand-over buttons are shown before the protocols are signed"
    await shots(tab, folder, "06-handover-not-signed")

    for which in (ids["s1"], "day"):
        await sign_protocol(http, day_id, tokens, ids, which)
    await tab.click("#sec-handover-refresh")
    await tab.wait_for("document.querySelector('#sec-handover').dataset.ready === 'true'",
                       "the hand-over open once signed")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    await tab.send("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    for to in ("registrar", "archive"):
        await tab.click(f"#sec-handover button[data-to={to}]")
        await tab.wait_for(f"!!document.querySelector('#sec-handover li[data-to={to}]')",
                           f"the hand-over to the {to} listed")
    status, listed = await http.call("GET", f"/api/days/{day_id}/handovers", tokens["sec"])
    assert status == 200 and [h["to"] for h in listed["handovers"]] == ["registrar", "archive"]
    archive = listed["handovers"][1]
    assert str(archive["by"]) == ids["sec"] and archive["by_name"]
    shown = await tab.evaluate("document.querySelector('#sec-handover li[data-to=archive]').innerText")
    assert archive["sha256"] in shown and archive["by_name"] in shown, shown
    await shots(tab, folder, "07-handed-over")

    await tab.click(f"#sec-handover button[data-download=\"{archive['sha256']}\"]")
    done = await wait_until(lambda: [p for p in downloads.iterdir() if p.suffix == ".zip"],
                            lambda found: bool(found), "the package downloaded", 20)
    data = done[0].read_bytes()
    assert hashlib.sha256(data).hexdigest() == archive["sha256"]
    status, package = await http.call("GET", archive["download"], tokens["sec"])
    assert status == 200 and package == data


async def recordings_page(cdp: Cdp, tab: Tab, tabs: list[Tab], base_url: str, student: str,
                          folder: Path) -> None:
    href = await tab.wait_for(
        "(() => { const a = document.querySelector('#recordings-link');"
        " return a && !a.hidden ? a.getAttribute('href') : false; })()", "the recordings link")
    assert href.startswith("/recordings#"), href
    page = await cdp.open_tab(base_url + href, DESKTOP)
    tabs.append(page)
    await page.wait_for(
        f"[...document.querySelectorAll('#students .student')].some(s => s.dataset.id === '{student}')",
        "the student listed", 30)
    # Its recording built once the sitting closed: the files are listed, no error.
    box = f"[...document.querySelectorAll('#students .student')].find(s => s.dataset.id === '{student}')"
    await page.wait_for(f"(() => {{ const b = {box}; return b && !b.querySelector('.files').hidden"
                        " && b.querySelectorAll('.files li').length > 0; })()",
                        "the recording's files listed", 90)
    assert await page.evaluate("document.querySelector('#error').hidden")
    # Its own page, scripts and API, and nothing from anywhere else.
    assert all(url.startswith(base_url + "/") for url in page.requests), page.requests
    await asyncio.sleep(0.2)
    for screen, size in ((PHONE, "phone"), (DESKTOP, "desktop")):
        shot = await page.screenshot(folder / f"secretary-08-recordings-{size}.png", screen)
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)
