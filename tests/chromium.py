"""Headless Chromium (Debian's /usr/bin/chromium) as a real participant in a test.

The browser runs with a fake camera and microphone and no permission prompts, in a
process group of its own, with a fresh profile directory. ``chromium(url)`` starts it
and, on exit, terminates it, kills it after a timeout, reaps it and removes anything
left in its process group, so no browser outlives the test. With ``devtools=True`` it
listens for the DevTools protocol on a port of its choosing (``Browser.devtools_url``,
for tests/cdp.py), and tabs in the background are not throttled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .timing import wait_until

CHROMIUM = Path("/usr/bin/chromium")
TERMINATE_TIMEOUT_S = 5.0
DEVTOOLS_TIMEOUT_S = 30.0

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # 10 frames a second: four pages encoding and decoding each other's video on a
    # two-core machine stay well within what it can do.
    "--use-fake-device-for-media-stream=fps=10",
    "--autoplay-policy=no-user-gesture-required",
    # Real host candidates (10.77.0.x inside the test namespace) instead of .local
    # names that aiortc could not resolve.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    # The page's console.* lines land in the log, to quote when a test fails.
    "--enable-logging=stderr",
    "--v=0",
)

# Several pages of one browser all keep running at full speed (timers, media).
DEVTOOLS_FLAGS = (
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)


class ChromiumMissing(AssertionError):
    """Raised (as a test failure, not a skip) when the browser is not installed."""


@dataclass
class Browser:
    """A running headless Chromium; ``log`` holds its stdout and stderr."""

    process: asyncio.subprocess.Process
    log: Path
    devtools_url: str | None = None

    @property
    def exited(self) -> bool:
        return self.process.returncode is not None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def console(self) -> list[str]:
        """The page's console messages so far (Chromium logs them as CONSOLE lines)."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if ":CONSOLE" in line]


def require_chromium() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        raise ChromiumMissing(
            f"{CHROMIUM} is not installed; the browser tests need Debian's Chromium "
            "(apt-get install -y chromium), which the CI script installs"
        )
    return CHROMIUM


@contextlib.asynccontextmanager
async def chromium(
    url: str = "about:blank", *, log: Path, deny_media: bool = False,
    extra_args: Sequence[str] = (), devtools: bool = False,
    command_prefix: Sequence[str] = (),
) -> AsyncIterator[Browser]:
    """Open ``url`` in a fresh headless Chromium for the duration of the block.

    Camera and microphone requests are granted without a prompt (a synthetic
    picture and a beep), or refused with ``deny_media``, as if the person said no.
    ``command_prefix`` goes before the browser's command line (tests/netlab.py runs it
    inside another network namespace with ``nsenter``, which execs it: same pid).
    """
    executable = require_chromium()
    permission = "--use-fake-ui-for-media-stream" + ("=deny" if deny_media else "")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    flags = (*FLAGS, *(DEVTOOLS_FLAGS if devtools else ()))
    try:
        with open(log, "wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                *command_prefix, str(executable), *flags, permission, *extra_args, f"--user-data-dir={profile}", url,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # its own process group, to sweep on exit
            )
        try:
            browser = Browser(process, log)
            if devtools:
                browser.devtools_url = await _devtools_url(Path(profile), browser)
            yield browser
        finally:
            await _stop(process)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_url(profile: Path, browser: Browser) -> str:
    """The browser's DevTools websocket, from the file it writes once it listens."""
    port_file = profile / "DevToolsActivePort"

    def url() -> str:
        """The websocket's URL once the file is whole, "" before."""
        if browser.exited:
            raise AssertionError("Chromium exited before opening its DevTools port")
        try:
            port, path = (line.strip() for line in port_file.read_text().split("\n")[:2])
        except (FileNotFoundError, ValueError):
            return ""
        return f"ws://127.0.0.1:{port}{path}" if port and path else ""

    try:
        return await wait_until(url, what="Chromium's DevTools port", timeout=DEVTOOLS_TIMEOUT_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- browser log (tail):\n{browser.log_tail()}") from None


def group_alive(pgid: int) -> bool:
    """Whether any process of the browser's process group still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def _stop(process: asyncio.subprocess.Process) -> None:
    try:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), TERMINATE_TIMEOUT_S)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        # Renderer, GPU and utility processes normally go with the browser; whatever
        # did not is still in the group the browser led (its id is the browser's pid).
        await _sweep_group(process.pid)
    except BaseException:
        # Cancelled (a test timeout) half-way: no grace left, but leave nothing behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        raise


async def _sweep_group(pgid: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TERMINATE_TIMEOUT_S
    sig = signal.SIGTERM
    # Bounded even when what is left are zombies nobody reaps (kill() still finds them).
    while loop.time() < deadline + 1.0:
        if loop.time() > deadline:
            sig = signal.SIGKILL
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.1)
