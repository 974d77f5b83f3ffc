"""Firefox in the room next to Chromium (issue 17, item 5).

Debian's firefox-esr, driven over WebDriver BiDi (tests/firefox.py), takes part as a
commission member and as the student; the chair and the secretary are Chromium pages
(tests/chromium.py, tests/cdp.py). Every page decodes every other one's video and audio
(the pages' own getStats: `framesDecoded` and `totalSamplesReceived` growing); the
member's Firefox page follows the sitting, votes in the closed sitting and approves
both protocols with a key Firefox's WebCrypto made, which the chair then signs from
Chromium; the student's Firefox page waits in the lobby and sees the grade. Then an
aiortc publisher sending H.264, which this Firefox cannot decode, and a Firefox
subscriber share a room: Firefox keeps its own camera and microphone and gets the
video or a notice naming who cannot be shown. Screenshots of the Firefox pages at
phone and desktop size are saved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from media.testing import FrameNumberTrack, ToneTrack
from protocols.signing import load_jwk, statement, verify
from storage.invites import Role
from storage.journal import Journal
from storage.roster import CommissionSpec, RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .cdp import DESKTOP, PHONE, Cdp, Screen, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import RunningServer
from . import firefox as firefox_module
from .firefox import Bidi, FirefoxMissing, Page, firefox, require_firefox
from .media_helpers import collecting
from .procedure_helpers import Api, day_spec
from .test_browser import end_sessions, enter, only_from_server, prejoin_ready
from .test_browser_signing import press, refresh_protocols, wait_for_final_recordings
from .timing import wait_until

pytestmark = pytest.mark.timeout(300)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
NAMES = ["chair", "m1", "m2", "sec", "student"]
COMMISSION = CommissionSpec(chair="Соколов Андрей", members=("Кузнецова Елена", "Морозов Дмитрий"),
                            secretary="Новикова Мария")
DECODE_TIMEOUT_S = 90.0

# What a page decodes, by "<publisher id>:<kind>": video frames decoded, audio samples
# received (its own getStats, the mids mapped to publishers by the server's offer).
MEDIA_COUNTS = """(async () => {
  const link = window.roomDebug?.link;
  const pc = link?.pc;
  if (!pc) return null;
  const forwarded = link.session?.forwarded ?? {};
  const midOf = new Map();
  for (const t of pc.getTransceivers()) if (t.mid != null) midOf.set(t.receiver.track.id, t.mid);
  const out = {};
  (await pc.getStats()).forEach((e) => {
    if (e.type !== 'inbound-rtp') return;
    const info = forwarded[e.mid ?? midOf.get(e.trackIdentifier)];
    if (!info) return;
    const kind = e.kind ?? e.mediaType;
    out[`${info.participant}:${kind}`] = kind === 'video' ? (e.framesDecoded ?? 0) : (e.totalSamplesReceived ?? 0);
  });
  return out;
})()"""

AnyPage = Tab | Page


def test_a_missing_firefox_fails_saying_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firefox_module, "FIREFOX", Path("/nonexistent/firefox-esr"))
    with pytest.raises(FirefoxMissing, match=r"apt-get install -y firefox-esr"):
        require_firefox()


async def firefox_enter(page: Page, timeout: float = 45.0) -> None:
    """From the personal page to the room in Firefox: "Enter the room", the pre-join
    check settled, "Enter", the media connection up."""
    await page.wait_for("!!document.querySelector('#home:not([hidden]) #enter-room')"
                        " || document.querySelectorAll('.check').length > 0",
                        "the personal page or the pre-join check", timeout)
    if await page.evaluate("!!document.querySelector('#home:not([hidden]) #enter-room')"):
        await page.click("#enter-room")
    await page.wait_for("(() => { const s = [...document.querySelectorAll('.check')]"
                        ".map(e => e.dataset.state); return s.length === 3"
                        " && !s.includes('running'); })()", "the pre-join checks", timeout)
    states = await page.evaluate("[...document.querySelectorAll('.check')].map(e => e.dataset.state)")
    assert states[:2] == ["good", "good"], f"Firefox's fake camera and microphone: {states}"
    assert await page.evaluate("document.getElementById('browser-help').hidden") is True
    await page.click("#join")
    await page.wait_for("window.roomDebug?.state.link.phase === 'connected'",
                        "Firefox's media connection", timeout)


async def decoding(pages: dict[str, AnyPage], expect: dict[str, set[str]],
                   kinds: tuple[str, ...] = ("video", "audio")) -> dict[str, dict[str, int]]:
    """Wait until each page decodes each expected publisher's media, more on a later
    look than on the first; return the last counts."""
    first: dict[tuple[str, str], int] = {}
    last: dict[str, dict[str, int]] = {}

    async def problems() -> list[str]:
        found: list[str] = []
        for viewer, page in pages.items():
            counts: dict[str, int] = await page.evaluate(MEDIA_COUNTS) or {}
            last[viewer] = counts
            for publisher in expect[viewer]:
                for kind in kinds:
                    key = f"{publisher}:{kind}"
                    count = int(counts.get(key, 0))
                    base = first.setdefault((viewer, key), count) if count > 0 else 0
                    if count <= 0:
                        found.append(f"{viewer} decodes no {kind} of {publisher} ({counts})")
                    elif count <= base:
                        found.append(f"{viewer}: {kind} of {publisher} not growing ({count})")
        return found

    await wait_until(problems, lambda left: not left, "every page to decode the others",
                     DECODE_TIMEOUT_S)
    return last


async def shots(page: Page, name: str, screens: tuple[tuple[Screen, str], ...], folder: Path) -> None:
    for screen, size in screens:
        shot = await page.screenshot(folder / f"firefox-{name}-{size}.png", screen)
        REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)


async def firefox_press(page: Page, which: str) -> None:
    """Approve protocol ``which`` from the member's Firefox page (refreshing the panel
    first), failing with the page's words if the server refused."""
    await page.click("#room .protocols .panel-head button")
    await page.wait_for(f"!!document.querySelector('.protocols li[data-which=\"{which}\"] button.primary')",
                        f"the approve button of {which}")
    before = await page.evaluate("window.roomDebug.state.toast?.at ?? 0")
    await page.click(f".protocols li[data-which='{which}'] button.primary")
    outcome = await page.wait_for(
        "(() => { const toast = window.roomDebug.state.toast;"
        f" if (toast && toast.kind === 'error' && toast.at > {before}) return 'refused: ' + toast.text;"
        f" const li = document.querySelector('.protocols li[data-which=\"{which}\"]');"
        " return li && !li.querySelector('button.primary') ? 'done' : false; })()",
        f"protocol {which} approved in Firefox", 30)
    assert outcome == "done", outcome


STORED_KEY = """new Promise((resolve, reject) => {
  const me = window.roomDebug.state.me;
  const open = indexedDB.open('defense-room', 1);
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction('signing-keys').objectStore('signing-keys')
      .get(`${me.day.id}:${me.me.id}`);
    get.onerror = () => reject(get.error);
    get.onsuccess = () => resolve({fingerprint: get.result?.fingerprint, key_id: get.result?.keyId,
      extractable: get.result?.privateKey?.extractable, algorithm: get.result?.privateKey?.algorithm});
  };
})"""


async def test_firefox_member_and_student_with_chromium_chair_and_secretary(
        server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    require_firefox()
    started = time.monotonic()
    db = server.app[DATABASE]
    spec = dataclasses.replace(day_spec(time.time() + 60, students=1), commission=COMMISSION)
    created = await RosterStore(db).create_day(spec, expires_at=time.time() + 86400, now=time.time())
    day_id, room_id = created.day_id, str(created.day_id)
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    ids = {n: str(i.person_id) for n, i in zip(NAMES, created.invites, strict=True)}
    student = ids["student"]
    api = {n: Api(server.base_url, day_id, tokens[n]) for n in ("chair", "sec")}
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    try:
        async with chromium(log=tmp_path / "chromium.log", devtools=True) as browser, \
                firefox(log=tmp_path / "firefox.log") as fox:
            assert browser.devtools_url is not None
            cdp = await Cdp.connect(browser.devtools_url)
            bidi = await Bidi.connect(fox.bidi_url)
            tabs: dict[str, Tab] = {}
            pages: dict[str, Page] = {}
            try:
                for who in ("chair", "sec"):
                    tabs[who] = await cdp.open_tab(f"{server.base_url}/j/{tokens[who]}", DESKTOP)
                    await prejoin_ready(tabs[who])
                    await enter(tabs[who])
                for who, screen in (("m1", DESKTOP), ("student", PHONE)):
                    pages[who] = await bidi.open_tab(f"{server.base_url}/j/{tokens[who]}", screen)
                    await firefox_enter(pages[who])
                everyone: dict[str, AnyPage] = {**tabs, **pages}
                await decoding(everyone, {who: {ids[o] for o in everyone if o != who} for who in everyone})
                await shots(pages["m1"], "member-room", ((DESKTOP, "desktop"), (PHONE, "phone")), folder)
                await shots(pages["student"], "student-room", ((PHONE, "phone"), (DESKTOP, "desktop")), folder)
                await pages["m1"].set_viewport(DESKTOP)
                await pages["student"].set_viewport(PHONE)

                # The sitting, driven by the secretary and the chair; the member's and the
                # student's Firefox pages follow it.
                sec = api["sec"]
                state = await wait_until(sec.snapshot, lambda s: len(s["present"]) == 4, "everyone present", 30)
                assert state["quorum"]["reached"], state["quorum"]
                await sec.act("open-sitting")
                await wait_until(sec.snapshot, lambda s: s["recording"], "the recording")
                await sec.act("identity", student=student, accepted=True)
                await api["chair"].act("announce-limits")
                await sec.act("start-defense", student=student)
                for _ in range(6):
                    state = await sec.act("next-phase")
                    phase = json.dumps(state["phase"])
                    for who in ("m1", "student"):
                        await pages[who].wait_for(
                            f"document.querySelector('.status-panel')?.dataset.phase === {phase}",
                            f"the phase {phase} on the {who}'s Firefox page")
                await sec.act("return-time", return_at=time.time() + 600)
                await sec.act("closed-sitting")
                await wait_until(sec.snapshot, lambda s: not s["recording"], "the closed sitting, not recorded")
                await pages["student"].wait_for(
                    "window.roomDebug.state.lobby && !document.querySelector('.lobby').hidden"
                    " && window.roomDebug.grid.count === 0", "the lobby on the student's Firefox page")
                await pages["m1"].wait_for(
                    "!document.querySelector('.vote').hidden"
                    f" && !!document.querySelector('.vote-student[data-student=\"{student}\"]')",
                    "the vote on the member's Firefox page")
                await shots(pages["m1"], "member-vote", ((DESKTOP, "desktop"),), folder)
                await pages["m1"].click(f".vote-student[data-student='{student}'] button[data-grade='excellent']")
                await pages["m1"].wait_for(
                    "document.querySelector('button[data-grade=\"excellent\"]')?.classList.contains('chosen')",
                    "the member's vote marked")
                await api["chair"].act("vote", student=student, grade="excellent")
                await sec.act("announce-results")
                grade = await pages["student"].wait_for(
                    "!window.roomDebug.state.lobby && document.querySelector"
                    f"('.results li[data-student=\"{student}\"]')?.dataset.grade",
                    "the grade on the student's Firefox page", 30)
                assert grade == "excellent"
                await shots(pages["student"], "student-results", ((PHONE, "phone"),), folder)
                await sec.act("close-sitting")
                await wait_until(sec.snapshot, lambda s: s["phase"] == "closed" and not s["recording"],
                                 "the close")
                await wait_for_final_recordings(server, day_id)

                # The member approves both protocols in Firefox (its WebCrypto key), the
                # chair signs both in Chromium.
                for which in ("day", student):
                    await firefox_press(pages["m1"], which)
                await shots(pages["m1"], "member-approved", ((DESKTOP, "desktop"), (PHONE, "phone")), folder)
                await pages["m1"].set_viewport(DESKTOP)
                await refresh_protocols(tabs["chair"], ["day", student], "button.primary")
                for which in ("day", student):
                    await press(tabs["chair"], which, "li.dataset.status === 'signed'")
                firefox_key: dict[str, Any] = await pages["m1"].evaluate(STORED_KEY)
                assert firefox_key["extractable"] is False, firefox_key
                assert firefox_key["algorithm"] == {"name": "ECDSA", "namedCurve": "P-256"}, firefox_key
                await check_firefox_approvals(server, day_id, ids["m1"], firefox_key)

                only_from_server(server.base_url, tabs.values())
                for who, errors in [*((w, t.exceptions) for w, t in tabs.items()),
                                    *((w, p.exceptions) for w, p in pages.items())]:
                    assert not errors, (who, errors)
                for page in pages.values():
                    await page.evaluate("window.roomDebug?.link?.finish('test over')")
                await end_sessions(server.rooms, room_id, tabs.values())
            finally:
                await bidi.close()
                await cdp.close()
        assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
        assert not group_alive(fox.process.pid), "a Firefox process outlived the test"
    finally:
        for one in api.values():
            await one.close()
    print(f"\nFirefox screenshots in {folder} (copied to {REPO_ARTIFACTS}); "
          f"the test took {time.monotonic() - started:.0f} s")


async def check_firefox_approvals(server: RunningServer, day_id: int, member: str,
                                  firefox_key: dict[str, Any]) -> None:
    """The member's approvals are journaled with the key Firefox registered, and each
    signature verifies against it; the chair's signatures follow."""
    entries = await Journal(server.app[DATABASE]).entries(day_id)
    registered = [e.detail for e in entries
                  if e.kind == "signing_key_registered" and str(e.person_id) == member]
    assert len(registered) == 1, registered
    key = registered[0]
    assert (key["fingerprint"], key["key_id"]) == (firefox_key["fingerprint"], firefox_key["key_id"])
    approvals = [e for e in entries if e.kind == "protocol_approved"]
    assert len(approvals) == 2 and {str(e.person_id) for e in approvals} == {member}
    for entry in approvals:
        said = json.loads(entry.detail["statement"])
        assert entry.detail["key"] == key["fingerprint"]
        verify(load_jwk(key["jwk"]), entry.detail["signature"],
               statement("approve", day_id, entry.detail["protocol"], entry.detail["hash"],
                         entry.person_id, said["at"]))
    assert len([e for e in entries if e.kind == "protocol_signed"]) == 2


async def test_h264_publisher_and_firefox_subscriber_share_a_room(
        server: RunningServer, tmp_path: Path) -> None:
    """Firefox here has no H.264 decoder: the room must not cost it its own camera and
    microphone, and it gets the publisher's video (a codec they share) or a notice
    that names who cannot be shown."""
    require_firefox()
    publisher_invite = await server.invite(Role.MEMBER, "Член комиссии с iPhone")
    student_invite = await server.invite(Role.STUDENT, "Студентка в Firefox")
    publisher = RoomClient(server.base_url, publisher_invite.token,
                           tracks=[ToneTrack(), FrameNumberTrack()], video_codec="video/H264")
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    try:
        await publisher.connect()
        await publisher.start_media()
        async with firefox(log=tmp_path / "firefox.log") as fox:
            bidi = await Bidi.connect(fox.bidi_url)
            try:
                page = await bidi.open_tab(f"{server.base_url}/j/{student_invite.token}", PHONE)
                await firefox_enter(page)
                firefox_id = str(student_invite.person_id)
                publisher_id = publisher.participant_id
                # Firefox's own camera and microphone reach the server and the publisher.
                async with collecting(publisher, firefox_id) as sink:
                    await wait_until(lambda: (len(sink.frame_numbers), sink.audio_seconds()),
                                     lambda got: got[0] >= 10 and got[1] >= 1.0,
                                     "Firefox's video frames and audio at the aiortc peer", 60)
                room = server.rooms.get(str(server.day_id))
                assert room is not None
                roster = {entry["id"]: entry for entry in room.roster()}
                assert roster[firefox_id]["publishing"] == ["audio", "video"], roster[firefox_id]
                # Firefox hears the publisher, and sees it or is told why not.
                await decoding({"firefox": page}, {"firefox": {publisher_id}}, kinds=("audio",))
                name = json.dumps("Член комиссии с iPhone")
                outcome = await page.wait_for(
                    f"(async () => {{ const c = await ({MEDIA_COUNTS}) ?? {{}};"
                    f" if ((c[{json.dumps(publisher_id + ':video')}] ?? 0) > 0) return 'video';"
                    " const text = document.body.innerText;"
                    f" return text.includes({name}) && /H\\.?264/.test(text) ? 'notice' : false; }})()",
                    "the publisher's video or a notice naming it", 30)
                print(f"\nFirefox with an H.264 publisher: {outcome}")
                await shots(page, f"h264-{outcome}", ((PHONE, "phone"), (DESKTOP, "desktop")), folder)
                assert page.exceptions == [], page.exceptions
                assert await page.evaluate("window.roomDebug.state.link.phase") == "connected"
                await page.evaluate("window.roomDebug?.link?.finish('test over')")
            finally:
                await bidi.close()
    finally:
        await publisher.close()
