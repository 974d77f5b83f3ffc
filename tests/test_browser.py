"""The room page in real browsers (headless Chromium driven over the DevTools
protocol, see tests/chromium.py and tests/cdp.py): two participants see each other
through the forwarder, a page refused the camera joins receive-only with the help
shown, a bad invite link gets a page that says why, and the page loads nothing
from anywhere but the server's /static/."""

from __future__ import annotations

import asyncio

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from server.rooms import RoomRegistry
from storage.invites import Role
from web_ui.app import STATIC_DIR

from .cdp import PHONE, Cdp, Tab
from .chromium import Browser, chromium, group_alive, require_chromium
from .conftest import RunningServer
from .timing import wait_until

DECODE_TIMEOUT_S = 60.0
OWN_JS = [p for p in (STATIC_DIR / "js").rglob("*.js")]


async def test_bad_invite_link_gets_403_with_the_reason(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.base_url}/j/not-a-real-token") as response:
            body = await response.text()
    assert response.status == 403, body
    assert "This invite link is not valid. Ask the secretary for a new one." in body


async def test_invite_link_serves_the_room_page(server: RunningServer) -> None:
    invite = await server.invite(Role.STUDENT, "Студент Страничный")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.base_url}/j/{invite.token}") as response:
            page = await response.text()
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
        assets = re.findall(r"""(?:src|href)=["'](/static/[^"']*)""", page)
        assert "/static/js/app.js" in assets and "/static/room.css" in assets
        for asset in [*assets, "/static/vendor/pdfjs/pdf.min.js", "/static/vendor/pdfjs/pdf.worker.min.js"]:
            async with session.get(f"{server.base_url}{asset}") as response:
                assert response.status == 200, asset
                if asset.endswith(".js"):
                    assert "javascript" in response.headers["Content-Type"], asset


def test_room_page_loads_nothing_from_the_network() -> None:
    html = (STATIC_DIR / "room.html").read_text(encoding="utf-8")
    for url in re.findall(r"""(?:src|href)=["']([^"']*)""", html):
        assert url.startswith(("/static/", "data:")) or url == "/recordings", url
    for css in ("room.css", "panels.css", "home.css"):
        text = (STATIC_DIR / css).read_text(encoding="utf-8")
        assert "@import" not in text and "url(" not in text, css
    assert OWN_JS, "no page scripts found"
    for path in OWN_JS:
        js = path.read_text(encoding="utf-8")
        name = path.relative_to(STATIC_DIR)
        for loader in ("XMLHttpRequest", "importScripts", "https://", "http://", "//cdn", "sendBeacon"):
            assert loader not in js, f"{name}: {loader}"
        # Modules import only each other and the vendored pdf.js, by relative path.
        for spec in re.findall(r"""\bimport\s*(?:[^"'();]*?\bfrom\s*)?\(?\s*["']([^"']+)["']""", js):
            assert spec.startswith(("./", "../")), f"{name} imports {spec}"
            target = (path.parent / spec).resolve()
            assert target.is_relative_to(STATIC_DIR.resolve()), f"{name} imports {spec}"
        # fetch() goes only to same-origin /api/ paths.
        for call in re.findall(r"""\bfetch\(\s*([^,)]*)""", js):
            assert call.strip().startswith(("path", "`/api/", '"/api/')), f"{name}: fetch({call})"
    # pdf.js is served from /static/vendor/ by the install step, never from elsewhere.
    assert (STATIC_DIR / "vendor" / "pdfjs" / "pdf.min.js").is_file(), "run scripts/install.sh"
    pdfview = (STATIC_DIR / "js" / "pdfview.js").read_text(encoding="utf-8")
    assert 'const VENDOR = "/static/vendor/pdfjs/"' in pdfview


def _string_keys(text: str, table: str) -> list[str]:
    """The keys of `export const <table> = { ... };` in a strings module, in order."""
    match = re.search(rf"^export const {table} = \{{\n(.*?)^\}};", text, re.M | re.S)
    assert match, f"no table {table!r}"
    return re.findall(r"^  (\w+):", match.group(1), re.M)


def test_strings_exist_in_both_languages() -> None:
    folder = STATIC_DIR / "js" / "strings"
    keys: dict[str, set[str]] = {"ru": set(), "en": set()}
    for language in ("ru", "en"):
        tables = [(folder / f"{language}.js").read_text(encoding="utf-8")]
        tables += [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.js"))
                   if p.stem not in ("ru", "en")]
        for text in tables:
            found = _string_keys(text, language)
            twice = (keys[language] & set(found)) | {k for k in found if found.count(k) > 1}
            assert not twice, f"{language}: defined twice: {sorted(twice)}"
            keys[language] |= set(found)
    assert keys["ru"] == keys["en"], keys["ru"] ^ keys["en"]
    used: set[str] = set()
    for path in OWN_JS + [STATIC_DIR / "office.js", STATIC_DIR / "recordings.js"]:
        if path.exists():
            used |= set(re.findall(r"""\bt\(\s*["'](\w+)["']""", path.read_text(encoding="utf-8")))
    assert used <= keys["ru"], used - keys["ru"]


async def test_two_browsers_see_each_other(server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    member = await server.invite(Role.MEMBER, "Член комиссии Иванов")
    student = await server.invite(Role.STUDENT, "Студентка Петрова")
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        try:
            tabs = {"member": await cdp.open_tab(f"{server.base_url}/j/{member.token}"),
                    "student": await cdp.open_tab(f"{server.base_url}/j/{student.token}", PHONE)}
            for tab in tabs.values():
                await enter(tab)
            await wait_for_video(server.rooms, str(server.day_id), browser, {
                str(member.person_id): [str(student.person_id)],
                str(student.person_id): [str(member.person_id)]})
            only_from_server(server.base_url, tabs.values())
            await end_sessions(server.rooms, str(server.day_id), tabs.values())
        finally:
            await cdp.close()
    assert not group_alive(browser.process.pid), "a Chromium process outlived the test"


async def test_page_without_camera_joins_receive_only(server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    student = await server.invite(Role.STUDENT, "Студентка Петрова")
    secretary = await server.invite(Role.SECRETARY, "Секретарь Сидорова")
    async with chromium(log=tmp_path / "student.log", devtools=True) as b1, \
            chromium(log=tmp_path / "secretary.log", devtools=True, deny_media=True) as b2:
        assert b1.devtools_url is not None and b2.devtools_url is not None
        cdp1, cdp2 = await Cdp.connect(b1.devtools_url), await Cdp.connect(b2.devtools_url)
        try:
            student_tab = await cdp1.open_tab(f"{server.base_url}/j/{student.token}")
            secretary_tab = await cdp2.open_tab(f"{server.base_url}/j/{secretary.token}")
            # The refusal is explained in plain words, with what to do about it.
            await enter_room(secretary_tab)
            help_text = await secretary_tab.wait_for(
                "document.querySelector('.help')?.hidden === false"
                " && document.querySelector('.help').textContent", "the help for a denied camera")
            assert "Разрешите «Камера» и «Микрофон»" in help_text, help_text
            assert "без камеры" in await secretary_tab.evaluate("document.getElementById('join').textContent")
            await enter(student_tab)
            await enter(secretary_tab)
            await wait_for_video(server.rooms, str(server.day_id), b2, {
                str(secretary.person_id): [str(student.person_id)]})
            room = server.rooms.get(str(server.day_id))
            assert room is not None
            roster = {entry["id"]: entry for entry in room.roster()}
            assert roster[str(secretary.person_id)]["publishing"] == []
            assert roster[str(student.person_id)]["publishing"] == ["audio", "video"]
            assert room.peers[str(student.person_id)].subscriptions() == {}
            assert any("prejoin media: none" in line for line in b2.console()), b2.console()[-5:]
            await end_sessions(server.rooms, str(server.day_id), [student_tab, secretary_tab])
        finally:
            await cdp1.close()
            await cdp2.close()


# -- helpers shared with test_browser_day.py -------------------------------------------


async def prejoin_ready(tab: Tab, timeout: float = 30.0) -> None:
    """Wait until the pre-join check has settled (camera, microphone, connection).

    Headless Chromium on a loaded two-core machine now and then stops evaluating a
    freshly opened page's modules although every response arrived (the page stays
    at "Загрузка…"); a person would reload, and so does this, once, saying so.
    """
    await enter_room(tab, timeout)
    states = "[...document.querySelectorAll('.check')].map(e => `${e.dataset.check}:${e.dataset.state}`)"
    ready = (f"(() => {{ const s = {states};"
             " return s.length === 3 && !s.some(x => x.endsWith(':running')); })()")
    try:
        await tab.wait_for(ready, "the pre-join checks", timeout / 2)
        return
    except AssertionError:
        if await tab.evaluate("document.querySelectorAll('.check').length") == 0:
            print(f"\nthe page stalled while loading its modules; reloading it once "
                  f"(answered: {len(tab.requests)} requests, unanswered: {sorted(tab.waiting.values())})")
            await tab.send("Page.reload", {"ignoreCache": False})
            await asyncio.sleep(1)  # the new document, not the stalled one
            await enter_room(tab, timeout)
    try:
        await tab.wait_for(ready, "the pre-join checks", timeout)
    except AssertionError as exc:
        page = await tab.evaluate("JSON.stringify([location.href, document.readyState,"
                                  " document.body?.innerText.slice(0, 300)])")
        raise AssertionError(f"{exc}; checks: {await tab.evaluate(states)}; page: {page}; "
                             f"requests: {tab.requests[-5:]}; unanswered: "
                             f"{sorted(tab.waiting.values())}") from None


async def enter_room(tab: Tab, timeout: float = 30.0) -> None:
    """From the personal page an invite link opens, press "Enter the room" (a page
    reloaded in the room goes straight to the pre-join check, without it)."""
    shown = ("(() => document.querySelectorAll('.check').length > 0"
             " || !!document.querySelector('#home:not([hidden]) #enter-room')"
             " || !!document.querySelector('#ended:not([hidden])'))()")
    await tab.wait_for(shown, "the personal page or the pre-join check", timeout)
    if await tab.evaluate("!!document.querySelector('#home:not([hidden]) #enter-room')"):
        await tab.click("#enter-room")
        await tab.wait_for("document.querySelector('#home').hidden", "the pre-join check after the personal page", timeout)


async def enter(tab: Tab, timeout: float = 30.0) -> None:
    """Wait for the pre-join check to settle, then press "Enter the room"."""
    await prejoin_ready(tab, timeout)
    await tab.click("#join")
    await tab.wait_for("window.roomDebug?.state.link.phase === 'connected'", "the media connection", timeout)


def only_from_server(base_url: str, tabs: Iterable[Tab]) -> None:
    """Every request the pages made went to the server's own pages, API and socket."""
    ws_base = base_url.replace("http://", "ws://", 1)
    for tab in tabs:
        for url in tab.requests:
            assert url == "about:blank" or url.startswith(("data:", "blob:")) or any(
                url.startswith(base + path) for base in (base_url, ws_base)
                for path in ("/static/", "/api/", "/j/", "/room", "/ws")), url


@dataclass(frozen=True)
class Watching:
    viewer: str
    publisher: str


def _video_problem(rooms: RoomRegistry, room_id: str, pair: Watching) -> str | None:
    room = rooms.get(room_id)
    peer = room.peers.get(pair.viewer) if room is not None else None
    if peer is None:
        return "has not joined the room"
    mids = {mid for mid, pub in peer.subscriptions().items()
            if pub.publisher_id == pair.publisher and pub.kind == "video"}
    if not mids:
        return f"gets no video of {pair.publisher} (media connection {peer.connection_state})"
    reported = [entry for entry in peer.last_stats if entry["mid"] in mids]
    if not any(entry["framesDecoded"] > 0 for entry in reported):
        return f"decodes no frames of {pair.publisher} yet: {reported}"
    return None


async def wait_for_video(rooms: RoomRegistry, room_id: str, browser: Browser,
                         watching: dict[str, list[str]], timeout: float = DECODE_TIMEOUT_S) -> None:
    """Poll the server until each viewer's page reports decoded frames of each
    publisher's video it forwards to it; fail saying what is missing."""
    pairs = [Watching(viewer, publisher) for viewer, publishers in watching.items()
             for publisher in publishers]

    def missing() -> list[str]:
        problems = [f"{p.viewer} {problem}" for p in pairs
                    if (problem := _video_problem(rooms, room_id, p)) is not None]
        if problems and browser.exited:
            raise AssertionError(f"the browser exited; {problems}")
        return problems

    try:
        await wait_until(missing, lambda problems: not problems,
                         "the pages to see each other", timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- browser log (tail):\n{browser.log_tail()}") from None


async def end_sessions(rooms: RoomRegistry, room_id: str, tabs: Iterable[Tab]) -> None:
    """End every page's session from the page and wait until the server let them go.

    Killing the browser first would drop the sockets mid-way, and aiohttp's test
    server then cancels the signaling handlers in the middle of their cleanup.
    """
    for tab in tabs:
        if not tab.closed:
            await tab.evaluate("window.roomDebug?.link?.finish('test over')")

    def peers() -> list[str]:
        room = rooms.get(room_id)
        return sorted(room.peers) if room is not None else []

    await wait_until(peers, lambda left: not left, "the server to let every page go (peers)", 15)
