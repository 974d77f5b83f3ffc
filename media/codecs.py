"""What the forwarder needs to know about each codec's bitstream.

The forwarder never decodes; it only needs to answer a few questions from the bytes:
does this RTP packet start a frame, or a keyframe (the point where a new subscriber can
start decoding), and is this depayloaded frame a keyframe.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiortc import RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpSender
from aiortc.codecs import CODECS

from .errors import UnsupportedCodecError

FORWARDED_MIME_TYPES = ("audio/opus", "video/vp8", "video/h264")

_VP8_KEYFRAME_START_CODE = b"\x9d\x01\x2a"
_H264_NAL_IDR = 5
_H264_NAL_SPS = 7
_H264_NAL_STAP_A = 24
_H264_NAL_FU_A = 28


def offer_opus_dtx() -> None:
    """Offer Opus with ``usedtx=1`` (RFC 7587 7.1) on every m-line, both ways: a
    browser's encoder then sends a silent microphone as two comfort-noise packets
    every 400 ms (after about 0.4 s of hangover) instead of 50 packets a second, and
    once video is cut to what each viewer shows, audio is most of the packets the
    server forwards. Speech after silence starts at once (DTX stops at the first
    voiced frame; tests/test_browser_dtx.py). Idempotent.

    aiortc builds every offer's and answer's Opus ``a=fmtp`` from its codec table,
    and its capabilities share that table's parameters, so the preference set from
    them still matches."""
    for codec in CODECS["audio"]:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters["usedtx"] = 1


def codec_name(codec: RTCRtpCodecParameters) -> str:
    return codec.mimeType.split("/", 1)[1].upper()


def check_forwardable(codec: RTCRtpCodecParameters) -> None:
    if codec.mimeType.lower() not in FORWARDED_MIME_TYPES:
        raise UnsupportedCodecError(
            f"cannot forward codec {codec.mimeType}: only Opus, VP8 and H.264 are forwarded"
        )


def starts_frame(codec: str, payload: bytes) -> bool | None:
    """Whether an RTP payload (still with its payload descriptor) begins a frame.

    Returns None when the payload alone cannot tell (H.264: a frame may be several
    single-NAL packets, and only the marker bit of the previous packet tells).
    """
    if codec == "VP8":
        if not payload:
            return False
        # RFC 7741: S bit set and partition index 0 begins a frame.
        return bool(payload[0] & 0x10) and (payload[0] & 0x07) == 0
    return None


def starts_keyframe(codec: str, payload: bytes, new_timestamp: bool) -> bool:
    """Whether a subscriber may start receiving at this packet: it begins a keyframe.

    Read from the RTP payload itself (no depayloading); ``new_timestamp`` says the
    previous packet belonged to another frame."""
    if codec == "VP8":
        start = vp8_frame_header_offset(payload)
        # RFC 6386 9.1: a keyframe's header has the inverse key-frame bit clear and
        # the start code at byte 3.
        return (start is not None and len(payload) >= start + 6 and not payload[start] & 0x01
                and payload[start + 3:start + 6] == _VP8_KEYFRAME_START_CODE)
    if codec == "H264":
        # The first packet of an IDR access unit carries the SPS (or the IDR slice when
        # parameter sets are sent out of band).
        return new_timestamp and bool(h264_packet_nal_types(payload) & {_H264_NAL_SPS, _H264_NAL_IDR})
    return True  # audio: every packet stands alone


def vp8_frame_header_offset(payload: bytes) -> int | None:
    """Where the VP8 frame header starts in a packet that begins a frame (S bit set,
    partition 0), past the payload descriptor (RFC 7741 4.2); None for other packets
    or a truncated descriptor."""
    if not starts_frame("VP8", payload):
        return None
    pos = 1
    if payload[0] & 0x80:  # X: extension bits follow
        if len(payload) < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture ID, 7 or 15 bits (M)
            if len(payload) <= pos:
                return None
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    return pos if pos < len(payload) else None


def h264_packet_nal_types(payload: bytes) -> set[int]:
    """NAL unit types a packet starts (RFC 6184): a single NAL unit, each unit of a
    STAP-A, or the unit an FU-A fragment begins (none for later fragments)."""
    if not payload:
        return set()
    kind = payload[0] & 0x1F
    if kind == _H264_NAL_STAP_A:
        types = set()
        pos = 1
        while pos + 2 < len(payload):
            size = int.from_bytes(payload[pos:pos + 2], "big")
            types.add(payload[pos + 2] & 0x1F)
            pos += 2 + size
        return types
    if kind == _H264_NAL_FU_A:
        return {payload[1] & 0x1F} if len(payload) > 1 and payload[1] & 0x80 else set()
    return {kind}


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether a depayloaded frame can be decoded on its own."""
    if codec == "VP8":
        # RFC 6386 9.1: the inverse key-frame bit, then the start code at byte 3.
        return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == _VP8_KEYFRAME_START_CODE
    if codec == "H264":
        return _H264_NAL_IDR in h264_nal_types(data)
    return True  # audio: every packet stands alone


def h264_nal_types(annexb: bytes) -> set[int]:
    """NAL unit types in an Annex B byte stream (as aiortc's depayloader produces)."""
    types: set[int] = set()
    i = annexb.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(annexb):
        types.add(annexb[i + 3] & 0x1F)
        i = annexb.find(b"\x00\x00\x01", i + 3)
    return types


def h264_payload_starts_nal(payload: bytes) -> bool:
    if not payload:
        return False
    if payload[0] & 0x1F == _H264_NAL_FU_A:
        return len(payload) > 1 and bool(payload[1] & 0x80)
    return True


def codec_key(codec: RTCRtpCodecParameters | RTCRtpCodecCapability) -> str:
    """What makes two connections' codecs the same bitstream, whatever their payload
    types: the MIME type and, for H.264, the packetization mode and the profile
    (profile_idc and constraint flags; the level only bounds the size)."""
    mime = codec.mimeType.lower()
    if mime != "video/h264":
        return mime
    profile = str(codec.parameters.get("profile-level-id", "42e01f")).lower()[:4]
    mode = str(codec.parameters.get("packetization-mode", "0"))
    return f"{mime};packetization-mode={mode};profile={profile}"


def publish_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    """What the server offers a participant to send their own camera (or microphone)
    with, most wanted first: only codecs it can forward, VP8 before H.264.

    Why VP8 first: the server never transcodes, so a track reaches only those who
    decode the codec its publisher chose. Every WebRTC browser decodes VP8 (Firefox
    without its OpenH264 plugin has no H.264 at all), so a publisher that honours the
    offerer's order (RFC 3264 6.1) sends what everyone can watch; H.264 is left for a
    publisher that cannot send VP8, and then reaches only the subscribers that accept
    it (the others are told, ``track_unavailable``)."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    order = {"video/vp8": 0, "video/h264": 1, "audio/opus": 0}
    media = sorted((c for c in capabilities if c.mimeType.lower() in FORWARDED_MIME_TYPES),
                   key=lambda c: order.get(c.mimeType.lower(), 2))
    rtx = [c for c in capabilities if c.mimeType.lower().endswith("/rtx")]
    return [*media, *rtx]


def sender_preferences(codecs: Sequence[RTCRtpCodecParameters]) -> list[RTCRtpCodecCapability]:
    """Codec preferences that let a subscriber's sender carry exactly the publisher's
    negotiated codecs (same H.264 profile and packetization), in that order, plus RTX
    so lost packets can be retransmitted from the sender's own history. The
    subscriber accepts those it decodes; the forwarder sends each packet in the
    subscriber's payload type for the codec the publisher really uses."""
    capabilities = RTCRtpSender.getCapabilities(codecs[0].mimeType.split("/")[0]).codecs
    chosen: list[RTCRtpCodecCapability] = []
    for codec in codecs:
        check_forwardable(codec)
        wanted = codec.mimeType.lower()
        matching = [c for c in capabilities if c.mimeType.lower() == wanted]
        if wanted == "video/h264":
            profile = str(codec.parameters.get("profile-level-id", "42e01f")).lower()
            matching = [
                c for c in matching
                if str(c.parameters.get("profile-level-id", "")).lower() == profile
            ] or [c for c in matching if codec_key(c) == codec_key(codec)]
        if not matching:
            raise UnsupportedCodecError(
                f"no sender capability matches {codec.mimeType} {codec.parameters}")
        if matching[0] not in chosen:
            chosen.append(matching[0])
    rtx = [c for c in capabilities if c.mimeType.lower().endswith("/rtx")]
    return [*chosen, *rtx]
