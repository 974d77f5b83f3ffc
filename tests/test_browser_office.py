"""The department office's page in headless Chromium (issue 15, item 1).

The office signs in (a wrong token first: the page says so), creates a day from the
form, sees its people, prints the invite sheet (one page per person, each QR code
the person's working link); in a new visit printing again issues fresh links after
a confirmation (the old links are refused from then on); the chair's open room
page ends with "revoked" when the office revokes the chair; a new link for the
student is shown once and works, and its copy button puts it in the clipboard; a day
file and its students CSV uploaded from the page create a second day; the day's view
closes, and signing out forgets the token (the sign-in form again). Screenshots of each step at desktop and phone size go to
artifacts/screenshots/ (office-*.png).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import io
import json
import os
import re
import shutil
import zoneinfo
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import cv2
import numpy as np
import pypdf
import pytest
from aiohttp.test_utils import TestServer

from server.config import ApiConfig
from storage.invites import hash_token
from web_ui.app import STATIC_DIR, create_app

from .cdp import DESKTOP, PHONE, Cdp, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import free_port, url_of
from .test_browser import enter, only_from_server
from .test_mail import LINK_RE, Mailbox, mail_config, smtp_server, text_of
from .test_office_api import read_qr

pytestmark = pytest.mark.timeout(300)

ORGANIZER = "organizer-token-for-the-office-page"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


def test_office_page_loads_nothing_from_the_network() -> None:
    """As the room page's test (tests/test_browser.py): only /static/, relative module
    imports, no other loader; office.js sits beside the page, outside js/."""
    html = (STATIC_DIR / "office.html").read_text(encoding="utf-8")
    for url in re.findall(r"""(?:src|href)=["']([^"']*)""", html):
        assert url.startswith(("/static/", "data:")), url
    css = (STATIC_DIR / "office.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(" not in css
    scripts = [STATIC_DIR / "office.js", *(STATIC_DIR / "js" / "office").glob("*.js"),
               STATIC_DIR / "js" / "strings" / "office.js"]
    for path in scripts:
        js = path.read_text(encoding="utf-8")
        for loader in ("XMLHttpRequest", "importScripts", "https://", "http://", "//cdn",
                       "sendBeacon", "fetch("):
            assert loader not in js, f"{path.name}: {loader}"
        for spec in re.findall(r"""\bimport\s*(?:[^"'();]*?\bfrom\s*)?\(?\s*["']([^"']+)["']""",
                               js):
            assert spec.startswith(("./", "../")), f"{path.name} imports {spec}"
            assert (path.parent / spec).resolve().is_relative_to(STATIC_DIR.resolve())


@dataclasses.dataclass
class Served:
    server: TestServer
    box: Mailbox


@pytest.fixture
async def served(tmp_path: Path, isolated_network: None) -> AsyncIterator[Served]:
    """The server with the organizer token and mail on, to a real SMTP server here."""
    port = free_port()
    with smtp_server(tmp_path) as smtp:
        config = dataclasses.replace(
            mail_config(tmp_path, smtp.port, smtp.ca_file, port),
            api=ApiConfig(organizer_token_sha256=hash_token(ORGANIZER)))
        server = TestServer(create_app(config), host="127.0.0.1", port=port)
        await server.start_server()
        try:
            yield Served(server, smtp.box)
        finally:
            await server.close()


async def fill(tab: Tab, selector: str, value: str) -> None:
    ok = await tab.evaluate(
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return false;"
        f" e.value = {json.dumps(value)}; e.dispatchEvent(new Event('input', {{bubbles: true}}));"
        " e.dispatchEvent(new Event('change', {bubbles: true})); return true; })()")
    assert ok, selector


async def set_file(tab: Tab, selector: str, path: Path) -> None:
    document = await tab.send("DOM.getDocument", {"depth": 0})
    node = await tab.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"],
                                                "selector": selector})
    assert node["nodeId"], selector
    await tab.send("DOM.setFileInputFiles", {"nodeId": node["nodeId"], "files": [str(path)]})


async def sheet_bytes(tab: Tab) -> bytes:
    encoded = await tab.evaluate(
        "(async () => { const blob = window.officeDebug.lastSheet();"
        " const b = new Uint8Array(await blob.arrayBuffer()); let s = '';"
        " for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));"
        " return btoa(s); })()")
    return base64.b64decode(encoded)


def qr_links(pdf: bytes) -> list[str]:
    """The link each page's QR code holds, page by page."""
    links = []
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        image = cv2.imdecode(np.frombuffer(page.images[0].data, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert image is not None
        decoded = read_qr(image)
        links.append(decoded)
    return links


async def me_status(base_url: str, link: str) -> int:
    token = link.rsplit("/j/", 1)[1]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/me",
                               headers={"Authorization": f"Bearer {token}"}) as response:
            return response.status


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def take(self, tab: Tab, name: str) -> None:
        for label, screen in (("desktop", DESKTOP), ("phone", PHONE)):
            await tab.screenshot(self.folder / f"office-{name}-{label}.png", screen)
        await tab.emulate(DESKTOP)


async def test_the_office_prepares_days_from_its_page(served: Served, tmp_path: Path) -> None:
    require_chromium()
    base_url = url_of(served.server)
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    shots = Shots(folder)
    moscow = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Moscow")) + datetime.timedelta(minutes=20)
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        tabs: list[Tab] = []
        try:
            office = await cdp.open_tab(f"{base_url}/office", DESKTOP)
            tabs.append(office)
            # Signing in: a wrong token first.
            await office.wait_for("!!document.querySelector('#office-token')", "the sign-in form")
            await shots.take(office, "01-signin")
            await fill(office, "#office-token", "not-the-token")
            await office.click("#office-signin-go")
            message = await office.wait_for(
                "document.querySelector('#office-signin-error:not([hidden])')?.textContent",
                "the wrong token's message")
            assert "не токен организатора" in message
            await shots.take(office, "02-wrong-token")
            await fill(office, "#office-token", ORGANIZER)
            await office.click("#office-signin-go")
            await office.wait_for("!!document.querySelector('#office-no-days')", "the empty list of days")

            # A day from the form: a second member row added, then a third removed.
            await office.click("#office-new-form")
            await office.wait_for("!!document.querySelector('#office-create-form')", "the form")
            await fill(office, "[name=title]", "Защиты ВКР, группа ПИ-41")
            await fill(office, "[name=date]", moscow.date().isoformat())
            await fill(office, "[name=start]", moscow.strftime("%H:%M"))
            await fill(office, "[name=chair-name]", "Соколов Андрей Викторович")
            await fill(office, "[name=chair-email]", "sokolov@university.example")
            await fill(office, "[name=member-0-name]", "Кузнецова Елена Сергеевна")
            await office.click("#office-add-member")
            await office.click("#office-add-member")
            await fill(office, "[name=member-1-name]", "Морозов Дмитрий Алексеевич")
            await office.click("[data-person=member-2] ~ .office-remove")
            await fill(office, "[name=secretary-name]", "Новикова Мария Андреевна")
            await fill(office, "[name=student-0-name]", "Иванов Иван Петрович")
            await fill(office, "[name=student-0-thesis]", "Распознавание жестов на мобильных устройствах")
            await fill(office, "[name=student-0-timezone]", "Asia/Yekaterinburg")
            await fill(office, "[name=student-0-email]", "ivanov@student.example")
            await fill(office, "[name=student-0-language]", "en")
            await fill(office, "[name=student-0-supervisor-name]", "Лебедев Павел Игоревич")
            await fill(office, "[name=student-0-reviewer-name]", "Орлова Наталья Викторовна")
            # A slip first: a time zone that does not exist. The server says so, nothing is lost.
            await fill(office, "[name=timezone]", "Europe/Moskva")
            await office.click("#office-create-go")
            error = await office.wait_for(
                "document.querySelector('#office-create-error:not([hidden])')?.textContent",
                "the server's error next to the form")
            assert "Europe/Moskva" in error
            assert await office.evaluate("document.querySelector('[name=student-0-name]').value") \
                == "Иванов Иван Петрович"
            assert await office.evaluate("document.querySelectorAll('[data-person^=member-]').length") == 2
            await shots.take(office, "03-form-error")
            await fill(office, "[name=timezone]", "Europe/Moscow")
            await office.click("#office-create-go")
            await office.wait_for("!!document.querySelector('#office-created')", "the new day's people")
            await office.wait_for("document.querySelectorAll('#office-day tbody tr').length === 7",
                                  "seven people (3 commission, secretary, student, supervisor, reviewer)")
            await shots.take(office, "04-people")

            # The sheet right after creating the day: the links are known, no question asked.
            await office.click("#office-sheet")
            await office.wait_for("!!document.querySelector('#office-sheet-download')", "the sheet")
            assert not await office.evaluate("!!document.querySelector('#office-confirm')")
            pdf = await sheet_bytes(office)
            links = qr_links(pdf)
            assert len(links) == 7 and all("/j/" in link for link in links)
            for link in links:
                assert await me_status(base_url, link) == 200
            text = pypdf.PdfReader(io.BytesIO(pdf)).pages[4].extract_text()
            assert "Иванов Иван Петрович" in text and "(Asia/Yekaterinburg, UTC+05:00)" in text
            await shots.take(office, "05-sheet-printed")

            # A new visit: the links are not known here, so printing asks first.
            await office.send("Page.reload", {"ignoreCache": True})
            await office.click(".office-open")
            await office.wait_for("document.querySelectorAll('#office-day tbody tr').length === 7",
                                  "the people again")
            people = json.loads(await office.evaluate(
                "JSON.stringify([...document.querySelectorAll('#office-day tbody tr')]"
                ".map(r => [r.dataset.person, r.querySelector('strong').textContent]))"))
            await office.evaluate("document.querySelector('#office-select-all').click()")  # none
            await office.evaluate(
                "document.querySelectorAll('.office-select')[0].click()")  # the chair only
            await office.click("#office-sheet")
            await office.wait_for("!!document.querySelector('#office-confirm')", "the question")
            await shots.take(office, "06-confirm-reissue")
            await office.click("#office-confirm-go")
            await office.wait_for("!!document.querySelector('#office-sheet-download')", "the new sheet")
            [chair_link] = qr_links(await sheet_bytes(office))
            assert chair_link not in links and await me_status(base_url, chair_link) == 200
            assert await me_status(base_url, links[0]) == 401  # the old one
            chair_id, chair_name = people[0]
            assert chair_name == "Соколов Андрей Викторович"

            # The chair is in the room; the office revokes the chair: the page ends.
            chair = await cdp.open_tab(chair_link, DESKTOP)
            tabs.append(chair)
            await enter(chair, 60)
            await office.click(f"tr[data-person='{chair_id}'] .office-revoke")
            ended = await chair.wait_for(
                "document.querySelector('#ended:not([hidden])')?.textContent", "the revoked page")
            assert "отозвана" in ended
            await shots.take(chair, "07-chair-page-revoked")
            await office.wait_for(f"document.querySelector(\"tr[data-person='{chair_id}']\")"
                                  "?.dataset.state === 'revoked'", "the chair's row revoked")
            await shots.take(office, "07-office-revoked")

            # A new link for the student, shown once.
            student_id = next(pid for pid, name in people if name == "Иванов Иван Петрович")
            await office.click(f"tr[data-person='{student_id}'] .office-reissue")
            new_link = await office.wait_for(
                "document.querySelector('#office-new-link-text')?.value", "the new link")
            assert await me_status(base_url, new_link) == 200
            await shots.take(office, "08-new-link")
            # "Копировать" puts it in the clipboard. The office's window in front (the
            # chair's took the focus, and the clipboard serves the focused page only)
            # and the clipboard allowed for this origin, as a person's browser would.
            await cdp.send("Browser.grantPermissions", {
                "origin": base_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
            await office.send("Page.bringToFront")
            await office.click("#office-copy")
            said = await office.wait_for("document.querySelector('#office-copy').textContent !== 'Копировать'"
                                         " && document.querySelector('#office-copy').textContent",
                                         "the copy button's answer")
            assert said == "Скопировано", said
            assert await office.evaluate("navigator.clipboard.readText()") == new_link
            await shots.take(office, "08b-link-copied")

            # Invites by e-mail to the student (link known here) and the secretary (no
            # address): a fresh link for the secretary first, after the question.
            secretary_id = next(pid for pid, name in people if name == "Новикова Мария Андреевна")
            await office.evaluate("document.querySelector('#office-select-all').click()")
            await office.evaluate("document.querySelector('#office-select-all').click()")  # none
            for pid in (student_id, secretary_id):
                await office.evaluate(f"document.querySelector(\"tr[data-person='{pid}'] .office-select\").click()")
            await office.click("#office-email")
            confirm = await office.wait_for("document.querySelector('#office-confirm')?.textContent",
                                            "the question before new links")
            assert "Новикова Мария Андреевна" in confirm and "Иванов" not in confirm
            await office.click("#office-confirm-go")
            results = await office.wait_for("document.querySelector('#office-mail-results')?.innerText",
                                            "the mail results")
            assert "Иванов Иван Петрович: отправлено" in results, results
            assert "Новикова Мария Андреевна: не отправлено (нет e-mail)" in results, results
            [mail] = served.box.to("ivanov@student.example")
            match = LINK_RE.search(text_of(mail))
            assert match is not None and new_link.endswith(match.group(1))
            assert await me_status(base_url, match.group(0)) == 200
            await office.wait_for(f"document.querySelector(\"tr[data-person='{student_id}']\")"
                                  "?.textContent.includes('e-mail')", "the student's delivery by e-mail")
            await shots.take(office, "09-mailed")

            # English, then a day from its file and CSV.
            await office.click("#lang")
            await office.wait_for("document.documentElement.lang === 'en'", "English")
            await office.click("#office-new-upload")
            yaml_text = (EXAMPLES / "defense-day.yaml").read_text(encoding="utf-8")
            day_file = tmp_path / "day.yaml"
            later = (moscow + datetime.timedelta(days=30)).date().isoformat()
            day_file.write_text(yaml_text.split("\nstudents:")[0].replace("2026-06-15", later) + "\n",
                                encoding="utf-8")
            await set_file(office, "#office-day-file", day_file)
            await set_file(office, "#office-csv-file", EXAMPLES / "students.csv")
            await office.wait_for("document.querySelectorAll('.office-chosen:not([hidden])').length === 2",
                                  "both files chosen")
            await shots.take(office, "10-upload")
            await office.click("#office-import-go")
            await office.wait_for("document.querySelectorAll('#office-days tbody tr').length === 2",
                                  "the second day in the list")
            await office.wait_for("document.querySelectorAll('#office-day tbody tr').length === 13",
                                  "the uploaded day's people")
            await shots.take(office, "11-uploaded-day-en")

            # Back in Russian: the day's view closed, then signing out forgets the token.
            await office.click("#lang")
            await office.wait_for("document.documentElement.lang === 'ru'", "Russian")
            await office.click("#office-close-day")
            await office.wait_for("!document.querySelector('#office-day')", "the day's view closed")
            assert await office.evaluate("document.querySelectorAll('#office-days tbody tr').length") == 2
            await shots.take(office, "12-day-closed")
            token_kept = "sessionStorage.getItem('defense-room-office-token')"
            assert await office.evaluate(token_kept) == ORGANIZER
            assert await office.evaluate("document.querySelector('#office-signout').textContent") == "Выйти"
            await office.click("#office-signout")
            await office.wait_for("!!document.querySelector('#office-token')", "the sign-in form again")
            assert await office.evaluate(token_kept) is None
            assert await office.evaluate("document.querySelector('#office-signout').hidden")
            assert not await office.evaluate("!!document.querySelector('#office-days')")
            await shots.take(office, "13-signed-out")
            # Nothing kept: a reload asks for the token again and calls no API.
            await office.evaluate("window.beforeReload = true")
            asked = len(office.requests)
            await office.send("Page.reload", {"ignoreCache": True})
            await office.wait_for("!window.beforeReload && !!window.officeDebug"
                                  " && !!document.querySelector('#office-token')",
                                  "the sign-in form after a reload")
            await asyncio.sleep(0.5)
            assert await office.evaluate(token_kept) is None
            assert not await office.evaluate("!!document.querySelector('#office-days')")
            assert not [url for url in office.requests[asked:] if "/api/" in url], office.requests[asked:]
            only_from_server(base_url, tabs[1:])
            for url in office.requests:  # the office page: its own address, /static/, /api/
                assert url.startswith(("data:", "blob:", f"{base_url}/office", f"{base_url}/static/",
                                       f"{base_url}/api/")), url
            for tab in tabs:
                assert not tab.exceptions, tab.exceptions
        finally:
            await cdp.close()
    assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
    REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in folder.glob("office-*.png"):
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)
