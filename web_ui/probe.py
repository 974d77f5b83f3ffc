"""The pre-join speed check over the path the media takes (rule P5, clause 6.4).

Timing an HTTP download says little about a call: the media goes over UDP (or a
TURN relay), through other firewall rules and queues. So the pre-join page opens a
short WebRTC connection to the server, one data channel and no media, and times
several transfers each way over it (SCTP over DTLS over the same ICE path as the
room's media; its congestion control fills the link as video would).

    POST /api/connection-check/media          the server's offer: {"sdp", "iceServers"}
    POST /api/connection-check/media/answer   {"sdp"}: the page's answer

As in the room, the server makes the offer. Each authenticates the invite token of
any role; a person has one check at a time (a new one replaces the old), the server
at most ``MAX_SESSIONS``, each closed after ``SESSION_S`` seconds whatever happens.
On the channel (``ProbeProtocol``), text messages are JSON commands:

    {"op": "ping", "t": x}        answered {"op": "pong", "t": x}
    {"op": "down", "bytes": N}    answered with N random bytes, then {"op": "sent"}
    {"op": "up", "bytes": N}      N bytes follow; answered {"op": "got"} once all came

N is at most ``MAX_TRANSFER`` and a check makes at most ``MAX_TRANSFERS`` transfers;
anything else closes the channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from server.config import Config

from .auth import invite_of
from .body import json_object, malformed, only
from .errors import json_error
from .keys import CONFIG, INVITES, ROOMS

logger = logging.getLogger(__name__)

MAX_TRANSFER = 256 * 1024
MAX_TRANSFERS = 16
CHUNK = 16 * 1024
MAX_SESSIONS = 16
SESSION_S = 40.0
MAX_SDP_CHARS = 32_000


class ProbeViolation(ValueError):
    """The page broke the probe's protocol or limits: the channel is closed."""


@dataclass
class ProbeProtocol:
    """The channel's protocol without I/O: each message in, the messages to send back."""

    transfers: int = 0
    _upload_expected: int = 0
    _upload_received: int = 0
    replies: list[str | bytes] = field(default_factory=list)

    def handle(self, message: str | bytes) -> list[str | bytes]:
        if isinstance(message, bytes):
            return self._upload(len(message))
        try:
            command = json.loads(message)
        except ValueError as exc:
            raise ProbeViolation("a text message that is not JSON") from exc
        if not isinstance(command, dict):
            raise ProbeViolation("a command must be a JSON object")
        op = command.get("op")
        if op == "ping":
            stamp = command.get("t")
            return [json.dumps({"op": "pong", "t": stamp if isinstance(stamp, int | float) else None})]
        if op not in ("down", "up"):
            raise ProbeViolation(f"unknown command {str(op)[:20]!r}")
        size = command.get("bytes")
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_TRANSFER:
            raise ProbeViolation(f"bytes must be a whole number from 1 to {MAX_TRANSFER}")
        if self._upload_expected:
            raise ProbeViolation("a transfer is still under way")
        self.transfers += 1
        if self.transfers > MAX_TRANSFERS:
            raise ProbeViolation(f"more than {MAX_TRANSFERS} transfers")
        if op == "up":
            self._upload_expected, self._upload_received = size, 0
            return []
        # Random, so nothing on the way can compress it and flatter the link.
        data = os.urandom(size)
        out: list[str | bytes] = [data[i:i + CHUNK] for i in range(0, size, CHUNK)]
        out.append(json.dumps({"op": "sent", "bytes": size}))
        return out

    def _upload(self, size: int) -> list[str | bytes]:
        if not self._upload_expected:
            raise ProbeViolation("bytes arrived with no upload announced")
        self._upload_received += size
        if self._upload_received > self._upload_expected:
            raise ProbeViolation("more bytes than announced")
        if self._upload_received < self._upload_expected:
            return []
        done = self._upload_received
        self._upload_expected = self._upload_received = 0
        return [json.dumps({"op": "got", "bytes": done})]


def ice_servers_json(config: Config) -> list[dict[str, Any]]:
    """The configured ICE servers as the page's RTCPeerConnection takes them (as in the
    room's welcome; TURN credentials are added per person)."""
    return [{"urls": list(s.urls),
             **({"username": s.username} if s.username else {}),
             **({"credential": s.credential} if s.credential else {})}
            for s in config.ice_servers]


class ProbeSessions:
    """The checks under way, at most one per person."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._sessions: dict[int, RTCPeerConnection] = {}
        self._closers: dict[int, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    async def start(self, person_id: int) -> str:
        """A new check for ``person_id``: the server's offer SDP."""
        await self.close(person_id)
        if len(self._sessions) >= MAX_SESSIONS:
            raise json_error(web.HTTPServiceUnavailable, "busy",
                             f"{MAX_SESSIONS} connection checks are under way; try again shortly",
                             headers={"Retry-After": "5"})
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[
            RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
            for s in self._config.ice_servers]))
        self._sessions[person_id] = pc
        loop = asyncio.get_running_loop()
        self._closers[person_id] = loop.call_later(
            SESSION_S, lambda: asyncio.ensure_future(self.close(person_id, pc)))
        channel = pc.createDataChannel("probe", ordered=True)
        protocol = ProbeProtocol()

        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            try:
                replies = protocol.handle(message)
            except ProbeViolation as exc:
                logger.info("connection check of person %s closed: %s", person_id, exc)
                asyncio.ensure_future(self.close(person_id, pc))
                return
            for reply in replies:
                channel.send(reply)

        try:
            await pc.setLocalDescription(await pc.createOffer())
        except Exception:
            await self.close(person_id, pc)
            raise
        return str(pc.localDescription.sdp)

    async def answer(self, person_id: int, sdp: str) -> None:
        pc = self._sessions.get(person_id)
        if pc is None or pc.signalingState != "have-local-offer":
            raise json_error(web.HTTPConflict, "bad_state",
                             "no connection check waits for an answer; start one first")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:  # aiortc raises assorted types for a bad SDP
            await self.close(person_id, pc)
            raise json_error(web.HTTPBadRequest, "malformed",
                             f"the answer could not be applied: {str(exc)[:200]}") from None

    async def close(self, person_id: int, pc: RTCPeerConnection | None = None) -> None:
        """End ``person_id``'s check (only if it is still ``pc``, when given)."""
        current = self._sessions.get(person_id)
        if current is None or (pc is not None and current is not pc):
            return
        del self._sessions[person_id]
        closer = self._closers.pop(person_id, None)
        if closer is not None:
            closer.cancel()
        await current.close()

    async def stop(self) -> None:
        for person_id in list(self._sessions):
            await self.close(person_id)


PROBES = web.AppKey("probes", ProbeSessions)


def add_probe_routes(app: web.Application) -> None:
    app.router.add_post("/api/connection-check/media", start_probe)
    app.router.add_post("/api/connection-check/media/answer", answer_probe)
    app.cleanup_ctx.append(_probes_ctx)


async def _probes_ctx(app: web.Application) -> Any:
    sessions = app[PROBES] = ProbeSessions(app[CONFIG])
    yield
    await sessions.stop()


async def start_probe(request: web.Request) -> web.Response:
    """POST /api/connection-check/media: the server's offer for a new check."""
    invite = await invite_of(request)
    only(await json_object(request), ())  # nothing to say yet: an empty object
    sdp = await request.app[PROBES].start(invite.person_id)
    servers = ice_servers_json(request.app[CONFIG])
    turn = request.app[ROOMS].turn
    if turn.configured:  # the relay the room would use, with the person's own credentials
        day = await request.app[INVITES].get_day(invite.day_id)
        servers += turn.ice_servers(str(invite.person_id), now=time.time(), timezone=day.timezone)
    return web.json_response({"sdp": sdp, "iceServers": servers,
                              "seconds": SESSION_S, "max_bytes": MAX_TRANSFER},
                             headers={"Cache-Control": "no-store"})


async def answer_probe(request: web.Request) -> web.Response:
    """POST /api/connection-check/media/answer {"sdp"}: the page's answer."""
    invite = await invite_of(request)
    body = await json_object(request)
    only(body, ("sdp",))
    sdp = body.get("sdp")
    # An SDP has CRLF line ends, which the text fields of body.py refuse.
    if not isinstance(sdp, str) or not 0 < len(sdp) <= MAX_SDP_CHARS or not sdp.isascii():
        raise malformed(f"'sdp' must be an SDP answer of at most {MAX_SDP_CHARS} ASCII characters")
    await request.app[PROBES].answer(invite.person_id, sdp)
    return web.json_response({"ok": True}, headers={"Cache-Control": "no-store"})
