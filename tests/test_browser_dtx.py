"""Opus DTX with a real Chromium: the server offers ``usedtx=1``, so a microphone that
is silent sends almost nothing, and speech after silence arrives whole.

The page's microphone plays a file (Chromium's fake capture, looped): 2.5 s of
silence, a 0.5 s tone burst, 2.5 s of silence. An aiortc client receives it through
the forwarder and decodes it again; each burst must come through its full length
(a clipped onset would shorten it), while the publisher sends a fraction of the 50
packets a second it sends without DTX."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError

from storage.invites import Role
from web_ui.client import RoomClient

from .cdp import Cdp
from .chromium import chromium, require_chromium
from .conftest import RunningServer
from .test_browser import end_sessions, enter
from .timing import wait_until

RATE = 48_000
SILENCE_S = 2.5
BURST_S = 0.5
TONE_HZ = 1000
BLOCK = RATE // 100  # 10 ms


def write_microphone(path: Path) -> None:
    t = np.arange(int(BURST_S * RATE)) / RATE
    burst = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    silence = np.zeros(int(SILENCE_S * RATE))
    samples = (np.concatenate([silence, burst, silence]) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())


async def test_silent_microphone_sends_almost_nothing_and_speech_is_not_clipped(
        server: RunningServer, tmp_path: Path) -> None:
    require_chromium()
    microphone = tmp_path / "microphone.wav"
    write_microphone(microphone)
    student = await server.invite(Role.STUDENT, "Студентка Тихонова")
    member = await server.invite(Role.MEMBER, "Член комиссии Слушающий")
    student_id, room_id = str(student.person_id), str(server.day_id)
    async with chromium(log=tmp_path / "browser.log", devtools=True,
                        extra_args=[f"--use-file-for-fake-audio-capture={microphone}"]) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        listener = RoomClient(server.base_url, member.token)
        decoder: asyncio.Task[None] | None = None
        try:
            tab = await cdp.open_tab(f"{server.base_url}/j/{student.token}")
            await enter(tab)
            await listener.connect()
            await listener.start_media()
            room = server.rooms.get(room_id)
            assert room is not None
            peer = room.peer(student_id)
            assert peer is not None
            # The server asked for DTX on the student's microphone (and on what it
            # forwards), and the page's answer kept Opus.
            offer = peer.pc.localDescription.sdp
            opus = [line for line in offer.splitlines() if line.startswith("a=fmtp:96")]
            assert opus and all("usedtx=1" in line for line in opus), opus
            publication = next(p for p in peer.published if p.kind == "audio")
            await listener.wait_for(lambda: any(
                r.participant == student_id and r.kind == "audio" and r.track
                for r in listener.received.values()), 15, "the student's audio at the listener")
            received = next(r for r in listener.received.values()
                            if r.participant == student_id and r.kind == "audio")
            assert received.track is not None

            loop = asyncio.get_running_loop()
            frames: list[tuple[int, np.ndarray]] = []

            async def decode() -> None:
                assert received.track is not None
                try:
                    while True:
                        frame = await received.track.recv()
                        if isinstance(frame, av.AudioFrame) and frame.pts is not None:
                            data = frame.to_ndarray().reshape(-1)[::len(frame.layout.channels)]
                            frames.append((frame.pts, data.astype(np.float64) / 32768))
                except MediaStreamError:
                    pass

            decoder = asyncio.create_task(decode())
            # The student's microphone is the only audio the server receives.
            packets0, start = room.metrics.frames_in["audio"], loop.time()
            loop_s = 2 * SILENCE_S + BURST_S
            await wait_until(lambda: loop.time() - start, lambda s: s >= 3 * loop_s,
                             "three loops of the microphone file", 4 * loop_s)
            packets, elapsed = room.metrics.frames_in["audio"] - packets0, loop.time() - start
            rate = packets / elapsed
            print(f"\n{packets} audio packets in {elapsed:.1f} s ({rate:.1f}/s)")
            assert rate < 15, rate  # 50/s without DTX

            # Each decoded frame is one packet.
            quiet = [pts for pts, data in frames if np.sqrt((data ** 2).mean()) < 0.01]
            silent_s = elapsed * 2 * SILENCE_S / loop_s
            print(f"{len(quiet)} packets of silence in about {silent_s:.1f} s of it"
                  f" ({len(quiet) / silent_s:.1f}/s)")
            # Chromium's DTX: two packets every 400 ms, after ~0.4 s of hangover at
            # 50/s once speech stops (about 8/s in all here, against 50/s without).
            assert len(quiet) / silent_s < 10, (len(quiet), silent_s)

            bursts = loud_runs(frames)
            print(f"decoded bursts (s): {[round(b, 3) for b in bursts]}")
            # The first and last may be cut by the start and end of decoding; every
            # one between came through whole, onset included.
            inner = bursts[1:-1]
            assert inner and all(b >= BURST_S - 0.03 for b in inner), bursts
            assert all(b <= BURST_S + 0.1 for b in bursts), bursts
        finally:
            if decoder is not None:
                decoder.cancel()
                await asyncio.gather(decoder, return_exceptions=True)
            await listener.close()
        await end_sessions(server.rooms, room_id, [tab])
        await cdp.close()


def loud_runs(frames: list[tuple[int, np.ndarray]]) -> list[float]:
    """Seconds of each run of loud 10 ms blocks on the decoded timeline (placed by
    RTP timestamp, so DTX gaps stay gaps)."""
    if not frames:
        return []
    origin = frames[0][0]
    end = max(pts + len(data) for pts, data in frames) - origin
    timeline = np.zeros(end)
    for pts, data in frames:
        at = pts - origin
        timeline[at:at + len(data)] = data
    blocks = timeline[:len(timeline) // BLOCK * BLOCK].reshape(-1, BLOCK)
    loud = np.sqrt((blocks ** 2).mean(axis=1)) > 0.1
    runs, length = [], 0
    for flag in loud:
        if flag:
            length += 1
        elif length:
            runs.append(length / 100)
            length = 0
    if length:
        runs.append(length / 100)
    return runs
