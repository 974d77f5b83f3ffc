"""A small Chrome DevTools Protocol client over the browser's websocket (aiohttp).

One connection to the browser (``Cdp``) drives several tabs (``Tab``) through
flattened target sessions: open a page, evaluate script in it, wait for a condition,
emulate a phone or a desktop screen, take a screenshot, watch what it requests.
Enough for the browser tests; not a general client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

COMMAND_TIMEOUT_S = 30.0


class CdpError(AssertionError):
    """The browser answered a command with an error, or a script threw."""


@dataclass(frozen=True)
class Screen:
    width: int
    height: int
    scale: float = 1.0
    mobile: bool = False


DESKTOP = Screen(1280, 860)
PHONE = Screen(360, 760, scale=1.0, mobile=True)
#: Screenshots show the whole page, up to this many CSS pixels tall.
MAX_SHOT_HEIGHT = 3200


@dataclass
class Cdp:
    """The browser-level connection; commands may name a target session."""

    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _listeners: list[Callable[[str, dict[str, Any], str | None], None]] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, url: str, connector: aiohttp.BaseConnector | None = None) -> Cdp:
        """``connector``: e.g. a UnixConnector to a browser in another network namespace."""
        session = aiohttp.ClientSession(connector=connector)
        try:
            ws = await session.ws_connect(url, max_msg_size=256 << 20)
        except BaseException:
            await session.close()
            raise
        cdp = cls(session, ws)
        cdp._reader = asyncio.create_task(cdp._read())
        return cdp

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.session.close()

    def on_event(self, listener: Callable[[str, dict[str, Any], str | None], None]) -> None:
        self._listeners.append(listener)

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session_id: str | None = None) -> dict[str, Any]:
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        await self.ws.send_str(json.dumps(message))
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
                if "id" in data:
                    future = self._pending.get(data["id"])
                    if future is None or future.done():
                        continue
                    if "error" in data:
                        future.set_exception(CdpError(f"{data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                else:
                    for listener in self._listeners:
                        listener(data.get("method", ""), data.get("params", {}), data.get("sessionId"))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CdpError("the browser closed the DevTools connection"))

    async def open_tab(self, url: str, screen: Screen = DESKTOP) -> Tab:
        """A new tab showing ``url`` at ``screen`` size, its requests recorded."""
        # A window each: every page is visible, so it paints and animates as in front of a person.
        target = await self.send("Target.createTarget", {"url": "about:blank", "newWindow": True})
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True})
        tab = Tab(self, target["targetId"], attached["sessionId"])
        self.on_event(tab._event)
        await tab.send("Network.enable")
        # Tabs of one profile share the HTTP cache, whose per-URL lock can hold a
        # tab's module requests while another tab loads the same files.
        await tab.send("Network.setCacheDisabled", {"cacheDisabled": True})
        await tab.send("Page.enable")
        await tab.send("Runtime.enable")
        await tab.emulate(screen)
        await tab.send("Page.navigate", {"url": url})
        return tab


@dataclass
class Tab:
    """One page (target) of the browser."""

    cdp: Cdp
    target_id: str
    session_id: str
    requests: list[str] = field(default_factory=list)
    #: Requests still waiting for their response, by request id.
    waiting: dict[str, str] = field(default_factory=dict)
    exceptions: list[str] = field(default_factory=list)
    closed: bool = False

    def _event(self, method: str, params: dict[str, Any], session_id: str | None) -> None:
        if session_id != self.session_id:
            return
        if method == "Network.requestWillBeSent":
            self.requests.append(str(params["request"]["url"]))
            self.waiting[str(params["requestId"])] = str(params["request"]["url"])
        elif method in ("Network.loadingFinished", "Network.loadingFailed"):
            self.waiting.pop(str(params["requestId"]), None)
        elif method == "Network.webSocketCreated":
            self.requests.append(str(params["url"]))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(str(details.get("exception", {}).get("description")
                                       or details.get("text")))
        elif method == "Page.javascriptDialogOpening":
            # confirm() and alert() would block the page: a person says yes.
            asyncio.get_running_loop().create_task(self._accept_dialog())

    async def _accept_dialog(self) -> None:
        with contextlib.suppress(CdpError):
            await self.send("Page.handleJavaScriptDialog", {"accept": True})

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.cdp.send(method, params, self.session_id)

    async def emulate(self, screen: Screen) -> None:
        await self.send("Emulation.setDeviceMetricsOverride", {
            "width": screen.width, "height": screen.height,
            "deviceScaleFactor": screen.scale, "mobile": screen.mobile})
        await self.send("Emulation.setTouchEmulationEnabled", {"enabled": screen.mobile})

    async def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` (awaited if a promise), as JSON."""
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(f"{expression!r} threw: "
                           f"{details.get('exception', {}).get('description') or details.get('text')}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; fail saying ``what`` and the last value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        value: Any = None
        while True:
            try:
                value = await self.evaluate(expression)
            except CdpError as exc:
                value = str(exc)
            else:
                if value:
                    return value
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                     f"last value: {value!r}; page errors: {self.exceptions[-3:]}")
            await asyncio.sleep(0.2)

    async def click(self, selector: str, timeout: float = 20.0) -> None:
        """Click the first element matching ``selector`` once it exists and is enabled.

        A page's button stays disabled while the request it sent is in flight, and on a
        loaded two-core machine that has taken over 5 s (CI), hence the generous wait."""
        await self.wait_for(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e || e.disabled) return false; e.scrollIntoView({block: 'center'});"
            " e.click(); return true; })()", f"something enabled to click at {selector!r}", timeout)

    async def screenshot(self, path: Path, screen: Screen | None = None) -> Path:
        """Save the whole page as a PNG, at ``screen``'s width if given.

        The screen is made as tall as the page (capturing beyond the viewport makes
        Chromium re-raster a page full of playing videos, which can stall it).
        """
        if screen is not None:
            await self.emulate(screen)
            await asyncio.sleep(0.3)  # layout at the new width, before measuring the page
            height = int(await self.evaluate("document.documentElement.scrollHeight"))
            await self.emulate(Screen(screen.width, max(screen.height, min(height, MAX_SHOT_HEIGHT)),
                                      screen.scale, screen.mobile))
            await asyncio.sleep(0.5)  # layout, and a frame of each video
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.cdp.send("Target.closeTarget", {"targetId": self.target_id})
