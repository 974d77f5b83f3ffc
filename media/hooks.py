"""The few places where the forwarder reaches into aiortc's private attributes.

aiortc has no public API for forwarding encoded media, so this module (and only this
module) touches private names. aiortc is pinned to 1.16.x in pyproject.toml and
``check_internals()`` runs at server start and in tests/test_aiortc_internals.py, so an
aiortc upgrade that renames anything fails loudly instead of silently decoding.

* Receiving side: SRTP packets are taken from the ICE connection as they arrive and
  handled in the same call (``receive_inline``) instead of waiting in aioice's queue
  for the DTLS transport's task; everything else (DTLS, RTCP) keeps that path. Once
  an SSRC is known, its packets skip aiortc's generic parsing and routing too
  (``_InlineReceiver``: the receiver's own statistics, NACK and bandwidth objects, fed
  as aiortc would). The receiver's jitter buffer is replaced by a tap. aiortc calls
  ``add(packet)`` after SRTP, RTX unwrapping and depayloading; the tap hands the packet
  to the forwarder and returns no frame, so nothing ever reaches the decoder thread.
  Returning ``True`` as the first element makes aiortc send a PLI for the media SSRC
  (never the RTX SSRC), which is how keyframe requests reach the publisher.
* Sending side: the forwarder writes each subscriber's RTP packets itself
  (``media.rtp_out``) and sends them through the sender's DTLS transport: SRTP-protected
  with its session, out of the selected ICE pair's socket, in the same call that
  received the publisher's packet. aiortc's sender stays for negotiation and RTCP: its
  sender reports are fed the forwarder's counts, a NACK is answered from the
  forwarder's history, and a PLI/FIR (which would set a "force keyframe" flag meaning
  nothing for packets we did not encode) is redirected to the forwarder. REMB feedback
  from the subscriber is reported to the forwarder too, which passes the lowest on to
  the publisher instead of the receiver's own estimate.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import pylibsrtp
from aiortc import RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unpack_remb_fci

from .codecs import codec_key
from .errors import InternalsChangedError
from .rtp_in import ReceivedRtp, parse_rtp
from .rtp_out import NTP_EPOCH_OFFSET, OutboundFormat

logger = logging.getLogger(__name__)

#: Shortest time between two NACKs for packets still missing (about one round trip).
NACK_REPEAT_S = 0.1

_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_CODECS = "_RTCRtpReceiver__codecs"
_RECEIVER_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_SENDER_NTP = "_RTCRtpSender__ntp_timestamp"
_SENDER_RTP_TS = "_RTCRtpSender__rtp_timestamp"
_SENDER_PACKETS = "_RTCRtpSender__packet_count"
_SENDER_OCTETS = "_RTCRtpSender__octet_count"
_SENDER_REPORT_FIELDS = (_SENDER_NTP, _SENDER_RTP_TS, _SENDER_PACKETS, _SENDER_OCTETS)

_MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
_ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
_AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
# A subscriber whose socket has this much unsent is not keeping up: it restarts at
# the next keyframe instead of receiving a stale backlog.
SEND_BACKLOG_LIMIT = 1 << 20

PacketSink = Callable[[ReceivedRtp], bool]
# An SSRC's packets on an inline connection: (plain RTP, arrival in ms since 1900,
# perf_counter() when taken).
InlineHandler = Callable[[bytes, int, float], None]
_RECEIVER_STREAMS = "_RTCRtpReceiver__remote_streams"
_RECEIVER_NACK = "_RTCRtpReceiver__nack_generator"
_RECEIVER_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"
# Our own attribute on a DTLS transport: SSRC -> inline handler of its receiver.
_DTLS_ROUTES = "_defense_room_inline_routes"
_MAX_ROUTES = 64
_DTLS_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
_DTLS_RX_BYTES = "_RTCDtlsTransport__rx_bytes"


def receive_inline(dtls: RTCDtlsTransport) -> None:
    """Handle the SRTP packets of ``dtls``'s ICE connection in the call that receives
    them (unprotect, parse, the receiver's statistics, NACKs, bitrate estimate and
    tap), as the DTLS transport's task would have, one queue hop and task switch
    earlier. Idempotent."""
    connection: Any = dtls.transport._connection
    if getattr(connection, "_inline_rtp", False):
        return
    queue_it = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        srtp = dtls._rx_srtp
        # RTP and RTCP start with 128..191; RTCP packet types are 192..208. Anything
        # shorter than an RTP header is left to aiortc, which drops it.
        if srtp is None or len(data) < 12 or not 127 < data[0] < 192 or 192 <= data[1] <= 208:
            queue_it(data, component)
            return
        arrived = time.perf_counter()
        setattr(dtls, _DTLS_RX_PACKETS, getattr(dtls, _DTLS_RX_PACKETS) + 1)
        setattr(dtls, _DTLS_RX_BYTES, getattr(dtls, _DTLS_RX_BYTES) + len(data))
        # The arrival time aiortc's bandwidth estimator expects: ms since 1900.
        arrival_ms = int((time.time() + NTP_EPOCH_OFFSET) * 1000)
        try:
            plain = srtp.unprotect(data)
        except pylibsrtp.Error:
            return
        handle = routes.get(int.from_bytes(plain[8:12], "big"))
        if handle is not None:
            handle(plain, arrival_ms, arrived)
        else:
            _run_now(dtls._handle_rtp_data(plain, arrival_time_ms=arrival_ms))

    routes: dict[int, InlineHandler] = {}
    setattr(dtls, _DTLS_ROUTES, routes)
    connection.data_received = data_received
    connection._inline_rtp = True
    # aioice tries to parse every datagram as STUN before passing it on (an exception
    # per media packet); SRTP's first byte (128..191) is never STUN's (0..3).
    for protocol in getattr(connection, "_protocols", ()):
        _skip_stun_parsing(protocol, data_received)


def _skip_stun_parsing(protocol: Any, data_received: Callable[[bytes, int], None]) -> None:
    stun_first = protocol.datagram_received
    component = protocol.local_candidate.component

    def datagram_received(data: bytes, addr: Any) -> None:
        if data and 127 < data[0] < 192:
            data_received(data, component)
        else:
            stun_first(data, addr)

    protocol.datagram_received = datagram_received


def _run_now(coro: Coroutine[Any, Any, None], _: object = None) -> None:
    """Run a coroutine that does not normally suspend (aiortc's RTP handling awaits
    only sends, which go straight to the socket) to its end now. Should it await
    something real, it is resumed when that completes, as a task would be."""
    try:
        awaited = coro.send(None)
    except StopIteration:
        return
    except Exception:
        logger.exception("handling an RTP packet (or its RTCP answer) failed")
        return
    if awaited is None:  # a bare yield (sleep(0)): continue on the next loop pass
        asyncio.get_running_loop().call_soon(_run_now, coro)
        return
    awaited._asyncio_future_blocking = False
    awaited.add_done_callback(functools.partial(_run_now, coro))


class _Tap:
    """Stands in for aiortc's JitterBuffer: same ``add`` contract, never a frame.

    The first packet of each SSRC that comes through aiortc's own path also routes
    that SSRC's next packets to the receiver's ``_InlineReceiver``."""

    capacity = 1 << 16

    def __init__(self, sink: PacketSink, inline: _InlineReceiver | None = None) -> None:
        self._sink = sink
        self._inline = inline

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        if self._inline is not None:
            self._inline.route(packet.ssrc)
        return self._sink(ReceivedRtp.from_aiortc(packet)), None


class _InlineReceiver:
    """aiortc's ``RTCRtpReceiver._handle_rtp_packet`` for a tapped receiver, as one
    plain call: the same receive statistics (receiver reports), NACKs and, unless
    relayed instead, bitrate estimate (REMB), with the receiver's own objects. Left
    out is what only a decoder needs (depayloading, the decoder-error PLI, the jitter
    buffer) and the contributing-source times of ``getSynchronizationSources``. A
    retransmission (RTX SSRC) still takes aiortc's path, which unwraps it."""

    def __init__(self, receiver: RTCRtpReceiver, sink: PacketSink,
                 abs_send_time_id: int | None, audio_level_id: int | None) -> None:
        self._receiver = receiver
        self._sink = sink
        self._abs_send_time_id = abs_send_time_id
        self._audio_level_id = audio_level_id
        self._codecs: dict[int, RTCRtpCodecParameters] = getattr(receiver, _RECEIVER_CODECS)
        self._clock_rates: dict[int, int] = {}  # media payload types only
        self._streams: dict[int, StreamStatistics] = getattr(receiver, _RECEIVER_STREAMS)
        self._nack: NackGenerator | None = getattr(receiver, _RECEIVER_NACK)
        self._nacked_at = 0.0

    def route(self, ssrc: int) -> None:
        routes: dict[int, InlineHandler] | None = getattr(self._receiver.transport, _DTLS_ROUTES, None)
        if routes is not None and ssrc not in routes:
            if len(routes) >= _MAX_ROUTES:
                routes.clear()  # a peer cycling SSRCs: start over rather than grow
            routes[ssrc] = self.handle

    def handle(self, data: bytes, arrival_ms: int, arrived: float) -> None:
        packet = parse_rtp(data, abs_send_time_id=self._abs_send_time_id,
                           audio_level_id=self._audio_level_id, arrived=arrived)
        receiver = self._receiver
        if packet is None or not receiver._enabled:
            return
        estimator = getattr(receiver, _RECEIVER_ESTIMATOR)
        if estimator is not None and packet.abs_send_time is not None:
            # Only when the receiver still estimates itself (see relay_bandwidth_estimates).
            remb = estimator.add(abs_send_time=packet.abs_send_time, arrival_time_ms=arrival_ms,
                                 payload_size=len(packet.payload) + packet.padding,
                                 ssrc=packet.ssrc)
            rtcp_ssrc = getattr(receiver, _RECEIVER_RTCP_SSRC)
            if rtcp_ssrc is not None and remb is not None:
                _run_now(receiver._send_rtcp(RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb))))
        clock_rate = self._clock_rates.get(packet.payload_type)
        if clock_rate is None:
            codec = self._codecs.get(packet.payload_type)
            if codec is None or is_rtx(codec):
                return
            clock_rate = self._clock_rates[packet.payload_type] = codec.clockRate
        stats = self._streams.get(packet.ssrc)
        if stats is None:
            stats = self._streams[packet.ssrc] = StreamStatistics(clock_rate)
        # Both read only the sequence number and timestamp an RtpPacket would have.
        stats.add(cast(RtpPacket, packet))
        # aiortc NACKs only when a new hole appears, so a lost retransmission would
        # leave its hole open until a keyframe: still-missing packets are asked for
        # again, at most every NACK_REPEAT_S (on a lossy link the recording otherwise
        # loses over a second of video each time).
        nack = self._nack
        if nack is not None and (nack.add(cast(RtpPacket, packet)) or (
                nack.missing and arrived - self._nacked_at > NACK_REPEAT_S)):
            self._nacked_at = arrived
            _run_now(receiver._send_rtcp_nack(packet.ssrc, sorted(nack.missing)))
        if self._sink(packet):
            _run_now(receiver._send_rtcp_pli(packet.ssrc))


def tap_receiver(receiver: RTCRtpReceiver, sink: PacketSink,
                 transceiver: RTCRtpTransceiver | None = None) -> None:
    """Send every depayloaded packet of ``receiver`` to ``sink`` instead of the decoder.

    With its ``transceiver`` (negotiated header extensions), packets on a connection
    handled by ``receive_inline`` reach ``sink`` through ``_InlineReceiver``."""
    _require(receiver, _JITTER_BUFFER)
    inline = None
    if transceiver is not None:
        ids = {ext.uri: ext.id for ext in getattr(transceiver, "_headerExtensions")}
        inline = _InlineReceiver(receiver, sink, ids.get(_ABS_SEND_TIME_URI),
                                 ids.get(_AUDIO_LEVEL_URI))
    setattr(receiver, _JITTER_BUFFER, _Tap(sink, inline))


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The media codecs (no RTX) negotiated on ``transceiver``, each with its payload
    type. Which one the remote side sends is not in the SDP: a sender picks any of
    them, and may switch, so a publisher's codec is read from its packets' payload
    type (``PublishedTrack``), never from the answer's order."""
    codecs: list[RTCRtpCodecParameters] = getattr(transceiver, "_codecs")
    media = [c for c in codecs if not c.mimeType.lower().endswith("/rtx")]
    if not media or any(c.payloadType is None for c in media):
        raise InternalsChangedError("transceiver has no negotiated media codec with a payload type")
    return media


def outbound_formats(transceiver: RTCRtpTransceiver) -> dict[str, OutboundFormat]:
    """What the subscriber negotiated on a sending transceiver (after the answer), one
    format per accepted codec, by ``codecs.codec_key``."""
    ids = {ext.uri: ext.id for ext in getattr(transceiver, "_headerExtensions")}
    sender = transceiver.sender
    all_codecs: list[RTCRtpCodecParameters] = getattr(transceiver, "_codecs")
    formats: dict[str, OutboundFormat] = {}
    for codec in negotiated_codecs(transceiver):
        assert codec.payloadType is not None
        rtx_payload_type = next(
            (c.payloadType for c in all_codecs if c.mimeType.lower().endswith("/rtx")
             and c.parameters.get("apt") == codec.payloadType), None)
        formats.setdefault(codec_key(codec), OutboundFormat(
            payload_type=codec.payloadType, ssrc=sender._ssrc, clock_rate=codec.clockRate,
            rtx_payload_type=rtx_payload_type, rtx_ssrc=sender._rtx_ssrc,
            mid=transceiver.mid, mid_id=ids.get(_MID_URI),
            abs_send_time_id=ids.get(_ABS_SEND_TIME_URI), audio_level_id=ids.get(_AUDIO_LEVEL_URI),
        ))
    return formats


RtpWriter = Callable[[bytes], bool]


def rtp_writer(sender: RTCRtpSender) -> RtpWriter:
    """A function sending one plain RTP packet to the sender's peer at once: SRTP
    protection and the selected ICE pair's socket, no task in between. It returns
    False when the packet could not go (not connected yet or any more, or the socket
    has a backlog of ``SEND_BACKLOG_LIMIT`` bytes)."""
    dtls = sender.transport

    def write(packet: bytes) -> bool:
        srtp = dtls._tx_srtp
        if srtp is None or dtls._state is not DtlsState.CONNECTED:
            return False
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return False
        transport: Any = pair.protocol.transport
        if transport is None or transport.get_write_buffer_size() > SEND_BACKLOG_LIMIT:
            return False
        transport.sendto(srtp.protect(packet), pair.remote_addr)
        return True

    return write


def report_sent(sender: RTCRtpSender, *, ntp_time: int, rtp_timestamp: int,
                packets: int, octets: int) -> None:
    """Give the sender's RTCP sender reports the forwarder's counts (RFC 3550 6.4.1:
    the NTP time and RTP timestamp of the same instant, packets and payload octets)."""
    setattr(sender, _SENDER_NTP, ntp_time)
    setattr(sender, _SENDER_RTP_TS, rtp_timestamp)
    setattr(sender, _SENDER_PACKETS, packets)
    setattr(sender, _SENDER_OCTETS, octets)


def answer_nacks(sender: RTCRtpSender, retransmission: Callable[[int], bytes | None],
                 write: RtpWriter) -> None:
    """Answer the subscriber's NACKs from the forwarder's history, not the sender's."""
    _require(sender, "_retransmit")

    async def retransmit(sequence_number: int) -> None:
        packet = retransmission(sequence_number)
        if packet is not None:
            write(packet)

    sender._retransmit = retransmit  # type: ignore[method-assign]


def send_remb(receiver: RTCRtpReceiver, bitrate: int, media_ssrc: int) -> None:
    """Send a REMB for ``media_ssrc`` to the publisher now."""
    rtcp_ssrc = getattr(receiver, _RECEIVER_RTCP_SSRC)
    if rtcp_ssrc is None:
        return
    packet = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, [media_ssrc])
    )
    _run_now(receiver._send_rtcp(packet))


def relay_bandwidth_estimates(receiver: RTCRtpReceiver) -> None:
    """Stop the receiver estimating the publisher's bandwidth itself (and sending its
    own REMB): the publisher's abs-send-time reaches the subscribers unchanged, so
    their estimates cover the whole path, and the forwarder passes the lowest one on
    (``send_remb``)."""
    _require(receiver, _RECEIVER_ESTIMATOR)
    setattr(receiver, _RECEIVER_ESTIMATOR, None)


def tap_sender(
    sender: RTCRtpSender,
    on_keyframe_request: Callable[[], None],
    on_remb: Callable[[int], Awaitable[None]],
) -> None:
    """Route a subscriber's keyframe requests and REMB estimates to the forwarder."""
    _require(sender, "_send_keyframe")
    sender._send_keyframe = on_keyframe_request  # type: ignore[method-assign]
    original = sender._handle_rtcp_packet

    async def handle_rtcp_packet(packet: Any) -> None:
        await original(packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if sender._ssrc in ssrcs:
                await on_remb(bitrate)

    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]


def _require(obj: object, name: str) -> None:
    if not hasattr(obj, name):
        raise InternalsChangedError(
            f"aiortc's {type(obj).__name__} has no attribute {name!r}: "
            "media/hooks.py must be updated for this aiortc version"
        )


def check_internals() -> None:
    """Fail fast if the installed aiortc lacks what the hooks rely on."""
    from aiortc import RTCPeerConnection
    from aiortc.rtcrtpreceiver import RTCRtpReceiver as Receiver
    from aiortc.rtcrtpsender import RTCRtpSender as Sender

    for cls, names in (
        (Receiver, ("_handle_rtp_packet", "_send_rtcp", "_send_rtcp_pli")),
        (Sender, ("_send_keyframe", "_handle_rtcp_packet", "_next_encoded_frame",
                  "_retransmit")),
    ):
        for name in names:
            _require(cls, name)
    for name in _SENDER_REPORT_FIELDS:
        if name not in Sender.__init__.__code__.co_names:
            raise InternalsChangedError(f"RTCRtpSender no longer sets {name!r}")
    if "_headerExtensions" not in RTCPeerConnection.setRemoteDescription.__code__.co_names:
        raise InternalsChangedError(
            "RTCPeerConnection no longer sets transceiver._headerExtensions")
    from aioice import Connection

    if "_nominated" not in Connection.__init__.__code__.co_names:
        raise InternalsChangedError("aioice's Connection no longer keeps _nominated pairs")
    for name in ("_tx_srtp", "_rx_srtp", _DTLS_RX_PACKETS, _DTLS_RX_BYTES):
        if name not in RTCDtlsTransport.__init__.__code__.co_names:
            raise InternalsChangedError(f"RTCDtlsTransport no longer keeps {name!r}")
    _require(RTCDtlsTransport, "_handle_rtp_data")
    if "data_received" not in dir(Connection) or "_protocols" not in Connection.__init__.__code__.co_names:
        raise InternalsChangedError("aioice's Connection no longer has data_received/_protocols")
    from aioice.ice import StunProtocol

    if "self.receiver.data_received" not in inspect.getsource(StunProtocol.datagram_received):
        raise InternalsChangedError("aioice's StunProtocol no longer hands data to data_received")
    source = Receiver._handle_rtp_packet.__code__.co_names
    for name in (_JITTER_BUFFER, "add"):
        if name not in source:
            raise InternalsChangedError(
                f"RTCRtpReceiver._handle_rtp_packet no longer uses {name!r}: "
                "media/hooks.py must be updated for this aiortc version"
            )
    for name in ("_enabled", "_send_rtcp_nack", "_send_rtcp_pli", "clockRate", _RECEIVER_STREAMS,
                 _RECEIVER_NACK, _RECEIVER_ESTIMATOR):
        if name not in source:
            raise InternalsChangedError(
                f"RTCRtpReceiver._handle_rtp_packet no longer uses {name!r}: "
                "media/hooks.py's _InlineReceiver must be updated for this aiortc version")
    for name in (_RECEIVER_CODECS, _RECEIVER_RTCP_SSRC, _JITTER_BUFFER, _RECEIVER_STREAMS,
                 _RECEIVER_NACK, _RECEIVER_ESTIMATOR):
        if name not in Receiver.__init__.__code__.co_names:
            raise InternalsChangedError(f"RTCRtpReceiver no longer sets {name!r}")
    if "_codecs" not in RTCPeerConnection.setRemoteDescription.__code__.co_names:
        raise InternalsChangedError("RTCPeerConnection no longer sets transceiver._codecs")
