"""Fan-out of one publisher's encoded track to its subscribers, without transcoding.

A ``PublishedTrack`` is fed the publisher's RTP packets (by the receiver tap in
``hooks``). Each packet goes on at once to every subscriber's ``ForwardedTrack``, which
rewrites it for its subscriber (``rtp_out``: payload type, SSRC, continuous sequence
numbers and timestamps, header extensions) and sends it through the subscriber's
connection in the same call; nothing is decoded, re-packetized or queued. While a
frame consumer (the recorder, the identity check) is attached, the packets are also
rebuilt into frames (``assembler``).

Codecs: a publisher may send any codec it negotiated, and switch. Which one is read
from each packet's payload type (``codecs`` maps them), never from the answer's order
(a browser may list H.264 first and send VP8, the offerer's preference). Each
subscriber was offered every codec the publisher negotiated and accepted those it
decodes; it gets each packet under its own payload type for the codec really sent,
from that codec's next keyframe, or nothing (and is told, ``on_unreachable``) when it
accepted no such codec: the server never transcodes.

Keyframes: a new subscriber, or one that fell behind, waits for the start of a keyframe
and asks for one; so does a subscriber's PLI/FIR. Requests reach the publisher as a PLI
at most once per ``keyframe_min_interval`` seconds.

Bitrate: the publisher's abs-send-time reaches every subscriber unchanged, so each
subscriber's bandwidth estimate (REMB) covers the whole path from the publisher, uplink
included. Each is remembered for a few seconds; the lowest fresh one is what the server
tells the publisher, once a second and at once when it drops, so one weak link lowers
the bitrate instead of losing packets. (The server does not estimate the uplink itself:
that cost more per packet than forwarding it, and the subscribers measure it anyway.)

Layer selection (``layer_selection``, see ``layers``): each subscriber gets only what
its page shows. A tile it does not show gets no video (audio always), and resumes at a
keyframe it asks for; a small tile beside a larger one gets the base temporal layer of
a VP8 stream sent with layers, and so does a subscriber whose estimate is below what the upper layers
take. Then the publisher hears the highest fresh estimate rather than the lowest: a
weak viewer gets fewer layers instead of lowering the picture for everyone (an uplink
problem shows in every estimate, the highest included).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpCodecParameters
from aiortc.codecs import depayload
from aiortc.mediastreams import MediaStreamError

from .assembler import AudioSequencer, EncodedFrame, RtpIn, VideoFrameAssembler
from .codecs import check_forwardable, codec_key, codec_name, starts_keyframe
from .layers import (TOP_LAYER, BandwidthLayers, LayerSelector, PictureIdRewriter, Vp8Layering,
                     layer_for_width, parse_vp8_layering)
from .metrics import ForwardingMetrics
from .rtp_in import ReceivedRtp
from .rtp_out import OutboundFormat, PacketRewriter, ntp_time

logger = logging.getLogger(__name__)

REMB_FRESH_S = 5.0
# A subscriber's estimate under this share of the highest one is its own link's
# limit, and gets it fewer layers (see `PublishedTrack.weak_estimate`).
WEAK_SHARE = 0.75
# A subscriber due a higher layer waits this long for the publisher's next layer
# sync point (Chromium marks few), then asks for a keyframe, where every layer starts.
UPSWITCH_KEYFRAME_S = 1.0
# A stream counts as layered while a packet with a TID came within this long.
LAYERED_FRESH_S = 3.0
# A PLI travels over UDP and a publisher may coalesce or ignore one: a subscriber
# still waiting for a keyframe after this long asks again.
KEYFRAME_RETRY_S = 1.0

# Sends a REMB (bitrate, media SSRC) to the publisher now.
RembSink = Callable[[int, int], None]
# Receives every complete encoded frame of a publication (e.g. the recorder). Called
# on the media path: it must return at once (queue the frame, never write it).
FrameSink = Callable[["PublishedTrack", EncodedFrame], None]
# Sends one plain RTP packet to a subscriber now; False if it could not go.
PacketWriter = Callable[[bytes], bool]
# Told after each packet sent: NTP time (32.32), RTP timestamp, packets, payload octets.
SentReport = Callable[[int, int, int, int], None]
# Told that a subscriber cannot receive the codec the publisher now sends.
Unreachable = Callable[[RTCRtpCodecParameters], None]


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
        codecs: Sequence[RTCRtpCodecParameters] | None = None,
        layer_selection: bool = False,
    ) -> None:
        """``codec``: what the publisher is expected to send until its first packet
        says (the offer's first choice); ``codecs``: every codec it negotiated, with
        its payload type (default: ``codec`` alone); ``layer_selection``: send each
        subscriber only what it shows (see the module doc)."""
        self._codecs = list(codecs) if codecs else [codec]
        for candidate in self._codecs:
            check_forwardable(candidate)
        self._by_payload_type = {c.payloadType: c for c in self._codecs if c.payloadType is not None}
        self._codec_known = False
        self._publisher_id = publisher_id
        self._kind = kind
        self._codec = codec
        self._codec_name = codec_name(codec)
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
        self._last_timestamp: int | None = None
        self._closed = False
        self._layer_selection = layer_selection
        self._parse_layers = False
        self._layer_bytes = [0] * (TOP_LAYER + 1)
        self._layer_rates: list[float] = []
        self._layers_counted_at = clock()
        self._layered_at: float | None = None
        self._update_parse_layers()

    def _update_parse_layers(self) -> None:
        self._parse_layers = self._layer_selection and self._codec_name == "VP8"

    @property
    def layer_selection(self) -> bool:
        return self._layer_selection

    @property
    def layered(self) -> bool:
        """Whether the publisher sends temporal layers (a packet with a TID came lately)."""
        return (self._layered_at is not None
                and self._clock() - self._layered_at <= LAYERED_FRESH_S)

    @property
    def layer_rates(self) -> list[float]:
        """Bit/s of layers 0..i, for each i, over the last second or so (empty until
        measured)."""
        return list(self._layer_rates)

    @property
    def publisher_id(self) -> str:
        return self._publisher_id

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def codec(self) -> RTCRtpCodecParameters:
        """The codec the publisher sends (from its packets; before the first one, the
        codec it is expected to send)."""
        return self._codec

    @property
    def codecs(self) -> list[RTCRtpCodecParameters]:
        """Every codec the publisher negotiated, the expected one first."""
        return [self._codec, *(c for c in self._codecs if c is not self._codec)]

    @property
    def codec_known(self) -> bool:
        """Whether ``codec`` was read from a packet yet."""
        return self._codec_known

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
        """Where REMBs (bitrate, media SSRC) for the publisher go."""
        self._remb_sink = sink

    def _new_assembler(self) -> VideoFrameAssembler | AudioSequencer:
        if self._kind == "video":
            return VideoFrameAssembler(self._codec_name)
        return AudioSequencer()

    # -- receiving side -------------------------------------------------------------

    def on_rtp(self, packet: ReceivedRtp) -> bool:
        """Take one packet, send it on to every subscriber; return True to send the
        publisher a PLI."""
        now = self._clock()
        if self._closed:
            return False
        self._last_packet_at = now
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                logger.info("publisher %s restarted %s stream (SSRC %d -> %d)",
                            self._publisher_id, self._kind, self._ssrc, packet.ssrc)
                self._assembler = self._new_assembler()
                for subscriber in self._subscribers:
                    subscriber.restart()
            self._ssrc = packet.ssrc
        codec = self._by_payload_type.get(packet.payload_type)
        if codec is not None and (codec is not self._codec or not self._codec_known):
            self._use_codec(codec)
        payload = packet.payload
        keyframe_start = bool(payload) and starts_keyframe(
            self._codec_name, payload, packet.timestamp != self._last_timestamp)
        if keyframe_start and self._kind == "video":
            self._keyframe_wanted = False  # here it comes, for everyone who asked
        layering = parse_vp8_layering(payload) if self._parse_layers else None
        if layering is not None:
            self._layered_at = now
            if layering.tid <= TOP_LAYER:
                self._layer_bytes[layering.tid] += len(payload)
        if self._subscribers and payload:
            arrived = packet.arrived if packet.arrived is not None else time.perf_counter()
            ntp = ntp_time(time.time())
            for subscriber in self._subscribers:
                subscriber._forward(packet, keyframe_start, ntp, now, arrived, layering)
        self._last_timestamp = packet.timestamp
        if packet.marker or self._kind == "audio":
            self._metrics.frames_in[self._kind] += 1
        if self._sinks:
            self._assemble(packet, now)
        if self._kind != "video":
            return False
        assert isinstance(self._assembler, VideoFrameAssembler)
        wanted = self._keyframe_wanted or (bool(self._sinks) and self._assembler.waiting_for_keyframe)
        if wanted and now - self._last_keyframe_request >= self._keyframe_min_interval:
            self._last_keyframe_request = now
            self._keyframe_wanted = False
            self._metrics.keyframe_requests += 1
            return True
        return False

    def _use_codec(self, codec: RTCRtpCodecParameters) -> None:
        """The publisher's packets are in ``codec`` (first packet, or a switch)."""
        if codec_key(codec) != codec_key(self._codec) or self._codec_known:
            logger.info("publisher %s sends %s as %s (expected %s)", self._publisher_id,
                        self._kind, codec.mimeType, self._codec.mimeType)
        self._codec_known = True
        if codec is not self._codec:
            self._codec = codec
            self._codec_name = codec_name(codec)
            self._update_parse_layers()
            self._assembler = self._new_assembler()
            self._last_timestamp = None
            self.request_keyframe()
        for subscriber in self._subscribers:
            subscriber.use_codec(codec)

    def _assemble(self, packet: ReceivedRtp, now: float) -> None:
        # Frames are rebuilt only for those who take whole frames; subscribers get
        # packets, and report a lost frame themselves (PLI).
        data = packet.data
        if data is None:
            try:
                data = depayload(self._codec, packet.payload) if packet.payload else b""
            except ValueError:
                return  # a malformed payload: the assembler sees a hole
        for frame in self._assembler.add(RtpIn(
            packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload,
            data, now,
        )):
            for sink in self._sinks:
                sink(self, frame)

    # -- subscribers -----------------------------------------------------------------

    def add_sink(self, sink: FrameSink) -> None:
        """Also hand every complete frame to ``sink``; a video sink starting now
        needs a keyframe, so one is requested."""
        if not self._sinks:
            self._assembler = self._new_assembler()  # it saw nothing while unused
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
        if limit is not None and (self._last_remb_sent is None or limit < self._last_remb_sent * 0.9):
            self._send_remb(limit)

    def remb_tick(self) -> None:
        """Tell the publisher the lowest fresh subscriber estimate (the room calls this
        once a second, as a receiver would send its REMB); with layer selection, also
        measure each layer's rate and fit every subscriber's layers to its estimate."""
        if self._parse_layers:
            self._measure_layers()
            now = self._clock()
            for track in list(self._remb):
                track._fit_to_estimate(now)
        limit = self.bitrate_limit()
        if limit is not None:
            self._send_remb(limit)

    def _send_remb(self, bitrate: int) -> None:
        if self._remb_sink is not None and self._ssrc is not None and not self._closed:
            self._last_remb_sent = bitrate
            self._remb_sink(bitrate, self._ssrc)

    def _measure_layers(self) -> None:
        now = self._clock()
        elapsed = now - self._layers_counted_at
        if elapsed < 0.5:
            return
        rates, total = [], 0
        for count in self._layer_bytes:
            total += count
            rates.append(total * 8 / elapsed)
        self._layer_bytes = [0] * (TOP_LAYER + 1)
        self._layers_counted_at = now
        if not self.layered:
            self._layer_rates = []
        elif self._layer_rates:
            # Smoothed: a keyframe's burst must not look like a layer grown too big.
            self._layer_rates = [(old + new) / 2 for old, new in zip(self._layer_rates, rates)]
        else:
            self._layer_rates = rates

    def fresh_estimate(self, track: ForwardedTrack) -> int | None:
        """``track``'s subscriber's latest estimate if it is fresh."""
        entry = self._remb.get(track)
        if entry is None or self._clock() - entry[1] > REMB_FRESH_S:
            return None
        return entry[0]

    def weak_estimate(self, track: ForwardedTrack) -> int | None:
        """``track``'s fresh estimate if it is well under another subscriber's (its
        own link is the weak one), else None. A lossy or slow uplink lowers every
        subscriber's estimate alike: that is the publisher's to fix (it hears the
        highest estimate), and taking layers from every viewer would only cost
        them frames."""
        estimate = self.fresh_estimate(track)
        highest = self.bitrate_limit()
        if estimate is None or highest is None or estimate >= WEAK_SHARE * highest:
            return None
        return estimate

    def bitrate_limit(self) -> int | None:
        """The lowest fresh subscriber estimate (the highest, when subscribers get
        layers by their estimates), or None when there is none."""
        now = self._clock()
        fresh = [b for b, at in self._remb.values() if now - at <= REMB_FRESH_S]
        if not fresh:
            return None
        return max(fresh) if self._parse_layers and self.layered else min(fresh)

    def close(self) -> None:
        """The publisher left: end every subscriber's track."""
        self._closed = True
        for track in list(self._subscribers):
            track.stop()
        self._subscribers.clear()


class ForwardedTrack(MediaStreamTrack):
    """One publication as one subscriber receives it.

    Its RTCRtpSender is there for negotiation and RTCP; the packets themselves are
    written by ``_forward`` once ``bind`` has given the negotiated format and a way to
    send. ``recv`` never returns a frame: the sender's own RTP loop waits on it until
    the track stops."""

    def __init__(self, source: PublishedTrack, subscriber_id: str, metrics: ForwardingMetrics) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._subscriber_id = subscriber_id
        self._metrics = metrics
        self._rewriter: PacketRewriter | None = None
        self._write: PacketWriter | None = None
        self._report: SentReport | None = None
        self._formats: dict[str, OutboundFormat] = {}
        self._reachable = False
        self._on_unreachable: Unreachable | None = None
        self._told_unreachable: set[str] = set()
        self._waiting_since: float | None = None
        self._stopped = asyncio.Event()
        # What the subscriber's page shows of this track (layer selection only).
        self._shown = True
        self._size_layer = TOP_LAYER
        self._bandwidth = BandwidthLayers()
        self._selector = LayerSelector()
        # None while the stream goes out unchanged: then only the last packet's
        # layer fields are kept, for a rewriter to take over from.
        self._picture_ids: PictureIdRewriter | None = None
        self._last_layering: Vp8Layering | None = None
        self._upswitch_since: float | None = None

    @property
    def shown(self) -> bool:
        """Whether the subscriber's page shows this video (audio: always True)."""
        return self._shown

    @property
    def layer(self) -> int:
        """The highest temporal layer forwarded now (of a layered VP8 stream)."""
        return self._selector.layer

    @property
    def target_layer(self) -> int:
        return self._selector.target

    def set_view(self, width: int | None, *, largest: bool = False) -> None:
        """How the subscriber's page shows this video: in a tile ``width`` device
        pixels wide (``largest``: no other tile on the page is wider), or not at all
        (None). Ignored without layer selection, and for audio, which always goes."""
        if self.kind != "video" or not self._source.layer_selection:
            return
        if width is None or width <= 0:
            if self._shown:
                self._shown = False
                if self._rewriter is not None:
                    self._rewriter.stop()
                self._waiting_since = None
            return
        if not self._shown:
            self._shown = True
            self._waiting_since = None
            self._source.request_keyframe()  # so the tile shows a picture at once
        self._size_layer = layer_for_width(width, largest=largest)
        self._selector.set_target(min(self._size_layer, self._bandwidth.layer))

    def _fit_to_estimate(self, now: float) -> None:
        """Choose the layers the subscriber's fresh estimate carries (once a second)."""
        estimate = self._source.weak_estimate(self)
        layer = self._bandwidth.update(estimate, self._source.layer_rates, now)
        target = min(self._size_layer, layer)
        if target != self._selector.target:
            logger.info("subscriber %s gets layers 0-%d of %s's video (estimate %s bit/s)",
                        self._subscriber_id, target, self._source.publisher_id, estimate)
        self._selector.set_target(target)

    @property
    def source(self) -> PublishedTrack:
        return self._source

    @property
    def subscriber_id(self) -> str:
        return self._subscriber_id

    def bind(self, fmt: OutboundFormat | Mapping[str, OutboundFormat], write: PacketWriter,
             report: SentReport | None = None, *,
             on_unreachable: Unreachable | None = None) -> None:
        """Start sending in the subscriber's negotiated format (from the next keyframe).

        ``fmt``: one format per codec the subscriber accepted, by ``codec_key`` (a
        single format stands for the publisher's current codec)."""
        formats = (dict(fmt) if isinstance(fmt, Mapping)
                   else {codec_key(self._source.codec): fmt})
        if not formats:
            raise ValueError("a subscriber needs at least one accepted codec")
        current = formats.get(codec_key(self._source.codec))
        self._formats = formats
        self._rewriter = PacketRewriter(current or next(iter(formats.values())),
                                        first_seq=random.getrandbits(16),
                                        timestamp_origin=random.getrandbits(32))
        self._write = write
        self._report = report
        self._on_unreachable = on_unreachable
        self._waiting_since = None
        self._reachable = current is not None
        if current is None and self._source.codec_known:
            self._tell_unreachable(self._source.codec)
        self._source.request_keyframe()

    @property
    def reachable(self) -> bool:
        """Whether the subscriber accepted the codec the publisher sends (as far as
        known: before the publisher's first packet, the codec it is expected to send)."""
        return self._reachable

    def use_codec(self, codec: RTCRtpCodecParameters) -> None:
        """The publisher sends ``codec`` from now on: switch to the subscriber's
        payload type for it at its next keyframe, or send nothing if it has none."""
        if self._rewriter is None:
            return
        fmt = self._formats.get(codec_key(codec))
        if fmt is None:
            self._reachable = False
            self._rewriter.stop()
            self._tell_unreachable(codec)
            return
        if self._rewriter.format is not fmt:
            self._rewriter.reformat(fmt)
            self._waiting_since = None
        self._reachable = True

    def _tell_unreachable(self, codec: RTCRtpCodecParameters) -> None:
        key = codec_key(codec)
        if key in self._told_unreachable:
            return
        self._told_unreachable.add(key)
        logger.info("subscriber %s accepted no %s: %s of %s not forwarded to it",
                    self._subscriber_id, codec.mimeType, self.kind, self._source.publisher_id)
        if self._on_unreachable is not None:
            self._on_unreachable(codec)

    def restart(self) -> None:
        """The publisher's stream changed: resume at its next keyframe."""
        if self._rewriter is not None:
            self._rewriter.stop()
        self._waiting_since = None

    def retransmission(self, seq: int) -> bytes | None:
        """The packet to send again for the subscriber's NACK of ``seq``, if kept."""
        return None if self._rewriter is None else self._rewriter.retransmission(seq)

    def _forward(self, packet: ReceivedRtp, keyframe_start: bool, ntp: int, now: float,
                 arrived: float, layering: Vp8Layering | None = None) -> None:
        rewriter = self._rewriter
        if rewriter is None or not self._reachable or not self._shown or self._stopped.is_set():
            return
        if not rewriter.running:
            if not keyframe_start:
                if packet.marker:
                    self._metrics.frames_before_keyframe += 1
                if self._waiting_since is None:
                    self._waiting_since = now
                elif now - self._waiting_since >= KEYFRAME_RETRY_S:
                    self._waiting_since = now
                    self._source.request_keyframe()
                return
            rewriter.start(packet.sequence_number, packet.timestamp, now)
            self._waiting_since = None
            self._selector.restart()
            if self._picture_ids is None and self._last_layering is not None:
                self._picture_ids = PictureIdRewriter.after(self._last_layering)
            if self._picture_ids is not None:
                self._picture_ids.restart()
        payload = packet.payload
        if layering is not None:
            selector = self._selector
            if not layering.begins_frame:
                pass
            elif selector.target <= selector.layer:
                self._upswitch_since = None
            elif self._upswitch_since is None:
                self._upswitch_since = now
            elif now - self._upswitch_since >= UPSWITCH_KEYFRAME_S:
                self._upswitch_since = now
                self._source.request_keyframe()
            picture_ids = self._picture_ids
            if not selector.forward(layering, keyframe_start):
                rewriter.skip(packet.sequence_number)
                if picture_ids is None:
                    picture_ids = self._picture_ids = PictureIdRewriter.after(
                        self._last_layering or layering)
                picture_ids.dropped(layering)
                if layering.begins_frame:
                    self._metrics.frames_skipped += 1
                return
            if picture_ids is None:
                self._last_layering = layering
            else:
                payload = picture_ids.rewrite(payload, layering)
        # The publisher's own send time, so the subscriber's estimate spans the uplink.
        sent_at = packet.abs_send_time if packet.abs_send_time is not None else ntp >> 14
        out = rewriter.write(packet.sequence_number, packet.timestamp, packet.marker,
                             payload, sent_at, packet.audio_level, now)
        if out is None:
            return
        assert self._write is not None
        if not self._write(out):
            # Not connected (yet or any more), or the socket is backed up: start over
            # at a keyframe rather than send a stale backlog.
            if rewriter.packets > 1:
                self._metrics.frames_dropped += 1
            rewriter.stop()
            self._source.request_keyframe()
            return
        audio = self.kind == "audio"
        if packet.marker or audio:
            # Sender reports go out about once a second: a video frame's last packet,
            # or every eighth audio packet, keeps their counts fresh enough.
            if self._report is not None and (not audio or rewriter.packets % 8 == 1):
                self._report(ntp, rewriter.last_timestamp, rewriter.packets, rewriter.payload_bytes)
            self._metrics.frames_out[self.kind] += 1
            # From the datagram's arrival (when known) to this frame's last packet sent.
            self._metrics.record_latency(self.kind, time.perf_counter() - arrived)

    async def recv(self) -> Any:
        await self._stopped.wait()
        raise MediaStreamError

    def on_keyframe_request(self) -> None:
        """The subscriber sent PLI or FIR."""
        self._source.request_keyframe()

    async def on_remb(self, bitrate: int) -> None:
        await self._source.report_remb(self, bitrate)

    def stop(self) -> None:
        if self.readyState == "live":
            self._source._unsubscribe(self)
        super().stop()
        self._stopped.set()  # ends the sender's RTP loop
