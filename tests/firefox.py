"""Headless Firefox (Debian's /usr/bin/firefox-esr) as a real participant, driven
over WebDriver BiDi (no geckodriver: Firefox itself speaks BiDi on
``--remote-debugging-port``).

``firefox(log=...)`` starts it with a fresh profile whose ``user.js`` fakes the camera
and microphone without a prompt, keeps host ICE candidates as real addresses (the
server's aiortc cannot resolve mDNS names) and turns off everything that would
reach outside (updates, telemetry, safe browsing, captive portal, remote settings).
The browser runs in a process group of its own; on exit it is terminated, killed
after a timeout, reaped, whatever is left in its group is swept and the profile is
removed, as tests/chromium.py does for Chromium.

``Bidi`` is the small client the tests use, mirroring what they use of tests/cdp.py:
open a page, evaluate script (awaited, the value as JSON), wait for a condition,
set the viewport, take a screenshot, click. ``FX_MOZ_LOG=mtransport:5`` in the
environment puts Firefox's ICE gathering and checks in its log.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .cdp import MAX_SHOT_HEIGHT, Screen
from .chromium import _stop
from .timing import wait_until

FIREFOX = Path("/usr/bin/firefox-esr")
START_TIMEOUT_S = 60.0
COMMAND_TIMEOUT_S = 30.0

# user.js: one `user_pref(name, value);` a line. Why each group is there:
PREFS: dict[str, bool | int | str] = {
    # A synthetic camera picture and a tone, granted without a prompt.
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    # Firefox offers host candidates of every interface only to a page that holds a
    # camera or microphone permission (fake devices do not count as capturing);
    # otherwise only the default route's address, and the test namespace has none.
    "permissions.default.camera": 1,
    "permissions.default.microphone": 1,
    "media.autoplay.block-webaudio": False,
    # Real host candidates (10.77.0.x in the test namespace), not .local names.
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # No first-run pages, no default-browser or session-restore questions.
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.aboutwelcome.enabled": False,
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.policy.firstRunURL": "",
    "trailhead.firstrun.didSeeAboutWelcome": True,
    "browser.tabs.warnOnClose": False,
    "browser.sessionstore.resume_from_crash": False,
    # Nothing to the outside: telemetry, updates, safe browsing, captive portal,
    # connectivity checks, remote settings, add-on and search updates, prefetching.
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.server": "",
    "datareporting.healthreport.uploadEnabled": False,
    "app.update.enabled": False,
    "app.update.auto": False,
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    "services.settings.server": "data:,#remote-settings-off/v1",
    "messaging-system.rsexperimentloader.enabled": False,
    "browser.discovery.enabled": False,
    "nimbus.debug": False,
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "browser.search.update": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.telemetry": False,
    "browser.newtabpage.activity-stream.feeds.snippets": False,
    "browser.ping-centre.telemetry": False,
    "media.gmp-manager.url": "http://127.0.0.1:1/",
    "media.gmp-gmpopenh264.enabled": False,
    "media.gmp-gmpopenh264.autoupdate": False,
    "media.gmp-widevinecdm.enabled": False,
    "browser.region.network.url": "",
    "geo.provider.network.url": "",
    # The tests' self-signed certificate (tests/conftest.py's TLS cases) is accepted
    # by the session's acceptInsecureCerts; no OS roots to look up.
    "security.enterprise_roots.enabled": False,
    "security.OCSP.enabled": 0,
    "security.remote_settings.crlite_filters.enabled": False,
    # Every page keeps running at full speed in the background, like Chromium's flags.
    "dom.min_background_timeout_value": 4,
    "dom.timeout.enable_budget_timer_throttling": False,
    "dom.ipc.processPriorityManager.enabled": False,
    # BiDi only, and the page's console in the browser's log for failing tests.
    "remote.active-protocols": 1,
    "devtools.console.stdout.content": True,
}


class FirefoxMissing(AssertionError):
    """Raised (as a test failure, not a skip) when the browser is not installed."""


class BidiError(AssertionError):
    """The browser answered a command with an error, or a script threw."""


def require_firefox() -> Path:
    if not os.access(FIREFOX, os.X_OK):
        raise FirefoxMissing(
            f"{FIREFOX} is not installed; the Firefox tests need Debian's firefox-esr "
            "(apt-get install -y firefox-esr), which the CI script installs"
        )
    return FIREFOX


def user_js(prefs: dict[str, bool | int | str]) -> str:
    return "".join(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n"
                   for name, value in prefs.items())


@dataclass
class Firefox:
    """A running headless Firefox; ``log`` holds its stdout and stderr."""

    process: asyncio.subprocess.Process
    log: Path
    bidi_url: str = ""

    @property
    def exited(self) -> bool:
        return self.process.returncode is not None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@contextlib.asynccontextmanager
async def firefox(*, log: Path) -> AsyncIterator[Firefox]:
    """A fresh headless Firefox listening for WebDriver BiDi, for the block."""
    executable = require_firefox()
    profile = Path(tempfile.mkdtemp(prefix="firefox-profile-"))
    try:
        (profile / "user.js").write_text(user_js(PREFS), encoding="utf-8")
        env = {**os.environ, "HOME": str(profile), "MOZ_CRASHREPORTER_DISABLE": "1",
               "MOZ_DISABLE_AUTO_SAFE_MODE": "1", "MOZ_HEADLESS": "1"}
        if "FX_MOZ_LOG" in os.environ:  # e.g. FX_MOZ_LOG=mtransport:5: ICE in the browser's log
            env.update(MOZ_LOG=os.environ["FX_MOZ_LOG"], R_LOG_LEVEL="7", R_LOG_DESTINATION="stderr")
        with open(log, "wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                str(executable), "--headless", "--no-remote", "--new-instance",
                "--profile", str(profile), "--remote-debugging-port=0",
                "--remote-allow-hosts=127.0.0.1", "about:blank",
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
                start_new_session=True,  # its own process group, to sweep on exit
            )
        try:
            browser = Firefox(process, log)
            browser.bidi_url = await _bidi_url(browser)
            yield browser
        finally:
            await _stop(process)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def _bidi_url(browser: Firefox) -> str:
    """The BiDi websocket, from the line Firefox prints once it listens."""
    def url() -> str:
        if browser.exited:
            raise AssertionError(f"Firefox exited before listening for WebDriver BiDi:\n"
                                 f"{browser.log_tail()}")
        text = browser.log.read_text(errors="replace")
        found = re.search(r"WebDriver BiDi listening on (ws://[\w.:\[\]]+)", text)
        return f"{found.group(1)}/session" if found else ""

    try:
        return await wait_until(url, what="Firefox's WebDriver BiDi port", timeout=START_TIMEOUT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- browser log (tail):\n{browser.log_tail()}") from None


@dataclass
class Bidi:
    """One WebDriver BiDi session on the browser."""

    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _reader: asyncio.Task[None] | None = None
    tabs: list[Page] = field(default_factory=list)

    @classmethod
    async def connect(cls, url: str) -> Bidi:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, max_msg_size=256 << 20)
        except BaseException:
            await session.close()
            raise
        bidi = cls(session, ws)
        bidi._reader = asyncio.create_task(bidi._read())
        try:
            await bidi.send("session.new", {"capabilities": {"alwaysMatch": {
                "acceptInsecureCerts": True, "unhandledPromptBehavior": {"default": "accept"}}}})
            await bidi.send("session.subscribe", {"events": ["log.entryAdded"]})
        except BaseException:
            await bidi.close()
            raise
        return bidi

    async def close(self) -> None:
        with contextlib.suppress(BidiError, asyncio.TimeoutError, ConnectionError):
            if not self.ws.closed:
                await asyncio.wait_for(self.send("session.end"), 5)
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.session.close()

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self.ws.send_str(json.dumps({"id": message_id, "method": method,
                                           "params": params or {}}))
        try:
            return await asyncio.wait_for(future, COMMAND_TIMEOUT_S)
        finally:
            self._pending.pop(message_id, None)

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data.get("type") == "event":
                    self._event(data.get("method", ""), data.get("params", {}))
                    continue
                future = self._pending.get(data.get("id", -1))
                if future is None or future.done():
                    continue
                if data.get("type") == "error":
                    future.set_exception(BidiError(f"{data.get('error')}: {data.get('message')}"))
                else:
                    future.set_result(data.get("result", {}))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BidiError("the browser closed the BiDi connection"))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method != "log.entryAdded":
            return
        context = params.get("source", {}).get("context")
        for tab in self.tabs:
            if tab.context == context:
                tab.console.append(f"{params.get('level')}: {params.get('text')}")
                if params.get("type") == "javascript" and params.get("level") == "error":
                    tab.exceptions.append(str(params.get("text")))

    async def open_tab(self, url: str, screen: Screen) -> Page:
        """A new tab at ``screen`` size, navigating to ``url`` (not waiting for it)."""
        created = await self.send("browsingContext.create", {"type": "window"})
        page = Page(self, str(created["context"]))
        self.tabs.append(page)
        await page.set_viewport(screen)
        await self.send("browsingContext.navigate",
                        {"context": page.context, "url": url, "wait": "none"})
        return page


@dataclass
class Page:
    """One browsing context (tab) of the session."""

    bidi: Bidi
    context: str
    console: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)

    async def set_viewport(self, screen: Screen) -> None:
        await self.bidi.send("browsingContext.setViewport", {
            "context": self.context, "viewport": {"width": screen.width, "height": screen.height},
            "devicePixelRatio": screen.scale})

    async def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` (awaited if a promise), through JSON."""
        wrapped = f"(async () => JSON.stringify(await ({expression})))()"
        result = await self.bidi.send("script.evaluate", {
            "expression": wrapped, "target": {"context": self.context},
            "awaitPromise": True, "resultOwnership": "none"})
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"{expression!r} threw: {details.get('text')}")
        value = result.get("result", {})
        return json.loads(value["value"]) if value.get("type") == "string" else None

    async def wait_for(self, expression: str, what: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; fail saying ``what`` and the last value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        value: Any = None
        while True:
            try:
                value = await self.evaluate(expression)
            except BidiError as exc:
                value = str(exc)
            else:
                if value:
                    return value
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (Firefox);"
                                     f" last value: {value!r}; page errors: {self.exceptions[-3:]};"
                                     f" console: {self.console[-5:]}")
            await asyncio.sleep(0.2)

    async def click(self, selector: str, timeout: float = 20.0) -> None:
        """Click the first element matching ``selector`` once it exists and is enabled."""
        await self.wait_for(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e || e.disabled) return false; e.scrollIntoView({block: 'center'});"
            " e.click(); return true; })()", f"something enabled to click at {selector!r}", timeout)

    async def screenshot(self, path: Path, screen: Screen) -> Path:
        """Save the whole page as a PNG at ``screen``'s width (as tall as the page)."""
        await self.set_viewport(screen)
        await asyncio.sleep(0.3)  # layout at the new width, before measuring the page
        height = int(await self.evaluate("document.documentElement.scrollHeight"))
        await self.set_viewport(Screen(screen.width, max(screen.height, min(height, MAX_SHOT_HEIGHT)),
                                       screen.scale, screen.mobile))
        await asyncio.sleep(0.5)  # layout, and a frame of each video
        shot = await self.bidi.send("browsingContext.captureScreenshot",
                                    {"context": self.context, "origin": "viewport"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        await self.bidi.send("browsingContext.close", {"context": self.context})
