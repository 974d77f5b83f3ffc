"""Rule P5 during the defense: the server watches what each student's connection
delivers and warns the secretary when it stays under the minimum (media/bitrate.py).

The judgement is tested on its own with made-up counts; then real aiortc students,
each in a network namespace of its own, one whose uplink netlab limits to
150 kbit/s and one at full rate, and a real secretary: only the limited one is
reported (notice and journal)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiohttp import web

from media.bitrate import LOW, RESTORED, LinkChange, UplinkWatch
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE, ROOMS

from . import netlab
from .cdp import DESKTOP, PHONE, Cdp
from .chromium import chromium, require_chromium
from .badlink_lab import lab_server
from .media_helpers import joined
from .test_browser import enter
from .procedure_helpers import day_spec
from .timing import wait_until

pytestmark = pytest.mark.timeout(120)

LOW_AFTER_S = 4.0
SHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"


# -- the judgement --------------------------------------------------------------------


def feed(watch: UplinkWatch, kbps_per_second: Sequence[float], start: float = 0.0,
         total: int = 0) -> tuple[list[tuple[float, LinkChange]], int]:
    """One sample a second at the given rates; the changes with their times."""
    changes = []
    for i, kbps in enumerate(kbps_per_second):
        total += int(kbps * 1000 / 8)
        change = watch.sample(start + i + 1, total)
        if change is not None:
            changes.append((start + i + 1, change))
    return changes, total


def test_a_link_under_the_minimum_for_a_full_window_warns_once() -> None:
    watch = UplinkWatch(min_kbps=200, after_s=10)
    changes, _ = feed(watch, [800] * 12 + [150] * 20)
    assert [c.kind for _, c in changes] == [LOW]
    at, change = changes[0]
    # The 10-second average crosses 200 once enough seconds at 150 are in it.
    assert 20 <= at <= 24, at
    assert 150 <= change.kbps < 200


def test_a_blip_does_not_warn() -> None:
    watch = UplinkWatch(min_kbps=200, after_s=10)
    changes, _ = feed(watch, [600] * 12 + [0, 0, 0] + [600] * 15)
    assert changes == []


def test_no_verdict_before_a_full_window() -> None:
    watch = UplinkWatch(min_kbps=200, after_s=10)
    changes, _ = feed(watch, [50] * 8)
    assert changes == []
    assert watch.kbps() is not None


def test_recovery_needs_the_margin_for_a_full_window() -> None:
    watch = UplinkWatch(min_kbps=200, after_s=10)
    changes, total = feed(watch, [100] * 15)
    assert [c.kind for _, c in changes] == [LOW]
    # Hovering just over the minimum does not clear it (no flapping at the edge).
    hovering, total = feed(watch, [220] * 20, start=15, total=total)
    assert hovering == []
    back, _ = feed(watch, [600] * 15, start=35, total=total)
    assert [c.kind for _, c in back] == [RESTORED]
    assert back[0][1].kbps >= 250


def test_a_restarted_counter_starts_a_new_window() -> None:
    watch = UplinkWatch(min_kbps=200, after_s=4)
    changes, _ = feed(watch, [800] * 6)
    assert changes == []
    # A new connection counts from zero: no negative rate, no verdict at once.
    assert watch.sample(7, 100) is None
    assert watch.kbps() is None


# -- real students on shaped links ----------------------------------------------------


async def spawn_student(host: netlab.Host, port: int, token: str, log: Path,
                        max_kbps: int | None = None) -> None:
    await host.spawn([sys.executable, "-m", "tests.badlink_peer",
                      f"http://{host.gateway}:{port}", token,
                      *([] if max_kbps is None else [str(max_kbps)])], log=log)


def link_notices(client: RoomClient, student: str) -> list[dict[str, object]]:
    return [n for n in client.state.notices
            if n.get("kind") in (LOW, RESTORED) and n.get("student") == student]


async def test_a_student_under_p5_warns_the_secretary_and_one_at_full_rate_does_not(
        tmp_path: Path, isolated_network: None) -> None:
    async with lab_server(tmp_path, student_low_after_s=LOW_AFTER_S) as server:
        app: web.Application = server.app
        port = server.port
        assert port is not None
        created = await RosterStore(app[DATABASE]).create_day(
            day_spec(time.time() + 60), expires_at=time.time() + 86400, now=time.time())
        names = ["chair", "m1", "m2", "m3", "sec", "s1", "s2"]
        tokens = {n: i.token for n, i in zip(names, created.invites, strict=True)}
        ids = {n: str(i.person_id) for n, i in zip(names, created.invites, strict=True)}
        secretary = await joined(f"http://127.0.0.1:{port}", tokens["sec"])
        try:
            async with netlab.Host(21) as weak, netlab.Host(22) as strong:
                await weak.netem(rate_kbit=150)
                started = time.monotonic()
                # Its encoder settles under the limit, as a browser's would (aiortc has
                # no congestion control of its own).
                await spawn_student(weak, port, tokens["s1"], tmp_path / "s1.log", max_kbps=100)
                await spawn_student(strong, port, tokens["s2"], tmp_path / "s2.log")
                watcher = app[ROOMS].watcher(str(created.day_id))
                assert watcher is not None

                def s1_low() -> bool:
                    return any(n["kind"] == LOW for n in link_notices(secretary, ids["s1"]))

                await secretary.wait_for(s1_low, 45, "the secretary warned about s1's link")
                warned_after = time.monotonic() - started
                low = link_notices(secretary, ids["s1"])[0]
                assert low["minimum_kbps"] == 200 and low["clause"] == "6.4"
                assert isinstance(low["kbps"], int) and 0 < low["kbps"] < 200, low
                # The full-rate student, watched for at least two full windows by now.
                await wait_until(lambda: watcher.kbps(ids["s2"]), lambda k: k is not None,
                                 "s2's rate measured", timeout=30)
                s2_since = time.monotonic()
                # What is looked at is an absence: s2 judged over two more full windows.
                await wait_until(lambda: time.monotonic() - s2_since,
                                 lambda waited: waited >= 3 * LOW_AFTER_S, "three windows of s2")
                s2_kbps = watcher.kbps(ids["s2"])
                assert s2_kbps is not None and s2_kbps >= 250, s2_kbps
                assert link_notices(secretary, ids["s2"]) == [], secretary.state.notices
                entries = await Journal(app[DATABASE]).entries(created.day_id)
                journaled = [(e.person_id, e.kind, e.detail) for e in entries if e.kind in (LOW, RESTORED)]
                assert journaled == [(int(ids["s1"]), LOW, {"kbps": low["kbps"], "minimum_kbps": 200})]

                print(f"\n[P5 watch] s1 limited to 150 kbit/s: warned after {warned_after:.1f} s at "
                      f"{low['kbps']} kbit/s (window {LOW_AFTER_S:g} s); s2 at full rate: "
                      f"{s2_kbps:.0f} kbit/s, no warning")

                # The secretary comes back on their page while s1's link is still low:
                # the warning in force is shown to them too.
                await secretary.close()
                await secretary_page_sees_the_warning(tmp_path, port, tokens["sec"])
        finally:
            await secretary.close()


async def secretary_page_sees_the_warning(tmp_path: Path, port: int, token: str) -> None:
    require_chromium()
    async with chromium(log=tmp_path / "secretary.log", devtools=True, deny_media=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        try:
            tab = await cdp.open_tab(f"http://127.0.0.1:{port}/j/{token}", DESKTOP)
            await enter(tab, 60)
            shown = await tab.wait_for(
                "document.querySelector('.notice-log li.notice-link_low')?.textContent",
                "the warning in the secretary's notices", 30)
            assert "Студент 1" in shown and "меньше необходимых 200 кбит/с" in shown, shown
            assert "(п. 6.4)" in shown, shown
            for screen, size in ((PHONE, "phone"), (DESKTOP, "desktop")):
                await tab.screenshot(SHOTS / f"badlink_secretary_link_low_{size}.png", screen)
            await tab.evaluate("window.roomDebug?.link?.finish('test over')")
        finally:
            await cdp.close()

