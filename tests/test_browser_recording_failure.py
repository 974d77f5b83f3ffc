"""S10 in the browser: a recording that fails while it runs turns the header's
recording pill into a red "recording failed" on every page (student, commission,
secretary), with why under it (rule D6, clause 7.11).

The failure is real: the recordings disk falls under `recordings.min_free_mb` (set 1
GiB under the disk's free space) when the test preallocates 2 GiB on it. The pages'
screenshots go to artifacts/screenshots/ as s10-*.png.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

import pytest

from recordings.room_recording import MB, free_bytes
from server.config import Config, RecordingsConfig
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .cdp import DESKTOP, PHONE, Cdp, Tab
from .chromium import chromium, group_alive, require_chromium
from .conftest import RunningServer, make_config
from .procedure_helpers import Api, day_spec
from .test_browser import end_sessions, enter, only_from_server, prejoin_ready
from .test_browser_dead_ends import shown, text_of
from .test_procedure_day import connect
from .timing import wait_until

pytestmark = pytest.mark.timeout(300)

REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
NAMES = ["chair", "m1", "m2", "m3", "sec", "s1", "s2"]
PAGES = {"sec": DESKTOP, "chair": DESKTOP, "s1": PHONE}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return dataclasses.replace(make_config(tmp_path), recordings=RecordingsConfig(
        min_free_mb=free_bytes(tmp_path) // MB - 1024, free_space_check_s=0.05))


async def shot(tab: Tab, folder: Path, name: str, phone: bool) -> Path:
    screen = PHONE if phone else DESKTOP
    return await tab.screenshot(folder / f"{name}-{'phone' if phone else 'desktop'}.png", screen)


async def test_s10_every_page_shows_the_recording_failed(
        server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60), expires_at=time.time() + 86400, now=time.time())
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    folder = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path) / "screenshots"
    print(f"\nscreenshots: {folder} (copied to {REPO_ARTIFACTS})")
    sec_api = Api(server.base_url, created.day_id, tokens["sec"])
    clients: dict[str, RoomClient] = {}
    filler = tmp_path / "filler"
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        tabs: dict[str, Tab] = {}
        try:
            for who, screen in PAGES.items():
                tabs[who] = await cdp.open_tab(f"{server.base_url}/j/{tokens[who]}", screen)
                await prejoin_ready(tabs[who])
            for tab in tabs.values():
                await enter(tab)
            for who in ("m1", "m2", "m3"):
                clients[who] = await connect(server, tokens[who])
            await wait_until(sec_api.snapshot, lambda s: len(s["present"]) == 6, "six present")
            await tabs["sec"].click("[data-action='open-sitting']")
            await wait_until(sec_api.snapshot, lambda s: s["recording"], "the recording on")
            for tab in tabs.values():
                await tab.wait_for(f"{shown('#rec-pill')} && !{shown('#rec-pill.failed')}",
                                   "the REC pill")

            with open(filler, "wb") as out:
                os.posix_fallocate(out.fileno(), 0, 2048 * MB)
            state = await wait_until(sec_api.snapshot, lambda s: s["recording_failure"] != "",
                                     "the recording failed for want of space", 30)
            filler.unlink()
            assert not state["recording"]
            for who, tab in tabs.items():
                pill = await tab.wait_for(
                    f"{shown('#rec-pill.failed')} && {text_of('#rec-pill')}",
                    f"the failed pill on the {who} page")
                assert pill == "⚠ ЗАПИСЬ ПРЕРВАНА", (who, pill)
                strip = await tab.wait_for(
                    f"{shown('#rec-notice.failed details[open] p')} && {text_of('#rec-notice')}",
                    f"why, under the header of the {who} page")
                assert "Видеозапись прервалась" in strip and "recordings.min_free_mb" in strip, strip
                assert not await tab.evaluate("document.body.classList.contains('recording')")
            for who, tab in tabs.items():
                await shot(tab, folder, f"s10-{who}-recording-failed", phone=PAGES[who] is PHONE)
                await shot(tab, folder, f"s10-{who}-recording-failed", phone=PAGES[who] is not PHONE)
                await tab.emulate(PAGES[who])

            only_from_server(server.base_url, tabs.values())
            for who, tab in tabs.items():
                assert not tab.exceptions, (who, tab.exceptions)
            for client in clients.values():
                await client.close()
            clients.clear()
            await end_sessions(server.rooms, str(created.day_id), tabs.values())
        finally:
            filler.unlink(missing_ok=True)
            for client in clients.values():
                await client.close()
            await cdp.close()
            await sec_api.close()
    assert not group_alive(browser.process.pid), "a Chromium process outlived the test"
    REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for picture in folder.glob("s10-*.png"):
        shutil.copy2(picture, REPO_ARTIFACTS / picture.name)
