"""Fan-out of one publisher's encoded track to its subscribers, without transcoding.

A ``PublishedTrack`` is fed the publisher's RTP packets (by the receiver tap in
``hooks``), rebuilds frames with the assembler and hands each complete frame, as an
``av.Packet``, to every subscriber's ``ForwardedTrack``. aiortc's RTCRtpSender, reading
a ForwardedTrack, packetizes an ``av.Packet`` without encoding it, writes its own RTP
headers (SSRC, sequence numbers, timestamps offset) and answers NACKs from its own
history.

Keyframes: a new subscriber, or one whose queue overflowed, waits for a keyframe and
asks for one; so does a subscriber's PLI/FIR. Requests reach the publisher as a PLI
at most once per ``keyframe_min_interval`` seconds.

Bitrate: each subscriber's REMB is remembered for a few seconds; the lowest fresh one
caps what the server tells the publisher, so one weak link lowers the bitrate instead
of losing packets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpCodecParameters
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from .assembler import AudioSequencer, EncodedFrame, RtpIn, VideoFrameAssembler
from .codecs import check_forwardable, codec_name
from .metrics import ForwardingMetrics

logger = logging.getLogger(__name__)

REMB_FRESH_S = 5.0
# A PLI travels over UDP and a publisher may coalesce or ignore one: a subscriber
# still waiting for a keyframe after this long asks again.
KEYFRAME_RETRY_S = 1.0
QUEUE_FRAMES = {"audio": 50, "video": 30}

RembSink = Callable[[int, int], Awaitable[None]]
# Receives every complete encoded frame of a publication (e.g. the recorder). Called
# on the media path: it must return at once (queue the frame, never write it).
FrameSink = Callable[["PublishedTrack", EncodedFrame], None]


class PublishedTrack:
    """One publisher's incoming audio or video track and its subscribers."""

    def __init__(
        self,
        *,
        publisher_id: str,
        kind: str,
        codec: RTCRtpCodecParameters,
        metrics: ForwardingMetrics,
        keyframe_min_interval: float = 0.3,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        check_forwardable(codec)
        self._publisher_id = publisher_id
        self._kind = kind
        self._codec = codec
        self._codec_name = codec_name(codec)
        self._time_base = Fraction(1, codec.clockRate)
        self._metrics = metrics
        self._keyframe_min_interval = keyframe_min_interval
        self._clock = clock
        self._assembler: VideoFrameAssembler | AudioSequencer = self._new_assembler()
        self._ssrc: int | None = None
        self._subscribers: set[ForwardedTrack] = set()
        self._sinks: list[FrameSink] = []
        self._keyframe_wanted = kind == "video"
        self._last_keyframe_request = float("-inf")
        self._remb: dict[ForwardedTrack, tuple[int, float]] = {}
        self._remb_sink: RembSink | None = None
        self._last_remb_sent: int | None = None
        self._last_packet_at: float | None = None
        self._closed = False

    @property
    def publisher_id(self) -> str:
        return self._publisher_id

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def codec(self) -> RTCRtpCodecParameters:
        return self._codec

    def silent_for(self, now: float | None = None) -> float | None:
        """Seconds since the last packet arrived, on this track's clock; None if none
        has arrived yet."""
        if self._last_packet_at is None:
            return None
        return (self._clock() if now is None else now) - self._last_packet_at

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        return self._closed

    def set_remb_sink(self, sink: RembSink) -> None:
        """Where to send an early REMB (bitrate, media SSRC) when a subscriber's
        estimate drops below what the publisher was last told."""
        self._remb_sink = sink

    def _new_assembler(self) -> VideoFrameAssembler | AudioSequencer:
        if self._kind == "video":
            return VideoFrameAssembler(self._codec_name)
        return AudioSequencer()

    # -- receiving side -------------------------------------------------------------

    def on_rtp(self, packet: RtpPacket) -> bool:
        """Take one depayloaded packet; return True to send the publisher a PLI."""
        now = self._clock()
        if self._closed:
            return False
        self._last_packet_at = now
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                logger.info("publisher %s restarted %s stream (SSRC %d -> %d)",
                            self._publisher_id, self._kind, self._ssrc, packet.ssrc)
                self._assembler = self._new_assembler()
            self._ssrc = packet.ssrc
        frames = self._assembler.add(RtpIn(
            packet.sequence_number, packet.timestamp, bool(packet.marker),
            packet.payload, getattr(packet, "_data", b""), now,
        ))
        for frame in frames:
            self._fan_out(frame)
        if self._kind != "video":
            return False
        assert isinstance(self._assembler, VideoFrameAssembler)
        wanted = self._keyframe_wanted or self._assembler.waiting_for_keyframe
        if wanted and now - self._last_keyframe_request >= self._keyframe_min_interval:
            self._last_keyframe_request = now
            self._keyframe_wanted = False
            self._metrics.keyframe_requests += 1
            return True
        return False

    def _fan_out(self, frame: EncodedFrame) -> None:
        self._metrics.frames_in[self._kind] += 1
        for sink in self._sinks:
            sink(self, frame)
        if not self._subscribers:
            return
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        packet.time_base = self._time_base
        for subscriber in self._subscribers:
            subscriber._push(frame, packet)

    # -- subscribers -----------------------------------------------------------------

    def add_sink(self, sink: FrameSink) -> None:
        """Also hand every complete frame to ``sink``; a video sink starting now
        needs a keyframe, so one is requested."""
        self._sinks.append(sink)
        self.request_keyframe()

    def remove_sink(self, sink: FrameSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def subscribe(self, subscriber_id: str) -> ForwardedTrack:
        """A new track carrying this publication to one subscriber."""
        track = ForwardedTrack(self, subscriber_id, self._metrics)
        self._subscribers.add(track)
        self.request_keyframe()
        return track

    def _unsubscribe(self, track: ForwardedTrack) -> None:
        self._subscribers.discard(track)
        self._remb.pop(track, None)

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe with the next PLI slot (rate-limited)."""
        if self._kind == "video":
            self._keyframe_wanted = True

    async def report_remb(self, track: ForwardedTrack, bitrate: int) -> None:
        """A subscriber's receiver estimated ``bitrate``; pass a drop on at once."""
        self._remb[track] = (bitrate, self._clock())
        limit = self.bitrate_limit()
        if (
            limit is not None and self._remb_sink is not None and self._ssrc is not None
            and (self._last_remb_sent is None or limit < self._last_remb_sent * 0.9)
        ):
            self._last_remb_sent = limit
            await self._remb_sink(limit, self._ssrc)

    def bitrate_limit(self) -> int | None:
        """The lowest fresh subscriber estimate, or None when there is none."""
        now = self._clock()
        fresh = [b for b, at in self._remb.values() if now - at <= REMB_FRESH_S]
        return min(fresh) if fresh else None

    def clamp_remb(self, own_estimate: int) -> int:
        """What the server's periodic REMB to the publisher should say: its own
        estimate of the publisher's link, lowered to the weakest subscriber's."""
        limit = self.bitrate_limit()
        bitrate = own_estimate if limit is None else min(own_estimate, limit)
        self._last_remb_sent = bitrate
        return bitrate

    def close(self) -> None:
        """The publisher left: end every subscriber's track."""
        self._closed = True
        for track in list(self._subscribers):
            track.stop()
        self._subscribers.clear()


class ForwardedTrack(MediaStreamTrack):
    """What one subscriber's RTCRtpSender reads: encoded frames as ``av.Packet``."""

    def __init__(self, source: PublishedTrack, subscriber_id: str, metrics: ForwardingMetrics) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._subscriber_id = subscriber_id
        self._metrics = metrics
        self._queue: deque[tuple[float, av.Packet[Any]]] = deque()
        self._ready = asyncio.Event()
        self._waiting_for_keyframe = source.kind == "video"
        self._waiting_since: float | None = None
        self._in_flight: float | None = None
        self._max_queue = QUEUE_FRAMES[source.kind]

    @property
    def source(self) -> PublishedTrack:
        return self._source

    @property
    def subscriber_id(self) -> str:
        return self._subscriber_id

    def _push(self, frame: EncodedFrame, packet: av.Packet[Any]) -> None:
        if self.readyState != "live":
            return
        if self._waiting_for_keyframe:
            if not frame.keyframe:
                self._metrics.frames_before_keyframe += 1
                if self._waiting_since is None:
                    self._waiting_since = frame.arrived
                elif frame.arrived - self._waiting_since >= KEYFRAME_RETRY_S:
                    self._waiting_since = frame.arrived
                    self._source.request_keyframe()
                return
            self._waiting_for_keyframe = False
            self._waiting_since = None
        if len(self._queue) >= self._max_queue:
            # The subscriber's sender fell behind: start over at the next keyframe
            # rather than send a stale backlog.
            logger.warning("subscriber %s fell behind on %s of %s: dropping %d frames",
                           self._subscriber_id, self.kind, self._source.publisher_id,
                           len(self._queue))
            self._metrics.frames_dropped += len(self._queue)
            self._queue.clear()
            if self.kind == "video":
                self._waiting_for_keyframe = True
                self._source.request_keyframe()
                return
        self._queue.append((frame.arrived, packet))
        self._ready.set()

    async def recv(self) -> av.Packet[Any]:
        # The sender calls recv() again only once it has sent every packet of the
        # previous frame, so now is when that frame left the server.
        now = time.perf_counter()
        if self._in_flight is not None:
            self._metrics.record_latency(self.kind, now - self._in_flight)
            self._metrics.frames_out[self.kind] += 1
            self._in_flight = None
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        arrived, packet = self._queue.popleft()
        self._in_flight = arrived
        return packet

    def on_keyframe_request(self) -> None:
        """The subscriber sent PLI or FIR."""
        self._source.request_keyframe()

    async def on_remb(self, bitrate: int) -> None:
        await self._source.report_remb(self, bitrate)

    def stop(self) -> None:
        if self.readyState == "live":
            self._source._unsubscribe(self)
        super().stop()
        self._ready.set()  # wake recv() so the sender's loop ends
