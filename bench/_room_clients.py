"""Load generator of bench/capacity.py: the people of one or more defense rooms.

Everyone in a room publishes pre-encoded media (bench/_media.py, no encoding): the
student a 1280x720 camera at ~1.5 Mbit/s, everyone else 640x360 at ~500 kbit/s, all
with Opus. Nobody decodes: each received track is counted by a tap, as in
bench/_clients.py (whose pieces this reuses).

Speech (``audio``: ``dtx``, the default): one person of a room speaks at a time
(bench/_speech.py: the student two turns of three, the others in between), the
other microphones send what Chromium sends with Opus DTX. ``continuous``: every
microphone replays a tone, 50 packets/s, as before.

With ``layer_selection`` each participant tells the server what its page shows, as
the room page does (web_ui/static/js/tiles.js): one large tile and the others as
small tiles. The large one is the person speaking; on the speaker's own page, and
with continuous audio (where every microphone is equally loud), the person the view
features: the student, and on the student's own page the chair. Each page sends its
view again when the speaker changes.

A process may hold a share of a room (capacity.py's ``--processes-per-room``): each
subscription then is in the process of its subscriber, and the driver compares it with
what its publisher's process says it sent.

Usage: _room_clients.py CONFIG_JSON. The same JSON-lines contract as _clients.py:
``ready`` / ``not_ready`` once every participant of ours receives video and audio
from every other person of its room, then ``start``, ``stop`` (answered with each
room's counts over the window) and ``quit`` on stdin.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _clients import (  # noqa: E402
    READY_AUDIO_FRAMES,
    READY_VIDEO_FRAMES,
    FrameCounter,
    Participant,
    join,
)
from _control import LoopLag  # noqa: E402
from _media import EncodedClip, PacketLoopTrack, install_layered_vp8_packetizer  # noqa: E402
from _speech import Speech, SpeechAudioTrack  # noqa: E402

from aiortc import MediaStreamTrack  # noqa: E402
from defense_room.eventloop import new_event_loop  # noqa: E402
from media import hooks  # noqa: E402
from web_ui.client import ReceivedTrack, RoomClient  # noqa: E402

# The room page's grid (web_ui/static/room.css): tiles at least 14rem (224 px) wide,
# 4:3, stretched to fill the row; the large tile spans two columns and two rows.
# A page about 1000 px wide beside the presentation: four columns of ~240 px.
LARGE_TILE = {"w": 480, "h": 360}
SMALL_TILE = {"w": 240, "h": 180}
# tiles.js sends a changed layout once it has settled for 150 ms.
VIEW_SETTLE_S = 0.15


def load_room_clips(path: Path) -> dict[str, EncodedClip]:
    import pickle

    clips = pickle.loads(path.read_bytes())
    assert isinstance(clips, dict) and all(isinstance(c, EncodedClip) for c in clips.values())
    return clips


def featured_role(own_role: str) -> str:
    """Whom a page shows large: the student's page features the chair, every other
    page the defending student (web_ui/static/js/views)."""
    return "chair" if own_role == "student" else "student"


def large_tile(own_id: str, own_role: str, people: list[dict[str, Any]],
               speaker: str | None) -> str:
    """Whose tile is large on the page of `own_id`: the speaker's, unless that is
    ourselves (or nobody speaks louder than the rest); then the featured person's."""
    if speaker is not None and speaker != own_id:
        return speaker
    return next(str(p["person_id"]) for p in people if p["role"] == featured_role(own_role))


def view_message(own_id: str, own_role: str, people: list[dict[str, Any]],
                 speaker: str | None) -> dict[str, Any]:
    """What the page of `own_id` shows: one person large, the rest small."""
    large = large_tile(own_id, own_role, people, speaker)
    tiles = {}
    for person in people:
        pid = str(person["person_id"])
        if pid != own_id:
            tiles[pid] = dict(LARGE_TILE if pid == large else SMALL_TILE)
    return {"type": "view", "tiles": tiles}


class LoadParticipant(Participant):
    """Counts received frames, on aiortc's receive path or (``inline``) on the
    product's own (``media.hooks``: each SRTP packet unprotected and handled in the
    call that reads it, with the receiver's statistics and NACKs, as the server
    receives a publisher). A room's subscribers receive seven times the packets the
    server receives, so what each packet costs here matters."""

    #: Set per process from the driver's config.
    inline = False
    #: Whether the receivers estimate the bandwidth and send REMB.
    estimate = False

    def on_receiver(self, entry: ReceivedTrack) -> None:
        assert entry.receiver is not None
        counter = FrameCounter(entry.participant, entry.kind)
        self.counters.append(counter)
        if self.inline:
            transceiver = next((t for t in self.client.pc.getTransceivers()
                                if t.receiver is entry.receiver), None)
            hooks.receive_inline(entry.receiver.transport)
            hooks.tap_receiver(entry.receiver, counter.on_packet, transceiver)
        else:
            hooks.tap_receiver(entry.receiver, counter.on_packet)
        if entry.kind == "video" and not self.estimate:
            # aiortc's abs-send-time estimator costs ~20-45 us per video packet here,
            # a fifth of a core per room of subscribers; without it they send no REMB.
            hooks.relay_bandwidth_estimates(entry.receiver)


class RoomLoad:
    """This process's share of one day's eight participants (``mine``: their
    positions in ``people``; a room may be split over several processes)."""

    def __init__(self, url: str, room: dict[str, Any], clips: dict[str, EncodedClip],
                 first_index: int, speech: Speech | None) -> None:
        self.day_id = int(room["day_id"])
        self.people: list[dict[str, Any]] = room["people"]
        self.mine: list[dict[str, Any]] = [self.people[i] for i in room["mine"]]
        self.speech = speech  # None: continuous audio, nobody louder than the rest
        self.participants: list[Participant] = []
        for offset, person in enumerate(self.mine):
            clip = clips["video_720p" if person["role"] == "student" else "video_360p"]
            video = PacketLoopTrack(clip)
            audio: PacketLoopTrack | SpeechAudioTrack
            if speech is None:
                audio = PacketLoopTrack(clips["audio"])
            else:
                audio = SpeechAudioTrack(clips["audio"], clips["silence"],
                                         speech.speaking(str(person["person_id"])))
            tracks: list[MediaStreamTrack] = [video, audio]
            holder: list[Participant] = []

            def on_receiver(entry: ReceivedTrack, holder: list[Participant] = holder) -> None:
                holder[0].on_receiver(entry)

            client = RoomClient(url, person["token"], tracks=tracks, video_codec="video/VP8",
                                on_receiver=on_receiver)
            participant = LoadParticipant(first_index + offset, client, True, video, audio)
            holder.append(participant)
            self.participants.append(participant)

    def missing(self) -> list[str]:
        """What each of ours still lacks from each other person of the room."""
        gaps = []
        for person, p in zip(self.mine, self.participants):
            for other in self.people:
                publisher = str(other["person_id"])
                if other is person:
                    continue
                for kind, need in (("video", READY_VIDEO_FRAMES), ("audio", READY_AUDIO_FRAMES)):
                    got = sum(c.frames for c in p.counters
                              if c.publisher == publisher and c.kind == kind)
                    if got < need:
                        gaps.append(f"day {self.day_id}: the {person['role']} has {got}/{need} "
                                    f"{kind} frames of the {other['role']} ({publisher})")
        return gaps

    def speaker(self, now: float) -> str | None:
        return self.speech.speaker(now) if self.speech is not None else None

    async def send_views(self) -> None:
        speaker = self.speaker(time.time())
        for person, participant in zip(self.mine, self.participants):
            await participant.client.send(
                view_message(str(person["person_id"]), person["role"], self.people, speaker))

    def large_throughout(self, subscriber: str, publisher: str, t0: float, t1: float) -> bool:
        """Whether `publisher` had the large tile on `subscriber`'s page over the whole
        wall-clock span (sampled every 0.25 s; the speaker changes every few seconds
        at most)."""
        role = next(str(p["role"]) for p in self.people if str(p["person_id"]) == subscriber)
        samples = [t0 + i * 0.25 for i in range(int((t1 - t0) / 0.25) + 1)] + [t1]
        return all(large_tile(subscriber, role, self.people, self.speaker(t)) == publisher
                   for t in samples)

    def snapshot(self) -> dict[str, Any]:
        return {
            "t": time.monotonic(),
            "wall": time.time(),
            "sent": {str(person["person_id"]): (p.video.frames_sent if p.video else 0,
                                                p.audio.frames_sent if p.audio else 0)
                     for person, p in zip(self.mine, self.participants)},
            "received": {(str(person["person_id"]), c.publisher, c.kind): (c.frames, c.payload_bytes)
                         for person, p in zip(self.mine, self.participants) for c in p.counters},
        }

    def window(self, a: dict[str, Any]) -> dict[str, Any]:
        """Frames sent and received per second since snapshot `a`; the driver puts a
        room's shares together and compares each subscription with its publisher."""
        b = self.snapshot()
        span = b["t"] - a["t"]
        sent = {pid: {"video_fps": (v - a["sent"][pid][0]) / span,
                      "audio_fps": (u - a["sent"][pid][1]) / span}
                for pid, (v, u) in b["sent"].items()}
        received = []
        for (subscriber, publisher, kind), (frames, nbytes) in b["received"].items():
            frames0, bytes0 = a["received"].get((subscriber, publisher, kind), (0, 0))
            # A tile that was small for part of the window needs only what a small
            # one needs.
            large = self.large_throughout(subscriber, publisher, a["wall"], b["wall"])
            received.append({"subscriber": subscriber, "publisher": publisher, "kind": kind,
                             "fps": (frames - frames0) / span,
                             "kbps": (nbytes - bytes0) * 8 / span / 1000,
                             "tile": "large" if large else "small"})
        return {"day_id": self.day_id, "span_s": span, "sent": sent, "received": received,
                "refused": self.refused()}

    def refused(self) -> list[str]:
        """Errors the server sent any participant (a refused ``view`` shows here)."""
        return [f"day {self.day_id} {person['role']}: {e.get('code')}: {e.get('message')}"
                for person, p in zip(self.mine, self.participants)
                for e in p.client.state.errors]


async def main(config: dict[str, Any]) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    clips = load_room_clips(Path(config["media"]))
    if any(len(clip.layer_pattern) > 1 for clip in clips.values()):
        install_layered_vp8_packetizer()
    LoadParticipant.inline = bool(config.get("inline_receive", True))
    LoadParticipant.estimate = bool(config.get("subscriber_remb", False))
    rooms: list[RoomLoad] = []
    for room in config["rooms"]:
        speech = (Speech(room["people"], float(config["speech_epoch"]), float(config["turn_s"]))
                  if config.get("audio", "dtx") == "dtx" else None)
        rooms.append(RoomLoad(config["url"], room, clips, first_index=8 * len(rooms),
                              speech=speech))
    everyone = [p for r in rooms for p in r.participants]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(message: dict[str, Any]) -> None:
        print(json.dumps(message), flush=True)

    async def follow_speakers() -> None:
        """Each page sends its view again when the speaker changes, as tiles.js
        rearranges the grid for the loudest person."""
        speech = next(r.speech for r in rooms if r.speech is not None)
        while True:
            await asyncio.sleep(max(speech.next_change(time.time()) - time.time(), 0.0)
                                + VIEW_SETTLE_S)
            for r in rooms:
                await r.send_views()

    started = time.monotonic()
    lag = LoopLag()
    lag.start(0.1)
    follower: asyncio.Task[None] | None = None
    try:
        join_error = None
        try:
            await asyncio.wait_for(asyncio.gather(*(join(p) for p in everyone)), 90)
        except (AssertionError, asyncio.TimeoutError, RuntimeError, ConnectionError) as exc:
            join_error = repr(exc)
        joined = time.monotonic()
        deadline = joined + float(config["ready_timeout_s"])

        def gaps() -> list[str]:
            return [g for r in rooms for g in r.missing()]

        while join_error is None and gaps() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        views_sent = False
        if join_error is None and not gaps() and config.get("layer_selection"):
            # Every track flows: now each page reports its layout, as the page does
            # once its tiles exist; the window below measures the selected layers.
            for r in rooms:
                await r.send_views()
            views_sent = True
            if any(r.speech is not None for r in rooms):
                follower = asyncio.create_task(follow_speakers())
            await asyncio.sleep(1.0)
        problems = gaps() + [e for r in rooms for e in r.refused()]
        if problems or join_error:
            say({"event": "not_ready", "join_s": joined - started, "join_error": join_error,
                 "missing": problems[:5] + ([f"... {len(problems) - 5} more"]
                                            if len(problems) > 5 else [])})
        else:
            say({"event": "ready", "join_s": joined - started, "views_sent": views_sent,
                 "ready_s": time.monotonic() - started})
        marks: list[dict[str, Any]] = []
        for _ in range(10):  # start, stop, quit: bounded
            line = await asyncio.wait_for(reader.readline(), 600)
            command = line.decode().strip()
            if command == "start":
                marks = [r.snapshot() for r in rooms]
                lag.reset()
                say({"event": "started"})
            elif command == "stop" and marks:
                results = [r.window(mark) for r, mark in zip(rooms, marks)]
                say({"event": "result", "loop_lag": lag.as_json(), "rooms": results})
            else:
                break
    finally:
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        await lag.stop()

        async def close_all() -> None:
            await asyncio.gather(*(p.client.close() for p in everyone), return_exceptions=True)
        try:
            await asyncio.wait_for(close_all(), 20)
        except asyncio.TimeoutError:
            print("room clients: closing took over 20 s", file=sys.stderr)
        say({"event": "closed"})


if __name__ == "__main__":
    # The server's event loop (uvloop): the load generators receive seven times the
    # packets the server does, and asyncio's own selector loop costs more per datagram.
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main(json.loads(sys.argv[1])))
