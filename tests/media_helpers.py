"""Helpers for tests with real peers: collect and check what a subscriber receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from media.testing import dominant_frequency, read_frame_number
from web_ui.client import RoomClient


@dataclass
class Collected:
    frame_numbers: list[int] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)

    def audio_seconds(self) -> float:
        return sum(len(a) for a in self.audio) / 48_000

    def tone(self) -> float:
        samples = np.concatenate(self.audio[-50:])
        return dominant_frequency(samples)


async def joined(base_url: str, token: str,
                 tracks: list[MediaStreamTrack] | None = None) -> RoomClient:
    """A participant in the room, its media connection up and sending ``tracks``."""
    client = RoomClient(base_url, token, tracks=tracks)
    await client.connect()
    await client.start_media()
    return client


async def _consume(track: MediaStreamTrack, sink: Collected) -> None:
    try:
        while True:
            frame = await track.recv()
            if isinstance(frame, av.VideoFrame):
                sink.frame_numbers.append(read_frame_number(frame))
            elif isinstance(frame, av.AudioFrame):
                data = frame.to_ndarray()
                # aiortc decodes Opus to interleaved stereo s16: keep one channel.
                channels = len(frame.layout.channels)
                sink.audio.append(data.reshape(-1)[::channels].copy())
    except MediaStreamError:
        pass


@contextlib.asynccontextmanager
async def collecting(client: RoomClient, publisher_id: str) -> AsyncIterator[Collected]:
    """Decode every track ``client`` receives from ``publisher_id`` while inside."""
    sink = Collected()
    tasks: dict[str, asyncio.Task[None]] = {}

    async def watch() -> None:
        while True:
            for mid, entry in list(client.received.items()):
                if entry.participant == publisher_id and entry.track is not None and mid not in tasks:
                    tasks[mid] = asyncio.create_task(_consume(entry.track, sink))
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        yield sink
    finally:
        watcher.cancel()
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(watcher, *tasks.values(), return_exceptions=True)


def increasing_run(numbers: list[int]) -> int:
    """Length of the longest run of strictly increasing frame numbers."""
    best = run = 1 if numbers else 0
    for a, b in zip(numbers, numbers[1:]):
        run = run + 1 if b > a else 1
        best = max(best, run)
    return best


class EncoderSpyLike(Protocol):
    def calls_for(self, encoders: list[object]) -> int: ...


async def assert_sent_without_encoding(senders: list[RTCRtpSender], spy: EncoderSpyLike) -> int:
    """Every one of the server's ``senders`` carried packets (its RTCP counts, fed by the
    forwarder) and none ever had an encoder, let alone called one. Returns the packets."""
    assert senders, "no server senders to check"
    total = 0
    for sender in senders:
        encoder = getattr(sender, "_RTCRtpSender__encoder")
        assert encoder is None, f"server sender {sender.kind} created an encoder"
        assert spy.calls_for([encoder]) == 0
        stats = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
        assert stats and stats[0].packetsSent > 0, f"server sender {sender.kind} sent nothing"
        total += stats[0].packetsSent
    return total
