"""A headless participant: joins a room through the signaling socket with aiortc.

Used by the tests and benchmarks as a real peer, and handy for a smoke test of a
deployed server. It speaks exactly the protocol of docs/signaling.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)

from aiortc.sdp import SessionDescription

from .signaling import SERVER_MESSAGES

logger = logging.getLogger(__name__)


class JoinRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class ReceivedTrack:
    mid: str
    participant: str
    name: str
    kind: str
    track: MediaStreamTrack | None = None
    receiver: RTCRtpReceiver | None = None


@dataclass
class ClientState:
    welcome: dict[str, Any] | None = None
    roster: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    bye: str | None = None
    offers_answered: int = 0
    #: The procedure's state as last pushed (``welcome`` or ``state``), and when.
    procedure: dict[str, Any] | None = None
    server_time: float | None = None
    notices: list[dict[str, Any]] = field(default_factory=list)
    #: ``presentation`` messages (page turns), in order.
    presentations: list[dict[str, Any]] = field(default_factory=list)
    #: Whether the server says we wait in the lobby (closed sitting).
    lobby: bool = False
    #: ``identity`` messages: what the identity check told this student to do.
    identity: list[dict[str, Any]] = field(default_factory=list)
    #: ``track_unavailable`` messages: forwarded tracks this client cannot decode.
    unavailable: list[dict[str, Any]] = field(default_factory=list)


class RoomClient:
    """One participant. ``tracks`` are published; everything forwarded is received.

    With ``on_receiver`` set, it is called with each new ReceivedTrack before media
    flows, e.g. to tap the encoded packets instead of decoding them (benchmarks).

    To behave as other browsers do (tests): ``video_codec`` is the codec it prefers to
    send; ``video_codecs`` the only video codecs it has at all (Firefox without
    H.264: ``["video/VP8"]``), so an m-line offering none of them is rejected as JSEP
    allows (port 0, no ICE credentials); ``rewrite_answer`` edits each answer's SDP
    text just before it is sent.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        tracks: list[MediaStreamTrack] | None = None,
        ssl_context: ssl.SSLContext | bool | None = None,
        on_receiver: Callable[[ReceivedTrack], None] | None = None,
        video_codec: str | None = None,
        video_codecs: list[str] | None = None,
        rewrite_answer: Callable[[str], str] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._tracks = tracks or []
        self._ssl = ssl_context
        self._on_receiver = on_receiver
        self._video_codec = video_codec
        self._video_codecs = None if video_codecs is None else {c.lower() for c in video_codecs}
        self._rewrite_answer = rewrite_answer
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pc: RTCPeerConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.state = ClientState()
        self.received: dict[str, ReceivedTrack] = {}
        self._announced: set[str] = set()

    @property
    def pc(self) -> RTCPeerConnection:
        assert self._pc is not None
        return self._pc

    @property
    def participant_id(self) -> str:
        assert self.state.welcome is not None
        return str(self.state.welcome["participant"]["id"])

    async def connect(self) -> dict[str, Any]:
        """Open the socket and join; raise JoinRefused if the server says no."""
        self._session = aiohttp.ClientSession()
        ws_url = self._base_url.replace("http", "ws", 1) + "/ws"
        self._ws = await self._session.ws_connect(ws_url, ssl=self._ssl if self._ssl is not None else True)
        await self._ws.send_json({"type": "join", "token": self._token})
        msg: dict[str, Any] = await self._ws.receive_json(timeout=10)
        if msg.get("type") == "error":
            await self.close()
            raise JoinRefused(msg["code"], msg["message"])
        assert msg["type"] == "welcome", msg
        assert set(msg) - {"type"} <= SERVER_MESSAGES["welcome"], f"undocumented fields: {msg}"
        self.state.welcome = msg
        self.state.roster = msg["participants"]
        self.state.procedure = msg.get("state")
        self._pc = self._new_peer_connection(msg["iceServers"])
        self._reader = asyncio.create_task(self._read())
        return msg

    def _new_peer_connection(self, ice_servers: list[dict[str, Any]]) -> RTCPeerConnection:
        # max-bundle, as on the server: with aiortc's default a second m-line of a
        # kind in one offer stays on a transport that BUNDLE discards.
        pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[RTCIceServer(**s) for s in ice_servers],
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        # Made before the server's first offer, so aiortc matches them to its
        # "publish" m-lines (an m-line of the same kind and no mid yet). Audio first,
        # as the server offers them: aiortc bundles onto the first m-line's transport
        # and would stop the shared one if the first transceiver ended up second.
        for kind in ("audio", "video"):
            track = next((t for t in self._tracks if t.kind == kind), None)
            if track is None:
                pc.addTransceiver(kind, direction="inactive")
                continue
            transceiver = pc.addTransceiver(track, direction="sendonly")
            if kind == "video" and (self._video_codec or self._video_codecs) is not None:
                # The preferred codec first (aiortc sends its answer's first), then the
                # others it has; without ``video_codecs``, the preferred one only.
                wanted = (self._video_codec or "").lower()
                have = self._video_codecs or {wanted}
                capabilities = RTCRtpSender.getCapabilities("video").codecs
                transceiver.setCodecPreferences(
                    [c for c in capabilities if c.mimeType.lower() == wanted]
                    + [c for c in capabilities
                       if c.mimeType.lower() in have and c.mimeType.lower() != wanted]
                    + [c for c in capabilities if c.mimeType.lower() == "video/rtx"])
        return pc

    async def start_media(self, timeout: float = 20.0) -> None:
        """Wait until the server's first offer is answered: from then on our tracks
        are published and forwarded tracks arrive."""
        await self.wait_for(lambda: self.state.offers_answered >= 1 or bool(self.state.errors),
                            timeout, "the server's first offer")
        if self.state.offers_answered < 1:
            raise AssertionError(f"media setup failed: {self.state.errors}")

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        assert self._ws is not None
        if isinstance(data, bytes):
            await self._ws.send_bytes(data)
        else:
            await self._ws.send_str(data)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``predicate()`` holds; on timeout say what was missing."""
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)
        try:
            await asyncio.wait_for(until(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await self._handle(json.loads(msg.data))
                await self._notify()
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception as exc:
            logger.exception("client failed to handle a server message")
            self.state.errors.append({"type": "error", "code": "client_exception", "message": repr(exc)})
        finally:
            if self.state.bye is None:
                self.state.bye = "closed"
            await self._notify()

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "offer":
            await self._answer_offer(msg)
        elif kind == "participants":
            self.state.roster = msg["participants"]
        elif kind == "state":
            self.state.procedure = msg["state"]
            self.state.server_time = msg["server_time"]
        elif kind == "notice":
            self.state.notices.append(msg)
        elif kind == "presentation":
            self.state.presentations.append(msg)
        elif kind == "lobby":
            self.state.lobby = msg["waiting"]
        elif kind == "error":
            self.state.errors.append(msg)
        elif kind == "bye":
            self.state.bye = msg["reason"]
        elif kind == "identity":
            self.state.identity.append(msg)
        elif kind == "track_unavailable":
            self.state.unavailable.append(msg)
        else:
            # The server sent what its own protocol does not list (web_ui.signaling).
            raise ValueError(f"undocumented server message {kind!r}: {sorted(msg)}")
        unknown = set(msg) - {"type"} - SERVER_MESSAGES.get(str(kind), frozenset())
        if unknown:
            raise ValueError(f"server message {kind!r} carries undocumented {sorted(unknown)}")

    async def _answer_offer(self, msg: dict[str, Any]) -> None:
        for mid, info in msg["tracks"].items():
            if mid not in self.received:
                self.received[mid] = ReceivedTrack(mid, info["participant"], info["name"], info["kind"])
        for mid in list(self.received):
            if mid not in msg["tracks"]:
                del self.received[mid]
        offer_sdp, rejected = _only_codecs(msg["sdp"], self._video_codecs)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            entry = self.received.get(transceiver.mid or "")
            if entry is not None and transceiver.mid not in self._announced:
                self._announced.add(transceiver.mid or "")
                entry.receiver = transceiver.receiver
                entry.track = transceiver.receiver.track
                if self._on_receiver is not None:
                    self._on_receiver(entry)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        answer_sdp = _reject_mlines(self.pc.localDescription.sdp, rejected)
        if self._rewrite_answer is not None:
            answer_sdp = self._rewrite_answer(answer_sdp)
        try:
            await self.send({"type": "answer", "sdp": answer_sdp})
        except ConnectionError:
            return  # the server is closing; keep reading what it sent before (a bye)
        self.state.offers_answered += 1

    async def close(self) -> None:
        """Leave and release everything. Idempotent."""
        if self._ws is not None and not self._ws.closed:
            try:
                await self.send({"type": "leave"})
            except ConnectionError:
                pass
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._pc is not None:
            await self._pc.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _only_codecs(offer_sdp: str, video_codecs: set[str] | None) -> tuple[str, set[str]]:
    """The offer as a client with only ``video_codecs`` sees it: other video codecs
    left out, and the mids of video m-lines offering none of them (to be rejected in
    the answer; aiortc itself cannot reject one, so those stay as offered for it)."""
    if video_codecs is None:
        return offer_sdp, set()
    offer = SessionDescription.parse(offer_sdp)
    rejected = set()
    for media in offer.media:
        if media.kind != "video":
            continue
        kept = [c for c in media.rtp.codecs if c.mimeType.lower() in video_codecs]
        if not kept:
            rejected.add(media.rtp.muxId)
            continue
        pts = {c.payloadType for c in kept}
        media.rtp.codecs = [c for c in media.rtp.codecs if c.payloadType in pts or (
            c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") in pts)]
        media.fmt = [c.payloadType for c in media.rtp.codecs]
    return str(offer), rejected


def _reject_mlines(answer_sdp: str, mids: set[str]) -> str:
    """``answer_sdp`` with the m-lines of ``mids`` rejected as Firefox rejects one it
    cannot decode: port 0, payload type 0, no ICE credentials, no DTLS, no codecs, and
    left out of the BUNDLE group."""
    if not mids:
        return answer_sdp
    lines = answer_sdp.rstrip("\r\n").split("\r\n")
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out = []
    for section in sections:
        mid = next((ln[6:] for ln in section if ln.startswith("a=mid:")), None)
        if section and section[0].startswith("m=") and mid in mids:
            kind = section[0][2:].split(" ", 1)[0]
            section = [f"m={kind} 0 UDP/TLS/RTP/SAVPF 0", "c=IN IP4 0.0.0.0",
                       "a=inactive", f"a=mid:{mid}"]
        elif section and section[0].startswith("v="):
            section = [(" ".join(w for w in ln.split(" ") if w not in mids)
                        if ln.startswith("a=group:BUNDLE") else ln) for ln in section]
        out.extend(section)
    return "\r\n".join(out) + "\r\n"
