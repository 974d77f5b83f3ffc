"""A real aiortc session recorded across a phase change and a student's reconnect,
then every file decoded: the raw segments (durations, frame counts, frame numbers,
tones) and the defense's composite built by the server (duration, chapters at the
journal's phase times, the speaker's picture, the mixed tone)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import av
import numpy as np
import pytest

from media.testing import (
    FrameNumberTrack,
    ToneTrack,
    dominant_frequency,
    read_frame_number,
)
from orchestrator.replay import EVENT_KIND
from recordings import manifest as mf
from recordings.plan import day_folder
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import CONFIG, DATABASE, HOSTS
from web_ui.recordings_api import RECORDINGS

from .conftest import RunningServer
from .media_helpers import increasing_run, joined
from .procedure_helpers import Api, day_spec, small_pdf
from .timing import wait_until

pytestmark = pytest.mark.timeout(150)


async def connect(server: RunningServer, token: str, tone: float | None = None,
                  amplitude: float = 0.3) -> RoomClient:
    return await joined(server.base_url, token, None if tone is None else
                        [FrameNumberTrack(), ToneTrack(frequency=tone, amplitude=amplitude)])


def part_bytes(folder: Path, name: str) -> int:
    path = folder / name
    return path.stat().st_size if path.exists() else 0


def decode(path: Path) -> tuple[float, list[int], np.ndarray | None]:
    """(container duration in s, frame numbers of the video, mono samples of the audio)."""
    with av.open(str(path)) as container:
        duration = (container.duration or 0) / 1e6
        if container.streams.video:
            return duration, [read_frame_number(f) for f in container.decode(video=0)], None
        samples = [f.to_ndarray()[0] for f in container.decode(audio=0)]  # planar: channel 0
        return duration, [], np.concatenate(samples)


async def test_a_recorded_defense_across_a_phase_change_and_a_reconnect(
        server: RunningServer) -> None:
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60), expires_at=time.time() + 86400, now=time.time())
    names = ["chair", "m1", "m2", "m3", "sec", "s1", "s2"]
    tokens = {n: i.token for n, i in zip(names, created.invites, strict=True)}
    ids = {n: str(i.person_id) for n, i in zip(names, created.invites, strict=True)}
    day_id = created.day_id
    sec = Api(server.base_url, day_id, tokens["sec"])
    clients: dict[str, RoomClient] = {}
    try:
        clients["chair"] = await connect(server, tokens["chair"], tone=660, amplitude=0.05)
        for name in ("m1", "m2", "m3", "sec"):
            clients[name] = await connect(server, tokens[name])
        clients["s1"] = await connect(server, tokens["s1"], tone=440)
        await wait_until(sec.snapshot, lambda s: len(s["present"]) == 6, "six present")
        await sec.act("open-sitting")
        await wait_until(sec.snapshot, lambda s: s["recording"], "recording confirmed")
        await sec.act("identity", student=ids["s1"], accepted=True)
        await sec.upload(ids["s2"], "absence_proof", small_pdf("Medical certificate"))
        await sec.act("valid-reason", student=ids["s2"], reason="болезнь")
        await sec.act("announce-limits")
        await sec.act("start-defense", student=ids["s1"])
        host = server.app[HOSTS].get(day_id)
        assert host is not None and host.recording is not None
        take = host.recording.folder
        await wait_until(lambda: part_bytes(take, f"{ids['s1']}-video-1.webm.part"),
                         lambda size: size > 40_000, "the talk on the recording", 20)
        await asyncio.sleep(1.0)  # the talk goes on a second, recorded
        assert (await sec.act("next-phase"))["phase"] == "questions"
        await asyncio.sleep(1.0)  # and the questions
        # The student's connection drops and comes back: a new segment, same take.
        await clients.pop("s1").close()
        await wait_until(sec.snapshot, lambda s: ids["s1"] not in s["present"], "the student gone")
        await wait_until(lambda: sorted(p.name for p in take.glob(f"{ids['s1']}-video-1.*")),
                         lambda names: f"{ids['s1']}-video-1.webm" in names,
                         "the first segment closed", 10)
        clients["s1"] = await connect(server, tokens["s1"], tone=440)
        await wait_until(lambda: part_bytes(take, f"{ids['s1']}-video-2.webm.part"),
                         lambda size: size > 40_000, "the student back on the recording", 20)
        await asyncio.sleep(1.0)  # the questions go on a second with the student back
        for phase in ("supervisor", "review", "answer", "final_word", "between_defenses"):
            assert (await sec.act("next-phase"))["phase"] == phase
        await sec.act("return-time", return_at=time.time() + 1800)
        await sec.act("closed-sitting")
        await wait_until(sec.snapshot, lambda s: not s["recording"],
                         "recording off for the closed sitting")
    finally:
        for client in clients.values():
            await client.close()
        await sec.close()

    # The secretary (or the closing sitting) has the archive built.
    jobs = server.app[RECORDINGS].jobs
    await jobs.request(day_id, int(ids["s1"]), by=int(ids["sec"]))
    job, *_ = await wait_until(lambda: jobs.jobs(day_id),
                               lambda found: found[0].state in ("done", "failed"),
                               "the archive built", 60)
    assert job.state == "done", job

    day = day_folder(server.app[CONFIG].recordings_dir, day_id)
    archived = day / "archive" / "raw" / take.name
    s1, chair = ids["s1"], ids["chair"]
    assert sorted(p.name for p in take.glob(f"{s1}-*.webm")) == [
        f"{s1}-audio-1.webm", f"{s1}-audio-2.webm", f"{s1}-video-1.webm", f"{s1}-video-2.webm"]
    for name in sorted(p.name for p in take.glob("*.webm")):
        info = json.loads((take / f"{name}.json").read_text())
        duration, numbers, samples = decode(archived / name)
        assert info["complete"] and duration == pytest.approx(info["duration_s"], abs=0.1), name
        if samples is None:
            # Every frame decodes, in order, about 30 a second.
            assert len(numbers) == info["frames"], name
            assert increasing_run(numbers) >= 0.95 * len(numbers), (name, numbers)
            assert len(numbers) == pytest.approx(30 * duration, rel=0.15), name
        else:
            assert len(samples) / 48_000 == pytest.approx(duration, abs=0.1), name
            tone = 440 if name.startswith(f"{s1}-") else 660
            assert abs(dominant_frequency(samples[-24_000:]) - tone) < 15, name
    assert {p.name.split("-")[0] for p in take.glob("*.webm")} == {s1, chair}

    # The composite: the defense's window, a chapter per phase at the journal's times.
    entries = [e.detail for e in await Journal(server.app[DATABASE]).entries(day_id)
               if e.kind == EVENT_KIND and e.detail["type"] in ("StartDefense", "NextPhase")]
    start, end = entries[0]["now"], entries[-1]["now"]
    phase_times = [e["now"] - start for e in entries[:-1]]
    folder = day / "archive" / f"student-{s1}"
    for entry in json.loads((folder / "manifest.json").read_text())["files"]:
        assert mf.sha256_file(day / entry["path"]) == entry["sha256"], entry["path"]
    with av.open(str(folder / "defense.mp4")) as container:
        assert (container.duration or 0) / 1e6 == pytest.approx(end - start, abs=0.2)
        chapters = container.chapters()
        assert [c["metadata"]["title"] for c in chapters] == [
            "Talk", "Questions", "Supervisor's review", "Reviewer's review",
            "Answer to the review", "Final word"]
        assert [c["start"] / 1000 for c in chapters] == pytest.approx(phase_times, abs=0.002)
        pictures = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(pictures) == pytest.approx(15 * (end - start), abs=1)
    # In the talk the student is the speaker: the large tile on the left.
    talk = pictures[3:round(15 * phase_times[1]) - 1]
    numbers = [read_frame_number(av.VideoFrame.from_ndarray(
        np.ascontiguousarray(p[48:528, 0:640], dtype=np.uint8), format="bgr24")) for p in talk]
    assert increasing_run(numbers) >= 0.9 * len(numbers), numbers
    with av.open(str(folder / "defense.mp4")) as container:
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    talk_sound = sound[round(0.5 * 48_000):round(phase_times[1] * 48_000)]
    assert abs(dominant_frequency(talk_sound) - 440) < 15
