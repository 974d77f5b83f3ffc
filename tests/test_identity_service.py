"""`IdentityChecks` on the event loop: the burst, the worker process, the refusals,
the stored record and a clean stop. The publication is a stand-in that plays a
pre-encoded camera into its sinks the way the forwarder does; the worker process,
PyAV and the face model are real."""

from __future__ import annotations

import asyncio
import functools
import json
import multiprocessing
from pathlib import Path
from typing import Any, cast

import pytest
from aiortc import RTCRtpCodecParameters

from identity.analysis import analyze
from identity.compose import encode_burst, passport_frame
from identity.errors import CheckRunning, NoFrames, NoVideo
from identity.service import IdentityChecks, journal_detail, thresholds
from identity.settings import IdentitySettings
from media.assembler import EncodedFrame
from media.forwarder import PublishedTrack
from recordings.plan import day_folder

from .identity_helpers import portraits

pytestmark = pytest.mark.timeout(120)
SETTINGS = IdentitySettings(burst_frames=4, burst_timeout_s=2.0)


class PlayedCamera:
    """What a check sees of a publication: sinks fed encoded frames at 30 fps."""

    kind = "video"
    publisher_id = "7"

    def __init__(self, frames: list[bytes], *, keyframes: bool = True,
                 mime: str = "video/VP8") -> None:
        self.codec = RTCRtpCodecParameters(mimeType=mime, clockRate=90000)
        self._frames = frames
        self._keyframes = keyframes
        self.sinks: list[Any] = []
        self.keyframe_requests = 0
        self._task: asyncio.Task[None] | None = None

    def add_sink(self, sink: Any) -> None:
        self.sinks.append(sink)
        self.keyframe_requests += 1
        if self._task is None:
            self._task = asyncio.create_task(self._play())

    def remove_sink(self, sink: Any) -> None:
        self.sinks.remove(sink)

    async def _play(self) -> None:
        n = 0
        while self.sinks:
            data = self._frames[n % len(self._frames)]
            keyframe = self._keyframes and n % len(self._frames) == 0
            for sink in list(self.sinks):
                sink(self, EncodedFrame(data, n * 3000, keyframe, 0.0))
            n += 1
            await asyncio.sleep(1 / 30)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def as_publication(camera: PlayedCamera) -> PublishedTrack:
    return cast(PublishedTrack, camera)


async def test_a_check_runs_in_a_worker_and_a_second_is_refused(tmp_path: Path) -> None:
    collins, _ = portraits()
    frames = encode_burst([passport_frame(collins, collins, size=(640, 480))] * 4)
    camera = PlayedCamera(frames)
    checks = IdentityChecks(SETTINGS, functools.partial(day_folder, tmp_path / "recordings"),
                            clock=lambda: 1_790_000_000.0)
    try:
        first = asyncio.create_task(
            checks.check(1, "7", as_publication(camera), requested_by="5"))
        await asyncio.sleep(0)  # one turn of the loop: the check starts
        assert checks.running(1) == "7"
        with pytest.raises(CheckRunning, match="student 7 on day 1 is still running"):
            await checks.check(1, "7", as_publication(camera), requested_by="5")
        record = await first
        assert checks.running(1) is None and not camera.sinks and camera.keyframe_requests == 1
        assert record["verdict"] == "match" and record["student"] == "7"
        assert record["id"].startswith("20260921T") and record["frame"]["frames_decoded"] == 4
        assert record["thresholds"]["match_distance"] == SETTINGS.match_distance
        told = checks.instruction(1, "7")
        assert told is not None and not told.retake and "secretary" in told.text
        assert checks.store.checks(1)[0]["id"] == record["id"]
        assert "encoding" not in str(checks.store.load(1, record["id"]))
    finally:
        await camera.stop()
        await checks.stop()
        await checks.stop()  # idempotent
    assert multiprocessing.active_children() == []


async def test_no_keyframe_and_no_video_are_refused(tmp_path: Path) -> None:
    collins, _ = portraits()
    frames = encode_burst([passport_frame(collins, None, size=(320, 240))] * 3)
    deltas = PlayedCamera(frames[1:], keyframes=False)
    checks = IdentityChecks(IdentitySettings(burst_timeout_s=0.5),
                            functools.partial(day_folder, tmp_path))
    try:
        with pytest.raises(NoFrames, match="no keyframe arrived"):
            await checks.check(2, "7", as_publication(deltas), requested_by="5")
        assert not deltas.sinks and checks.running(2) is None
        audio = PlayedCamera(frames, mime="audio/opus")
        with pytest.raises(NoVideo, match="audio/opus"):
            await checks.check(2, "7", as_publication(audio), requested_by="5")
        assert checks.store.checks(2) == []
    finally:
        await deltas.stop()
        await checks.stop()


async def test_the_record_and_the_journal_carry_the_band(tmp_path: Path) -> None:
    """A band put around a same-person pair's distance gives "look closely"; the
    record (answered and stored) and the journal's detail carry that band, and the
    journal's detail has no distance, measure or encoding."""
    collins, _ = portraits()
    frame = passport_frame(collins, collins, size=(640, 480))
    distance = analyze(frame, IdentitySettings()).distance
    assert distance is not None
    band = [round(distance - 0.1, 2), round(distance + 0.1, 2)]
    settings = IdentitySettings(match_distance=band[0], no_match_distance=band[1],
                                burst_frames=4, burst_timeout_s=2.0)
    assert thresholds(settings)["no_match_distance"] == band[1]
    camera = PlayedCamera(encode_burst([frame] * 4))
    checks = IdentityChecks(settings, functools.partial(day_folder, tmp_path / "recordings"))
    try:
        record = await checks.check(3, "7", as_publication(camera), requested_by="5")
    finally:
        await camera.stop()
        await checks.stop()
    assert record["verdict"] == "look_closely", record
    assert band[0] < record["distance"] <= band[1]
    assert record["band"] == band and checks.store.load(3, record["id"])["band"] == band
    assert record["thresholds"]["match_distance"] == band[0]
    assert record["thresholds"]["no_match_distance"] == band[1]
    told = checks.instruction(3, "7")
    assert told is not None and not told.retake  # the student waits; never told the verdict
    detail = journal_detail(record)
    assert detail == {"student": "7", "check": record["id"], "verdict": "look_closely",
                      "reason": None, "band": band}
    text = json.dumps(detail)
    assert "distance" not in text and "encoding" not in text and "measures" not in text
