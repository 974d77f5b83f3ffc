"""The front of ``serve --workers N``: one listening address, N workers behind it.

The front listens where the single-process server did (TLS as configured) and
relays every HTTP request and signaling WebSocket to the worker that owns the day
it belongs to (`server.routing` says how a request names its day;
`server.ownership` which worker owns it). It reads only the SQLite rows that map
an invite token or an appeal to a day, and holds no state of any day. Media never
passes here: each worker's peers receive UDP from the browsers directly.

While a day's worker is down (it died, and the supervisor starts it again) its
requests get 503 with ``Retry-After`` and a sentence saying so, and a signaling
socket for it is closed with 1013 ("try again later"); sockets open when the worker
died are closed with 1012 ("service restart"), and the pages reconnect.

A signaling socket names its day only in its ``join``, so the front holds what the
socket sends until then (within the join timeout and the per-address cap on sockets
waiting to join, as a worker would) and hands it all to the day's worker.

The worker sees the caller's address and scheme in ``X-Forwarded-For`` and
``X-Forwarded-Proto`` (`web_ui.forwarded` believes them only behind the front).
``/healthz`` is answered here for the whole server (`Front.health`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from protocols.server_key import ServerKeyring
from storage.db import Database

from .config import Config
from .day_lookup import DayLookup
from .flood import WaitingSockets
from .ownership import owner_of
from .routing import Anywhere, ByAppeal, ByDay, ByJoin, ByToken, join_token, route_of
from .workers import Supervisor, WorkerSlot

logger = logging.getLogger(__name__)

#: Frames over this close the socket, as the worker's own limit does (web_ui.app).
HARD_FRAME_LIMIT = 1 << 20
RETRY_AFTER_S = 2
#: Messages held before the ``join`` (the worker answers each once it has the socket).
MAX_BEFORE_JOIN = 8
#: The worker's close code for a socket with no join in time (web_ui/session.py).
CLOSE_JOIN_TIMEOUT = 4408
#: Connection headers of one hop, never relayed (RFC 9110 7.6.1), and the ones the
#: front sets itself.
_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
    "Trailer", "Transfer-Encoding", "Upgrade", "X-Forwarded-For", "X-Forwarded-Proto",
    "X-Forwarded-Host", "Forwarded"))
_WS_HANDSHAKE = frozenset(h.lower() for h in (
    "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Content-Length"))

SUPERVISOR = web.AppKey("supervisor", Supervisor)
FRONT_DATABASE = web.AppKey("front_database", Database)
FRONT_SOCKETS = web.AppKey("front_sockets", weakref.WeakSet[web.WebSocketResponse])


class WorkerDown(Exception):
    """The worker a request belongs to is not running (it is being restarted)."""

    def __init__(self, slot: WorkerSlot, day_id: int | None) -> None:
        what = "this request" if day_id is None else f"defense day {day_id}"
        super().__init__(f"the server process of {what} is restarting; try again in a few "
                         "seconds (the day goes on where it was)")
        self.slot = slot


class Front:
    """Picks the worker of each request and relays it; owns one client per worker."""

    def __init__(self, config: Config, supervisor: Supervisor, days: DayLookup) -> None:
        self._slots = supervisor.slots
        self._days = days
        self._join_timeout_s = config.media.join_timeout_s
        # The front holds a socket until its join, so it limits those as a worker does.
        self._waiting = WaitingSockets(config.signaling.max_waiting_per_ip)
        self._next = itertools.cycle(range(len(self._slots)))
        self._clients = [aiohttp.ClientSession(
            # No pool limit: every joined participant holds one socket to its worker.
            connector=aiohttp.UnixConnector(path=str(slot.socket), limit=0),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
            for slot in self._slots]

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    def slot_for(self, day_id: int | None) -> WorkerSlot:
        """The worker of `day_id` (any running one for None); `WorkerDown` if it is down."""
        if day_id is not None:
            slot = self._slots[owner_of(day_id, len(self._slots))]
            if not slot.up:
                raise WorkerDown(slot, day_id)
            return slot
        for _ in range(len(self._slots)):
            slot = self._slots[next(self._next)]
            if slot.up:
                return slot
        raise WorkerDown(self._slots[0], None)

    async def day_of(self, request: web.Request) -> int | None:
        route = route_of(request.path, request.headers)
        if isinstance(route, ByDay):
            return route.day_id
        if isinstance(route, ByAppeal):
            return await self._days.day_of_appeal(route.appeal_id)
        if isinstance(route, ByToken):
            return await self._days.day_of_token(route.token)
        assert isinstance(route, ByJoin | Anywhere)
        return None

    # -- HTTP ------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        """``/healthz`` of the whole server: 200 while a worker answers (503 if none
        does). With the organizer's token, which each worker checks as before, also
        the rooms and participants of all workers and each worker's state."""
        answers: list[dict[str, Any] | None] = []
        for slot, client in zip(self._slots, self._clients, strict=True):
            answer = None
            if slot.up:
                try:
                    async with client.get(URL("http://worker/healthz"),
                                          headers=_forward_headers(request)) as r:
                        answer = await r.json() if r.status == 200 else None
                except (aiohttp.ClientError, ValueError):
                    answer = None
            answers.append(answer)
        ok = any(a is not None for a in answers)
        body: dict[str, Any] = {"ok": ok}
        if any(a is not None and "rooms" in a for a in answers):
            body["rooms"] = sum(int(a.get("rooms", 0)) for a in answers if a is not None)
            body["participants"] = sum(int(a.get("participants", 0))
                                       for a in answers if a is not None)
            body["workers"] = [{"index": slot.index, "up": a is not None, "starts": slot.starts}
                               for slot, a in zip(self._slots, answers, strict=True)]
        return web.json_response(body, status=200 if ok else 503,
                                 headers={"Cache-Control": "no-store"})

    async def relay(self, request: web.Request) -> web.StreamResponse:
        """The request's answer from its worker."""
        if request.path == "/healthz":
            return await self.health(request)
        if isinstance(route_of(request.path, request.headers), ByJoin):
            return await self.relay_socket(request)
        day_id = await self.day_of(request)
        try:
            slot = self.slot_for(day_id)
        except WorkerDown as exc:
            return _restarting(exc)
        client = self._clients[slot.index]
        response: web.StreamResponse | None = None
        try:
            async with client.request(
                    request.method, _worker_url(request), headers=_forward_headers(request),
                    data=request.content if request.body_exists else None,
                    allow_redirects=False) as upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for name, value in upstream.headers.items():
                    if name.lower() not in _HOP:
                        response.headers.add(name, value)
                await response.prepare(request)
                async for chunk in upstream.content.iter_chunked(1 << 16):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            if response is not None or request.transport is None:
                raise  # half an answer is out, or the caller left: nothing more to say
            logger.warning("worker %s did not answer %s %s: %s", slot.index, request.method,
                           request.path, exc)
            return _restarting(WorkerDown(slot, day_id))

    # -- the signaling socket -----------------------------------------------------------------

    async def relay_socket(self, request: web.Request) -> web.StreamResponse:
        """Accept the socket, read its ``join`` for the day, then pipe it both ways."""
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            # As the worker would (CSWSH): refused before the socket is accepted.
            logger.warning("refused a signaling socket from origin %s", origin)
            return web.Response(status=403,
                                text=f"cross-origin signaling from {origin} is not allowed")
        ws = web.WebSocketResponse(max_msg_size=HARD_FRAME_LIMIT, heartbeat=25.0)
        await ws.prepare(request)
        sockets = request.app[FRONT_SOCKETS]
        sockets.add(ws)
        try:
            await self._pipe(request, ws)
        finally:
            sockets.discard(ws)
            if not ws.closed:
                await ws.close()
        return ws

    async def _await_join(self, request: web.Request, ws: web.WebSocketResponse
                          ) -> tuple[list[aiohttp.WSMessage], int | None] | None:
        """The messages up to and including the ``join``, and its day (None for a
        token that is no invite: any worker refuses it as a single server would).
        None if the socket closed, or was closed here: no join in time, too many
        messages before one, or too many sockets of the address waiting to join."""
        address = request.remote or "unknown"
        if not self._waiting.enter(address):
            await _refuse(ws, "too_many_sockets",
                          f"{self._waiting.count(address)} connections from {address} are "
                          "already waiting to join; join or close them first",
                          WSCloseCode.TRY_AGAIN_LATER)
            return None
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self._join_timeout_s
            held: list[aiohttp.WSMessage] = []
            while len(held) < MAX_BEFORE_JOIN:
                try:
                    msg = await ws.receive(timeout=max(deadline - loop.time(), 0.001))
                except TimeoutError:
                    await _refuse(ws, "join_timeout",
                                  f"no 'join' message within {self._join_timeout_s:.0f} s",
                                  CLOSE_JOIN_TIMEOUT)
                    return None
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    return None  # closed
                held.append(msg)
                token = join_token(msg.data) if msg.type == WSMsgType.TEXT else None
                if token is not None:
                    return held, await self._days.day_of_token(token)
            await _refuse(ws, "not_joined", "the first message must be 'join' with your invite "
                          "token", CLOSE_JOIN_TIMEOUT)
            return None
        finally:
            self._waiting.leave(address)

    async def _pipe(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        joining = await self._await_join(request, ws)
        if joining is None:
            return
        held, day_id = joining
        try:
            slot = self.slot_for(day_id)
            upstream = await self._clients[slot.index].ws_connect(
                _worker_url(request), headers=_socket_headers(request),
                max_msg_size=0, autoping=True)
        except (WorkerDown, aiohttp.ClientError) as exc:
            message = str(exc) if isinstance(exc, WorkerDown) else str(WorkerDown(
                self._slots[0], day_id))
            await _refuse(ws, "restarting", message, WSCloseCode.TRY_AGAIN_LATER)
            return
        try:
            for msg in held:  # the worker answers those before the join as it always did
                await _send(upstream, msg)
            to_worker = asyncio.create_task(_copy(ws, upstream))
            to_caller = asyncio.create_task(_copy(upstream, ws))
            done, pending = await asyncio.wait({to_worker, to_caller},
                                               return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if to_caller in done and not ws.closed:
                sent, reason = to_caller.result()
                if sent is None:  # the worker's connection broke: it died
                    sent, reason = WSCloseCode.SERVICE_RESTART, b"restarting"
                await ws.close(code=sent, message=reason)
            elif to_worker in done and not upstream.closed:
                code, reason = to_worker.result()
                await upstream.close(code=code or WSCloseCode.OK, message=reason)
        finally:
            if not upstream.closed:
                await upstream.close()


FRONT = web.AppKey("front", Front)
Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _refuse(ws: web.WebSocketResponse, code: str, message: str, close_code: int) -> None:
    """An ``error`` message (docs/signaling.md) and the close that goes with it."""
    await ws.send_json({"type": "error", "code": code, "message": message})
    await ws.close(code=close_code, message=code.encode())


async def _send(ws: Socket, msg: aiohttp.WSMessage) -> None:
    if msg.type == WSMsgType.TEXT:
        await ws.send_str(msg.data)
    elif msg.type == WSMsgType.BINARY:
        await ws.send_bytes(msg.data)


async def _copy(source: Socket, sink: Socket) -> tuple[int | None, bytes]:
    """Relay frames until `source` closes; its close code and reason (None if the
    connection broke without a close frame)."""
    while True:
        msg = await source.receive()
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            try:
                await _send(sink, msg)
            except ConnectionError:  # the other side went meanwhile; its own copy ends
                return WSCloseCode.OK, b""
        elif msg.type == WSMsgType.CLOSE:
            sent = msg.data if isinstance(msg.data, int) and _sendable(msg.data) else WSCloseCode.OK
            return sent, (msg.extra or "").encode()[:120]
        elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            code = source.close_code
            return (code if code is not None and _sendable(code) else None), b""


def _sendable(code: int) -> bool:
    # 1005, 1006 and 1015 only report a close; they are never sent in a frame.
    return code not in (1005, 1006, 1015) and 1000 <= code < 5000


def _worker_url(request: web.Request) -> URL:
    return URL(f"http://worker{request.raw_path}", encoded=True)


def _forward_headers(request: web.Request) -> CIMultiDict[str]:
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP)
    headers["X-Forwarded-For"] = request.remote or ""
    headers["X-Forwarded-Proto"] = request.scheme
    return headers


def _socket_headers(request: web.Request) -> CIMultiDict[str]:
    headers = _forward_headers(request)
    for name in list(headers):
        if name.lower() in _WS_HANDSHAKE:
            headers.popall(name, None)
    return headers


def _restarting(exc: WorkerDown) -> web.Response:
    return web.Response(
        status=503, content_type="application/json",
        text=json.dumps({"error": "restarting", "message": str(exc)}, ensure_ascii=False),
        headers={"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"})


def create_front(config: Config, supervisor: Supervisor) -> web.Application:
    """The front's application: every path is relayed (`Front.relay`)."""
    app = web.Application(client_max_size=0)
    app[SUPERVISOR] = supervisor
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    app[FRONT_SOCKETS] = sockets
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        # Made once, before any worker could race to make them: the schema
        # (migrations) and the package signing key.
        await asyncio.to_thread(ServerKeyring(config.data_dir).current)
        async with Database(config.database_path) as db:
            app[FRONT_DATABASE] = db
            await supervisor.start()
            front = app[FRONT] = Front(config, supervisor, DayLookup(db))
            try:
                yield
            finally:
                await front.close()
                await supervisor.stop()

    async def close_sockets(app: web.Application) -> None:
        # The workers first: each stops its days before its sockets close, so a
        # shutdown is not everyone leaving (web_ui.app._stop_hosts); their sockets'
        # GOING_AWAY reaches the pages through the relay.
        await supervisor.stop()
        open_sockets: weakref.WeakSet[web.WebSocketResponse] = app[FRONT_SOCKETS]
        for ws in set(open_sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def relay(request: web.Request) -> web.StreamResponse:
        front: Front = request.app[FRONT]
        return await front.relay(request)

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(close_sockets)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app
