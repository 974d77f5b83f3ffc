"""One participant's signaling WebSocket: join, negotiate, leave.

Domain and protocol errors become ``error`` messages here, in one place. Token errors
and a missing ``join`` end the socket before any media object exists; every other
error leaves the session, the room and the other participants as they were.

Floods (S5, S11, S18): each socket's messages pass a `server.flood.SocketLimiter`
before they are parsed (page turns a second, stricter one); one over the limit is
answered ``rate_limited`` and dropped, and a socket that keeps flooding is closed
with code 4429. An address may hold only so many sockets that have not joined yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from media.announce import announce_sdp
from media.errors import MediaError, OutOfTurnError
from media.peer import Peer
from media.participant import ParticipantInfo
from server.dayhost import DayHost, NotAllowedHere
from server.flood import FloodLimits, SocketLimiter, Verdict
from server.rooms import RoomRegistry
from storage.errors import InviteError
from storage.invites import Role

from .keys import CONFIG, HOSTS, INVITES, OWNERSHIP, ROOMS
from .signaling import (
    Answer,
    ErrorCode,
    IceCandidate,
    Join,
    Leave,
    Offer,
    Page,
    SignalingError,
    Stats,
    View,
    parse_message,
)

logger = logging.getLogger(__name__)

CLOSE_BAD_TOKEN = 4401
CLOSE_JOIN_TIMEOUT = 4408
CLOSE_RATE_LIMITED = 4429


class SignalingSession:
    """Owns one WebSocket and, once joined, the participant's Peer in its Room."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self._app = request.app
        self._ws = ws
        self._config = request.app[CONFIG]
        self._rooms: RoomRegistry = request.app[ROOMS]
        self._peer: Peer | None = None
        self._room_id: str | None = None
        self._day_id: int | None = None
        self._role: Role | None = None
        self._send_lock = asyncio.Lock()
        self._remote = request.remote
        # 1:1 NAT: the public address in place of the private one in every offer.
        self._public_for = {a.private: a.public for a in self._config.media.announced_addresses}
        # Drops the participant whose browser never answers the first offer.
        self._answer_watch: asyncio.Task[None] | None = None
        limits = self._config.signaling
        self._limiter = SocketLimiter(FloodLimits(
            messages_per_s=limits.messages_per_s, message_burst=limits.message_burst,
            pages_per_s=limits.pages_per_s, page_burst=limits.page_burst,
            close_after_drops=limits.close_after_drops, drop_window_s=limits.drop_window_s,
        ), _now())

    async def send(self, message: dict[str, Any]) -> None:
        if self._ws.closed:
            raise ConnectionError("signaling socket closed")
        if self._public_for and message.get("type") == "offer":
            message = {**message, "sdp": announce_sdp(str(message["sdp"]), self._public_for)}
        host = (self._app[HOSTS].get(self._day_id)
                if self._role is Role.STUDENT and self._day_id is not None else None)
        if host is not None:  # an appeal decision reaches the student when delivered (S3)
            message = self._app[HOSTS].appeals.message_for(
                Role.STUDENT, message, host.loaded.stored.timezone)
        async with self._send_lock:
            await self._ws.send_json(message)
        if message.get("type") == "bye":
            # Not awaited here: the caller may be the Room stopping this peer on
            # behalf of another task, and closing waits for the client's close frame.
            # A withdrawn link (S8) closes as a refused token does.
            revoked = message.get("reason") == "revoked"
            self._rooms.spawn(self._ws.close(
                code=CLOSE_BAD_TOKEN if revoked else WSCloseCode.OK,
                message=b"revoked_token" if revoked else b""))

    async def run(self) -> None:
        """Serve the socket until it closes."""
        try:
            if not await self._await_join_counted():
                return
            async for msg in self._ws:
                if (msg.type in (WSMsgType.TEXT, WSMsgType.BINARY)
                        and not await self._within_limits(self._limiter.message(_now()))):
                    continue
                if msg.type == WSMsgType.TEXT:
                    await self._handle_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._reply_error(SignalingError(
                        ErrorCode.MALFORMED, "binary frames are not accepted; send JSON text"))
                elif msg.type == WSMsgType.ERROR:
                    logger.info("signaling socket error: %s", self._ws.exception())
                    break
        finally:
            if self._answer_watch is not None:
                self._answer_watch.cancel()
            await self._left("disconnected")  # first: this handler may be cancelled itself
            if self._answer_watch is not None:
                await asyncio.gather(self._answer_watch, return_exceptions=True)

    async def _await_join_counted(self) -> bool:
        """`_await_join`, counted among the address's sockets waiting to join."""
        waiting = self._rooms.waiting
        address = self._remote or "unknown"
        if not waiting.enter(address):
            logger.warning("refused a signaling socket from %s: %s waiting to join already",
                           address, waiting.count(address))
            await self._refuse(SignalingError(
                ErrorCode.TOO_MANY_SOCKETS,
                f"{waiting.count(address)} connections from {address} are already waiting"
                " to join; join or close them first"), WSCloseCode.TRY_AGAIN_LATER)
            return False
        try:
            return await self._await_join()
        finally:
            waiting.leave(address)

    async def _within_limits(self, verdict: Verdict) -> bool:
        """Act on the limiter's verdict on a message: True to handle it."""
        if verdict is Verdict.ACCEPT:
            return True
        if verdict is Verdict.DROP:
            await self._reply_error(SignalingError(
                ErrorCode.RATE_LIMITED,
                "too many messages: this one was dropped; slow down or the connection closes"))
        elif not self._ws.closed:
            logger.warning("closing the signaling socket of %s: it kept flooding", self._remote)
            await self._refuse(SignalingError(
                ErrorCode.RATE_LIMITED,
                f"too many messages dropped ({self._config.signaling.close_after_drops} within "
                f"{self._config.signaling.drop_window_s:g} s): closing the connection"),
                CLOSE_RATE_LIMITED)
        return False

    async def _await_join(self) -> bool:
        timeout = self._config.media.join_timeout_s
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                msg = await self._ws.receive(timeout=max(remaining, 0.001))
            except asyncio.TimeoutError:
                await self._refuse(SignalingError(
                    ErrorCode.JOIN_TIMEOUT, f"no 'join' message within {timeout:.0f} s"),
                    CLOSE_JOIN_TIMEOUT)
                return False
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return False
            if not await self._within_limits(self._limiter.message(_now())):
                if self._ws.closed:
                    return False
                continue
            if msg.type != WSMsgType.TEXT:
                await self._reply_error(SignalingError(ErrorCode.MALFORMED, "send JSON text frames"))
                continue
            try:
                message = parse_message(msg.data, self._config.media.max_message_bytes)
            except SignalingError as exc:
                await self._reply_error(exc)
                continue
            if not isinstance(message, Join):
                await self._reply_error(SignalingError(
                    ErrorCode.NOT_JOINED, "the first message must be 'join' with your invite token"))
                continue
            return await self._join(message)

    async def _join(self, message: Join) -> bool:
        try:
            invite = await self._app[INVITES].verify(message.token, now=time.time())
        except InviteError as exc:
            logger.info("refused a join from %s: %s", self._remote, exc.reason.value)
            await self._refuse(SignalingError(ErrorCode(exc.reason.value), str(exc)), CLOSE_BAD_TOKEN)
            return False
        ownership = self._app[OWNERSHIP]
        if not ownership.owns(invite.day_id):
            # Only a caller that bypassed the front gets here: the day's room lives in
            # its own worker, and a second one here would split the day.
            await self._refuse(SignalingError(
                ErrorCode.OTHER_WORKER, f"defense day {invite.day_id} is not hosted by this "
                f"process ({ownership.describe()}); join through the server's public address"),
                WSCloseCode.TRY_AGAIN_LATER)
            return False
        room = self._rooms.room_for(str(invite.day_id))
        if len(room.peers) >= self._config.media.max_participants and room.peer(str(invite.person_id)) is None:
            await self._refuse(SignalingError(
                ErrorCode.ROOM_FULL,
                f"the room already has {self._config.media.max_participants} participants"),
                WSCloseCode.TRY_AGAIN_LATER)
            return False
        info = ParticipantInfo(str(invite.person_id), invite.name, str(invite.role.value))
        self._room_id = room.room_id
        self._day_id = invite.day_id
        self._role = invite.role
        ice_servers = [
            {"urls": list(s.urls),
             **({"username": s.username} if s.username else {}),
             **({"credential": s.credential} if s.credential else {})}
            for s in self._config.ice_servers
        ]
        if self._rooms.turn.configured:
            # Fresh per-person credentials at every join, valid for the day only.
            day = await self._app[INVITES].get_day(invite.day_id)
            ice_servers += self._rooms.turn.ice_servers(info.id, now=time.time(), timezone=day.timezone)
        host = await self._day_host(invite.day_id)
        self._peer = await room.join(info, self.send, lambda roster: {
            "type": "welcome",
            "participant": info.as_json(),
            "iceServers": ice_servers,
            "participants": roster,
            **({"state": host.state_message()["state"], "lobby": host.lobby_state(info.id)}
               if host is not None else {}),
        })
        self._answer_watch = asyncio.create_task(self._drop_if_silent(room.room_id, self._peer))
        return True

    async def _drop_if_silent(self, room_id: str, peer: Peer) -> None:
        """A browser that never answers the first offer (no WebRTC, a hung page) would
        hold a place in the room with no media: drop it, saying why."""
        timeout = self._config.media.first_answer_timeout_s
        await asyncio.sleep(timeout)
        room = self._rooms.get(room_id)
        if peer.answered or room is None or room.peer(peer.info.id) is not peer:
            return
        logger.warning("room %s: %s never answered the first offer; dropped after %.0f s",
                       room_id, peer.info.name, timeout)
        await peer.send({"type": "error", "code": ErrorCode.NO_ANSWER.value,
                         "message": f"Your browser did not answer the media offer within "
                                    f"{timeout:.0f} s; reload the page, or use a current "
                                    "Chrome, Firefox or Safari."})
        # Its own task: leave() closes this socket, whose handler cancels this watch.
        await asyncio.shield(self._rooms.spawn(room.leave(peer.info.id, reason="no_answer", only=peer)))

    async def _day_host(self, day_id: int) -> DayHost | None:
        """The day's procedure, started before the media so presence is seen from the
        first moment; a day whose procedure cannot start still gets its media."""
        try:
            return await self._app[HOSTS].host(day_id)
        except Exception:
            logger.exception("the procedure of day %s could not start", day_id)
            return None

    async def _handle_text(self, text: str) -> None:
        try:
            message = parse_message(text, self._config.media.max_message_bytes)
            await self._dispatch(message)
        except SignalingError as exc:
            await self._reply_error(exc)
        except OutOfTurnError as exc:
            await self._reply_error(SignalingError(ErrorCode.BAD_STATE, str(exc)))
        except MediaError as exc:
            await self._reply_error(SignalingError(ErrorCode.SDP_REJECTED, str(exc)))
        except Exception:
            # Our bug, not the client's: say so, keep the session and the room going.
            logger.exception("failed to handle a message from %s", self._remote)
            await self._reply_error(SignalingError(
                ErrorCode.INTERNAL, "the server failed to handle this message; it was logged"))

    async def _dispatch(self, message: Any) -> None:
        peer = self._peer
        assert peer is not None
        if isinstance(message, Join):
            raise SignalingError(ErrorCode.ALREADY_JOINED, "this socket has already joined")
        if isinstance(message, Offer):
            await peer.handle_offer(message.sdp)
        elif isinstance(message, Answer):
            await peer.handle_answer(message.sdp)
        elif isinstance(message, IceCandidate):
            await peer.add_ice_candidate(message.candidate, message.sdp_mid, message.sdp_mline_index)
        elif isinstance(message, Stats):
            peer.record_stats([entry.as_json() for entry in message.inbound])
        elif isinstance(message, View):
            room = self._rooms.get(self._room_id) if self._room_id is not None else None
            if room is not None:
                room.set_view(peer.info.id, message.widths())
        elif isinstance(message, Page):
            if await self._within_limits(self._limiter.page(_now())):
                await self._turn_page(peer.info.id, message.page)
        elif isinstance(message, Leave):
            await self._left("left")
            await self._ws.close(code=WSCloseCode.OK)

    async def _turn_page(self, person_id: str, page: int) -> None:
        host = self._app[HOSTS].get(self._day_id) if self._day_id is not None else None
        if host is None:
            raise SignalingError(ErrorCode.BAD_STATE, "the procedure of this day is not running")
        try:
            await host.turn_page(person_id, page)
        except NotAllowedHere as exc:
            raise SignalingError(ErrorCode.BAD_STATE, str(exc)) from None

    async def _reply_error(self, error: SignalingError) -> None:
        logger.info("signaling error to %s: %s %s", self._remote, error.code.value, error.message)
        if not self._ws.closed:
            async with self._send_lock:
                await self._ws.send_json(error.as_json())

    async def _refuse(self, error: SignalingError, close_code: int) -> None:
        await self._reply_error(error)
        await self._ws.close(code=close_code, message=error.code.value.encode())

    async def _left(self, reason: str) -> None:
        peer, self._peer = self._peer, None
        if peer is None or self._room_id is None:
            return
        room = self._rooms.get(self._room_id)
        if room is not None:
            # This handler is cancelled when the client vanishes or the server stops;
            # closing the peer connection and telling the others must finish anyway.
            await asyncio.shield(self._rooms.spawn(
                room.leave(peer.info.id, reason=reason, only=peer)))


def _now() -> float:
    """The limiter's clock: the loop's monotonic time."""
    return asyncio.get_running_loop().time()
