"""Who speaks when in bench/capacity.py's rooms, and the microphones that follow it.

At any moment one person of a room speaks: the student most of the time (two turns
of three), a member, the chair or the supervisor in between, one ``turn_s`` each
(default 20 s). Every load-generator process computes the speaker from the same wall
clock epoch, so a room split over processes agrees on it.

The others' microphones send what Chromium sends with Opus DTX. FFmpeg's libopus
wrapper in this PyAV has no ``dtx`` option (the option is accepted and ignored: a
silent input still gives a ~60-byte packet every 20 ms), so a silent microphone
replays small real Opus packets (``encode_silence``: digital silence, 3 bytes) at
Chromium's rhythm instead: after speech ends, 200 ms of hangover (10 packets), then
one packet every 400 ms; a microphone in a room is never perfectly silent, so that
pattern repeats every 2 s: 15 packets per 2 s, 7.5 packets/s, against the 7.8 packets/s
measured from a real Chromium through the server. The RTP timestamps jump over the
slots not sent, as a DTX sender's do.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any, Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from _media import AUDIO_FRAME, EncodedClip, PacketLoopTrack
from media.testing import AUDIO_RATE

TURN_S = 20.0
SLOT_S = AUDIO_FRAME / AUDIO_RATE  # 20 ms
#: Which slots of a silent 2 s cycle (100 slots of 20 ms) carry a packet: the
#: hangover after speech (10 slots), then one every 400 ms.
SILENT_CYCLE = 100
SILENT_SLOTS = frozenset(range(10)) | frozenset(range(20, 100, 20))
#: The speaker turns of a room, as roles (the second member is ``member#2``).
TURNS = ("student", "student", "member#1", "student", "student", "chair",
         "student", "student", "member#2", "student", "student", "supervisor",
         "student", "student", "member#3", "student", "student", "member#4")


class Speech:
    """Who of one room's ``people`` speaks when: turns of ``turn_s`` from ``epoch``
    (wall clock, shared by every process of the room)."""

    def __init__(self, people: list[dict[str, Any]], epoch: float,
                 turn_s: float = TURN_S) -> None:
        self.epoch, self.turn_s = epoch, turn_s
        seen: dict[str, int] = {}
        self._by_key: dict[str, str] = {}
        for person in people:
            role = str(person["role"])
            seen[role] = seen.get(role, 0) + 1
            key = f"{role}#{seen[role]}" if role == "member" else role
            self._by_key[key] = str(person["person_id"])

    def _turn(self, now: float) -> int:
        return int(max(now - self.epoch, 0.0) // self.turn_s)

    def speaker(self, now: float) -> str:
        """The person id speaking at wall-clock time ``now``."""
        return self._by_key[TURNS[self._turn(now) % len(TURNS)]]

    def speaking(self, person_id: str) -> Callable[[], bool]:
        """Whether `person_id` speaks now (for its microphone)."""
        return lambda: self.speaker(time.time()) == person_id

    def next_change(self, now: float) -> float:
        """Wall-clock time of the next turn after ``now``."""
        return self.epoch + (self._turn(now) + 1) * self.turn_s


def encode_silence() -> EncodedClip:
    """Real Opus packets of digital silence (3 bytes each), what the silent slots carry."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = AUDIO_RATE
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 64_000
    frames: list[tuple[bytes, bool]] = []
    for n in range(25):
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 2 * AUDIO_FRAME), dtype=np.int16),
                                           format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = n * AUDIO_FRAME
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        frames += [(bytes(p), True) for p in codec.encode(frame)]
    # The first few carry the encoder's start; keep the settled ones.
    return EncodedClip("audio", frames[-10:], AUDIO_FRAME, AUDIO_RATE)


class SpeechAudioTrack(PacketLoopTrack):
    """A microphone that speaks (replays ``speech``, a packet every 20 ms) while
    ``speaking()`` says so, and otherwise sends ``silence`` in the DTX rhythm.
    ``frames_sent`` counts packets."""

    def __init__(self, speech: EncodedClip, silence: EncodedClip,
                 speaking: Callable[[], bool]) -> None:
        super().__init__(speech)
        self._speech, self._silence = speech, silence
        self._speaking = speaking
        self._slot = 0
        self._silent_since: int | None = None  # slot where the last speech ended

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        while True:
            due = self._start + self._slot * SLOT_S
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            slot = self._slot
            self._slot += 1
            if self._speaking():
                self._silent_since = None
                data = self._speech.frames[slot % len(self._speech.frames)][0]
                break
            if self._silent_since is None:
                self._silent_since = slot
            if (slot - self._silent_since) % SILENT_CYCLE in SILENT_SLOTS:
                data = self._silence.frames[slot % len(self._silence.frames)][0]
                break
        packet = av.Packet(data)
        packet.pts = slot * AUDIO_FRAME
        packet.time_base = self._time_base
        self._sent += 1
        return packet
