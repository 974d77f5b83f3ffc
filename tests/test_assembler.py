"""The frame assembler: pure, clock-injected, no network."""

from __future__ import annotations

from media.assembler import AudioSequencer, RtpIn, VideoFrameAssembler, seq_delta

KEY = b"\x10\x02\x00\x9d\x01\x2a" + b"k" * 10  # VP8 keyframe header
DELTA = b"\x11\x02\x00" + b"d" * 10


def vp8(seq: int, ts: int, *, first: bool, marker: bool, data: bytes, now: float = 0.0) -> RtpIn:
    descriptor = b"\x10" if first else b"\x00"
    return RtpIn(seq % 65536, ts, marker, descriptor + data, data, now)


def frame_packets(seq: int, ts: int, parts: list[bytes], now: float = 0.0) -> list[RtpIn]:
    return [vp8(seq + i, ts, first=i == 0, marker=i == len(parts) - 1, data=p, now=now)
            for i, p in enumerate(parts)]


def test_seq_delta_wraps() -> None:
    assert seq_delta(1, 65535) == 2
    assert seq_delta(65535, 1) == -2
    assert seq_delta(5, 5) == 0


def test_frame_released_on_its_last_packet_not_the_next_frame() -> None:
    assembler = VideoFrameAssembler("VP8")
    p = frame_packets(100, 9000, [KEY[:8], KEY[8:]])
    assert assembler.add(p[0]) == []
    frames = assembler.add(p[1])
    assert [f.data for f in frames] == [KEY]
    assert frames[0].keyframe and frames[0].timestamp == 9000


def test_reordered_packets_complete_the_frame_when_the_hole_fills() -> None:
    assembler = VideoFrameAssembler("VP8")
    p = frame_packets(10, 0, [KEY[:5], KEY[5:10], KEY[10:]])
    assert assembler.add(p[0]) == []
    assert assembler.add(p[2]) == []
    assert [f.data for f in assembler.add(p[1])] == [KEY]


def test_delta_frames_before_the_first_keyframe_are_dropped() -> None:
    assembler = VideoFrameAssembler("VP8")
    out = []
    for packet in frame_packets(1, 0, [DELTA]) + frame_packets(2, 3000, [KEY]) + frame_packets(3, 6000, [DELTA]):
        out += assembler.add(packet)
    assert [f.timestamp for f in out] == [3000, 6000]
    assert assembler.frames_dropped == 1
    assert not assembler.waiting_for_keyframe


def test_lost_packet_skips_to_next_keyframe_after_max_wait() -> None:
    assembler = VideoFrameAssembler("VP8", max_wait=0.1)
    out = []
    for packet in frame_packets(1, 0, [KEY]):
        out += assembler.add(packet)
    lost = frame_packets(2, 3000, [DELTA[:4], DELTA[4:]], now=0.01)
    out += assembler.add(lost[1])  # lost[0] never arrives
    out += sum((assembler.add(p) for p in frame_packets(4, 6000, [DELTA], now=0.05)), [])
    assert [f.timestamp for f in out] == [0]  # blocked behind the hole
    # Time passes beyond max_wait: the hole is given up, the delta after it too.
    out += sum((assembler.add(p) for p in frame_packets(5, 9000, [DELTA], now=0.2)), [])
    assert [f.timestamp for f in out] == [0]
    assert assembler.waiting_for_keyframe and assembler.skips == 1
    out += sum((assembler.add(p) for p in frame_packets(6, 12000, [KEY], now=0.25)), [])
    assert [f.timestamp for f in out] == [0, 12000]
    assert not assembler.waiting_for_keyframe


def test_sequence_numbers_wrap_around() -> None:
    assembler = VideoFrameAssembler("VP8")
    out = []
    for packet in frame_packets(65534, 0, [KEY[:6], KEY[6:12], KEY[12:]]) + frame_packets(65537, 3000, [DELTA]):
        out += assembler.add(packet)
    assert [f.data for f in out] == [KEY, DELTA]


def test_duplicates_and_late_retransmissions_are_ignored() -> None:
    assembler = VideoFrameAssembler("VP8")
    packets = frame_packets(1, 0, [KEY])
    assert len(assembler.add(packets[0])) == 1
    assert assembler.add(packets[0]) == []


def test_h264_frame_start_found_from_previous_marker() -> None:
    idr = b"\x00\x00\x00\x01\x65" + b"x" * 8
    assembler = VideoFrameAssembler("H264")
    # The tail of a frame whose start we never saw, then a whole IDR frame.
    assert assembler.add(RtpIn(50, 0, True, b"\x41tail", b"\x00\x00\x00\x01\x41tail", 0.0)) == []
    frames = assembler.add(RtpIn(51, 3000, True, b"\x65" + b"x" * 8, idr, 0.0))
    assert [f.data for f in frames] == [idr] and frames[0].keyframe


def test_audio_passes_through_and_drops_late_packets() -> None:
    sequencer = AudioSequencer()
    out = []
    for seq in (1, 2, 4, 3, 5, 5):
        out += sequencer.add(RtpIn(seq, seq * 960, False, b"o", b"o", 0.0))
    assert [f.timestamp // 960 for f in out] == [1, 2, 4, 5]
    assert sequencer.dropped == 2


def test_a_slow_frame_without_loss_is_not_given_up() -> None:
    assembler = VideoFrameAssembler("VP8", max_wait=0.25)
    assert assembler.add(vp8(1, 0, first=True, marker=False, data=KEY[:6], now=0.0)) == []
    # The event loop stalled for 300 ms between packets of one frame: nothing is lost.
    assert assembler.add(vp8(2, 0, first=False, marker=False, data=KEY[6:12], now=0.3)) == []
    frames = assembler.add(vp8(3, 0, first=False, marker=True, data=KEY[12:], now=0.31))
    assert [f.data for f in frames] == [KEY] and assembler.skips == 0
