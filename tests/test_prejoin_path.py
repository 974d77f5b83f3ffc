"""The pre-join speed check measures over the media path (web_ui/probe.py,
js/netprobe.js): a WebRTC data channel to the server, several transfers each way,
once the camera is open.

The channel's protocol on its own, the routes' refusals, then Chromium in a network
namespace of its own: on a plain link the check passes and says it measured over the
video connection; with the uplink limited to 150 kbit/s it shows the P5 warning."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import aiohttp
import pytest

from storage.invites import Role
from tests.cdp import DESKTOP, PHONE, Tab
from web_ui.keys import INVITES
from web_ui.probe import MAX_TRANSFER, MAX_TRANSFERS, ProbeProtocol, ProbeViolation

from . import netlab
from .badlink_lab import lab_server
from .chromium import require_chromium
from .test_browser import prejoin_ready

pytestmark = pytest.mark.timeout(150)

SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


# -- the channel's protocol ------------------------------------------------------------


def test_ping_download_and_upload() -> None:
    protocol = ProbeProtocol()
    assert json.loads(str(protocol.handle('{"op": "ping", "t": 12.5}')[0])) == {"op": "pong", "t": 12.5}
    down = protocol.handle('{"op": "down", "bytes": 40000}')
    assert [len(part) for part in down[:-1]] == [16384, 16384, 7232]
    assert all(isinstance(part, bytes) for part in down[:-1])
    assert json.loads(str(down[-1])) == {"op": "sent", "bytes": 40000}
    assert protocol.handle('{"op": "up", "bytes": 20000}') == []
    assert protocol.handle(b"\0" * 16384) == []
    assert json.loads(str(protocol.handle(b"\0" * 3616)[0])) == {"op": "got", "bytes": 20000}


@pytest.mark.parametrize("messages", [
    ['{"op": "down", "bytes": %d}' % (MAX_TRANSFER + 1)],
    ['{"op": "down", "bytes": 0}'],
    ['{"op": "down", "bytes": true}'],
    ['{"op": "format", "bytes": 10}'],
    ["not json"],
    ["[1, 2]"],
    [b"unannounced bytes"],
    ['{"op": "up", "bytes": 10}', b"eleven byte"],
    ['{"op": "up", "bytes": 10}', '{"op": "down", "bytes": 10}'],
    ['{"op": "down", "bytes": 1}'] * (MAX_TRANSFERS + 1),
])
def test_a_page_breaking_the_protocol_or_its_limits_is_stopped(messages: list[str | bytes]) -> None:
    protocol = ProbeProtocol()
    with pytest.raises(ProbeViolation):
        for message in messages:
            protocol.handle(message)


async def test_the_routes_need_an_invite_and_a_started_check(tmp_path: Path, isolated_network: None) -> None:
    async with lab_server(tmp_path) as server, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{server.port}"
        async with http.post(f"{base}/api/connection-check/media") as response:
            assert response.status == 401
        day = await server.app[INVITES].create_day("Day", datetime.date.today(),
                                                   time.time(), "Europe/Moscow")
        invite = await server.app[INVITES].issue(day, Role.STUDENT, "Студентка", time.time() + 3600)
        auth = {"Authorization": f"Bearer {invite.token}"}
        async with http.post(f"{base}/api/connection-check/media/answer", headers=auth,
                             json={"sdp": "v=0\r\n"}) as response:
            assert response.status == 409, await response.text()
        async with http.post(f"{base}/api/connection-check/media", headers=auth) as response:
            assert response.status == 200
            offer = await response.json()
        assert offer["sdp"].startswith("v=0") and "webrtc-datachannel" in offer["sdp"]
        async with http.post(f"{base}/api/connection-check/media/answer", headers=auth,
                             json={"sdp": "v=0\r\nnot an answer\r\n"}) as response:
            assert response.status == 400, await response.text()
        async with http.post(f"{base}/api/connection-check/media/answer", headers=auth,
                             json={"sdp": "x" * 40_000}) as response:
            assert response.status == 400


# -- in Chromium, on a plain and on a slow link ------------------------------------------


NETWORK = ("(() => { const e = document.querySelector('[data-check=network]');"
           " return e && e.dataset.state !== 'running' ? JSON.stringify({state: e.dataset.state,"
           " path: e.dataset.path, kbps: e.dataset.kbps, text: e.textContent}) : null; })()")


async def network_check(tab: Tab, timeout: float = 60) -> dict[str, str]:
    return dict(json.loads(await tab.wait_for(NETWORK, "the connection check's result", timeout)))


async def shots(tab: Tab, name: str) -> None:
    for screen, size in ((PHONE, "phone"), (DESKTOP, "desktop")):
        await tab.screenshot(SHOTS / f"badlink_prejoin_{name}_{size}.png", screen)


async def test_the_prejoin_check_measures_over_the_media_path_and_warns_on_a_slow_link(
        tmp_path: Path, isolated_network: None) -> None:
    require_chromium()
    async with lab_server(tmp_path) as server:
        day = await server.app[INVITES].create_day("Защиты ВКР", datetime.date.today(),
                                                   time.time(), "Europe/Moscow")
        student = await server.app[INVITES].issue(day, Role.STUDENT, "Студентка Петрова",
                                                  time.time() + 3600)
        async with netlab.Host(31) as host:
            origin = f"http://{host.gateway}:{server.port}"
            async with netlab.chromium_in(host, log=tmp_path / "chromium.log",
                                          secure_origin=origin) as page:
                tab = await page.cdp.open_tab(f"{origin}/j/{student.token}", DESKTOP)
                await prejoin_ready(tab, 60)
                fast = await network_check(tab)
                assert fast["path"] == "media", fast
                assert fast["state"] in ("good", "fair"), fast
                assert "Измерено по каналу видеосвязи" in fast["text"], fast
                await shots(tab, "plain")

                await host.netem(rate_kbit=150)
                started = time.monotonic()
                await tab.click(".prejoin-card .row button.small")
                await tab.wait_for("document.querySelector('[data-check=network]').dataset.state"
                                   " === 'running'", "the check running again", 10)
                slow = await network_check(tab)
                took = time.monotonic() - started
                assert slow["path"] == "media", slow
                assert slow["state"] == "poor", slow
                assert 30 <= int(slow["kbps"]) < 200, slow
                assert "Для защиты этого мало" in slow["text"], slow
                help_text = await tab.evaluate("document.querySelector('.help:not([hidden])')?.textContent ?? ''")
                assert "медленнее 200 кбит/с" in help_text, help_text
                await shots(tab, "slow")
                assert sum("connection check over the media path" in line
                           for line in page.browser.console()) == 2
                print(f"\n[prejoin] plain link: {fast['text']!r}; uplink limited to 150 kbit/s: "
                      f"{slow['kbps']} kbit/s measured in {took:.1f} s, {slow['state']!r}")
