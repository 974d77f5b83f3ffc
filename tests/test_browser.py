"""The room page in real browsers (headless Chromium, see tests/chromium.py): two
participants see each other through the forwarder, a page refused the camera joins
receive-only, and a bad invite link gets a page that says why."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from storage.invites import IssuedInvite, Role
from web_ui.app import STATIC_DIR

from .chromium import Browser, chromium, group_alive, require_chromium
from .conftest import RunningServer

DECODE_TIMEOUT_S = 60.0


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
        for asset in ("/static/room.js", "/static/room.css"):
            assert asset in page
            async with session.get(f"{server.base_url}{asset}") as response:
                assert response.status == 200, asset


def test_room_page_loads_nothing_from_the_network() -> None:
    html = (STATIC_DIR / "room.html").read_text(encoding="utf-8")
    for url in re.findall(r"""(?:src|href)=["']([^"']*)""", html):
        assert url.startswith(("/static/", "data:")), url
    css = (STATIC_DIR / "room.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(" not in css
    js = (STATIC_DIR / "room.js").read_text(encoding="utf-8")
    for loader in ("fetch(", "import(", "import ", "XMLHttpRequest", "importScripts", "https://"):
        assert loader not in js, loader
    # The only http:// in the script names an RTP header extension; nothing fetches it.
    assert set(re.findall(r"http://[^/]+/", js)) <= {"http://www.webrtc.org/"}


async def test_two_browsers_see_each_other(server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    member = await server.invite(Role.MEMBER, "Член комиссии Иванов")
    student = await server.invite(Role.STUDENT, "Студентка Петрова")
    async with chromium(f"{server.base_url}/j/{member.token}", log=tmp_path / "member.log") as b1, \
            chromium(f"{server.base_url}/j/{student.token}", log=tmp_path / "student.log") as b2:
        await _wait_for_decoding(server, {
            "member": Viewer(member, student, b1),
            "student": Viewer(student, member, b2),
        })
        await _end_sessions(server, {"member": b1, "student": b2})
    for browser in (b1, b2):
        assert not group_alive(browser.process.pid), "a Chromium process outlived the test"


async def test_page_without_camera_joins_receive_only(server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    student = await server.invite(Role.STUDENT, "Студентка Петрова")
    secretary = await server.invite(Role.SECRETARY, "Секретарь Сидорова")
    async with chromium(f"{server.base_url}/j/{student.token}", log=tmp_path / "student.log") as b1, \
            chromium(f"{server.base_url}/j/{secretary.token}", log=tmp_path / "secretary.log",
                     deny_media=True) as b2:
        await _wait_for_decoding(server, {"secretary": Viewer(secretary, student, b2)})
        room = server.rooms.get(str(server.day_id))
        assert room is not None
        roster = {entry["id"]: entry for entry in room.roster()}
        assert roster[str(secretary.person_id)]["publishing"] == []
        assert roster[str(student.person_id)]["publishing"] == ["audio", "video"]
        student_peer = room.peers[str(student.person_id)]
        assert student_peer.subscriptions() == {}
        assert any("media: none" in line for line in b2.console()), b2.console()
        await _end_sessions(server, {"student": b1, "secretary": b2})


@dataclass(frozen=True)
class Viewer:
    """A page that must decode ``other``'s video."""

    invite: IssuedInvite
    other: IssuedInvite
    browser: Browser


async def _wait_for_decoding(server: RunningServer, viewers: dict[str, Viewer]) -> None:
    """Poll the server until every viewer's page reports decoded frames of a video
    the server forwards to it from the other participant; fail saying what is missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DECODE_TIMEOUT_S
    while missing := [
        f"{who}: {problem}" for who, viewer in viewers.items()
        if (problem := _decoding_problem(server, viewer)) is not None
    ]:
        if loop.time() > deadline or any(v.browser.exited for v in viewers.values()):
            raise AssertionError(
                f"after {loop.time() - deadline + DECODE_TIMEOUT_S:.0f} s the pages do not "
                "see each other:\n  " + "\n  ".join(missing)
                + "".join(f"\n--- {who} browser log (tail):\n{v.browser.log_tail()}"
                          for who, v in viewers.items()))
        await asyncio.sleep(0.25)


async def _end_sessions(server: RunningServer, browsers: dict[str, Browser]) -> None:
    """End the room from the server side and wait until every page says so.

    Killing the browsers first would drop their sockets, and aiohttp's test server
    (handler_cancellation=True) then cancels the signaling handler in the middle of
    its cleanup: the participant's RTCPeerConnection is never closed and leaks
    sockets and tasks into the next test.
    """
    room = server.rooms.get(str(server.day_id))
    assert room is not None
    await room.stop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while waiting := [who for who, browser in browsers.items()
                      if not any("session ended: shutdown" in line for line in browser.console())]:
        if loop.time() > deadline:
            raise AssertionError(f"pages that did not show the end of the session: {waiting}")
        await asyncio.sleep(0.1)


def _decoding_problem(server: RunningServer, viewer: Viewer) -> str | None:
    """What is still missing before the viewer's page decodes the other's video."""
    if viewer.browser.exited:
        return f"the browser exited with code {viewer.browser.process.returncode}"
    room = server.rooms.get(str(server.day_id))
    peer = room.peers.get(str(viewer.invite.person_id)) if room is not None else None
    if peer is None:
        return "the page has not joined the room"
    other_id = str(viewer.other.person_id)
    videos = {mid for mid, pub in peer.subscriptions().items()
              if pub.publisher_id == other_id and pub.kind == "video"}
    if not videos:
        return (f"the server forwards no video of {viewer.other.name} to it "
                f"(its media connection is {peer.connection_state})")
    reported = [entry for entry in peer.last_stats if entry["mid"] in videos]
    if not reported:
        return f"no stats reported yet for the video mids {sorted(videos)}"
    if not any(entry["framesDecoded"] > 0 for entry in reported):
        return f"no frames decoded yet: {reported}"
    return None
