"""Layer selection without a network: what each subscriber gets of an L1T3 VP8 stream
(hidden tiles, small tiles, weak links), with sequence numbers, picture IDs and
TL0PICIDX kept continuous, and the `view` message that tells the server."""

from __future__ import annotations

import json

import pytest
from aiortc import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.forwarder import ForwardedTrack, PublishedTrack
from media.layers import (PROBE_AFTER_S, BandwidthLayers, LayerSelector, PictureIdRewriter,
                          layer_for_bitrate, parse_vp8_layering)
from media.metrics import ForwardingMetrics
from media.rtp_in import ReceivedRtp
from media.rtp_out import OutboundFormat, PacketRewriter
from web_ui.signaling import ErrorCode, SignalingError, View, parse_message

from .timing import FakeClock

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
PATTERN = (0, 2, 1, 2)  # L1T3
# Frames 1 and 2 of each group reference only the base layer: layer sync points.
SYNC = (False, True, True, False)


class Vp8Stream:
    """A publisher's L1T3 VP8 stream: two packets a frame, a keyframe first."""

    def __init__(self) -> None:
        self.seq = 1000
        self.frame = 0
        self.picture_id = 32000  # wraps at 2**15 within the tests
        self.tl0 = 250

    def next_frame(self, keyframe: bool = False) -> list[ReceivedRtp]:
        index = self.frame % 4 if not keyframe else 0
        tid = PATTERN[index]
        if tid == 0 and self.frame:
            self.tl0 = (self.tl0 + 1) % 256
        packets = []
        for part in range(2):
            first = part == 0
            descriptor = bytes([0x80 | (0x10 if first else 0), 0xE0,
                                0x80 | (self.picture_id >> 8), self.picture_id & 0xFF, self.tl0,
                                (tid << 6) | (0x20 if SYNC[index] else 0)])
            body = (b"\x00\x00\x00\x9d\x01\x2a" if keyframe else b"\x01\x00\x00") if first else b""
            packets.append(ReceivedRtp(96, not first, self.seq, self.frame * 3000, 1234,
                                       descriptor + body + bytes([self.frame % 256]) * 20))
            self.seq = (self.seq + 1) % 65536
        self.frame += 1
        self.picture_id = (self.picture_id + 1) % 32768
        return packets


class Wire:
    def __init__(self) -> None:
        self.sent: list[RtpPacket] = []

    def __call__(self, data: bytes) -> bool:
        self.sent.append(RtpPacket.parse(data))
        return True

    def frames(self) -> list[tuple[int, int, int]]:
        """(TID, picture ID, TL0PICIDX) of each frame received."""
        out = []
        for p in self.sent:
            info = parse_vp8_layering(p.payload)
            assert info is not None
            if info.begins_frame:
                out.append((info.tid, info.picture_id, info.tl0_pic_idx))
        return out

    def assert_continuous(self) -> None:
        seqs = [p.sequence_number for p in self.sent]
        assert all((b - a) % 65536 == 1 for a, b in zip(seqs, seqs[1:])), seqs
        pids = [pid for _, pid, _ in self.frames()]
        assert all((b - a) % 32768 == 1 for a, b in zip(pids, pids[1:])), pids
        tl0s = [tl0 for tid, _, tl0 in self.frames()]
        assert all((b - a) % 256 in (0, 1) for a, b in zip(tl0s, tl0s[1:])), tl0s


def make(clock: FakeClock, *, layer_selection: bool = True) -> PublishedTrack:
    return PublishedTrack(publisher_id="7", kind="video", codec=VP8, metrics=ForwardingMetrics(),
                          clock=clock, layer_selection=layer_selection)


def bind(sub: ForwardedTrack) -> Wire:
    wire = Wire()
    sub.bind(OutboundFormat(payload_type=100, ssrc=555, clock_rate=90000), wire)
    return wire


def feed(track: PublishedTrack, stream: Vp8Stream, frames: int, clock: FakeClock,
         keyframe: bool = False) -> bool:
    """Send ``frames`` frames (the first a keyframe if asked); whether a PLI was due."""
    asked = False
    for i in range(frames):
        for packet in stream.next_frame(keyframe=keyframe and i == 0):
            asked = track.on_rtp(packet) or asked
        clock.now += 1 / 30
    return asked


def test_descriptor_fields_are_read() -> None:
    stream = Vp8Stream()
    first, second = stream.next_frame(keyframe=True)
    info = parse_vp8_layering(first.payload)
    assert info is not None and info.begins_frame and info.tid == 0
    assert (info.picture_id, info.picture_id_bits, info.tl0_pic_idx) == (32000, 15, 250)
    later = parse_vp8_layering(second.payload)
    assert later is not None and not later.begins_frame
    assert parse_vp8_layering(b"\x10\x00\x9d") is None  # no extension: no layers
    assert parse_vp8_layering(b"\x90\xe0\x80") is None  # truncated


async def test_small_tile_gets_the_base_layer_and_a_continuous_stream() -> None:
    clock = FakeClock(100.0)
    track = make(clock)
    stream = Vp8Stream()
    big, small = track.subscribe("8"), track.subscribe("9")
    big_wire, small_wire = bind(big), bind(small)
    big.set_view(1280)
    small.set_view(160)
    assert small.target_layer == 0
    small.set_view(160, largest=True)  # the page's widest tile: everything
    assert small.target_layer == 2
    small.set_view(160)
    feed(track, stream, 41, clock, keyframe=True)
    assert [tid for tid, _, _ in big_wire.frames()] == [*PATTERN * 10, 0]
    assert [tid for tid, _, _ in small_wire.frames()] == [0] * 11
    big_wire.assert_continuous()
    small_wire.assert_continuous()
    # TL0PICIDX goes up by one per base frame; the picture IDs wrapped at 2**15.
    assert [tl0 for _, _, tl0 in small_wire.frames()] == [(250 + i) % 256 for i in range(11)]
    assert small_wire.frames()[-1][1] == (32000 + 10) % 32768


async def test_growing_tile_switches_up_at_sync_points_only() -> None:
    clock = FakeClock(100.0)
    track = make(clock)
    stream = Vp8Stream()
    sub = track.subscribe("9")
    wire = bind(sub)
    sub.set_view(200)
    feed(track, stream, 5, clock, keyframe=True)  # frames 0..4: 0 and 4 are base
    sub.set_view(800)
    feed(track, stream, 8, clock)  # frames 5..12
    # Frame 5 (TID 2, sync) cannot come before layer 1: frame 6 (TID 1, sync) lifts
    # to layer 1, frame 7 (TID 2, not sync) waits, frame 9 (TID 2, sync) lifts to 2.
    assert [tid for tid, _, _ in wire.frames()] == [0, 0, 1, 0, 2, 1, 2, 0]
    assert sub.layer == 2
    wire.assert_continuous()
    sub.set_view(100)  # down at once, at the next frame
    feed(track, stream, 4, clock)
    assert [tid for tid, _, _ in wire.frames()][8:] == [0]
    wire.assert_continuous()


async def test_hidden_tile_gets_no_video_and_resumes_at_a_keyframe_without_a_gap() -> None:
    clock = FakeClock(100.0)
    track = make(clock)
    stream = Vp8Stream()
    sub = track.subscribe("9")
    wire = bind(sub)
    feed(track, stream, 4, clock, keyframe=True)
    clock.now += 1
    sub.set_view(None)
    assert not sub.shown
    assert feed(track, stream, 30, clock) is False  # hidden: nobody asks for keyframes
    assert len(wire.sent) == 8
    sub.set_view(640)
    assert feed(track, stream, 3, clock) is True  # asks for a keyframe at once
    assert len(wire.sent) == 8  # and sends nothing before it
    feed(track, stream, 4, clock, keyframe=True)
    assert len(wire.sent) == 16
    wire.assert_continuous()
    # The timestamps go on by the wall time that passed, not by the publisher's jump.
    gap = (wire.sent[8].timestamp - wire.sent[7].timestamp) % 2**32
    assert 0 < gap <= 90000 * 2.5


async def test_audio_and_a_server_without_layer_selection_ignore_the_view() -> None:
    clock = FakeClock(100.0)
    track = make(clock, layer_selection=False)
    stream = Vp8Stream()
    sub = track.subscribe("9")
    wire = bind(sub)
    sub.set_view(None)
    sub.set_view(100)
    feed(track, stream, 8, clock, keyframe=True)
    assert [tid for tid, _, _ in wire.frames()] == [0, *PATTERN[1:], *PATTERN]
    assert track.bitrate_limit() is None


async def test_weak_link_gets_fewer_layers_and_the_publisher_hears_the_best() -> None:
    clock = FakeClock(100.0)
    track = make(clock)
    sent: list[int] = []
    track.set_remb_sink(lambda bitrate, ssrc: sent.append(bitrate))
    stream = Vp8Stream()
    strong, weak = track.subscribe("8"), track.subscribe("9")
    strong_wire, weak_wire = bind(strong), bind(weak)
    feed(track, stream, 30, clock, keyframe=True)
    track.remb_tick()
    rates = track.layer_rates
    assert len(rates) == 3 and rates[0] < rates[1] < rates[2]
    await track.report_remb(strong, 5_000_000)
    await track.report_remb(weak, int(rates[0] * 1.02))
    track.remb_tick()
    assert (strong.target_layer, weak.target_layer) == (2, 0)
    assert sent[-1] == 5_000_000  # the weak viewer does not lower the publisher
    before = len(weak_wire.frames())
    feed(track, stream, 8, clock)
    assert [tid for tid, _, _ in weak_wire.frames()[before:]] == [0, 0]
    assert {tid for tid, _, _ in strong_wire.frames()[-8:]} == {0, 1, 2}
    weak_wire.assert_continuous()
    # The link recovers: its estimate covers what it gets, and after a while each
    # layer is tried in turn (an estimate never says more would fit).
    targets = []
    for _ in range(int(2 * PROBE_AFTER_S) + 3):
        # As a receiver's estimate does: up to half again what it receives.
        await track.report_remb(weak, int(track.layer_rates[weak.layer] * 1.5))
        feed(track, stream, 30, clock)
        track.remb_tick()
        targets.append(weak.target_layer)
    assert targets[0] == 0 and 1 in targets and targets[-1] == 2, targets
    feed(track, stream, 8, clock)
    assert weak.layer == 2
    weak_wire.assert_continuous()


def test_bandwidth_layers_go_down_at_once_and_up_by_tries_that_back_off() -> None:
    rates = [300_000.0, 450_000.0, 600_000.0]
    assert layer_for_bitrate(100_000, rates) == 0
    assert layer_for_bitrate(460_000, rates) == 1
    assert layer_for_bitrate(560_000, rates) == 2  # near the rate is no congestion
    assert layer_for_bitrate(530_000, rates) == 1
    link = BandwidthLayers()
    assert link.update(None, rates, 0.0) == 2
    assert link.update(320_000, rates, 1.0) == 0  # down at once
    # The estimate stays put: a try after PROBE_AFTER_S, held for PROBE_GRACE_S while
    # the estimate may grow, then it failed; the next try waits twice as long.
    layers = [link.update(320_000, rates, 1.0 + t) for t in range(1, 30)]
    tries = [t for t in range(1, len(layers)) if layers[t] == 1 and layers[t - 1] == 0]
    assert len(tries) == 2 and tries[1] - tries[0] >= 2 * PROBE_AFTER_S, layers
    assert layers[tries[0] + 4] == 0, layers
    # A falling estimate during the grace ends the try at once.
    link = BandwidthLayers()
    link.update(320_000, rates, 0.0)
    layers = [link.update(320_000, rates, float(t)) for t in range(1, 6)]
    assert layers[-1] == 1
    assert link.update(200_000, rates, 6.0) == 0


def test_selector_and_picture_ids_alone() -> None:
    selector = LayerSelector()
    selector.set_target(7)
    assert selector.target == 2
    rewriter = PictureIdRewriter()
    stream = Vp8Stream()
    payload = stream.next_frame(keyframe=True)[0].payload
    info = parse_vp8_layering(payload)
    assert info is not None
    assert rewriter.rewrite(payload, info) is payload  # nothing dropped: no copy


def test_skipped_packets_leave_no_hole_and_late_ones_keep_their_place() -> None:
    rewriter = PacketRewriter(OutboundFormat(payload_type=100, ssrc=1, clock_rate=90000),
                              first_seq=100, timestamp_origin=0)
    rewriter.start(10, 0, 0.0)
    out = {}
    for seq in (10, 11):
        packet = rewriter.write(seq, 0, False, b"x", 0, None, 0.0)
        assert packet is not None
        out[seq] = RtpPacket.parse(packet).sequence_number
    for seq in (13, 14):
        rewriter.skip(seq)
    packet = rewriter.write(15, 0, False, b"x", 0, None, 0.0)
    assert packet is not None
    out[15] = RtpPacket.parse(packet).sequence_number
    packet = rewriter.write(12, 0, False, b"x", 0, None, 0.0)  # late, before the skips
    assert packet is not None
    out[12] = RtpPacket.parse(packet).sequence_number
    assert out == {10: 100, 11: 101, 12: 102, 15: 103}


def test_view_message_is_validated() -> None:
    message = parse_message(json.dumps(
        {"type": "view", "tiles": {"7": {"w": 640, "h": 360}, "8": {"w": 0, "h": 0}}}), 65536)
    assert isinstance(message, View)
    assert message.widths() == {"7": 640}
    for bad, needle in [
        ({"type": "view"}, "object 'tiles'"),
        ({"type": "view", "tiles": []}, "object 'tiles'"),
        ({"type": "view", "tiles": {"7": {"w": 640}}}, "exactly the fields"),
        ({"type": "view", "tiles": {"7": {"w": -1, "h": 2}}}, "'w' must be a whole number"),
        ({"type": "view", "tiles": {"7": {"w": 1.5, "h": 2}}}, "'w' must be a whole number"),
        ({"type": "view", "tiles": {"7": {"w": True, "h": 2}}}, "'w' must be a whole number"),
        ({"type": "view", "tiles": {"7": {"w": 10, "h": 99999}}}, "'h' must be a whole number"),
        ({"type": "view", "tiles": {"": {"w": 10, "h": 10}}}, "participant id"),
        ({"type": "view", "tiles": {str(i): {"w": 1, "h": 1} for i in range(65)}}, "at most 64"),
    ]:
        with pytest.raises(SignalingError) as caught:
            parse_message(json.dumps(bad), 65536)
        assert caught.value.code is ErrorCode.MALFORMED
        assert needle in caught.value.message, caught.value.message
