"""Packets rewritten for a subscriber: what aiortc's own parser reads back from them."""

from __future__ import annotations

from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, unwrap_rtx

from media.rtp_out import HISTORY_SIZE, HeaderWriter, OutboundFormat, PacketRewriter

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

AUDIO = OutboundFormat(payload_type=111, ssrc=0xDEADBEEF, clock_rate=48000, mid="3",
                       mid_id=1, abs_send_time_id=2, audio_level_id=3)
VIDEO = OutboundFormat(payload_type=96, ssrc=77, clock_rate=90000, rtx_payload_type=97,
                       rtx_ssrc=78, mid="12", mid_id=1, abs_send_time_id=2)


def extension_map() -> HeaderExtensionsMap:
    ids = HeaderExtensionsMap()
    ids.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri=MID),
        RTCRtpHeaderExtensionParameters(id=2, uri=ABS),
        RTCRtpHeaderExtensionParameters(id=3, uri=LEVEL),
    ]))
    return ids


def test_header_and_extensions_read_back_with_aiortc() -> None:
    writer = HeaderWriter(AUDIO)
    data = writer.write(marker=True, seq=65535, timestamp=2**32 - 1, abs_send_time=0xABCDEF,
                        audio_level=(True, 42), payload=b"opus")
    packet = RtpPacket.parse(data, extension_map())
    assert (packet.payload_type, packet.ssrc, packet.marker) == (111, 0xDEADBEEF, 1)
    assert (packet.sequence_number, packet.timestamp) == (65535, 2**32 - 1)
    assert packet.extensions.mid == "3"
    assert packet.extensions.abs_send_time == 0xABCDEF
    assert packet.extensions.audio_level == (True, 42)
    assert packet.payload == b"opus"
    # Without the publisher's audio level the element is left out, not invented.
    quiet = RtpPacket.parse(writer.write(marker=False, seq=1, timestamp=2, abs_send_time=3,
                                         audio_level=None, payload=b"x"), extension_map())
    assert quiet.extensions.audio_level is None and quiet.extensions.mid == "3"
    # No extensions negotiated: a bare 12-byte header.
    bare = HeaderWriter(OutboundFormat(payload_type=0, ssrc=1, clock_rate=8000))
    assert len(bare.write(marker=False, seq=1, timestamp=1, abs_send_time=0, audio_level=None,
                          payload=b"pcm")) == 12 + 3


def test_rtx_carries_the_original_sequence_number() -> None:
    writer = HeaderWriter(VIDEO)
    original = writer.write(marker=True, seq=4242, timestamp=9000, abs_send_time=5,
                            audio_level=None, payload=b"vp8 payload")
    rtx_data = writer.rtx(original, rtx_seq=10)
    assert rtx_data is not None
    rtx = RtpPacket.parse(rtx_data, extension_map())
    assert (rtx.payload_type, rtx.ssrc, rtx.sequence_number, rtx.marker) == (97, 78, 10, 1)
    assert rtx.extensions.mid == "12"
    restored = unwrap_rtx(rtx, payload_type=96, ssrc=77)
    assert (restored.sequence_number, restored.timestamp) == (4242, 9000)
    assert restored.payload == b"vp8 payload"
    assert HeaderWriter(AUDIO).rtx(original, 1) is None  # no RTX negotiated


def write(rw: PacketRewriter, seq: int, ts: int, now: float = 0.0) -> RtpPacket | None:
    data = rw.write(seq=seq, timestamp=ts, marker=True, payload=seq.to_bytes(2, "big"),
                    abs_send_time=0, audio_level=None, now=now)
    return None if data is None else RtpPacket.parse(data, extension_map())


def test_sequence_numbers_continue_across_restarts_and_wraps() -> None:
    rw = PacketRewriter(VIDEO, first_seq=65534, timestamp_origin=2**32 - 3000)
    assert write(rw, 100, 1000) is None  # not started: waits for a keyframe
    rw.start(100, 1000, now=0.0)
    sent = [write(rw, seq, 1000 + (seq - 100) * 3000, now=(seq - 100) / 30) for seq in (100, 101, 102)]
    assert [p.sequence_number for p in sent if p] == [65534, 65535, 0]
    assert [p.timestamp for p in sent if p] == [2**32 - 3000, 0, 3000]
    # The publisher's own gap stays a gap, so the subscriber can ask for it.
    gap = write(rw, 104, 13000, now=0.2)
    assert gap is not None and gap.sequence_number == 2
    late = write(rw, 103, 10000, now=0.21)  # the retransmission filling it
    assert late is not None and late.sequence_number == 1
    # The publisher restarts (new SSRC, new numbering) one second later.
    rw.stop()
    assert write(rw, 7, 555, now=1.0) is None
    rw.start(7, 555, now=1.2)
    resumed = write(rw, 7, 555, now=1.2)
    assert resumed is not None and resumed.sequence_number == 3
    assert (resumed.timestamp - 13000 - (2**32 - 3000 - 1000)) % 2**32 == 90000  # 1 s on
    assert write(rw, 6, 500, now=1.21) is None  # from before the restart


def test_stale_packets_are_dropped_and_history_answers_nacks() -> None:
    rw = PacketRewriter(VIDEO, first_seq=0, timestamp_origin=0)
    rw.start(0, 0, now=0.0)
    for seq in range(HISTORY_SIZE + 10):
        assert write(rw, seq, seq) is not None
    assert write(rw, (HISTORY_SIZE + 10 - 3001) % 65536, 0) is None  # far behind
    retransmitted = rw.retransmission(HISTORY_SIZE + 5)
    assert retransmitted is not None
    packet = unwrap_rtx(RtpPacket.parse(retransmitted), payload_type=96, ssrc=77)
    assert packet.sequence_number == HISTORY_SIZE + 5
    assert packet.payload == (HISTORY_SIZE + 5).to_bytes(2, "big")
    assert rw.retransmission(5) is None  # overwritten in the ring
    assert rw.packets == HISTORY_SIZE + 10
