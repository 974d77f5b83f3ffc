"""The ways out of a stranded day (issue 13), driven through real pages in headless
Chromium: the chair, a member and the secretary at desktops, the defending student
on a phone; two more members and the first student join as headless clients.

What it shows: the secretary records a valid reason once its proof is uploaded
(7.9); the chair lets a defense without documents start (7.3); two members' links
drop, so every commission page shows what fails and for how long, and the chair
moves the rest of the day to a date picked on the page (7.8); the student's phone
shows the new date in its own time zone; the secretary marks a member in the
university room, which restores the quorum (4.8), and records that member's open
vote; a vote without majority is refused at the results and voted again in a new
round started from the page, the member's page asking again (7.12). Screenshots
of each new state go to artifacts/screenshots/ as 10-*.png to 16-*.png.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import os
import shutil
import time
import zoneinfo
from pathlib import Path

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
from .test_browser import end_sessions, enter, only_from_server, prejoin_ready
from .test_procedure_day import connect
from .timing import wait_until

pytestmark = pytest.mark.timeout(420)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TZ = "Europe/Moscow"
STUDENT_TZ = "Asia/Novosibirsk"
NAMES = ["chair", "m1", "m2", "m3", "sec", "s1", "s2", "s3"]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    # No grace: a failure lets the chair move at once, as in test_procedure_dead_ends.
    return make_config(tmp_path, absence=dataclasses.replace(AbsenceConfig(), grace_minutes=0))


def day(starts_at: float) -> DaySpec:
    moment = datetime.datetime.fromtimestamp(starts_at, zoneinfo.ZoneInfo(TZ))
    consent = moment - datetime.timedelta(days=10)
    on_file = tuple(DocumentSpec(kind, consent) for kind in NEEDED_TO_DEFEND)
    return DaySpec(
        title="Защиты ВКР, группа ИВТ-42", date=moment.date(),
        start=moment.time().replace(second=0, microsecond=0), timezone=TZ,
        norm_control_required=False,
        commission=CommissionSpec(chair="Соколов Андрей",
                                  members=("Кузнецова Елена", "Морозов Дмитрий", "Волкова Ольга"),
                                  secretary="Новикова Мария"),
        students=(
            StudentSpec(name="Иванов Сергей", thesis_title="Сжатие видео на краю сети",
                        supervisor="Лебедев Игорь", reviewer="Орлова Светлана", timezone=TZ,
                        consent_at=consent, documents=on_file),
            # Nothing on file: the chair lets the defense start without it (7.3).
            StudentSpec(name="Петрова Анна", thesis_title="Распознавание речи на мобильных устройствах",
                        supervisor="Лебедев Игорь", reviewer="Орлова Светлана", timezone=STUDENT_TZ,
                        consent_at=consent, documents=()),
            StudentSpec(name="Смирнов Павел", thesis_title="Планирование задач в кластере",
                        supervisor="Лебедев Игорь", reviewer="Орлова Светлана", timezone=TZ,
                        consent_at=consent, documents=on_file),
        ),
    )


def shown(selector: str) -> str:
    """A script: whether ``selector`` matches an element that is not hidden."""
    return (f"(e => !!e && !e.closest('[hidden]') && e.getClientRects().length > 0)"
            f"(document.querySelector({json.dumps(selector)}))")


def text_of(selector: str) -> str:
    return f"(document.querySelector({json.dumps(selector)})?.textContent ?? '')"


async def shot(tab: Tab, folder: Path, name: str, phone: bool = False) -> Path:
    screen = PHONE if phone else DESKTOP
    path = await tab.screenshot(folder / f"{name}-{'phone' if phone else 'desktop'}.png", screen)
    await tab.emulate(screen)
    return path


async def test_dead_ends_through_the_pages(server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    started = time.monotonic()
    created = await RosterStore(server.app[DATABASE]).create_day(
        day(time.time() + 60), expires_at=time.time() + 86400, now=time.time())
    day_id = created.day_id
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    ids = {n: str(i.person_id) for n, i in zip(NAMES, created.invites, strict=True)}
    s1, s2, s3 = ids["s1"], ids["s2"], ids["s3"]

    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    print(f"\nscreenshots: {folder} (copied to {REPO_ARTIFACTS})")
    apis = {n: Api(server.base_url, day_id, tokens[n]) for n in ("sec", "chair", "m2")}
    sec_api = apis["sec"]
    clients: dict[str, RoomClient] = {}
    screens = {"sec": DESKTOP, "chair": DESKTOP, "m1": DESKTOP, "s2": PHONE}
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        tabs: dict[str, Tab] = {}
        try:
            for who in ("sec", "chair", "m1", "s2"):
                tabs[who] = await cdp.open_tab(f"{server.base_url}/j/{tokens[who]}", screens[who])
                # The chair sits in Moscow, the student in Novosibirsk (4 hours ahead).
                await tabs[who].send("Emulation.setTimezoneOverride",
                                     {"timezoneId": STUDENT_TZ if who == "s2" else TZ})
                await prejoin_ready(tabs[who])
            for who in ("sec", "chair", "m1", "s2"):
                await enter(tabs[who])
            for who in ("m2", "m3", "s1"):
                clients[who] = await connect(server, tokens[who])
            sec, chair, m1, phone = tabs["sec"], tabs["chair"], tabs["m1"], tabs["s2"]
            await wait_until(sec_api.snapshot, lambda s: len(s["present"]) == 7, "everyone but s3 present")

            await sec.click("[data-action='open-sitting']")
            await wait_until(sec_api.snapshot, lambda s: s["phase"] == "identification",
                             "the recording confirmed")
            for student in (s1, s2):
                await sec_api.act("identity", student=student, accepted=True)
            # s3 never came: with no grace they are absent at once (7.9).
            await wait_until(sec_api.snapshot, lambda s: s["statuses"][s3] == "absent", "s3 absent")
            await sec_api.act("announce-limits")

            # 7.9: the secretary records s3's valid reason; it needs its proof first.
            box = f".queue-list li[data-student='{s3}'] .reason-box"
            await sec.wait_for(shown(f".queue-list li[data-student='{s3}'] .reason-box summary"),
                               "the absence box of s3")
            await sec.evaluate(f"document.querySelector({json.dumps(box)}).open = true;"
                               f"document.querySelector({json.dumps(box + ' .reason')}).value ="
                               " 'болезнь, справка из поликлиники'")
            await sec.click(f"{box} [data-action='valid-reason']")
            # What the page said last (the toast on screen may already show a notice).
            toast = await sec.wait_for(
                "(t => t?.includes('подтверждающий документ') && t)(window.roomDebug.state.toast?.text)",
                "the refusal without the proof, in Russian")
            assert "7.9" in toast and "Смирнов Павел" in toast, toast
            pdf = base64.b64encode(small_pdf("Medical certificate")).decode()
            await sec.evaluate(
                f"(() => {{ const bytes = Uint8Array.from(atob('{pdf}'), c => c.charCodeAt(0));"
                " const data = new DataTransfer();"
                " data.items.add(new File([bytes], 'spravka.pdf', {type: 'application/pdf'}));"
                f" document.querySelector({json.dumps(box + ' .proof-file')}).files = data.files; }})()")
            await sec.click(f"{box} [data-action='upload-proof']")
            await sec.wait_for(f"document.querySelector({json.dumps(box + ' .proof-state')})"
                               "?.classList.contains('ok')", "the proof on file")
            await shot(sec, folder, "10-secretary-valid-reason-proof")
            await sec.click(f"{box} [data-action='valid-reason']")
            await wait_until(sec_api.snapshot, lambda s: s["statuses"][s3] == "rescheduled",
                             "s3 rescheduled for a valid reason")

            # The first defense, started from the chair's page, runs through by the API.
            await chair.wait_for(f"{text_of('[data-action=start-defense]')}.includes('Иванов Сергей')",
                                 "the chair's start button for s1")
            await chair.click("[data-action='start-defense']")
            await wait_until(sec_api.snapshot, lambda s: s["current_student"] == s1, "s1 defending")
            for _ in range(6):
                await apis["chair"].act("next-phase")
            await wait_until(sec_api.snapshot, lambda s: s["phase"] == "between_defenses", "s1 done")

            # 7.3: s2 has no thesis or presentation; the start is refused and the chair
            # lets it start without them, saying why.
            await chair.wait_for(f"{text_of('[data-action=start-defense]')}.includes('Петрова Анна')",
                                 "the chair's start button for s2")
            await chair.click("[data-action='start-defense']")
            missing = await chair.wait_for(
                f"(d => d?.open && d.querySelector('.alert')?.textContent)"
                f"(document.querySelector('details.waiver[data-student=\"{s2}\"]'))",
                "the waiver, opened with what is missing")
            assert missing == "Не загружено: ВКР, Презентация.", missing
            await chair.evaluate("document.querySelector('.waiver-reason').value ="
                                 " 'файлы повреждены при загрузке, бумажный экземпляр у комиссии'")
            await shot(chair, folder, "11-chair-start-without-documents")
            await chair.click("[data-action='waive-documents']")
            state = await wait_until(sec_api.snapshot, lambda s: s["phase"] == "talk", "s2's talk")
            assert state["current_student"] == s2

            # 7.8: two members' links drop; the quorum is lost and every commission page
            # says so; the chair moves the rest of the day to a date picked on the page.
            await clients.pop("m2").close()
            await clients.pop("m3").close()
            state = await wait_until(sec_api.snapshot, lambda s: s["failure_since"] is not None,
                                     "the failure")
            assert state["failure"].startswith("quorum lost (2 of 4 members, 3 needed)"), state
            for who in ("chair", "m1", "sec"):
                said = await tabs[who].wait_for(
                    f"{shown('.failure-banner')} && {text_of('.failure-banner')}",
                    f"the failure banner on the {who} page")
                assert "Нет кворума: 2 из 4 членов комиссии, нужно 3" in said, (who, said)
                await tabs[who].wait_for(f"/Длится уже \\d+:\\d\\d/.test({text_of('.failure-since')})",
                                         f"how long it fails, on the {who} page")
            await chair.wait_for(shown("[data-action='move-defense']") + " && "
                                 f"{text_of('[data-action=move-defense]')}.includes('Петрова Анна')",
                                 "the chair's move buttons")
            moscow = datetime.datetime.now(zoneinfo.ZoneInfo(TZ)) + datetime.timedelta(days=3)
            new_moment = moscow.replace(hour=10, minute=30, second=0, microsecond=0)
            new_date = new_moment.timestamp()
            await chair.evaluate(
                f"(() => {{ const d = document.querySelector('.move-date'); d.value = "
                f"'{new_moment:%Y-%m-%dT%H:%M}'; d.dispatchEvent(new Event('input')); }})()")
            await chair.evaluate("(d => { d.value = 'связь с двумя членами ГЭК прервалась,"
                                 " восстановить не удалось'; d.dispatchEvent(new Event('input')); })"
                                 "(document.querySelector('.move-description'))")
            await chair.wait_for(f"{text_of('.move-date-said')}.includes('10:30')", "the date said")
            await shot(chair, folder, "12-chair-failure-move")
            await chair.click("#lang")
            said = await chair.wait_for(f"{text_of('.failure-banner')}.includes('No quorum: 2 of 4')"
                                        f" && {text_of('.failure-banner')}", "the banner in English")
            assert "Move the rest of the day" in said and "Move the defense of Петрова Анна" in said, said
            await shot(chair, folder, "12-chair-failure-move-en")
            await chair.click("#lang")
            await chair.wait_for(f"{text_of('.failure-banner')}.includes('Нет кворума')", "Russian again")
            await shot(sec, folder, "12-secretary-failure")
            await shot(m1, folder, "12-member-failure")
            await chair.click("[data-action='move-rest-of-day']")
            state = await wait_until(sec_api.snapshot, lambda s: s["moved"] == {s2: new_date},
                                     "the rest of the day moved")
            assert state["statuses"][s2] == "rescheduled" and state["phase"] == "between_defenses"

            # The student's phone says when, in Novosibirsk time (10:30 in Moscow).
            card = await phone.wait_for(f"{shown('.moved-card')} && {text_of('.moved-card')}",
                                        "the moved card on the student's phone")
            assert "Ваша защита перенесена на" in card and "14:30" in card, card
            assert str(new_moment.day) in card and STUDENT_TZ in card, card
            assert "связь с двумя членами ГЭК прервалась" in card, card
            await shot(phone, folder, "13-student-moved", phone=True)
            await phone.click("#lang")
            card = await phone.wait_for(f"{text_of('.moved-card')}.includes('Your defense is moved to')"
                                        f" && {text_of('.moved-card')}", "the card in English")
            assert "14:30" in card, card
            await shot(phone, folder, "13-student-moved-en", phone=True)
            await phone.click("#lang")
            sec_queue = await sec.wait_for(
                text_of(f".queue-list li[data-student='{s2}'] .moved-to"), "the date in the queue")
            assert "10:30" in sec_queue, sec_queue

            # 4.8: the secretary marks m3, who went to the university room, as there:
            # the quorum is back and the banner goes.
            m3_row = f".roster-list li[data-person='{ids['m3']}']"
            await sec.click(f"{m3_row} [data-action='in-person']")
            state = await wait_until(sec_api.snapshot, lambda s: s["in_person"] == [ids["m3"]],
                                     "m3 in the room")
            assert state["quorum"]["reached"] and state["failure_since"] is None, state
            for who, mark in (("chair", " .in-room-tag"), ("sec", " .in-person.on")):
                await tabs[who].wait_for(f"!({shown('.failure-banner')}) && {shown(m3_row + mark)}",
                                         f"m3 in the room, no failure, on the {who} page")
            assert await sec.evaluate(f"document.querySelector(\"{m3_row} [data-action='in-person']\")"
                                      ".checked") is True
            await shot(sec, folder, "14-secretary-in-person")

            # The closed sitting: m2 is back online; m3 votes in the room through the secretary.
            clients["m2"] = await connect(server, tokens["m2"])
            await wait_until(sec_api.snapshot, lambda s: s["quorum"]["present"] == 4, "m2 back")
            await sec.click("[data-action='return-time']")
            await wait_until(sec_api.snapshot, lambda s: s["return_at"] is not None, "return time")
            await sec.click("[data-action='closed-sitting']")
            await wait_until(sec_api.snapshot,
                             lambda s: s["phase"] == "closed_sitting" and not s["recording"],
                             "the closed sitting, not recorded")

            async def vote_round(grades: dict[str, str], round_: int) -> None:
                for who in ("chair", "m1"):
                    button = (f".vote-student[data-student='{s1}'][data-round='{round_}']"
                              f" button[data-grade='{grades[who]}']")
                    await tabs[who].click(button, timeout=20)
                    await tabs[who].wait_for(f"document.querySelector({json.dumps(button)})"
                                             "?.classList.contains('chosen')", f"{who}'s vote marked")
                await apis["m2"].act("vote", student=s1, grade=grades["m2"])
                button = (f".vote-student[data-student='{s1}'][data-round='{round_}']"
                          f" .recorded-vote[data-voter='{ids['m3']}'] button[data-grade='{grades['m3']}']")
                await sec.click(button, timeout=20)
                await sec.wait_for(f"document.querySelector({json.dumps(button)})"
                                   "?.classList.contains('chosen')", "m3's vote recorded")

            # 7.12: 2 of 4 for "good", the chair in the minority: no majority.
            await vote_round({"chair": "satisfactory", "m1": "good", "m2": "good", "m3": "excellent"}, 1)
            await shot(sec, folder, "15-secretary-record-vote")
            await sec.click("[data-action='announce-results']")
            stuck = shown(f".vote-student.stuck[data-student='{s1}']")
            await sec.wait_for(f"{stuck} && window.roomDebug.state.toast?.text.includes('новом туре')",
                               "the vote without majority, on the secretary's page")
            assert (await sec_api.snapshot())["phase"] == "closed_sitting"
            await shot(sec, folder, "15-secretary-no-majority")
            await sec.click(f"[data-action='new-round'][data-student='{s1}']")
            await wait_until(sec_api.snapshot, lambda s: s["vote_rounds"] == {s1: 2}, "round 2")
            for who in ("m1", "chair"):
                await tabs[who].wait_for(
                    f"(f => !!f && !f.querySelector('.chosen') && f.textContent.includes('тур 2'))"
                    f"(document.querySelector('.vote-student[data-student=\"{s1}\"][data-round=\"2\"]'))",
                    f"round 2 asked again on the {who} page")
            await shot(m1, folder, "16-member-round-2")
            await shot(chair, folder, "16-chair-round-2")
            await vote_round({"chair": "good", "m1": "good", "m2": "good", "m3": "good"}, 2)
            await sec.click("[data-action='announce-results']")
            await wait_until(sec_api.snapshot, lambda s: s["phase"] == "results" and s["recording"],
                             "the results")
            await sec.wait_for(f"document.querySelector('.results li[data-student=\"{s1}\"]')"
                               "?.dataset.grade === 'good'", "s1's grade on the secretary's page")
            await shot(sec, folder, "17-secretary-results")

            only_from_server(server.base_url, tabs.values())
            for who, tab in tabs.items():
                assert not tab.exceptions, (who, tab.exceptions)
            for client in clients.values():
                await client.close()
            clients.clear()
            await end_sessions(server.rooms, str(day_id), tabs.values())
        finally:
            for client in clients.values():
                await client.close()
            await cdp.close()
            for api in apis.values():
                await api.close()
    assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
    REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for picture in folder.glob("1[0-9]-*.png"):
        shutil.copy2(picture, REPO_ARTIFACTS / picture.name)
    print(f"{len(list(folder.glob('*.png')))} screenshots; the story took "
          f"{time.monotonic() - started:.0f} s")
