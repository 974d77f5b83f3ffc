"""The recordings page in headless Chromium: the secretary's list, the player
playing the defense's MP4 through a signed link, and a chapter button jumping to
its phase."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .cdp import DESKTOP, PHONE, Cdp
from .chromium import chromium, require_chromium
from .conftest import RunningServer
from .test_recordings_access import built_day

pytestmark = pytest.mark.timeout(120)
REPO_ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


async def test_the_player_plays_and_jumps_to_a_phase(server: RunningServer,
                                                    tmp_path: Path) -> None:
    require_chromium()
    day, tokens = await built_day(server)
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        try:
            tab = await cdp.open_tab(f"{server.base_url}/recordings#{tokens['sec']}")
            await tab.wait_for("document.querySelector('.student .play:not([hidden])') !== null",
                               "the defended student's play button")
            assert "#" not in await tab.evaluate("location.href")  # the token left the URL
            await tab.click(".student .play:not([hidden])")
            await tab.wait_for("document.getElementById('player').readyState >= 1",
                               "the MP4's metadata in the player")
            duration = await tab.evaluate("document.getElementById('player').duration")
            assert duration == pytest.approx(6.0, abs=0.2)
            titles = await tab.evaluate(
                "[...document.querySelectorAll('#chapters button')].map(b => b.textContent)")
            assert titles[1].startswith("Questions") and len(titles) == 6
            await tab.evaluate("document.querySelectorAll('#chapters button')[3].click()")
            # It plays on from there: the H.264 and AAC decode in the browser.
            await tab.wait_for("document.getElementById('player').currentTime >= 3.5",
                               "the player playing on from the reviewer's review")
            await tab.wait_for(
                "document.querySelectorAll('#chapters button')[3]"
                ".getAttribute('aria-current') === 'true'", "the chapter marked as playing")
            assert await tab.evaluate("document.getElementById('player').error") is None
            # For people to look at: the page as the secretary sees it, desk and phone.
            await tab.evaluate("document.getElementById('player').pause()")
            REPO_ARTIFACTS.mkdir(parents=True, exist_ok=True)
            for label, screen in (("desktop", DESKTOP), ("phone", PHONE)):
                shot = await tab.screenshot(tmp_path / f"09-recordings-{label}.png", screen)
                assert shot.stat().st_size > 10_000
                shutil.copy2(shot, REPO_ARTIFACTS / shot.name)
        finally:
            await cdp.close()
