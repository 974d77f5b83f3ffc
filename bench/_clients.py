"""The load generator: RoomClient participants in a process of their own.

Publishers replay pre-encoded media (bench/_media.py): no encoding here. Subscribers
never decode: each received track's jitter buffer is replaced by media.hooks' tap, and
the tap counts complete frames (packets with the marker bit, once per sequence
number) and bytes.

Usage: _clients.py CONFIG_JSON. Talks to the driver in JSON lines: prints
``{"event": "ready"}`` (or ``"not_ready"`` with what is missing) once every
subscriber receives video from every publisher it should, then obeys ``start``,
``stop`` (answering with the counts over that window) and ``quit`` on stdin.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _control import LoopLag, stall_loop  # noqa: E402
from _media import PacketLoopTrack, load_clips  # noqa: E402

from aiortc import MediaStreamTrack  # noqa: E402
from media.hooks import tap_receiver  # noqa: E402
from media.rtp_in import ReceivedRtp  # noqa: E402
from web_ui.client import ReceivedTrack, RoomClient  # noqa: E402

READY_VIDEO_FRAMES = 10
READY_AUDIO_FRAMES = 10


@dataclass
class FrameCounter:
    """Complete frames and bytes of one received track, counted from RTP packets."""

    publisher: str
    kind: str
    frames: int = 0
    payload_bytes: int = 0
    _recent: deque[int] = field(default_factory=lambda: deque(maxlen=256))

    def on_packet(self, packet: ReceivedRtp) -> bool:
        self.payload_bytes += len(packet.payload)
        if packet.marker and packet.sequence_number not in self._recent:
            self._recent.append(packet.sequence_number)
            self.frames += 1
        return False  # never ask for a keyframe: we do not decode


@dataclass
class Participant:
    index: int
    client: RoomClient
    publishes: bool
    video: PacketLoopTrack | None = None
    audio: PacketLoopTrack | None = None
    counters: list[FrameCounter] = field(default_factory=list)

    def on_receiver(self, entry: ReceivedTrack) -> None:
        assert entry.receiver is not None
        counter = FrameCounter(entry.participant, entry.kind)
        self.counters.append(counter)
        tap_receiver(entry.receiver, counter.on_packet)


def snapshot(participants: list[Participant]) -> dict[str, Any]:
    return {
        "t": time.monotonic(),
        "sent": {p.index: p.video.frames_sent for p in participants if p.video is not None},
        "sent_audio": {p.index: p.audio.frames_sent for p in participants if p.audio is not None},
        "received": {
            (p.index, c.publisher, c.kind): (c.frames, c.payload_bytes)
            for p in participants for c in p.counters
        },
    }


def window_result(a: dict[str, Any], b: dict[str, Any], participants: list[Participant]) -> dict[str, Any]:
    span = b["t"] - a["t"]
    publisher_fps = {i: (b["sent"][i] - a["sent"].get(i, 0)) / span for i in b["sent"]}
    publisher_audio = {i: (b["sent_audio"][i] - a["sent_audio"].get(i, 0)) / span for i in b["sent_audio"]}
    received = []
    for key, (frames, nbytes) in b["received"].items():
        frames0, bytes0 = a["received"].get(key, (0, 0))
        subscriber, publisher, kind = key
        received.append({"subscriber": subscriber, "publisher": publisher, "kind": kind,
                         "fps": (frames - frames0) / span,
                         "kbps": (nbytes - bytes0) * 8 / span / 1000})
    ids = {p.client.participant_id: p.index for p in participants if p.publishes}
    for entry in received:
        entry["publisher_fps"] = (publisher_fps if entry["kind"] == "video" else publisher_audio).get(
            ids.get(entry["publisher"], -1), 0.0)
    return {"span_s": span, "publisher_fps": list(publisher_fps.values()),
            "publisher_audio_fps": list(publisher_audio.values()), "received": received}


def missing(participants: list[Participant]) -> list[str]:
    publishers = {p.client.participant_id for p in participants if p.publishes}
    gaps = []
    for p in participants:
        for publisher in publishers - {p.client.participant_id}:
            for kind, need in (("video", READY_VIDEO_FRAMES), ("audio", READY_AUDIO_FRAMES)):
                got = sum(c.frames for c in p.counters if c.publisher == publisher and c.kind == kind)
                if got < need:
                    gaps.append(f"participant {p.index} has {got}/{need} {kind} frames of {publisher}")
    return gaps


async def join(p: Participant) -> None:
    await p.client.connect()
    await p.client.start_media()
    if p.publishes:
        for transceiver in p.client.pc.getTransceivers():
            if transceiver.sender.track is p.video:
                codecs = getattr(transceiver, "_codecs")
                if not codecs or codecs[0].mimeType.lower() != "video/vp8":
                    raise RuntimeError(f"publisher negotiated {codecs[:1]}, the clip is VP8")


async def main(config: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    video_clip, audio_clip = load_clips(Path(config["media"]))
    participants: list[Participant] = []
    for i, (token, publishes) in enumerate(zip(config["tokens"], config["publishes"])):
        tracks: list[MediaStreamTrack] = []
        video = audio = None
        if publishes:
            video, audio = PacketLoopTrack(video_clip), PacketLoopTrack(audio_clip)
            tracks = [video, audio]
        holder: list[Participant] = []

        def on_receiver(entry: ReceivedTrack, holder: list[Participant] = holder) -> None:
            holder[0].on_receiver(entry)

        client = RoomClient(config["url"], token, tracks=tracks, video_codec="video/VP8",
                            on_receiver=on_receiver)
        participant = Participant(i, client, publishes, video, audio)
        holder.append(participant)
        participants.append(participant)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(message: dict[str, Any]) -> None:
        print(json.dumps(message), flush=True)

    started = time.monotonic()
    lag = LoopLag()
    lag.start()
    stall_ms = float(os.environ.get("BENCH_CLIENT_STALL_MS", "0"))
    staller = (asyncio.create_task(stall_loop(stall_ms / 1000, 1.7)) if stall_ms > 0 else None)
    try:
        # Publishers first, so subscribers get one offer with everything; then the rest
        # at once (in a room everyone publishes and the order does not matter).
        first = [p for p in participants if p.publishes] if config["mode"] == "fanout" else []
        rest = [p for p in participants if p not in first]
        join_error = None
        try:
            await asyncio.wait_for(asyncio.gather(*(join(p) for p in first)), 30)
            await asyncio.wait_for(asyncio.gather(*(join(p) for p in rest)), 60)
        except (AssertionError, asyncio.TimeoutError, RuntimeError, ConnectionError) as exc:
            join_error = repr(exc)
        joined = time.monotonic()
        deadline = joined + config["ready_timeout_s"]
        while join_error is None and missing(participants) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        gaps = missing(participants)
        if gaps or join_error:
            for p in participants:
                detail = [(t.mid, t.kind, t.direction, t.currentDirection,
                           t.mid in p.client.received)
                          for t in p.client.pc.getTransceivers()] if p.client._pc else None
                print(f"participant {p.index}: {detail}", file=sys.stderr)
            say({"event": "not_ready", "join_s": joined - started, "join_error": join_error,
                 "all_flowing": join_error is None and not any("has 0/" in g and "video" in g
                                                               for g in gaps),
                 "missing": gaps[:5] + ([f"... {len(gaps) - 5} more"] if len(gaps) > 5 else [])})
        else:
            say({"event": "ready", "join_s": joined - started, "ready_s": time.monotonic() - started})
        mark: dict[str, Any] | None = None
        for _ in range(10):  # start, stop, quit: bounded
            line = await asyncio.wait_for(reader.readline(), 120)
            command = line.decode().strip()
            if command == "start":
                mark = snapshot(participants)
                lag.reset()
                say({"event": "started"})
            elif command == "stop" and mark is not None:
                say({"event": "result", "loop_lag": lag.as_json(),
                     **window_result(mark, snapshot(participants), participants)})
            else:
                break
    finally:
        await lag.stop()
        if staller is not None:
            staller.cancel()
            await asyncio.gather(staller, return_exceptions=True)

        async def close_all() -> None:
            await asyncio.gather(*(p.client.close() for p in participants), return_exceptions=True)
        try:
            await asyncio.wait_for(close_all(), 15)
        except asyncio.TimeoutError:
            print("clients: closing took over 15 s", file=sys.stderr)
        say({"event": "closed"})


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
