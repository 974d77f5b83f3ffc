"""The few places where the forwarder reaches into aiortc's private attributes.

aiortc has no public API for forwarding encoded media, so this module (and only this
module) touches private names. aiortc is pinned to 1.16.x in pyproject.toml and
``check_internals()`` runs at server start and in tests/test_aiortc_internals.py, so an
aiortc upgrade that renames anything fails loudly instead of silently decoding.

* Receiving side: the receiver's jitter buffer is replaced by a tap. aiortc calls
  ``add(packet)`` after SRTP, RTX unwrapping and depayloading; the tap hands the packet
  to the forwarder and returns no frame, so nothing ever reaches the decoder thread.
  Returning ``True`` as the first element makes aiortc send a PLI for the media SSRC
  (never the RTX SSRC), which is how keyframe requests reach the publisher.
* Sending side: a subscriber's PLI/FIR would set the sender's "force keyframe" flag,
  which means nothing for packets we did not encode; it is redirected to the
  forwarder. REMB feedback from the subscriber is reported to the forwarder too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci
from aiortc.rtp import RtpPacket

from .errors import InternalsChangedError

logger = logging.getLogger(__name__)

_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_CODECS = "_RTCRtpReceiver__codecs"
_RECEIVER_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"

PacketSink = Callable[[RtpPacket], bool]


class _Tap:
    """Stands in for aiortc's JitterBuffer: same ``add`` contract, never a frame."""

    capacity = 1 << 16

    def __init__(self, sink: PacketSink) -> None:
        self._sink = sink

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        return self._sink(packet), None


def tap_receiver(receiver: RTCRtpReceiver, sink: PacketSink) -> None:
    """Send every depayloaded packet of ``receiver`` to ``sink`` instead of the decoder."""
    _require(receiver, _JITTER_BUFFER)
    setattr(receiver, _JITTER_BUFFER, _Tap(sink))


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters:
    """The codec the remote side will send with: the first non-RTX negotiated one."""
    codecs: list[RTCRtpCodecParameters] = getattr(transceiver, "_codecs")
    for codec in codecs:
        if not codec.mimeType.lower().endswith("/rtx"):
            return codec
    raise InternalsChangedError("transceiver has no negotiated media codec")


def clamp_remb(receiver: RTCRtpReceiver, clamp: Callable[[int], int]) -> None:
    """Pass the receiver's own REMB to the publisher through ``clamp``, so the weakest
    subscriber's estimate wins."""
    original = receiver._send_rtcp

    async def send_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                clamped = clamp(bitrate)
                if clamped != bitrate:
                    packet = RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP, ssrc=packet.ssrc, media_ssrc=0,
                        fci=pack_remb_fci(clamped, ssrcs),
                    )
        await original(packet)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]


async def send_remb(receiver: RTCRtpReceiver, bitrate: int, media_ssrc: int) -> None:
    """Send a REMB for ``media_ssrc`` to the publisher now."""
    rtcp_ssrc = getattr(receiver, _RECEIVER_RTCP_SSRC)
    if rtcp_ssrc is None:
        return
    packet = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, [media_ssrc])
    )
    await receiver._send_rtcp(packet)


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
        (Sender, ("_send_keyframe", "_handle_rtcp_packet", "_next_encoded_frame")),
    ):
        for name in names:
            _require(cls, name)
    source = Receiver._handle_rtp_packet.__code__.co_names
    for name in (_JITTER_BUFFER, "add"):
        if name not in source:
            raise InternalsChangedError(
                f"RTCRtpReceiver._handle_rtp_packet no longer uses {name!r}: "
                "media/hooks.py must be updated for this aiortc version"
            )
    for name in (_RECEIVER_CODECS, _RECEIVER_RTCP_SSRC, _JITTER_BUFFER):
        if name not in Receiver.__init__.__code__.co_names:
            raise InternalsChangedError(f"RTCRtpReceiver no longer sets {name!r}")
    if "_codecs" not in RTCPeerConnection.setRemoteDescription.__code__.co_names:
        raise InternalsChangedError("RTCPeerConnection no longer sets transceiver._codecs")
