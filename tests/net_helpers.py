"""What the real-network tests share: a server reachable from netlab hosts, a real
coturn with the shared-secret scheme, and an aiortc participant run as a process
inside a host (tests/net_peer.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from defense_room.tls import ensure_self_signed
from server.config import Config
from storage.invites import InviteStore, IssuedInvite, Role
from web_ui.app import create_app
from web_ui.keys import INVITES

from . import netlab

TURNSERVER = Path("/usr/bin/turnserver")
#: Where coturn listens (the test namespace's first address) and its ports.
TURN_IP = "10.77.0.1"
TURN_PORT = 3478
TURNS_PORT = 5349
TURN_SECRET = "netlab-turn-secret-0123456789abcdef"


class CoturnMissing(AssertionError):
    """coturn is not installed (a failure, not a skip)."""


@dataclass
class LabServer:
    """The app listening on every address of the test namespace, one day created."""

    app: web.Application
    port: int
    day_id: int

    def url(self, address: str) -> str:
        return f"http://{address}:{self.port}"

    async def invite(self, role: Role, name: str) -> IssuedInvite:
        store: InviteStore = self.app[INVITES]
        return await store.issue(self.day_id, role, name, time.time() + 3600)


@contextlib.asynccontextmanager
async def lab_server(config: Config) -> AsyncIterator[LabServer]:
    """``config``'s app on 0.0.0.0 (a netlab host reaches it at its gateway)."""
    test_server = TestServer(create_app(config), host="0.0.0.0", port=0)
    await test_server.start_server()
    try:
        day_id = await test_server.app[INVITES].create_day(
            "Network day", datetime.date.today(), time.time(), "Europe/Moscow")
        assert test_server.port is not None
        lab = LabServer(test_server.app, test_server.port, day_id)
        # A day has its chair (the pages' procedure and protocol panels need one).
        await lab.invite(Role.CHAIR, "Chair")
        yield lab
    finally:
        await test_server.close()


def require_coturn() -> Path:
    if not TURNSERVER.exists():
        raise CoturnMissing(f"{TURNSERVER} is not installed; the TURN tests need Debian's coturn "
                            "(apt-get install -y coturn), which the CI script installs")
    return TURNSERVER


@contextlib.asynccontextmanager
async def coturn(folder: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """A real coturn in the test namespace: use-auth-secret with TURN_SECRET, UDP and
    TCP on TURN_PORT, TLS on TURNS_PORT (a self-signed certificate), relays on
    TURN_IP. Peers on private addresses are allowed (coturn denies none unless told
    to); loopback peers are not."""
    binary = require_coturn()
    folder.mkdir(parents=True, exist_ok=True)
    material = ensure_self_signed(folder / "tls", TURN_IP)
    log = folder / "turnserver.log"
    empty = folder / "turnserver.conf"  # not /etc/turnserver.conf: only what is below
    empty.write_text("")
    args = [
        str(binary), "-c", str(empty), "--no-cli", "--log-file=stdout", "--simple-log", "--verbose",
        f"--listening-ip={TURN_IP}", f"--relay-ip={TURN_IP}",
        f"--listening-port={TURN_PORT}", f"--tls-listening-port={TURNS_PORT}",
        "--min-port=49160", "--max-port=49400",
        "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}", "--realm=defense.test",
        f"--cert={material.cert_file}", f"--pkey={material.key_file}",
        "--no-dtls", "--fingerprint", "--no-multicast-peers",
        f"--pidfile={folder / 'turnserver.pid'}", f"--userdb={folder / 'turndb.sqlite'}",
    ]
    with open(log, "wb") as out:
        process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    try:
        await _wait_listening(process, log)
        yield process
    finally:
        await netlab.stop_process(process)


async def _wait_listening(process: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(200):
        if process.returncode is not None:
            raise AssertionError(f"coturn exited ({process.returncode}):\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(TURN_IP, TURN_PORT)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"coturn never listened on {TURN_IP}:{TURN_PORT}")


@dataclass
class PeerReport:
    """What tests/net_peer.py printed: its selected candidate pair and frames decoded."""

    lines: list[dict[str, Any]]

    @property
    def result(self) -> dict[str, Any]:
        for line in self.lines:
            if "frames" in line:
                return line
        raise AssertionError(f"the participant reported no result: {self.lines}")


async def run_peer(host: netlab.Host, base_url: str, token: str, log: Path, *,
                   only: str = "", timeout: float = 60.0) -> PeerReport:
    """Run tests/net_peer.py inside ``host`` until it reports (or fails)."""
    argv: Sequence[str] = [sys.executable, "-m", "tests.net_peer", base_url, token, only or "-"]
    process = await host.spawn(argv, log=log)
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except asyncio.TimeoutError:
        await netlab.stop_process(process)
    text = log.read_text(errors="replace")
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                lines.append(json.loads(raw))
    if not any("frames" in line for line in lines):
        raise AssertionError(f"the participant in {host.address} did not finish:\n{text[-4000:]}")
    return PeerReport(lines)


def with_turn(config: Config, folder: Path, urls: Sequence[str]) -> Config:
    """``config`` with one TURN server sharing TURN_SECRET (in a file)."""
    from server.config import TurnServer

    secret = folder / "turn-secret"
    folder.mkdir(parents=True, exist_ok=True)
    secret.write_text(TURN_SECRET + "\n")
    return dataclasses.replace(config, turn=(TurnServer(urls=tuple(urls), secret_file=secret),))

