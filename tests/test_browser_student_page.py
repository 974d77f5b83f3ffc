"""The student's own page in headless Chromium at phone size (issue 15, item 4).

A student in Vladivostok, defending on a Moscow day, opens their invite link: the
page gives the start in their own time (7 hours ahead of Moscow); they give both
consents (the secretary's readiness report then has their consent), upload a
non-PDF (refused in plain words), then the thesis and the presentation as real
PDFs through the file inputs (DOM.setFileInputFiles), open their thesis again (the
browser saves the very bytes uploaded), and run the device check
without entering the room. The commission, as headless clients, runs the day: the
first student's defense is moved after a failure (7.8), and that student's page
shows the new date; the Vladivostok student's defense starts, so their page is
read-only with the reason; after the results (7.13) it shows their grade.
Screenshots of every step at phone and desktop size go to artifacts/screenshots/
as student-*.png.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import time
import zoneinfo
from pathlib import Path

import aiohttp
import pytest

from orchestrator.documents import NEEDED_TO_DEFEND
from server.config import AbsenceConfig, Config
from storage.roster import CommissionSpec, DaySpec, DocumentSpec, RosterStore, StudentSpec
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .cdp import DESKTOP, PHONE, Cdp, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import RunningServer, make_config
from .procedure_helpers import Api, small_pdf
from .test_browser import only_from_server
from .test_browser_dead_ends import shown, text_of
from .test_procedure_day import connect
from .timing import wait_until

pytestmark = pytest.mark.timeout(420)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TZ = "Europe/Moscow"
STUDENT_TZ = "Asia/Vladivostok"
NAMES = ["chair", "m1", "m2", "m3", "sec", "moved", "me"]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # No grace: a failure lets the chair move a defense at once (7.8).
    return make_config(tmp_path, absence=dataclasses.replace(AbsenceConfig(), grace_minutes=0))


def day(moment: datetime.datetime) -> DaySpec:
    consent = moment - datetime.timedelta(days=10)
    return DaySpec(
        title="Защиты ВКР, группа ИВТ-43", date=moment.date(), start=moment.time(), timezone=TZ,
        norm_control_required=False,
        commission=CommissionSpec(chair="Соколов Андрей",
                                  members=("Кузнецова Елена", "Морозов Дмитрий", "Волкова Ольга"),
                                  secretary="Новикова Мария"),
        students=(
            StudentSpec(name="Иванов Сергей", thesis_title="Сжатие видео на краю сети",
                        supervisor="Лебедев Игорь", reviewer="Орлова Светлана", timezone=TZ,
                        consent_at=consent,
                        documents=tuple(DocumentSpec(k, consent) for k in NEEDED_TO_DEFEND)),
            StudentSpec(name="Петрова Анна", thesis_title="Распознавание речи на мобильных устройствах",
                        supervisor="Лебедев Игорь", reviewer="Орлова Светлана", timezone=STUDENT_TZ,
                        consent_at=None, documents=()),
        ),
    )


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    async def take(self, tab: Tab, name: str) -> None:
        for label, screen in (("desktop", DESKTOP), ("phone", PHONE)):
            self.taken.append(await tab.screenshot(self.folder / f"student-{name}-{label}.png", screen))
        await tab.emulate(PHONE)


async def set_file(tab: Tab, selector: str, path: Path) -> None:
    """Choose ``path`` in the file input at ``selector``, as a person would."""
    document = await tab.send("DOM.getDocument", {"depth": 0})
    node = await tab.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"],
                                                "selector": selector})
    assert node.get("nodeId"), f"no file input at {selector!r}"
    await tab.send("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": node["nodeId"]})


async def reload(tab: Tab) -> None:
    await tab.send("Page.reload", {"ignoreCache": True})
    await tab.wait_for("!!document.querySelector('#home:not([hidden]) .student-docs')",
                       "the student's page after a reload", 30)


async def test_the_students_own_page(server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    moscow = (datetime.datetime.now(zoneinfo.ZoneInfo(TZ)) + datetime.timedelta(minutes=2)).replace(
        second=0, microsecond=0)
    created = await RosterStore(server.app[DATABASE]).create_day(
        day(moscow), expires_at=time.time() + 86400, now=time.time())
    day_id = created.day_id
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    ids = {n: str(i.person_id) for n, i in zip(NAMES, created.invites, strict=True)}
    me, moved = ids["me"], ids["moved"]
    pdfs = {"thesis": tmp_path / "vkr-petrova.pdf", "presentation": tmp_path / "slides.pdf",
            "not-pdf": tmp_path / "vkr.docx"}
    pdfs["thesis"].write_bytes(small_pdf("Thesis of Petrova") * 1)
    pdfs["presentation"].write_bytes(small_pdf("Slides"))
    pdfs["not-pdf"].write_bytes(b"PK\x03\x04 this is a Word file, not a PDF" * 50)

    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    print(f"\nscreenshots: {folder} (copied to {REPO_ARTIFACTS})")
    shots = Shots(folder)
    apis = {n: Api(server.base_url, day_id, tokens[n]) for n in ("sec", "chair", "m1", "m2", "m3")}
    sec_api = apis["sec"]
    clients: dict[str, RoomClient] = {}
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        tabs: dict[str, Tab] = {}
        try:
            phone = tabs["me"] = await cdp.open_tab(f"{server.base_url}/j/{tokens['me']}", PHONE)
            await phone.send("Emulation.setTimezoneOverride", {"timezoneId": STUDENT_TZ})
            await phone.send("DOM.enable")

            # The day card: the start in Vladivostok time, 7 hours after Moscow's.
            local = moscow.astimezone(zoneinfo.ZoneInfo(STUDENT_TZ))
            when = await phone.wait_for(f"{shown('.home-when')} && {text_of('.home-when')}",
                                        "the day card", 30)
            assert f"{local:%H:%M}" in when and STUDENT_TZ in when, (when, f"{local:%H:%M}")
            assert f"{moscow:%H:%M}" not in when, when
            said = await phone.wait_for(f"{shown('.student-queue')} && {text_of('.student-when')}",
                                        "the student's place in the queue")
            assert "2-й из 2" in said, said
            await phone.wait_for(shown(".student-consent .state-missing"), "no consent yet")
            await shots.take(phone, "01-home")

            # Consents: personal data and the e-library; the readiness report has it.
            await phone.click("#consent-save")
            await phone.wait_for(text_of(".student-consent .alert") + ".includes('Отметьте')",
                                 "nothing ticked: the page says so")
            await phone.click("#consent-personal")
            await phone.click("#elibrary-yes")
            await phone.click("#consent-save")
            said = await phone.wait_for(f"{shown('.student-consent-personal')} && "
                                        f"{text_of('.student-consent')}", "the consents on file")
            assert "дано" in said and "на этой странице" in said, said
            assert "«Согласен(на) на размещение»" in said, said
            assert "обратитесь к секретарю" in said, said
            async with aiohttp.ClientSession() as session, session.get(
                    f"{server.base_url}/api/days/{day_id}/readiness",
                    headers={"Authorization": f"Bearer {tokens['sec']}"}) as answer:
                report = await answer.json()
            mine = next(s for s in report["students"] if str(s["person_id"]) == me)
            assert mine["consent_on_file"], mine  # late: the day is today (B1 warns only)
            await shots.take(phone, "02-consents")

            # Documents: a Word file is refused in plain words; two real PDFs go in.
            thesis = ".student-doc[data-kind='thesis']"
            slides = ".student-doc[data-kind='presentation_pdf']"
            await phone.wait_for(shown(f"{thesis} [data-action='upload']"), "the upload button")
            await set_file(phone, f"{thesis} input[type=file]", pdfs["not-pdf"])
            refused = await phone.wait_for(f"{shown(thesis + ' .upload-error')} && "
                                           f"{text_of(thesis + ' .upload-error')}", "the refusal")
            assert "не PDF" in refused, refused
            assert await phone.evaluate(f"document.querySelector(\"{thesis}\").dataset.state") == "missing"
            await shots.take(phone, "03-not-a-pdf")
            await set_file(phone, f"{thesis} input[type=file]", pdfs["thesis"])
            await phone.wait_for(f"document.querySelector(\"{thesis}\")?.dataset.state === 'on-file'",
                                 "the thesis on file")
            said = await phone.wait_for(text_of(f"{thesis} .upload-note"), "the upload's result")
            assert "vkr-petrova.pdf" in said and "Загружено" in said, said
            await set_file(phone, f"{slides} input[type=file]", pdfs["presentation"])
            await phone.wait_for(f"document.querySelector(\"{slides}\")?.dataset.state === 'on-file'",
                                 "the presentation on file")
            line = await phone.evaluate(text_of(f"{thesis} .doc-line"))
            assert "Загружено" in line and "КБ" in line, line
            # "Открыть": the browser saves the very PDF the student uploaded.
            downloads = tmp_path / "downloads"
            downloads.mkdir()
            await phone.send("Page.setDownloadBehavior", {"behavior": "allow",
                                                          "downloadPath": str(downloads)})
            await phone.click(f"{thesis} [data-action='open']")
            saved = await wait_until(lambda: sorted(p.name for p in downloads.iterdir()),
                                     lambda names: names == ["thesis.pdf"], "the thesis downloaded")
            assert (downloads / saved[0]).read_bytes() == pdfs["thesis"].read_bytes()
            assert not await phone.evaluate(shown(f"{thesis} .upload-error"))
            await shots.take(phone, "04-documents")

            # The device check, without entering the room.
            await phone.click("#device-check")
            await phone.wait_for(
                "(() => { const s = [...document.querySelectorAll('.student-check .check')]"
                ".map(e => e.dataset.state); return s.length === 3 && !s.includes('running'); })()",
                "the device check to settle", 40)
            await shots.take(phone, "05-device-check")
            await phone.click("#check-done")
            result = await phone.wait_for(f"{shown('.student-check-result')} && "
                                          f"{text_of('.student-check')}", "the check's result")
            assert "Камера: работает" in result and "Микрофон: работает" in result, result
            assert await phone.evaluate("document.querySelector('.student-check-result').dataset.ok") == "true"
            assert await phone.evaluate("!document.querySelector('#home').hidden"), "left the page"
            room = server.rooms.get(str(day_id))
            assert room is None or me not in room.peers, "the check joined the room"
            await shots.take(phone, "06-device-check-done")

            # The day: everyone joins as headless clients (the student too).
            for who in ("chair", "m1", "m2", "m3", "sec", "moved", "me"):
                clients[who] = await connect(server, tokens[who])
            await wait_until(sec_api.snapshot, lambda s: len(s["present"]) == 7, "everyone present")
            await sec_api.act("open-sitting")
            await wait_until(sec_api.snapshot, lambda s: s["phase"] == "identification",
                             "the recording confirmed")
            for student in (moved, me):
                await sec_api.act("identity", student=student, accepted=True)
            await apis["chair"].act("announce-limits")
            await sec_api.act("start-defense", student=moved)
            # 7.8: two members' links drop; the chair moves that defense to another day.
            await clients.pop("m2").close()
            await clients.pop("m3").close()
            await wait_until(sec_api.snapshot, lambda s: s["failure_since"] is not None, "the failure")
            new_moment = (datetime.datetime.now(zoneinfo.ZoneInfo(TZ)) + datetime.timedelta(days=3)).replace(
                hour=10, minute=30, second=0, microsecond=0)
            await apis["chair"].act("move-defense", student=moved, new_date=new_moment.timestamp(),
                                    failure_description="связь с двумя членами ГЭК прервалась")
            await wait_until(sec_api.snapshot, lambda s: moved in s["moved"], "the defense moved")
            for who in ("m2", "m3"):
                clients[who] = await connect(server, tokens[who])
            await wait_until(sec_api.snapshot, lambda s: s["quorum"]["present"] == 4, "members back")

            other = tabs["moved"] = await cdp.open_tab(f"{server.base_url}/j/{tokens['moved']}", PHONE)
            await other.send("Emulation.setTimezoneOverride", {"timezoneId": TZ})
            card = await other.wait_for(f"{shown('.student-moved')} && {text_of('.student-when')}",
                                        "the new date on the moved student's page", 30)
            assert "перенесена на" in card and "10:30" in card and str(new_moment.day) in card, card
            await shots.take(other, "07-moved")

            # The Vladivostok student's defense starts: their page is read-only, saying why.
            await sec_api.act("start-defense", student=me)
            await reload(phone)
            said = await phone.wait_for(
                f"document.querySelector('.student-docs')?.dataset.uploads === 'closed' && "
                f"{text_of('.student-docs-closed')}", "the documents read-only")
            assert "ваша защита началась" in said and "секретарь" in said, said
            assert await phone.evaluate("document.querySelectorAll('.student-docs input[type=file]').length") == 0
            assert await phone.evaluate("!document.querySelector('#elibrary-yes')")
            assert await phone.evaluate(shown(f"{thesis} [data-action='open']"))
            assert not await phone.evaluate(shown(".student-results"))
            await shots.take(phone, "08-read-only")

            # The results (7.13): the grade on the student's page.
            for _ in range(6):
                await sec_api.act("next-phase")
            await sec_api.act("return-time", return_at=time.time() + 600)
            await sec_api.act("closed-sitting")
            await wait_until(sec_api.snapshot, lambda s: s["phase"] == "closed_sitting", "closed sitting")
            for who, grade in (("chair", "good"), ("m1", "good"), ("m2", "excellent"), ("m3", "good")):
                await apis[who].act("vote", student=me, grade=grade)
            await sec_api.act("announce-results")
            await wait_until(sec_api.snapshot, lambda s: s["results_at"] is not None, "the results")
            await reload(phone)
            grade = await phone.wait_for(f"{shown('.student-results')} && {text_of('.student-results')}",
                                         "the grade on the student's page")
            assert "Ваша оценка: хорошо" in grade, grade
            await shots.take(phone, "09-results")
            await phone.click("#lang")
            grade = await phone.wait_for(f"{text_of('.student-results')}.includes('Your grade: good')"
                                         f" && {text_of('#home')}", "the page in English")
            assert "Uploads are closed" in grade, grade
            await shots.take(phone, "10-results-en")
            await phone.click("#lang")

            only_from_server(server.base_url, tabs.values())
            for who, tab in tabs.items():
                assert not tab.exceptions, (who, tab.exceptions)
        finally:
            for client in clients.values():
                await client.close()
            for api in apis.values():
                await api.close()
            await cdp.close()
    assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
    REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for taken in shots.taken:
        shutil.copy2(taken, REPO_ARTIFACTS / taken.name)
