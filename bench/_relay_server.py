"""The baseline: standard aiortc relaying, decode once and re-encode per subscriber.

A small aiohttp app that speaks docs/signaling.md closely enough for
web_ui.client.RoomClient to work unchanged: ``join`` (any issued token), ``welcome``,
then only server ``offer``s, one at a time, each awaiting the client's ``answer``. The
first carries the two ``recvonly`` "publish" m-lines (``publish: {kind: mid}``) that
the client answers ``sendonly`` to publish; every offer carries the ``tracks`` map of
forwarded m-lines. Every subscriber's sender reads
``MediaRelay().subscribe(publisher's remote track)``, so aiortc decodes each
publication once (receiver's decoder thread) and encodes it again in every
subscriber's RTCRtpSender.

Time in server, measured like the forwarder's: the receiver's jitter buffer is
wrapped to note when the last packet of each RTP timestamp arrived, and its
TimestampMapper to carry that over to the decoded frame's pts (converted back to the
RTP clock: the VP8 decoder may return frames in microseconds). The subscriber's
track is wrapped too: when the sender asks for the next frame, it has sent every
packet of the previous one, so ``now - arrival(previous frame's pts)`` is a sample.

Usage: _relay_server.py INVITES. Same stdout/stdin/stats contract as _server.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from defense_room.eventloop import new_event_loop  # noqa: E402
from _control import add_stats_route, install_encoder_spy, latency_summary, serve  # noqa: E402
from aiohttp import WSMsgType, web  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay  # noqa: E402
from aiortc.sdp import SessionDescription  # noqa: E402

from media.metrics import ForwardingMetrics  # noqa: E402

logger = logging.getLogger("bench.relay")

ANSWER_TIMEOUT_S = 20.0
ARRIVALS_KEPT = 2048


def _remember(table: dict[int, float], key: int, value: float) -> None:
    table[key] = value
    if len(table) > ARRIVALS_KEPT:
        for old in list(table)[: ARRIVALS_KEPT // 4]:
            del table[old]


class Publication:
    """One publisher's incoming track, with the arrival time of each decoded pts."""

    def __init__(self, publisher: Participant, kind: str, receiver: RTCRtpReceiver) -> None:
        self.publisher = publisher
        self.kind = kind
        assert receiver.track is not None
        self.track: MediaStreamTrack = receiver.track
        self.clock_rate = 90_000 if kind == "video" else 48_000  # RTP clocks of VP8 and Opus
        self.arrival_by_pts: dict[int, float] = {}
        self.unmatched = 0
        self.matched = 0
        self._arrival_by_rtp: dict[int, float] = {}
        buffer_name = "_RTCRtpReceiver__jitter_buffer"
        mapper_name = "_RTCRtpReceiver__timestamp_mapper"
        setattr(receiver, buffer_name, _ArrivalBuffer(getattr(receiver, buffer_name), self._arrival_by_rtp))
        setattr(receiver, mapper_name, _ArrivalMapper(getattr(receiver, mapper_name), self))

    def note_mapped(self, rtp_timestamp: int, pts: int) -> None:
        arrived = self._arrival_by_rtp.get(rtp_timestamp)
        if arrived is not None:
            _remember(self.arrival_by_pts, pts, arrived)


class _ArrivalBuffer:
    """Wraps aiortc's JitterBuffer: notes when the last packet of each timestamp came."""

    def __init__(self, inner: Any, arrivals: dict[int, float]) -> None:
        self._inner = inner
        self._arrivals = arrivals

    def add(self, packet: Any) -> Any:
        _remember(self._arrivals, packet.timestamp, time.perf_counter())
        return self._inner.add(packet)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _ArrivalMapper:
    """Wraps aiortc's TimestampMapper: RTP timestamp -> the decoded frame's pts."""

    def __init__(self, inner: Any, publication: Publication) -> None:
        self._inner = inner
        self._publication = publication

    def map(self, timestamp: int) -> int:
        pts = int(self._inner.map(timestamp))
        self._publication.note_mapped(timestamp, pts)
        return pts


class TimedTrack(MediaStreamTrack):
    """A subscriber's relayed track that records each frame's time in the server."""

    def __init__(self, inner: MediaStreamTrack, publication: Publication, metrics: ForwardingMetrics) -> None:
        super().__init__()
        self.kind = inner.kind
        self._inner = inner
        self._publication = publication
        self._metrics = metrics
        self._in_flight: float | None = None
        self.frames = 0

    async def recv(self) -> Any:
        now = time.perf_counter()
        if self._in_flight is not None:
            self._metrics.record_latency(self.kind, now - self._in_flight)
            self._metrics.frames_out[self.kind] += 1
            self._in_flight = None
        frame = await self._inner.recv()
        self.frames += 1
        # The decoder may hand frames over in another time base (libvpx: microseconds).
        pts = frame.pts or 0
        if frame.time_base is not None and frame.time_base != Fraction(1, self._publication.clock_rate):
            pts = round(pts * frame.time_base * self._publication.clock_rate)
        arrived = self._publication.arrival_by_pts.get(pts)
        if arrived is None:
            self._publication.unmatched += 1
        else:
            self._publication.matched += 1
        self._in_flight = arrived
        return frame

    def stop(self) -> None:
        self._inner.stop()
        super().stop()


class Participant:
    """One signaling socket and its peer connection."""

    def __init__(self, room: RelayRoom, pid: str, name: str, ws: web.WebSocketResponse) -> None:
        self.room = room
        self.id = pid
        self.name = name
        self._ws = ws
        # MAX_BUNDLE: with aiortc's default (BALANCED), a second m-line of a kind in the
        # first offer keeps a transport that BUNDLE then discards, so that sender never
        # starts (a forwarded video in a newcomer's first offer would never flow).
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[],
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        # The participant's own microphone and camera arrive on these two.
        self._inbound = [self.pc.addTransceiver(kind, direction="recvonly") for kind in ("audio", "video")]
        self.published: list[Publication] | None = None
        self._wanted: list[Publication] = []
        self._sending: dict[Publication, RTCRtpTransceiver] = {}
        self._dirty = asyncio.Event()
        self._dirty.set()  # the first offer goes out at once
        self._answer: asyncio.Future[str] | None = None
        self._negotiator: asyncio.Task[None] | None = None
        self.in_first_offer: set[Publication] = set()

    def info(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "role": "member"}

    async def send(self, message: dict[str, Any]) -> None:
        if not self._ws.closed:
            await self._ws.send_str(json.dumps(message))

    def start(self) -> None:
        self._negotiator = asyncio.create_task(self._negotiate_forever())

    def sending_items(self) -> list[tuple[Publication, RTCRtpTransceiver]]:
        return list(self._sending.items())

    def subscribe(self, publication: Publication) -> None:
        if publication not in self._wanted:
            self._wanted.append(publication)
            self._dirty.set()

    def handle_answer(self, sdp: str) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(sdp)

    async def _negotiate_forever(self) -> None:
        try:
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                await self._negotiate()
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("negotiation with %s failed", self.name)

    async def _negotiate(self) -> None:
        first = self.published is None
        new = [p for p in self._wanted if p not in self._sending]
        if not new and not first:
            return
        for publication in new:
            track = TimedTrack(self.room.relay.subscribe(publication.track), publication, self.room.metrics)
            self._sending[publication] = self.pc.addTransceiver(track, direction="sendonly")
            if first:
                self.in_first_offer.add(publication)
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        tracks = {
            t.mid: {**p.publisher.info(), "participant": p.publisher.id, "kind": p.kind}
            for p, t in self._sending.items() if t.mid is not None
        }
        self._answer = asyncio.get_running_loop().create_future()
        await self.send({"type": "offer", "sdp": self.pc.localDescription.sdp,
                         "publish": {t.kind: t.mid for t in self._inbound}, "tracks": tracks})
        sdp = await asyncio.wait_for(self._answer, ANSWER_TIMEOUT_S)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if first:
            # No await before the receivers are wrapped: media needs the loop to arrive.
            sending = {m.rtp.muxId for m in SessionDescription.parse(sdp).media
                       if m.direction in ("sendonly", "sendrecv") and m.port != 0}
            self.published = [Publication(self, t.kind, t.receiver) for t in self._inbound
                              if t.mid in sending and t.receiver.track is not None]
            self.room.published(self)

    async def stop(self) -> None:
        if self._negotiator is not None:
            self._negotiator.cancel()
            await asyncio.gather(self._negotiator, return_exceptions=True)
        await self.pc.close()


class RelayRoom:
    """Everyone receives everyone else, through one MediaRelay."""

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens  # token -> name
        self.relay = MediaRelay()
        self.metrics = ForwardingMetrics()
        self.participants: dict[str, Participant] = {}

    def published(self, newcomer: Participant) -> None:
        for other in self.participants.values():
            if other is newcomer:
                continue
            for publication in newcomer.published or []:
                other.subscribe(publication)
            for publication in other.published or []:
                newcomer.subscribe(publication)

    def roster(self) -> list[dict[str, Any]]:
        return [{**p.info(), "publishing": sorted(x.kind for x in p.published or [])}
                for p in self.participants.values()]

    async def serve_socket(self, ws: web.WebSocketResponse) -> None:
        first = await ws.receive_json(timeout=10)
        name = self.tokens.get(first.get("token", "")) if first.get("type") == "join" else None
        if name is None:
            await ws.send_json({"type": "error", "code": "bad_token", "message": "unknown token"})
            return
        participant = Participant(self, f"p{len(self.participants) + 1}", name, ws)
        self.participants[participant.id] = participant
        await participant.send({"type": "welcome", "participant": participant.info(),
                                "iceServers": [], "participants": self.roster()})
        participant.start()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                message = json.loads(msg.data)
                kind = message.get("type")
                if kind == "offer":
                    await participant.send({"type": "error", "code": "bad_state",
                                            "message": "the server makes the offers"})
                elif kind == "answer":
                    participant.handle_answer(message["sdp"])
                elif kind == "leave":
                    break
        finally:
            self.participants.pop(participant.id, None)
            await participant.stop()

    async def stop(self) -> None:
        for participant in list(self.participants.values()):
            await participant.stop()

    def stats(self, reset: bool) -> dict[str, Any]:
        publications = [p for x in self.participants.values() for p in x.published or []]
        body: dict[str, Any] = {"latency": latency_summary(self.metrics), "counters": {
            "frames_out": dict(self.metrics.frames_out),
            "frames_matched": sum(p.matched for p in publications),
            "frames_unmatched": sum(p.unmatched for p in publications),
        }}
        body["diagnostics"] = [
            {"subscriber": x.id, "publisher": p.publisher.id, "kind": p.kind,
             "frames_read": getattr(t.sender.track, "frames", None),
             "dtls": t.sender.transport.state,
             "sender_started": getattr(t.sender, "_RTCRtpSender__started", None),
             "direction": t.currentDirection, "in_first_offer": p in x.in_first_offer}
            for x in self.participants.values() for p, t in x.sending_items()
        ]
        if reset:
            self.metrics.reset_latency()
        return body


async def main(invites: int) -> None:
    install_encoder_spy()
    # Re-encode at the bitrate the publisher sends, so both servers deliver the same
    # bitrate: aiortc's default (500 kbit/s) would trade picture quality for CPU.
    from aiortc.codecs import vpx

    from _media import VIDEO_BITRATE

    vpx.DEFAULT_BITRATE = VIDEO_BITRATE
    tokens = {secrets.token_urlsafe(16): f"bench participant {i}" for i in range(invites)}
    room = RelayRoom(tokens)
    app = web.Application()

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=25.0)
        await ws.prepare(request)
        try:
            await room.serve_socket(ws)
        finally:
            await ws.close()
        return ws

    async def on_cleanup(app: web.Application) -> None:
        await room.stop()

    app.router.add_get("/ws", websocket)
    app.on_cleanup.append(on_cleanup)
    add_stats_route(app, room.stats)

    async def announce(port: int) -> dict[str, Any]:
        return {"tokens": list(tokens)}

    # The lag probe wakes the loop every 100 ms, not 10: at 10 ms it cost each
    # server ~1.8 % of a core, counted as if it were forwarding work.
    await serve(app, announce, lag_period_s=0.1)


if __name__ == "__main__":
    # The same event loop as the product server (uvloop), so the comparison is of
    # forwarding against re-encoding, not of two event loops.
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main(int(sys.argv[1])))
