"""The forwarder's RTP reader against aiortc's own serializer and parser."""

from __future__ import annotations

from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media.rtp_in import ReceivedRtp, parse_rtp

ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"


def serialized(packet: RtpPacket) -> bytes:
    ids = HeaderExtensionsMap()
    ids.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri=MID),
        RTCRtpHeaderExtensionParameters(id=4, uri=ABS),
        RTCRtpHeaderExtensionParameters(id=9, uri=LEVEL),
    ]))
    return packet.serialize(ids)


def test_reads_what_aiortc_writes() -> None:
    packet = RtpPacket(payload_type=111, marker=1, sequence_number=65000, timestamp=123456789,
                       ssrc=0xCAFEBABE, payload=b"\x01\x02\x03")
    packet.csrc = [7, 8]
    packet.extensions.mid = "audio-0"
    packet.extensions.abs_send_time = 0x123456
    packet.extensions.audio_level = (True, 55)
    got = parse_rtp(serialized(packet), abs_send_time_id=4, audio_level_id=9, arrived=1.5)
    assert got is not None
    assert got.padding == 0 and got.arrived == 1.5 and got.data is None
    assert (got.payload_type, got.marker, got.sequence_number, got.timestamp, got.ssrc) == (
        111, True, 65000, 123456789, 0xCAFEBABE)
    assert got.payload == b"\x01\x02\x03"
    assert got.abs_send_time == 0x123456
    assert got.audio_level == (True, 55)
    # Extensions with other ids are not ours to read.
    other = parse_rtp(serialized(packet), abs_send_time_id=5, audio_level_id=None)
    assert other is not None and other.abs_send_time is None and other.audio_level is None
    assert other.payload == b"\x01\x02\x03"
    # What aiortc's own path hands the tap, read the same way.
    packet._data = b"depayloaded"  # type: ignore[attr-defined]
    same = ReceivedRtp.from_aiortc(packet)
    assert (same.sequence_number, same.timestamp, same.marker, same.payload, same.audio_level,
            same.data) == (65000, 123456789, True, b"\x01\x02\x03", (True, 55), b"depayloaded")


def test_padding_is_removed_and_malformed_packets_refused() -> None:
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"vp8")
    data = bytearray(serialized(packet))
    data[0] |= 0x20
    data += b"\x00\x00\x03"
    parsed = parse_rtp(bytes(data), abs_send_time_id=None, audio_level_id=None)
    assert parsed is not None and parsed.payload == b"vp8" and parsed.padding == 3
    assert parse_rtp(b"\x80\x60", abs_send_time_id=None, audio_level_id=None) is None  # short
    assert parse_rtp(b"\x40" + bytes(11), abs_send_time_id=None, audio_level_id=None) is None
    truncated = bytes([0x90]) + bytes(11) + b"\xbe\xde\x00\x05"  # says 5 words follow
    assert parse_rtp(truncated, abs_send_time_id=None, audio_level_id=None) is None
    too_much_padding = bytes([0xA0]) + bytes(11) + b"\xff"
    assert parse_rtp(too_much_padding, abs_send_time_id=None, audio_level_id=None) is None
