"""A defense day with real pages: the secretary, two members and a student join
through their invite links in one headless Chromium (four tabs, fake camera and
microphone) and run the procedure from their pages, as people would.

What it shows (issue 6): everyone decodes everyone's video; the secretary starts
the recording (every page shows it), runs identification, the talk and the
questions, with the timers on the other pages; the student turns a PDF page and
the members' pages show it; the student's socket drops and the page reconnects by
itself, then the page is closed and opened again, within the rules; the closed
sitting hides the commission's media from the student; the members' votes give the
grade. Screenshots of each page at desktop and phone size are saved (the folder is
printed) and copied to artifacts/screenshots/.
"""

from __future__ import annotations

import datetime
import io
import os
import shutil
import time
import zoneinfo
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fpdf import FPDF

from storage.roster import CommissionSpec, DaySpec, RosterStore, StudentSpec
from web_ui.keys import DATABASE

from .cdp import DESKTOP, PHONE, Cdp, Screen, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import RunningServer
from .procedure_helpers import TZ, Api
from .test_browser import (
    end_sessions,
    enter,
    only_from_server,
    prejoin_ready,
    wait_for_video,
)
from .timing import wait_until

pytestmark = pytest.mark.timeout(300)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


def make_pdf(title: str, pages: int) -> bytes:
    """A small PDF whose pages say their number in large type."""
    pdf = FPDF(orientation="L", format=(148, 210))
    pdf.set_auto_page_break(False)
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_fill_color(*((40, 90, 170) if number % 2 else (30, 130, 80)))
        pdf.rect(0, 0, 210, 30, style="F")
        pdf.set_text_color(255, 255, 255)
        pdf.set_font("Helvetica", "B", 22)
        pdf.text(12, 20, title)
        pdf.set_text_color(20, 20, 20)
        pdf.set_font("Helvetica", "B", 64)
        pdf.text(40, 100, f"Slide {number}")
    out = io.BytesIO()
    pdf.output(out)
    return out.getvalue()


def day(starts_at: float) -> DaySpec:
    moment = datetime.datetime.fromtimestamp(starts_at, zoneinfo.ZoneInfo(TZ))
    return DaySpec(
        title="Защиты ВКР, группа ИВТ-41", date=moment.date(),
        start=moment.time().replace(second=0, microsecond=0), timezone=TZ,
        norm_control_required=False,
        commission=CommissionSpec(chair="Соколов Андрей",
                                  members=("Кузнецова Елена", "Морозов Дмитрий"),
                                  secretary="Новикова Мария"),
        students=(StudentSpec(
            name="Петрова Анна", thesis_title="Распознавание речи на мобильных устройствах",
            supervisor="Лебедев Игорь", reviewer="Орлова Светлана", timezone="Asia/Novosibirsk",
            consent_at=moment - datetime.timedelta(days=10), documents=()),),
    )


class Shots:
    """Screenshots of the pages, each at desktop and phone size."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[Path] = []

    async def take(self, tab: Tab, name: str, home: Screen) -> None:
        for label, screen in (("desktop", DESKTOP), ("phone", PHONE)):
            self.taken.append(await tab.screenshot(self.folder / f"{name}-{label}.png", screen))
        await tab.emulate(home)


async def test_a_defense_day_in_the_pages(server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    started = time.monotonic()
    created = await RosterStore(server.app[DATABASE]).create_day(
        day(time.time() + 60), expires_at=time.time() + 86400, now=time.time())
    day_id = created.day_id
    tokens = dict(zip(["chair", "m1", "m2", "sec", "student"],
                      [i.token for i in created.invites], strict=True))
    ids = dict(zip(["chair", "m1", "m2", "sec", "student"],
                   [str(i.person_id) for i in created.invites], strict=True))
    student = ids["student"]
    room_id = str(day_id)
    await upload_documents(server.base_url, day_id, tokens["sec"], student)

    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    print(f"\nscreenshots: {folder} (copied to {REPO_ARTIFACTS})")
    shots = Shots(folder)
    sec_api = Api(server.base_url, day_id, tokens["sec"])
    screens = {"sec": DESKTOP, "m1": DESKTOP, "m2": DESKTOP, "student": PHONE}
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        tabs: dict[str, Tab] = {}
        try:
            for who in ("sec", "m1", "m2", "student"):
                tabs[who] = await cdp.open_tab(f"{server.base_url}/j/{tokens[who]}", screens[who])
                await prejoin_ready(tabs[who])
            # The pre-join check: preview, devices, the connection against P5.
            await tabs["student"].wait_for(
                "document.querySelector('[data-check=network]')?.dataset.state === 'good'",
                "the connection check")
            await tabs["student"].wait_for(
                "document.querySelector('[data-check=camera]')?.dataset.state === 'good'", "the camera")
            await shots.take(tabs["student"], "01-student-prejoin", PHONE)
            await shots.take(tabs["sec"], "01-secretary-prejoin", DESKTOP)
            for who in ("sec", "m1", "m2", "student"):
                await enter(tabs[who])

            everyone = [ids[w] for w in ("sec", "m1", "m2", "student")]
            await wait_for_video(server.rooms, room_id, browser,
                                 {v: [p for p in everyone if p != v] for v in everyone})
            for tab in tabs.values():
                assert await tab.evaluate("window.roomDebug.grid.count") == 3

            # The recording, shown to everyone with the privacy notice.
            sec = tabs["sec"]
            await sec.wait_for("!!document.querySelector('[data-action=\"open-sitting\"]')", "open")
            await sec.click("[data-action='open-sitting']")
            for who, tab in tabs.items():
                await tab.wait_for("!document.getElementById('rec-pill').hidden"
                                   " && !document.getElementById('rec-notice').hidden",
                                   f"the recording indicator on the {who} page")
            notice = await tabs["student"].evaluate("document.getElementById('rec-notice').textContent")
            assert "записыва" in notice and "7.11" in notice, notice

            # Identification: the student sees what to do; the secretary confirms.
            await tabs["student"].wait_for(
                "document.querySelector('.instructions')?.textContent.includes('паспорт')",
                "the identification steps on the student's phone")
            await sec.wait_for("!document.querySelector('.identity').hidden", "the identity panel")
            await shots.take(sec, "02-secretary-identification", DESKTOP)
            await shots.take(tabs["student"], "02-student-identification", PHONE)
            await sec.evaluate("document.querySelector('.identity-comment').value = 'паспорт 45 01 ...'")
            await sec.click("[data-action='identity-accept']")
            await wait_until(sec_api.snapshot, lambda s: s["statuses"][student] == "identified",
                             "identified")
            await sec.click("[data-action='announce-limits']")
            await sec.wait_for("!!document.querySelector('[data-action=\"start-defense\"]')", "start")
            await sec.click("[data-action='start-defense']")
            state = await wait_until(sec_api.snapshot, lambda s: s["phase"] == "talk", "the talk")
            assert state["current_student"] == student

            # The timers on the other pages: what is left of the talk, counting down.
            for who in ("m1", "m2", "student"):
                left = await tabs[who].wait_for(
                    "(() => { const p = document.querySelector('.status-panel');"
                    " return p?.dataset.phase === 'talk'"
                    " && /^\\d+:\\d\\d$/.test(p.querySelector('.timer-value').textContent)"
                    " && Number(p.dataset.secondsLeft); })()", f"the talk timer on the {who} page")
                assert 540 < left <= 600, (who, left)

            # The presentation: the student turns to page 2, the members see page 2.
            for who in ("m1", "m2"):
                await tabs[who].wait_for(
                    "document.querySelector('.presentation canvas')?.dataset.renderedPage === '1'",
                    f"slide 1 on the {who} page")
            await tabs["student"].wait_for(
                "document.querySelector('.presentation .turn.primary')?.disabled === false", "the turner")
            await tabs["student"].click(".presentation .turn.primary")
            for who in ("m1", "m2", "sec"):
                await tabs[who].wait_for(
                    "document.querySelector('.presentation canvas')?.dataset.renderedPage === '2'",
                    f"slide 2 on the {who} page")
            await shots.take(tabs["m1"], "03-member-talk", DESKTOP)
            await shots.take(sec, "03-secretary-talk", DESKTOP)
            await shots.take(tabs["student"], "03-student-talk", PHONE)

            # A member opens the thesis from the documents panel (drawn by pdf.js).
            await tabs["m1"].click(".documents button.link")
            await tabs["m1"].wait_for(
                "document.querySelector('dialog.doc-viewer')?.open"
                " && document.querySelector('.doc-page')?.dataset.renderedPage === '1'",
                "the thesis open on the member's page")
            await tabs["m1"].screenshot(folder / "03-member-thesis-desktop.png")
            await tabs["m1"].evaluate("document.querySelector('dialog.doc-viewer').close()")

            # The student's socket drops: the page says so and comes back by itself.
            await tabs["student"].evaluate("window.roomDebug.link.ws.close()")
            await tabs["student"].wait_for(
                "window.roomDebug.state.link.phase === 'reconnecting'"
                " && !document.getElementById('link-banner').hidden", "the reconnecting banner", 5)
            await tabs["student"].screenshot(folder / "04-student-reconnecting-phone.png")
            await tabs["student"].wait_for("window.roomDebug.state.link.phase === 'connected'",
                                           "the page to reconnect by itself", 30)

            # Then the page is closed (the phone's browser gone) and opened again.
            await tabs.pop("student").close()
            await wait_until(sec_api.snapshot, lambda s: student not in s["present"],
                             "the student gone")
            await sec.wait_for(
                f"document.querySelector('.roster-list li[data-person=\"{student}\"]')"
                "?.classList.contains('away') && !!document.querySelector('.controls .alert')",
                "the student shown away on the console")
            await sec.click("[data-action='next-phase']")  # the questions go on meanwhile
            await wait_until(sec_api.snapshot, lambda s: s["phase"] == "questions", "the questions")
            tabs["student"] = await cdp.open_tab(f"{server.base_url}/j/{tokens['student']}", PHONE)
            await enter(tabs["student"])
            state = await wait_until(sec_api.snapshot, lambda s: student in s["present"],
                                     "the student back")
            assert state["statuses"][student] == "defending" and state["phase"] == "questions"
            await wait_for_video(server.rooms, room_id, browser, {
                student: [ids["sec"], ids["m1"], ids["m2"]], ids["m1"]: [student]})
            await tabs["student"].wait_for(
                "document.querySelector('.status-panel')?.dataset.phase === 'questions'"
                " && document.querySelector('.presentation canvas')?.dataset.renderedPage === '2'",
                "the reopened page at the questions, on slide 2")

            await sec.evaluate("document.querySelector('.question-text').value = 'Почему выбран этот метод?'")
            await sec.click("[data-action='question']")
            for phase in ("supervisor", "review", "answer", "final_word", "between_defenses"):
                await sec.click("[data-action='next-phase']")
                await wait_until(sec_api.snapshot, partial(in_phase, phase), phase)
                await sec.wait_for(
                    f"document.querySelector('.status-panel')?.dataset.phase === '{phase}'", phase)
            await sec.click("[data-action='return-time']")
            await wait_until(sec_api.snapshot, lambda s: s["return_at"] is not None,
                             "the return time")

            # The closed sitting: the student waits outside and gets no commission media.
            await sec.click("[data-action='closed-sitting']")
            await wait_until(sec_api.snapshot,
                             lambda s: s["phase"] == "closed_sitting" and not s["recording"],
                             "the closed sitting, not recorded")
            await tabs["student"].wait_for(
                "window.roomDebug.state.lobby && !document.querySelector('.lobby').hidden"
                " && window.roomDebug.grid.count === 0", "the lobby on the student's phone")
            room = server.rooms.get(room_id)
            assert room is not None and room.peers[student].subscriptions() == {}
            await tabs["student"].wait_for("document.getElementById('rec-pill').hidden",
                                           "the recording shown off (7.12) on the student's phone")
            for who in ("m1", "m2"):
                await tabs[who].wait_for(
                    f"window.roomDebug.grid.count === 2 && !document.querySelector('.vote').hidden"
                    f" && !!document.querySelector('.vote-student[data-student=\"{student}\"]')",
                    f"the vote on the {who} page, without the student's video")
            await shots.take(tabs["m1"], "05-member-vote", DESKTOP)
            await shots.take(tabs["student"], "05-student-lobby", PHONE)
            await shots.take(sec, "05-secretary-closed-sitting", DESKTOP)
            for who in ("m1", "m2"):
                await tabs[who].click(f".vote-student[data-student='{student}'] button[data-grade='excellent']")
                await tabs[who].wait_for(
                    "document.querySelector('button[data-grade=\"excellent\"]')?.classList.contains('chosen')",
                    f"the {who} vote marked")

            # The results, recorded again, reach the student's phone.
            await sec.click("[data-action='announce-results']")
            await wait_until(sec_api.snapshot, lambda s: s["phase"] == "results" and s["recording"],
                             "results")
            grade = await tabs["student"].wait_for(
                f"!window.roomDebug.state.lobby && document.querySelector"
                f"('.results li[data-student=\"{student}\"]')?.dataset.grade",
                "the grade on the student's phone")
            assert grade == "excellent"
            await tabs["student"].wait_for("window.roomDebug.grid.count === 3", "the commission back")
            await shots.take(tabs["student"], "06-student-results", PHONE)
            await shots.take(sec, "06-secretary-results", DESKTOP)
            await tabs["m2"].wait_for(
                "document.querySelectorAll('.protocols li[data-which]').length >= 2", "the protocols")
            await shots.take(tabs["m2"], "06-member-results-protocols", DESKTOP)

            # Russian by default, English on request (and remembered on the device).
            await tabs["m2"].click("#lang")
            await tabs["m2"].wait_for("document.querySelector('.bar h1').textContent === 'Thesis defense'"
                                      " && document.documentElement.lang === 'en'", "the English page")
            await shots.take(tabs["m2"], "07-member-english", DESKTOP)
            await tabs["m2"].click("#lang")
            await tabs["m2"].wait_for("document.documentElement.lang === 'ru'", "Russian again")

            # Both members approve the student's protocol from their pages, each approval
            # signed with the browser's own key (V6); the chair would sign it last.
            for who in ("m1", "m2"):
                await tabs[who].click("#room .protocols .panel-head button")  # refresh
                await tabs[who].wait_for(
                    f"!!document.querySelector('.protocols li[data-which=\"{student}\"] button.primary')",
                    f"the approve button on the {who} page")
                await tabs[who].click(f".protocols li[data-which='{student}'] button.primary")
                # Each page lists what the server had when it reloaded after its own
                # approval: m2 sees both only if m1's was in first.
                await tabs[who].wait_for(
                    f"(li => !!li && !li.querySelector('button.primary'))"
                    f"(document.querySelector('.protocols li[data-which=\"{student}\"]'))",
                    f"the approval of {who} recorded")
            await tabs["m2"].wait_for(
                f"document.querySelector('.protocols li[data-which=\"{student}\"]')?.dataset.status"
                " === 'approved'", "the student's protocol approved by both members")

            only_from_server(server.base_url, tabs.values())
            for who, tab in tabs.items():
                assert not tab.exceptions, (who, tab.exceptions)
            await end_sessions(server.rooms, room_id, tabs.values())
        finally:
            await cdp.close()
            await sec_api.close()
    assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
    REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in folder.glob("*.png"):
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)
    print(f"{len(list(folder.glob('*.png')))} screenshots; the story took "
          f"{time.monotonic() - started:.0f} s")


def in_phase(phase: str, state: dict[str, Any]) -> bool:
    return bool(state["phase"] == phase)


async def upload_documents(base_url: str, day_id: int, token: str, student: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/pdf"}
    async with aiohttp.ClientSession() as session:
        for kind, title, pages in (("presentation_pdf", "Speech recognition on phones", 3),
                                   ("thesis", "Thesis", 2), ("supervisor_review", "Review", 1),
                                   ("reviewer_review", "Review", 1)):
            async with session.put(f"{base_url}/api/days/{day_id}/students/{student}/files/{kind}",
                                   data=make_pdf(title, pages), headers=headers) as response:
                assert response.status == 201, await response.text()
