"""One file per defense: the journal's timeline, the build job (worker process), the
archive folder with its manifest, a failed build retried, refusals."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from media.testing import dominant_frequency, read_frame_number
from orchestrator import events as ev
from orchestrator.codec import event_to_json
from orchestrator.model import Phase
from orchestrator.replay import EVENT_KIND
from recordings import manifest as mf
from recordings.errors import BuildRefused
from recordings.jobs import RecordingJobs
from recordings.layout import fit, tile_area, tile_rects
from recordings.plan import day_folder
from recordings.testing import (
    FakeTrack,
    JournaledDefense,
    journal_defense_day,
    write_take,
)
from recordings.timeline import replay
from server.config import Config
from storage.days import load_day
from storage.db import Database
from storage.journal import Journal, JournalEvent
from storage.roster import RosterStore

from .conftest import make_config
from .media_helpers import increasing_run
from .procedure_helpers import day_spec
from .timing import wait_until

pytestmark = pytest.mark.timeout(90)

NAMES = ["chair", "m1", "m2", "m3", "sec", "s1", "s2"]


@dataclass
class Day:
    day_id: int
    ids: dict[str, str]
    config: Config
    defense: JournaledDefense
    tokens: dict[str, str]

    @property
    def folder(self) -> Path:
        return day_folder(self.config.recordings_dir, self.day_id)


async def make_day(db: Database, config: Config, *, take: bool = True) -> Day:
    """A day whose journal holds s1's whole defense (6 phases of 1 s), s2 excused,
    and a take with s1 (440 Hz, loud) and the chair (660 Hz, quiet) on camera."""
    t0 = time.time() - 3600
    created = await RosterStore(db).create_day(day_spec(t0), expires_at=time.time() + 86400,
                                               now=time.time())
    ids = {n: str(i.person_id) for n, i in zip(NAMES, created.invites, strict=True)}
    defense = await journal_defense_day(
        Journal(db), created.day_id, chair=ids["chair"], members=[ids["m1"], ids["m2"], ids["m3"]],
        secretary=ids["sec"], student=ids["s1"], others=[ids["s2"]], t0=t0)
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    day = Day(created.day_id, ids, config, defense, tokens)
    if take:
        await asyncio.to_thread(write_take, day.folder / "take-20260101T000000.000000Z", [
            FakeTrack(ids["s1"], "video", 0, 8), FakeTrack(ids["s1"], "audio", 0, 8),
            FakeTrack(ids["chair"], "video", 0.2, 7.6, first_number=3000),
            FakeTrack(ids["chair"], "audio", 0.2, 7.6, frequency=660, amplitude=0.05),
        ], wall_start=t0 + 0.5)
    return day


def fingerprint(folder: Path) -> dict[str, tuple[str, float]]:
    return {str(p.relative_to(folder)): (mf.sha256_file(p), p.stat().st_mtime)
            for p in sorted(folder.rglob("*")) if p.is_file()}


async def wait_job(jobs: RecordingJobs, day_id: int, states: set[str],
                   timeout: float = 60) -> dict[str, Any]:
    found = await wait_until(lambda: jobs.jobs(day_id),
                             lambda js: bool(js) and all(j.state in states for j in js),
                             f"the day's jobs to be {sorted(states)}", timeout)
    return found[0].to_json()


@pytest.fixture
async def jobs(db: Database, tmp_path: Path) -> Any:
    config = make_config(tmp_path)
    service = RecordingJobs(db, config.recordings_dir, config.procedure_settings())
    await service.start()
    yield service
    await service.stop()


async def test_the_timeline_is_the_journal_replayed(db: Database, tmp_path: Path) -> None:
    day = await make_day(db, make_config(tmp_path), take=False)
    journal = Journal(db)
    # A quorum pause in the questions: two members drop out and one comes back.
    t = day.defense.phase_starts[1] + 0.2
    loaded = await load_day(db, day.day_id)
    entries = await journal.entries(day.day_id)
    cut = next(i for i, e in enumerate(entries)
               if e.kind == EVENT_KIND and e.detail["now"] > day.defense.phase_starts[1])
    extra = [ev.ParticipantLeft(now=t, actor=day.ids["m2"]),
             ev.ParticipantLeft(now=t + 0.1, actor=day.ids["m3"]),
             ev.ParticipantJoined(now=t + 0.5, actor=day.ids["m2"])]

    @dataclass
    class Entry:
        id: int
        kind: str
        detail: dict[str, Any]

    paused: list[Entry | JournalEvent] = [
        *entries[:cut], *(Entry(0, EVENT_KIND, event_to_json(e)) for e in extra), *entries[cut:]]
    timeline = replay(loaded.day, make_config(tmp_path).procedure_settings(), paused)
    (defense,) = timeline.defenses
    assert defense.student == day.ids["s1"] and defense.outcome == "defended"
    assert (defense.start, defense.end) == (day.defense.start, day.defense.end)
    assert [c.phase for c in defense.chapters] == [
        Phase.TALK, Phase.QUESTIONS, Phase.SUPERVISOR, Phase.REVIEW, Phase.ANSWER,
        Phase.FINAL_WORD]
    assert [c.start for c in defense.chapters] == list(day.defense.phase_starts)
    ((paused_at, resumed_at),) = defense.pauses
    assert paused_at == pytest.approx(t + 0.1) and resumed_at == pytest.approx(t + 0.5)
    assert not timeline.recording and timeline.phase is Phase.CLOSED_SITTING
    assert timeline.defense_of(day.ids["s2"]) is None


async def test_one_playable_file_per_defense(db: Database, jobs: RecordingJobs,
                                            tmp_path: Path) -> None:
    day = await make_day(db, make_config(tmp_path))
    take = day.folder / "take-20260101T000000.000000Z"
    raw_before = fingerprint(take)
    # The hook DayHost calls when the sitting closes: every finished defense is built.
    await jobs.sitting_closed(day.day_id)
    assert [j.student_id for j in await jobs.jobs(day.day_id)] == [int(day.ids["s1"])]
    done = await wait_job(jobs, day.day_id, {"done", "failed"})
    assert done["state"] == "done", done
    assert fingerprint(take) == raw_before

    folder = day.folder / "archive" / f"student-{day.ids['s1']}"
    assert sorted(p.name for p in folder.iterdir()) == [
        "chapters.vtt", "defense.mp4", "manifest.json", "timeline.json"]
    manifest = json.loads((folder / "manifest.json").read_bytes())
    for entry in manifest["files"]:
        assert mf.sha256_file(day.folder / entry["path"]) == entry["sha256"], entry["path"]
    roles = sorted({e["role"] for e in manifest["files"]})
    assert roles == ["archived", "chapters", "composite", "raw", "timeline"]
    archive = (await jobs.store.archives(day.day_id))[int(day.ids["s1"])]
    assert archive.manifest_sha256 == mf.sha256_file(folder / "manifest.json")
    indexed = {f.path: f.sha256 for f in await jobs.store.files(day.day_id, int(day.ids["s1"]))}
    assert indexed[f"day-{day.day_id}/archive/student-{day.ids['s1']}/defense.mp4"] == next(
        e["sha256"] for e in manifest["files"] if e["role"] == "composite")
    kinds = [e.kind for e in await Journal(db).entries(day.day_id)]
    assert "recording_build_requested" in kinds and "recording_built" in kinds

    with av.open(str(folder / "defense.mp4")) as container:
        assert container.duration is not None
        assert container.duration / 1e6 == pytest.approx(6.0, abs=0.15)
        chapters = container.chapters()
        assert [c["metadata"]["title"] for c in chapters] == [
            "Talk", "Questions", "Supervisor's review", "Reviewer's review",
            "Answer to the review", "Final word"]
        assert [c["start"] for c in chapters] == [0, 1000, 2000, 3000, 4000, 5000]
        pictures = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(pictures) == 90
    # The student is the speaker (the louder tone): the large tile, cut back out.
    big = tile_rects(2, 0, tile_area(960, 540))[0]
    rect = fit(big, 320, 240)
    numbers = [read_frame_number(av.VideoFrame.from_ndarray(
        np.ascontiguousarray(p[rect.y:rect.y + rect.h, rect.x:rect.x + rect.w], dtype=np.uint8),
        format="bgr24"))
        for p in pictures]
    # The take starts 0.5 s before the defense: picture i shows frame 15 + 2i.
    assert increasing_run(numbers) >= 85, numbers
    assert all(abs(n - (15 + 2 * i)) <= 2 for i, n in enumerate(numbers)), numbers
    with av.open(str(folder / "defense.mp4")) as container:
        sound = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert len(sound) / 48_000 == pytest.approx(6.0, abs=0.1)
    assert abs(dominant_frequency(sound[48_000:96_000]) - 440) < 10
    assert "00:00:01.000 --> 00:00:02.000\nQuestions" in (folder / "chapters.vtt").read_text()


async def test_a_failed_build_is_retried_and_never_touches_the_raw_files(
        db: Database, jobs: RecordingJobs, tmp_path: Path) -> None:
    day = await make_day(db, make_config(tmp_path))
    before = fingerprint(day.folder)
    (day.folder / "archive").write_text("a disk problem: the archive folder cannot be made")
    await jobs.request(day.day_id, int(day.ids["s1"]), by=int(day.ids["sec"]))
    failed = await wait_job(jobs, day.day_id, {"done", "failed"})
    assert failed["state"] == "failed" and failed["error"], failed
    assert failed["attempts"] == 1
    after = fingerprint(day.folder)
    assert {k: v for k, v in after.items() if k != "archive"} == before
    kinds = [e.kind for e in await Journal(db).entries(day.day_id)]
    assert "recording_build_failed" in kinds

    (day.folder / "archive").unlink()
    await jobs.request(day.day_id, int(day.ids["s1"]), by=int(day.ids["sec"]))
    done = await wait_job(jobs, day.day_id, {"done", "failed"})
    assert done["state"] == "done" and done["error"] is None and done["attempts"] == 2, done
    assert {k: v for k, v in fingerprint(day.folder).items()
            if not k.startswith("archive/")} == before


async def test_builds_are_refused_while_recording_or_without_a_finished_defense(
        db: Database, jobs: RecordingJobs, tmp_path: Path) -> None:
    day = await make_day(db, make_config(tmp_path), take=False)
    with pytest.raises(BuildRefused, match="no finished defense"):
        await jobs.request(day.day_id, int(day.ids["s2"]), by=None)
    # Another day whose sitting is open and recorded.
    created = await RosterStore(db).create_day(day_spec(time.time()), expires_at=time.time() + 60,
                                               now=time.time())
    secretary = str(created.invites[4].person_id)
    for event in (ev.OpenSitting(now=time.time(), actor=secretary),
                  ev.RecordingStarted(now=time.time())):
        await Journal(db).append(created.day_id, None, EVENT_KIND, event_to_json(event), event.now)
    with pytest.raises(BuildRefused, match="recording of day .* is running"):
        await jobs.request(created.day_id, None, by=None)
    # The hook only logs a refusal.
    await jobs.sitting_closed(created.day_id)
    assert await jobs.jobs(created.day_id) == [] and await jobs.jobs(day.day_id) == []
