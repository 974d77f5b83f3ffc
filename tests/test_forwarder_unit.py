"""PublishedTrack and ForwardedTrack without a network: keyframes, REMB, back-pressure."""

from __future__ import annotations

from aiortc import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.assembler import EncodedFrame
from media.forwarder import ForwardedTrack, PublishedTrack
from media.metrics import ForwardingMetrics
from media.rtp_in import ReceivedRtp
from media.rtp_out import OutboundFormat

from .timing import FakeClock

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
KEY = b"\x10\x02\x00\x9d\x01\x2a" + b"k" * 10
DELTA = b"\x11\x02\x00" + b"d" * 10


def packet(seq: int, data: bytes) -> ReceivedRtp:
    # One-packet VP8 frames: the descriptor (S bit, partition 0), then the frame.
    return ReceivedRtp(96, True, seq, seq * 3000, 1234, b"\x10" + data)


class Wire:
    """Stands in for a subscriber's connection: keeps what was sent, can refuse."""

    def __init__(self) -> None:
        self.sent: list[RtpPacket] = []
        self.accepting = True

    def __call__(self, data: bytes) -> bool:
        if not self.accepting:
            return False
        self.sent.append(RtpPacket.parse(data))
        return True


def bind(sub: ForwardedTrack) -> Wire:
    wire = Wire()
    sub.bind(OutboundFormat(payload_type=100, ssrc=555, clock_rate=90000), wire)
    return wire


def make(clock: FakeClock) -> tuple[PublishedTrack, ForwardingMetrics]:
    metrics = ForwardingMetrics()
    return PublishedTrack(publisher_id="7", kind="video", codec=VP8, metrics=metrics,
                          keyframe_min_interval=0.3, clock=clock), metrics


async def test_keyframe_requests_are_rate_limited() -> None:
    clock = FakeClock(100.0)
    track, metrics = make(clock)
    assert track.on_rtp(packet(1, DELTA)) is True  # a new publication asks at once
    bind(track.subscribe("8"))  # so does a newcomer...
    clock.now += 0.1
    assert track.on_rtp(packet(2, DELTA)) is False  # ...but waits its turn
    clock.now += 0.25
    assert track.on_rtp(packet(3, DELTA)) is True
    clock.now += 0.01
    assert track.on_rtp(packet(4, KEY)) is False  # keyframe arrived, nothing wanted
    clock.now += 1
    assert track.on_rtp(packet(5, DELTA)) is False
    bind(track.subscribe("9"))  # a newcomer needs a keyframe
    assert track.on_rtp(packet(6, DELTA)) is True
    assert metrics.keyframe_requests == 3


async def test_new_subscriber_starts_at_a_keyframe() -> None:
    clock = FakeClock(100.0)
    track, metrics = make(clock)
    track.on_rtp(packet(1, KEY))
    sub = track.subscribe("9")
    wire = bind(sub)
    track.on_rtp(packet(2, DELTA))
    track.on_rtp(packet(3, KEY))
    track.on_rtp(packet(4, DELTA))
    assert [p.payload for p in wire.sent] == [b"\x10" + KEY, b"\x10" + DELTA]
    assert [p.ssrc for p in wire.sent] == [555, 555]
    assert [p.payload_type for p in wire.sent] == [100, 100]
    first = wire.sent[0]
    assert wire.sent[1].sequence_number == (first.sequence_number + 1) % 65536
    assert wire.sent[1].timestamp == (first.timestamp + 3000) % 2**32
    assert metrics.frames_before_keyframe == 1 and metrics.frames_dropped == 0
    assert metrics.frames_out["video"] == 2


async def test_unbound_subscriber_gets_nothing_and_a_stopped_one_nothing_more() -> None:
    clock = FakeClock(100.0)
    track, metrics = make(clock)
    sub = track.subscribe("9")
    track.on_rtp(packet(1, KEY))  # negotiation not finished: nowhere to send yet
    wire = bind(sub)
    track.on_rtp(packet(2, KEY))
    sub.stop()
    track.on_rtp(packet(3, KEY))
    assert [p.payload for p in wire.sent] == [b"\x10" + KEY]
    assert track.subscriber_count == 0


async def test_slow_subscriber_is_reset_to_the_next_keyframe() -> None:
    clock = FakeClock(100.0)
    track, metrics = make(clock)
    sub = track.subscribe("9")
    wire = bind(sub)
    track.on_rtp(packet(1, KEY))
    track.on_rtp(packet(2, DELTA))
    wire.accepting = False  # the socket is backed up
    track.on_rtp(packet(3, DELTA))
    assert metrics.frames_dropped == 1
    wire.accepting = True
    track.on_rtp(packet(4, DELTA))  # waits for a keyframe: not sent
    assert metrics.frames_before_keyframe == 1
    clock.now += 1
    assert track.on_rtp(packet(5, KEY)) is False  # it was asked for at the drop
    assert [p.payload for p in wire.sent] == [b"\x10" + KEY, b"\x10" + DELTA, b"\x10" + KEY]
    # The subscriber's stream goes on where it stopped: one sequence number was
    # written for the refused packet (a gap it may NACK), none for the skipped one.
    seqs = [p.sequence_number for p in wire.sent]
    assert (seqs[2] - seqs[1]) % 65536 == 2
    assert sub.retransmission((seqs[1] + 1) % 65536) is not None


async def test_publisher_restart_resumes_each_subscriber_at_a_keyframe() -> None:
    clock = FakeClock(100.0)
    track, _ = make(clock)
    sub = track.subscribe("9")
    wire = bind(sub)
    track.on_rtp(packet(1, KEY))
    restarted = packet(9000, DELTA)
    restarted.ssrc = 4321
    track.on_rtp(restarted)
    clock.now += 0.5
    key = packet(9001, KEY)
    key.ssrc = 4321
    track.on_rtp(key)
    assert [p.payload for p in wire.sent] == [b"\x10" + KEY, b"\x10" + KEY]
    before, after = wire.sent
    assert after.ssrc == before.ssrc == 555
    assert after.sequence_number == (before.sequence_number + 1) % 65536
    # Timestamps keep counting at the clock rate across the switch (0.5 s = 45000).
    assert (after.timestamp - before.timestamp) % 2**32 == 45000


async def test_lowest_fresh_remb_wins_and_drops_are_sent_at_once() -> None:
    clock = FakeClock(100.0)
    track, _ = make(clock)
    sent: list[tuple[int, int]] = []

    def sink(bitrate: int, ssrc: int) -> None:
        sent.append((bitrate, ssrc))

    track.set_remb_sink(sink)
    track.remb_tick()  # no estimate yet: nothing to tell
    track.on_rtp(packet(1, KEY))
    strong, weak = track.subscribe("a"), track.subscribe("b")
    assert track.bitrate_limit() is None
    await strong.on_remb(2_000_000)
    await weak.on_remb(300_000)
    assert track.bitrate_limit() == 300_000
    assert sent == [(2_000_000, 1234), (300_000, 1234)]
    await strong.on_remb(2_500_000)  # a rise waits for the next tick
    track.remb_tick()
    assert sent[-1] == (300_000, 1234) and len(sent) == 3
    clock.now += 6  # the weak estimate goes stale; a fresh strong one remains
    await strong.on_remb(1_500_000)
    assert track.bitrate_limit() == 1_500_000
    track.remb_tick()
    assert sent[-1] == (1_500_000, 1234)
    weak.stop()  # a subscriber that leaves no longer counts
    assert track.subscriber_count == 1
    clock.now += 6
    track.remb_tick()  # every estimate stale: the publisher is told nothing
    assert len(sent) == 4


async def test_a_subscriber_still_waiting_for_a_keyframe_asks_again() -> None:
    clock = FakeClock(100.0)
    track, metrics = make(clock)
    track.on_rtp(packet(1, KEY))
    clock.now += 1
    bind(track.subscribe("9"))
    assert track.on_rtp(packet(2, DELTA)) is True  # the newcomer's request goes out
    # The publisher ignores it and keeps sending delta frames.
    clock.now += 0.5
    assert track.on_rtp(packet(3, DELTA)) is False  # within the retry interval
    clock.now += 0.6
    assert track.on_rtp(packet(4, DELTA)) is True  # 1.1 s waiting: it asks again
    clock.now += 0.01
    assert track.on_rtp(packet(5, DELTA)) is False
    # The first packet was a keyframe, so nothing was asked at the start.
    assert metrics.keyframe_requests == 2  # for the newcomer, then the retry


async def test_frame_sinks_see_every_complete_frame_without_subscribers() -> None:
    clock = FakeClock(100.0)
    track, _ = make(clock)
    seen: list[tuple[int, bool]] = []

    def sink(publication: PublishedTrack, frame: EncodedFrame) -> None:
        seen.append((frame.timestamp, frame.keyframe))

    track.add_sink(sink)
    assert track.on_rtp(packet(1, DELTA)) is True  # a starting sink asks for a keyframe
    assert track.on_rtp(packet(2, KEY)) is False  # and it came: no need to ask again
    track.on_rtp(packet(3, DELTA))
    track.remove_sink(sink)
    track.on_rtp(packet(4, DELTA))
    assert seen == [(6000, True), (9000, False)]
