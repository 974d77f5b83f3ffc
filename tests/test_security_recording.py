"""S10 (security review): recording failures are loud, and the procedure treats a
failed recording as recording off (rule D6, clause 7.11).

The failures are real: a take's folder replaced by a plain file (the recorder's open
fails with ENOTDIR, as it would with ENOSPC or EIO), a minimum of free space larger
than the disk has, and the disk's free space really shrunk by a preallocated file.
Only the recorder's back-off clock is stepped by hand.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from media.assembler import EncodedFrame
from media.testing import FrameNumberTrack, ToneTrack
from orchestrator import events as ev
from orchestrator.appeal_session import AppealSession
from orchestrator.effects import Broadcast, Notice, StartRecording
from orchestrator.errors import ForbiddenAction
from orchestrator.model import Phase
from orchestrator.replay import EVENT_KIND
from orchestrator.session import DefenseSession
from recordings.recorder import RETRY_FIRST_S, Recorder
from recordings.room_recording import MB, free_bytes
from server.config import Config, RecordingsConfig
from server.dayhost import DayHost
from storage.db import Database
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE, HOSTS

from .conftest import make_config, serving, url_of
from .media_helpers import joined
from .orchestrator_helpers import MIN, START, announced, appeal_day, drain
from .procedure_helpers import Api, day_spec
from .test_recorder import AUDIO, audio_frames, encode_tone
from .timing import wait_until

pytestmark = pytest.mark.timeout(120)

COMMISSION = ("chair", "m1", "m2", "m3", "sec")


# -- the core: a failed recording is recording off, journaled ------------------------


def test_s10_recording_failed_is_recording_off_in_the_core() -> None:
    s = announced()
    s.handle(ev.StartDefense(now=START + 6 * MIN, actor="sec", student="s1"))
    drain(s)
    s.handle(ev.RecordingFailed(now=START + 7 * MIN, reason="cannot write x: No space left"))
    effects = drain(s)
    assert Notice("the recording failed: cannot write x: No space left", "7.11") in effects
    assert isinstance(effects[-1], Broadcast) and not effects[-1].snapshot.recording
    snapshot = s.snapshot()
    assert not snapshot.recording and snapshot.recording_failure == "cannot write x: No space left"
    # The recorded phases wait, as after the recording went off (7.11).
    with pytest.raises(ForbiddenAction, match=r"recording is off.*\(clause 7\.11\)"):
        s.handle(ev.NextPhase(now=START + 8 * MIN, actor="sec"))
    assert s.phase is Phase.TALK
    # The secretary turns it on again; once it runs, the failure is over.
    s.handle(ev.SetRecording(now=START + 9 * MIN, actor="sec", on=True))
    assert drain(s)[-1] == StartRecording()
    s.handle(ev.RecordingStarted(now=START + 9 * MIN + 1))
    assert s.snapshot().recording and s.snapshot().recording_failure == ""
    s.handle(ev.NextPhase(now=START + 10 * MIN, actor="sec"))
    assert s.snapshot().phase is Phase.QUESTIONS


def test_s10_recording_failed_is_recording_off_at_an_appeal_sitting() -> None:
    s = AppealSession(appeal_day())
    s.handle(ev.SetRecording(now=START, actor="ac", on=True))
    s.handle(ev.RecordingStarted(now=START + 1))
    s.handle(ev.RecordingFailed(now=START + 2, reason="disk full"))
    assert Notice("the recording failed: disk full", "8.7") in drain(s)
    assert not s.snapshot().recording and s.snapshot().to_json()["recording_failure"] == "disk full"
    with pytest.raises(ForbiddenAction, match="turn the recording on first"):
        s.handle(ev.OpenAppealSitting(now=START + 3, actor="ac"))


# -- the recorder: one report per failure episode, reopening with back-off -----------


async def test_s10_recorder_reports_once_and_reopens_with_back_off(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    reports: list[str] = []
    folder = tmp_path / "take"
    recorder = Recorder(folder, on_failure=reports.append, clock=lambda: now[0])
    recorder.start()
    folder.rmdir()
    folder.write_bytes(b"")  # the take's folder is gone; a plain file stands there
    frames = audio_frames(encode_tone(160), rtp_start=5000)
    caplog.set_level(logging.DEBUG, logger="recordings.recorder")

    def feed(batch: list[EncodedFrame]) -> None:
        for frame in batch:
            assert recorder.write(AUDIO, frame)

    try:
        feed(frames[:50])
        await wait_until(lambda: (recorder.errors, recorder.lost),
                         lambda c: c[0] + c[1] == 50, "50 frames failed or lost", 10)
        # One open was tried, not one per frame; it was reported once.
        assert (recorder.errors, recorder.lost) == (1, 49) and recorder.failing
        assert len(reports) == 1 and "Not a directory" in reports[0], reports
        assert str(tmp_path) not in reports[0]  # no absolute path for the secretary
        # The back-off passes: one more try, which fails again, quietly.
        now[0] += RETRY_FIRST_S
        feed(frames[50:100])
        await wait_until(lambda: recorder.errors + recorder.lost,
                         lambda n: n == 100, "100 frames failed or lost", 10)
        assert (recorder.errors, recorder.lost) == (2, 98) and len(reports) == 1
        errors = [r for r in caplog.records
                  if r.name == "recordings.recorder" and r.levelno >= logging.ERROR]
        assert len(errors) == 1 and errors[0].exc_info is not None
        # The folder is back; after the doubled back-off the track writes again.
        folder.unlink()
        folder.mkdir()
        now[0] += 2 * RETRY_FIRST_S
        feed(frames[100:])
        await wait_until(lambda: recorder.failing, lambda failing: not failing,
                         "the recorder writing again", 10)
    finally:
        recorder.stop()
    assert len(reports) == 1 and recorder.lost == 98
    # The failed opens took no number: the one file is the track's first.
    [path] = recorder.closed_files
    assert path.name == "alice-audio-1.webm"
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.demux(audio=0) if _.size) == 60


# -- the day: a real room, real peers, a take that fails ----------------------------


@dataclasses.dataclass
class Day:
    day_id: int
    ids: dict[str, str]
    tokens: dict[str, str]
    sec: Api
    clients: dict[str, RoomClient]
    host: DayHost
    base_url: str
    db: Database


@pytest.fixture
def s10_config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    """The test server's config; a test asks for "too_little" (a minimum of free
    space above what the disk has) or "watched" (1 GiB under it, checked often)."""
    config = make_config(tmp_path)
    free_mb = free_bytes(tmp_path) // MB
    kind = getattr(request, "param", "default")
    if kind == "too_little":
        return dataclasses.replace(config, recordings=RecordingsConfig(min_free_mb=free_mb + 4096))
    if kind == "watched":
        return dataclasses.replace(config, recordings=RecordingsConfig(
            min_free_mb=free_mb - 1024, free_space_check_s=0.05))
    return config


@pytest.fixture
async def day(s10_config: Config, isolated_network: None) -> AsyncIterator[Day]:
    """A defense day on a running server, the commission connected (no media sent)."""
    async with serving(s10_config) as test_server:
        created = await RosterStore(test_server.app[DATABASE]).create_day(
            day_spec(time.time() + 60), expires_at=time.time() + 86400, now=time.time())
        names = [*COMMISSION, "s1", "s2"]
        tokens = {n: i.token for n, i in zip(names, created.invites, strict=True)}
        ids = {n: str(i.person_id) for n, i in zip(names, created.invites, strict=True)}
        base_url = url_of(test_server)
        sec = Api(base_url, created.day_id, tokens["sec"])
        clients: dict[str, RoomClient] = {}
        try:
            for name in COMMISSION:
                clients[name] = await joined(base_url, tokens[name])
            await wait_until(sec.snapshot, lambda s: len(s["present"]) == 5, "the commission")
            host = await test_server.app[HOSTS].host(created.day_id)
            yield Day(created.day_id, ids, tokens, sec, clients, host, base_url,
                      test_server.app[DATABASE])
        finally:
            for client in clients.values():
                await client.close()
            await sec.close()


async def journaled_failures(day: Day) -> list[str]:
    return [str(e.detail["reason"]) for e in await Journal(day.db).entries(day.day_id)
            if e.kind == EVENT_KIND and e.detail["type"] == "RecordingFailed"]


async def test_s10_write_error_turns_recording_off_and_notifies(day: Day) -> None:
    await day.sec.act("open-sitting")
    await wait_until(day.sec.snapshot, lambda s: s["recording"], "the recording confirmed")
    take = day.host.recording
    assert take is not None
    # The take's folder turns into a plain file: opening a file in it fails, as a
    # full or broken disk would make it fail.
    shutil.rmtree(take.folder)
    take.folder.write_bytes(b"")
    day.clients["s1"] = await joined(day.base_url, day.tokens["s1"],
                                     [FrameNumberTrack(), ToneTrack(frequency=440)])

    state = await wait_until(day.sec.snapshot, lambda s: s["recording_failure"] != "",
                             "the recording failed", 30)
    assert not state["recording"] and "Not a directory" in state["recording_failure"], state
    assert str(take.folder.parent) not in state["recording_failure"]
    # Everyone's page got the state; the secretary got the notice.
    sec_client = day.clients["sec"]
    await sec_client.wait_for(
        lambda: any(n.get("clause") == "7.11" and str(n.get("text", "")).startswith(
            "the recording failed: ") for n in sec_client.state.notices), 10, "the notice")
    student_state = day.clients["s1"].state
    await day.clients["s1"].wait_for(
        lambda: bool((student_state.procedure or {}).get("recording_failure")), 10,
        "the student's page told")
    # The core: recording off, the failure journaled once, the take stopped.
    snapshot = day.host.snapshot
    assert not snapshot.recording and snapshot.recording_failure == state["recording_failure"]
    assert await journaled_failures(day) == [state["recording_failure"]]
    assert day.host.recording is None and not take.recorder.running
    # The procedure does not go on as if recorded.
    refused = await day.sec.refused("identity", student=day.ids["s1"], accepted=True)
    assert refused.status == 409 and "recording is off" in refused.body["message"]

    # The secretary frees the folder and turns the recording on: it works again.
    take.folder.unlink()
    await day.sec.act("recording", on=True)
    state = await wait_until(day.sec.snapshot, lambda s: s["recording"], "recording again")
    assert state["recording_failure"] == ""
    again = day.host.recording
    assert again is not None and again.folder != take.folder
    await wait_until(lambda: sum(p.stat().st_size for p in again.folder.glob("*.part")),
                     lambda size: size > 10_000, "the student on the new take", 20)
    await day.sec.act("identity", student=day.ids["s1"], accepted=True)


@pytest.mark.parametrize("s10_config", ["too_little"], indirect=True)
async def test_s10_low_free_space_refuses_start(day: Day) -> None:
    # Opening the sitting starts the recording, which is refused: the state and a
    # notice say why, and the procedure waits.
    await day.sec.act("open-sitting")
    state = await wait_until(day.sec.snapshot, lambda s: s["recording_failure"] != "",
                             "the recording refused")
    assert not state["recording"] and state["phase"] == "opening"
    assert "MB of disk space are free for recordings" in state["recording_failure"]
    assert "recordings.min_free_mb" in state["recording_failure"]
    sec_client = day.clients["sec"]
    await sec_client.wait_for(
        lambda: any(str(n.get("text", "")).startswith("the recording failed: only ")
                    for n in sec_client.state.notices), 10, "the notice")
    assert len(await journaled_failures(day)) == 1
    assert day.host.recording is None
    # Turning it on is refused at once, with the sentence.
    refused = await day.sec.refused("recording", on=True)
    assert refused.status == 409 and refused.body["error"] == "not_enough_space"
    assert "free some space, then turn the recording on again" in refused.body["message"]
    assert not (await day.sec.snapshot())["recording"] and day.host.recording is None


@pytest.mark.parametrize("s10_config", ["watched"], indirect=True)
async def test_s10_free_space_falling_under_the_minimum_fails_the_recording(
        day: Day, tmp_path: Path) -> None:
    await day.sec.act("open-sitting")
    await wait_until(day.sec.snapshot, lambda s: s["recording"], "the recording confirmed")
    # 2 GiB preallocated on the same disk take it under the minimum (free - 1 GiB).
    with open(tmp_path / "filler", "wb") as filler:
        os.posix_fallocate(filler.fileno(), 0, 2048 * MB)
    try:
        state = await wait_until(day.sec.snapshot, lambda s: s["recording_failure"] != "",
                                 "the recording failed for want of space", 30)
    finally:
        (tmp_path / "filler").unlink()
    assert not state["recording"] and "recordings.min_free_mb" in state["recording_failure"]
    assert await journaled_failures(day) == [state["recording_failure"]]
    assert day.host.recording is None

