"""Security review findings at the web edge: the appeal decision withheld from the
student until its delivery (S3), revoking and reissuing links (S8), the security
headers (S13), private file modes (S19) and the token leaving the address bar (S20)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from defense_room.invites_cli import run_invites
from defense_room.tls import ssl_context_for
from server.config import ApiConfig, Config
from storage.db import Database
from storage.invites import Role, hash_token
from web_ui.app import create_app
from web_ui.keys import HOSTS, ROOMS

from .conftest import RunningServer, make_config, url_of
from .test_appeal_protocol import DECIDED, DELIVERY, REASONING, Heard, heard  # noqa: F401
from .timing import wait_until

pytestmark = pytest.mark.timeout(120)
ORGANIZER = "organizer-token-for-the-security-tests"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, api=ApiConfig(organizer_token_sha256=hash_token(ORGANIZER)))


async def call(base: str, method: str, path: str, token: str | None,
               body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.request(
            method, base + path, json=body, headers=headers) as r:
        return r.status, await r.json() if r.content_type == "application/json" else None


async def joined_socket(session: aiohttp.ClientSession, base: str, token: str
                        ) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """A signaling socket that has joined (no media): and its welcome."""
    ws = await session.ws_connect(base.replace("http", "ws", 1) + "/ws")
    await ws.send_json({"type": "join", "token": token})
    return ws, await next_of(ws, "welcome")


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next message of type `kind`, skipping the others (offers, rosters)."""
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type == WSMsgType.TEXT, (kind, msg)
        data: dict[str, Any] = msg.json()
        if data["type"] == kind:
            return data


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[list[dict[str, Any]], int | None]:
    """Everything the socket still says until it closes, and its close code."""
    said = []
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type == WSMsgType.TEXT:
            said.append(msg.json())
        elif msg.type == WSMsgType.CLOSE:
            return said, int(msg.data)
        else:
            return said, (msg.type, ws.close_code)  # type: ignore[return-value]


# -- S3 --------------------------------------------------------------------------------


def decision_of(state: dict[str, Any]) -> tuple[Any, Any, Any]:
    return state["decision"], state["reasoning"], state["decided_at"]


async def test_s3_decision_withheld_from_the_student_until_delivery(heard: Heard) -> None:  # noqa: F811
    day = heard.sitting_day
    base = url_of(heard.client.server)  # type: ignore[arg-type]
    heard.clock.now = DELIVERY - 1  # decided, not yet delivered (8.11)
    code, body = await heard.call("GET", f"/api/days/{day}/state", "student")
    assert code == 200, body
    assert decision_of(body["state"]) == (None, None, None)
    code, body = await heard.call("GET", f"/api/days/{day}/state", "ac")
    assert decision_of(body["state"]) == ("rejected", REASONING, DECIDED)

    async with aiohttp.ClientSession() as session:
        student, welcome = await joined_socket(session, base, heard.tokens["student"])
        chair, chair_welcome = await joined_socket(session, base, heard.tokens["ac"])
        assert decision_of(welcome["state"]) == (None, None, None)
        assert decision_of(chair_welcome["state"]) == ("rejected", REASONING, DECIDED)
        # A state broadcast, as the day host sends on every change.
        host = heard.client.app[HOSTS].get(day)
        room = heard.client.app[ROOMS].get(str(day))
        assert host is not None and room is not None
        await room.broadcast(host.state_message())
        assert decision_of((await next_of(student, "state"))["state"]) == (None, None, None)
        assert decision_of((await next_of(chair, "state"))["state"])[0] == "rejected"

        heard.clock.now = DELIVERY  # delivered: the student is told
        await room.broadcast(host.state_message())
        assert decision_of((await next_of(student, "state"))["state"]) == (
            "rejected", REASONING, DECIDED)
        await student.close()
        await chair.close()
    code, body = await heard.call("GET", f"/api/days/{day}/state", "student")
    assert decision_of(body["state"]) == ("rejected", REASONING, DECIDED)


# -- S8 --------------------------------------------------------------------------------


async def test_s8_revoke_closes_live_socket_and_refuses_http(server: RunningServer) -> None:
    secretary = await server.invite(Role.SECRETARY, "Секретарь")
    member = await server.invite(Role.MEMBER, "Член комиссии")
    base, day = server.base_url, server.day_id
    path = f"/api/days/{day}/people/{member.person_id}/revoke"
    async with aiohttp.ClientSession() as session:
        ws, _ = await joined_socket(session, base, member.token)
        # A member may not revoke anyone; no token is no one.
        code, body = await call(base, "POST", f"/api/days/{day}/people/{secretary.person_id}"
                                "/revoke", member.token)
        assert code == 403 and body["error"] == "role", body
        assert (await call(base, "POST", path, None))[0] == 401
        code, body = await call(base, "POST", path, secretary.token)
        assert code == 200 and body["sessions_closed"] == 1, body
        said, close_code = await closed_with(ws)
        assert {"type": "bye", "reason": "revoked"} in said
        assert close_code == 4401
    code, body = await call(base, "GET", "/api/me", member.token)
    assert code == 401 and body["error"] == "revoked_token", body
    entries = await server.invites.list_journal(day)
    assert [e.detail for e in entries if e.kind == "invite_revoked"] == [
        {"by": secretary.person_id}]
    # A revoked link is not brought back by reissuing it.
    code, body = await call(base, "POST", path.replace("revoke", "reissue"), secretary.token)
    assert code == 409 and body["error"] == "revoked", body


async def test_s8_reissue_gives_a_new_working_link_old_one_refused(server: RunningServer) -> None:
    student = await server.invite(Role.STUDENT, "Студентка")
    base, day = server.base_url, server.day_id
    path = f"/api/days/{day}/people/{student.person_id}/reissue"
    async with aiohttp.ClientSession() as session:
        ws, _ = await joined_socket(session, base, student.token)
        code, body = await call(base, "POST", path, ORGANIZER)  # the organizer may too
        assert code == 200 and body["sessions_closed"] == 1, body
        said, close_code = await closed_with(ws)
        assert {"type": "bye", "reason": "revoked"} in said and close_code == 4401
        new = body["link"].rsplit("/j/", 1)[1]
        assert body["link"].startswith(base + "/j/") and new != student.token
        assert (await call(base, "GET", "/api/me", student.token))[0] == 401
        code, me = await call(base, "GET", "/api/me", new)
        assert code == 200 and me["me"]["id"] == str(student.person_id)
        ws, welcome = await joined_socket(session, base, new)
        assert welcome["participant"]["id"] == str(student.person_id)
        await ws.close()
    entries = await server.invites.list_journal(day)
    assert [e.detail for e in entries if e.kind == "invite_reissued"] == [{"by": "organizer"}]
    # Another day's person is not found through this day.
    other = await server.invites.create_day("Другой день", datetime.date.today(),
                                            time.time(), "Europe/Moscow")
    stranger = await server.invites.issue(other, Role.STUDENT, "Чужой", time.time() + 3600)
    code, body = await call(base, "POST", f"/api/days/{day}/people/{stranger.person_id}/reissue",
                            ORGANIZER)
    assert code == 404 and body["error"] == "no_person", body


async def test_s8_cli_revoke_and_reissue(server: RunningServer, config: Config,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    student = await server.invite(Role.STUDENT, "Студентка")
    member = await server.invite(Role.MEMBER, "Член комиссии")
    base, day = server.base_url, server.day_id

    def cli(command: str, person: int) -> int:
        return run_invites(config, argparse.Namespace(
            invites_command=command, day_id=day, person_id=person))

    async with aiohttp.ClientSession() as session:
        ws, _ = await joined_socket(session, base, student.token)
        assert await asyncio.to_thread(cli, "reissue", student.person_id) == 0
        out = capsys.readouterr().out
        assert "New link for Студентка (student)" in out
        new = out.strip().rsplit("/j/", 1)[1]
        # Another process wrote it: the server's watch of the journal ends the session.
        said, close_code = await closed_with(ws)
        assert {"type": "bye", "reason": "revoked"} in said and close_code == 4401
    assert (await call(base, "GET", "/api/me", student.token))[0] == 401
    assert (await call(base, "GET", "/api/me", new))[0] == 200
    assert await asyncio.to_thread(cli, "revoke", member.person_id) == 0
    assert "Revoked the link of Член комиссии (member)" in capsys.readouterr().out
    assert (await call(base, "GET", "/api/me", member.token))[1]["error"] == "revoked_token"
    assert await asyncio.to_thread(cli, "revoke", 9999) == 1
    assert f"no person 9999 is invited to defense day {day}" in capsys.readouterr().err


# -- S13 -------------------------------------------------------------------------------


def assert_security_headers(headers: Any, where: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, (where, csp)
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("X-Frame-Options") == "DENY", where
    assert headers.get("Server") == "defense-room", (where, headers.get("Server"))


async def test_s13_headers_on_pages_api_and_static(server: RunningServer) -> None:
    invite = await server.invite(Role.MEMBER, "Член комиссии")
    async with aiohttp.ClientSession() as session:
        for path, status in (("/", 200), (f"/j/{invite.token}", 200), ("/j/wrong", 403),
                             ("/room", 200), ("/static/room.css", 200),
                             ("/static/js/app.js", 200), ("/api/me", 401),
                             ("/api/openapi.json", 200), ("/nowhere", 404), ("/healthz", 200)):
            async with session.get(server.base_url + path) as r:
                assert r.status == status, path
                assert_security_headers(r.headers, path)
                assert "Strict-Transport-Security" not in r.headers, path  # plain HTTP
        async with session.get(server.base_url + "/api/me",
                               headers={"Authorization": f"Bearer {invite.token}"}) as r:
            assert r.status == 200
            csp = r.headers["Content-Security-Policy"]
            assert f"connect-src 'self' ws://{r.url.host}:{r.url.port}" in csp, csp


async def test_s13_hsts_only_under_tls(tmp_path: Path, isolated_network: None) -> None:
    config = make_config(tmp_path)
    context, _ = ssl_context_for(Config(data_dir=tmp_path / "tls-data"), "127.0.0.1")
    assert context is not None
    server = TestServer(create_app(config), host="127.0.0.1", port=0)
    await server.start_server(ssl=context)
    try:
        async with aiohttp.ClientSession() as session, session.get(
                str(server.make_url("/")), ssl=False) as r:
            assert r.status == 200
            assert r.headers["Strict-Transport-Security"].startswith("max-age=")
            assert_security_headers(r.headers, "/ over TLS")
            assert "wss://127.0.0.1" in r.headers["Content-Security-Policy"]
    finally:
        await server.close()


# -- S19 -------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_s19_data_folder_and_db_modes(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    fresh = tmp_path / "fresh" / "data" / "defense-room.sqlite3"
    old_umask = os.umask(0o022)  # what the server ran with before
    try:
        async with Database(fresh) as db:
            await db.execute_write(lambda d: d.execute("CREATE TABLE t (x)"))
            assert mode(fresh.parent) == 0o700 and mode(fresh) == 0o600
            for suffix in ("-wal", "-shm"):
                assert mode(fresh.with_name(fresh.name + suffix)) == 0o600, suffix
        # A folder and files an older version left readable are made private at start.
        fresh.parent.chmod(0o755)
        fresh.chmod(0o644)
        with caplog.at_level(logging.WARNING, logger="storage.db"):
            async with Database(fresh):
                pass
        assert mode(fresh.parent) == 0o700 and mode(fresh) == 0o600
        assert any("readable by others (mode 755)" in r.getMessage() for r in caplog.records)
        assert any("readable by others (mode 644)" in r.getMessage() for r in caplog.records)
    finally:
        os.umask(old_umask)


# -- S20 -------------------------------------------------------------------------------


async def test_s20_token_leaves_the_address_bar(server: RunningServer, tmp_path: Path) -> None:
    from .cdp import DESKTOP, PHONE, Cdp
    from .chromium import chromium, require_chromium
    from .test_browser import prejoin_ready

    require_chromium()
    invite = await server.invite(Role.MEMBER, "Член комиссии Иванов")
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        try:
            tab = await cdp.open_tab(f"{server.base_url}/j/{invite.token}")
            await prejoin_ready(tab)
            assert await tab.evaluate("location.pathname") == "/room"
            assert invite.token not in await tab.evaluate("location.href + history.length")
            assert await tab.evaluate("window.roomDebug.state.me.me.name") == "Член комиссии Иванов"
            await tab.send("Page.reload")
            await tab.wait_for("location.pathname === '/room' && window.roomDebug?.state.me?.me.name",
                               "the reloaded page to know who it is")
            await prejoin_ready(tab)
            # In the room, the link is revoked (S8): the page ends the session and says why.
            await tab.click("#join")
            await tab.wait_for("window.roomDebug?.state.link.phase === 'connected'",
                               "the media connection", 30)
            secretary = await server.invite(Role.SECRETARY, "Секретарь Петрова")
            async with aiohttp.ClientSession() as http, http.post(
                    f"{server.base_url}/api/days/{server.day_id}/people/{invite.person_id}/revoke",
                    headers={"Authorization": f"Bearer {secretary.token}"}) as r:
                assert r.status == 200, await r.text()
            await tab.wait_for(
                "window.roomDebug.state.link.phase === 'ended'"
                " && document.body.innerText.includes('Ваша ссылка отозвана')",
                "the page saying the link was revoked", 15)
            # ... and offers no "enter again", which a revoked link cannot do.
            assert await tab.evaluate("document.querySelectorAll('#ended button').length") == 0
            shots = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
            shots.mkdir(parents=True, exist_ok=True)
            for screen, size in ((DESKTOP, "desktop"), (PHONE, "phone")):
                saved = await tab.screenshot(tmp_path / f"s8-member-revoked-{size}.png", screen)
                shutil.copy(saved, shots / saved.name)
        finally:
            await cdp.close()
    violations = [line for line in browser.console() if "Content Security Policy" in line]
    assert violations == [], violations

