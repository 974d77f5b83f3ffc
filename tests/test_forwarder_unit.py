"""PublishedTrack and ForwardedTrack without a network: keyframes, REMB, back-pressure."""

from __future__ import annotations

from aiortc import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from media.assembler import EncodedFrame
from media.forwarder import QUEUE_FRAMES, PublishedTrack
from media.metrics import ForwardingMetrics

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
KEY = b"\x10\x02\x00\x9d\x01\x2a" + b"k" * 10
DELTA = b"\x11\x02\x00" + b"d" * 10


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def packet(seq: int, data: bytes) -> RtpPacket:
    p = RtpPacket(payload_type=96, marker=1, sequence_number=seq, timestamp=seq * 3000, ssrc=1234,
                  payload=b"\x10" + data)
    p._data = data  # type: ignore[attr-defined]  # what aiortc's depayloader sets
    return p


def make(clock: Clock) -> tuple[PublishedTrack, ForwardingMetrics]:
    metrics = ForwardingMetrics()
    return PublishedTrack(publisher_id="7", kind="video", codec=VP8, metrics=metrics,
                          keyframe_min_interval=0.3, clock=clock), metrics


async def test_keyframe_requests_are_rate_limited() -> None:
    clock = Clock()
    track, metrics = make(clock)
    # No keyframe yet: the first packet asks for one, the next ones wait their turn.
    assert track.on_rtp(packet(1, DELTA)) is True
    clock.now += 0.1
    assert track.on_rtp(packet(2, DELTA)) is False
    clock.now += 0.25
    assert track.on_rtp(packet(3, DELTA)) is True
    clock.now += 0.01
    assert track.on_rtp(packet(4, KEY)) is False  # keyframe arrived, nothing wanted
    clock.now += 1
    assert track.on_rtp(packet(5, DELTA)) is False
    track.subscribe("9")  # a newcomer needs a keyframe
    assert track.on_rtp(packet(6, DELTA)) is True
    assert metrics.keyframe_requests == 3


async def test_new_subscriber_starts_at_a_keyframe() -> None:
    clock = Clock()
    track, metrics = make(clock)
    track.on_rtp(packet(1, KEY))
    sub = track.subscribe("9")
    track.on_rtp(packet(2, DELTA))
    track.on_rtp(packet(3, KEY))
    track.on_rtp(packet(4, DELTA))
    got = [bytes(await sub.recv()) for _ in range(2)]
    assert got == [KEY, DELTA]
    assert sub._queue == type(sub._queue)()  # nothing else queued
    assert metrics.frames_before_keyframe == 1 and metrics.frames_dropped == 0


async def test_slow_subscriber_is_reset_to_the_next_keyframe() -> None:
    clock = Clock()
    track, metrics = make(clock)
    sub = track.subscribe("9")
    track.on_rtp(packet(1, KEY))
    for seq in range(2, 2 + QUEUE_FRAMES["video"]):
        track.on_rtp(packet(seq, DELTA))
    assert metrics.frames_dropped == QUEUE_FRAMES["video"]
    seq = 2 + QUEUE_FRAMES["video"]
    track.on_rtp(packet(seq, DELTA))  # still waiting for a keyframe: not queued
    assert metrics.frames_before_keyframe == 1
    track.on_rtp(packet(seq + 1, KEY))
    assert bytes(await sub.recv()) == KEY


async def test_lowest_fresh_remb_wins_and_drops_are_sent_at_once() -> None:
    clock = Clock()
    track, _ = make(clock)
    sent: list[tuple[int, int]] = []

    async def sink(bitrate: int, ssrc: int) -> None:
        sent.append((bitrate, ssrc))

    track.set_remb_sink(sink)
    track.on_rtp(packet(1, KEY))
    strong, weak = track.subscribe("a"), track.subscribe("b")
    assert track.bitrate_limit() is None
    await strong.on_remb(2_000_000)
    await weak.on_remb(300_000)
    assert track.bitrate_limit() == 300_000
    assert sent == [(2_000_000, 1234), (300_000, 1234)]
    clock.now += 6  # the weak estimate goes stale; a fresh strong one remains
    await strong.on_remb(1_500_000)
    assert track.bitrate_limit() == 1_500_000
    assert track.clamp_remb(5_000_000) == 1_500_000  # the server's own REMB is capped
    assert track.clamp_remb(800_000) == 800_000
    weak.stop()  # a subscriber that leaves no longer counts
    assert track.subscriber_count == 1


async def test_a_subscriber_still_waiting_for_a_keyframe_asks_again() -> None:
    clock = Clock()
    track, metrics = make(clock)
    track.on_rtp(packet(1, KEY))
    clock.now += 1
    track.subscribe("9")
    assert track.on_rtp(packet(2, DELTA)) is True  # the newcomer's request goes out
    # The publisher ignores it and keeps sending delta frames.
    clock.now += 0.5
    assert track.on_rtp(packet(3, DELTA)) is False  # within the retry interval
    clock.now += 0.6
    assert track.on_rtp(packet(4, DELTA)) is True  # 1.1 s waiting: it asks again
    clock.now += 0.01
    assert track.on_rtp(packet(5, DELTA)) is False
    assert metrics.keyframe_requests == 3  # at the start, for the newcomer, the retry


async def test_frame_sinks_see_every_complete_frame_without_subscribers() -> None:
    clock = Clock()
    track, _ = make(clock)
    seen: list[tuple[int, bool]] = []

    def sink(publication: PublishedTrack, frame: EncodedFrame) -> None:
        seen.append((frame.timestamp, frame.keyframe))

    track.add_sink(sink)
    assert track.on_rtp(packet(1, KEY)) is True  # a starting sink asks for a keyframe
    track.on_rtp(packet(2, DELTA))
    track.remove_sink(sink)
    track.on_rtp(packet(3, DELTA))
    assert seen == [(3000, True), (6000, False)]
