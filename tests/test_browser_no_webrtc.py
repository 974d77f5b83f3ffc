"""A browser that cannot take part is told so on the pre-join page (issue 17, item 6).

Headless Chromium stands in for such browsers: a script that runs before the page's
own (CDP `Page.addScriptToEvaluateOnNewDocument`) removes `RTCPeerConnection`, as in
WebKitGTK on Debian, or `navigator.mediaDevices`, as in an in-app browser that gives
pages no camera. The page says so in one sentence with what to use instead; without
WebRTC it offers no "Enter" that would hang at "connecting"; without the camera the
person still enters to watch. Screenshots at phone and desktop size are saved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from storage.invites import Role

from .cdp import DESKTOP, PHONE, Cdp, Tab
from .chromium import chromium, require_chromium
from .conftest import RunningServer
from .test_browser import end_sessions, prejoin_ready

pytestmark = pytest.mark.timeout(120)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"

WITHOUT_WEBRTC = ("delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;"
                  " delete window.RTCSessionDescription;")
WITHOUT_CAMERA = "delete Navigator.prototype.mediaDevices;"
BROWSER_HELP = ("(() => { const e = document.getElementById('browser-help');"
                " return e ? {hidden: e.hidden, text: e.textContent} : null; })()")


async def open_as(cdp: Cdp, url: str, before_scripts: str | None) -> Tab:
    """A tab showing ``url``, with ``before_scripts`` run in it ahead of the page's own."""
    tab = await cdp.open_tab("about:blank", DESKTOP)
    if before_scripts is not None:
        await tab.send("Page.addScriptToEvaluateOnNewDocument", {"source": before_scripts})
    await tab.send("Page.navigate", {"url": url})
    return tab


async def shots(tab: Tab, name: str, folder: Path) -> None:
    for screen, size in ((PHONE, "phone"), (DESKTOP, "desktop")):
        shot = await tab.screenshot(folder / f"nowebrtc-{name}-{size}.png", screen)
        REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, REPO_ARTIFACTS / shot.name)


async def test_browser_without_webrtc_is_told_what_to_use(
        server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    student = await server.invite(Role.STUDENT, "Студентка Петрова")
    member = await server.invite(Role.MEMBER, "Член комиссии Иванов")
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        try:
            tab = await open_as(cdp, f"{server.base_url}/j/{student.token}", WITHOUT_WEBRTC)
            await prejoin_ready(tab)
            assert await tab.evaluate("typeof RTCPeerConnection") == "undefined"
            shown = await tab.wait_for(f"(() => {{ const b = {BROWSER_HELP};"
                                       " return b && !b.hidden && b.text; })()",
                                       "the sentence about the browser")
            assert "не поддерживает видеосвязь (WebRTC)" in shown, shown
            assert "Chrome, Firefox, Safari или Edge" in shown, shown
            join = await tab.evaluate("(() => { const j = document.getElementById('join');"
                                      " return {disabled: j.disabled, text: j.textContent}; })()")
            assert join == {"disabled": True, "text": "Вход из этого браузера невозможен"}, join
            # The camera and the connection check still work and are shown as such.
            states = await tab.evaluate(
                "[...document.querySelectorAll('.check')].map(e => e.dataset.state)")
            assert states[:2] == ["good", "good"], states
            await shots(tab, "no-rtcpeerconnection", tmp_path)

            # The same sentence in English, from the language switch.
            await tab.evaluate("import('/static/js/i18n.js').then(m => m.toggleLanguage())")
            english = await tab.wait_for(f"document.documentElement.lang === 'en' && {BROWSER_HELP}.text",
                                         "the English sentence")
            assert "does not support video calls (WebRTC)" in english, english
            assert "Chrome, Firefox, Safari or Edge" in english, english

            # It never tried to connect, and nothing failed on the page.
            assert not any(url.endswith("/ws") for url in tab.requests), tab.requests
            assert not tab.exceptions, tab.exceptions
            assert any("prejoin browser lacks: webrtc" in line for line in browser.console()), \
                browser.console()[-5:]

            # A browser with WebRTC and a camera gets no such sentence.
            normal = await open_as(cdp, f"{server.base_url}/j/{member.token}", None)
            await prejoin_ready(normal)
            assert (await normal.evaluate(BROWSER_HELP))["hidden"] is True
            assert await normal.evaluate("document.getElementById('join').disabled") is False
        finally:
            await cdp.close()


async def test_browser_without_camera_access_watches_and_is_told_why(
        server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    secretary = await server.invite(Role.SECRETARY, "Секретарь Сидорова")
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        try:
            tab = await open_as(cdp, f"{server.base_url}/j/{secretary.token}", WITHOUT_CAMERA)
            await prejoin_ready(tab)
            assert await tab.evaluate("navigator.mediaDevices === undefined") is True
            shown = await tab.wait_for(f"(() => {{ const b = {BROWSER_HELP};"
                                       " return b && !b.hidden && b.text; })()",
                                       "the sentence about the browser")
            assert "не даёт страницам доступа к камере и микрофону" in shown, shown
            assert "Chrome, Firefox, Safari или Edge" in shown, shown
            # Not the advice for an http page: this one is served as the server serves it.
            first_help = await tab.evaluate("document.querySelector('.help').hidden")
            assert first_help is True
            states = await tab.evaluate(
                "[...document.querySelectorAll('.check')].map(e => e.dataset.state)")
            assert states[:2] == ["poor", "poor"], states
            join = await tab.evaluate("document.getElementById('join').textContent")
            assert "без камеры" in join, join
            await shots(tab, "no-camera-access", tmp_path)

            # The person still enters, to watch: the media connection comes up.
            await tab.click("#join")
            await tab.wait_for("window.roomDebug?.state.link.phase === 'connected'",
                               "the media connection of a page without a camera", 30)
            assert not tab.exceptions, tab.exceptions
            await end_sessions(server.rooms, str(server.day_id), [tab])
        finally:
            await cdp.close()

