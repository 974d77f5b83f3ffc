"""Retention (rule R1) with a stepped clock: deleted one month after the defense and
not a second earlier, kept while an appeal holds it, every deletion journaled with
its manifest hash; a dry run deletes nothing; the sweeper and the command."""

from __future__ import annotations

import asyncio
import datetime
import json
import time
import zoneinfo
from pathlib import Path

import pytest

from defense_room.cli import main
from orchestrator.appeals import Decision
from recordings import manifest as mf
from recordings.archive_store import ArchiveStore
from recordings.blobstore import LocalFolderStore
from recordings.plan import day_folder
from recordings.retention import Retention, RetentionSweeper, due_at
from storage.db import Database
from storage.journal import Journal
from storage.roster import RosterStore

from .conftest import make_config
from .procedure_helpers import TZ, day_spec
from .timing import FakeClock, wait_until

MOSCOW = zoneinfo.ZoneInfo(TZ)
DEFENSE = datetime.datetime(2026, 11, 23, 10, 0, tzinfo=MOSCOW).timestamp()
DAY = 86400.0


async def recorded_day(db: Database, recordings: Path, starts_at: float = DEFENSE,
                       ) -> tuple[int, dict[str, int], Path]:
    """A day with raw takes, identity snapshots and two students' archive folders."""
    created = await RosterStore(db).create_day(day_spec(starts_at), expires_at=starts_at + DAY,
                                               now=starts_at - DAY)
    names = ["chair", "m1", "m2", "m3", "sec", "s1", "s2"]
    ids = {n: i.person_id for n, i in zip(names, created.invites, strict=True)}
    folder = day_folder(recordings, created.day_id)
    files = {
        "take-20261123T070000.000000Z/1-video-1.webm": b"raw video",
        "identity/check-1/document.jpg": b"passport picture",
        "archive/raw/take-20261123T070000.000000Z/1-video-1.webm": b"copied video",
        f"archive/student-{ids['s1']}/defense.mp4": b"s1 composite",
        f"archive/student-{ids['s2']}/defense.mp4": b"s2 composite",
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    manifest = mf.encode({"files": [f"archive/student-{ids['s1']}/defense.mp4"]})
    await ArchiveStore(db).record_build(
        day_id=created.day_id, student_id=ids["s1"], folder=f"day-{created.day_id}/archive/"
        f"student-{ids['s1']}", manifest=manifest, manifest_sha256=mf.digest(manifest),
        defense_start=starts_at, defense_end=starts_at + 1800, chapters=[], files=[{
            "path": f"day-{created.day_id}/archive/student-{ids['s1']}/defense.mp4",
            "role": "composite", "size": 12, "sha256": mf.sha256_file(
                folder / f"archive/student-{ids['s1']}/defense.mp4")}], now=starts_at + DAY)
    return created.day_id, ids, folder


async def deletions(db: Database, day_id: int) -> list[dict[str, object]]:
    return [e.detail for e in await Journal(db).entries(day_id) if e.kind == "recording_deleted"]


def test_the_deadline_is_the_end_of_the_last_day_kept() -> None:
    assert due_at(datetime.date(2026, 11, 23), TZ, 30) == datetime.datetime(
        2026, 12, 24, 0, 0, tzinfo=MOSCOW).timestamp()
    assert due_at(datetime.date(2026, 11, 23), TZ, 1) == datetime.datetime(
        2026, 11, 25, 0, 0, tzinfo=MOSCOW).timestamp()


async def test_deleted_at_one_month_not_earlier_and_never_while_held(
        db: Database, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    day_id, ids, folder = await recorded_day(db, config.recordings_dir)
    retention = Retention(db, LocalFolderStore(config.recordings_dir), config.retention.days)
    store = ArchiveStore(db)
    due = due_at(datetime.date(2026, 11, 23), TZ, 30)
    everything = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    s1_folder = folder / "archive" / f"student-{ids['s1']}"
    s2_folder = folder / "archive" / f"student-{ids['s2']}"

    for now in (DEFENSE, DEFENSE + 29 * DAY, due - DAY, due - 1):
        assert await retention.sweep(now) == []
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == everything

    planned = await retention.sweep(due, dry_run=True)
    assert [(d.student_id, d.files, d.manifest_sha256) for d in planned] == [
        (ids["s1"], 1, None), (ids["s2"], 1, None), (None, 3, None)]
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == everything
    assert await deletions(db, day_id) == []

    await store.place_hold(day_id, ids["s1"], ids["chair"], "appeal filed", due - DAY)
    (done,) = await retention.sweep(due)
    assert done.student_id == ids["s2"] and not s2_folder.exists()
    assert s1_folder.exists() and (folder / "identity").exists() and (folder / "take-20261123T070000.000000Z").exists()
    (journaled,) = await deletions(db, day_id)
    stored = await db.query("SELECT manifest_json, manifest_sha256 FROM recording_deletions")
    assert journaled["manifest_sha256"] == mf.digest(stored[0]["manifest_json"].encode())
    assert journaled["student"] == str(ids["s2"]) and journaled["scope"] == "student"
    listed = json.loads(stored[0]["manifest_json"])["files"]
    assert [(f["path"], f["sha256"]) for f in listed] == [
        (f"day-{day_id}/archive/student-{ids['s2']}/defense.mp4",
         mf.digest(b"s2 composite"))]

    assert await retention.sweep(due + 60 * DAY) == []
    assert s1_folder.exists()

    await store.release_hold(day_id, ids["s1"], ids["sec"], Decision.REJECTED, "", due + 61 * DAY)
    done_now = await retention.sweep(due + 61 * DAY)
    assert [d.student_id for d in done_now] == [ids["s1"], None]
    assert not folder.exists()
    journal = await deletions(db, day_id)
    archive = (await store.archives(day_id))[ids["s1"]]
    assert journal[1]["archive_manifests"] == [archive.manifest_sha256]
    assert journal[2]["scope"] == "day" and journal[2]["files"] == 3
    assert archive.deleted_at == due + 61 * DAY
    assert all(f.deleted_at is not None for f in await store.files(day_id, ids["s1"]))
    await Journal(db).verify()


async def test_the_sweeper_runs_inside_the_server_and_stops(db: Database, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    _day_id, _ids, folder = await recorded_day(db, config.recordings_dir)
    clock = FakeClock(DEFENSE)
    sweeper = RetentionSweeper(Retention(db, LocalFolderStore(config.recordings_dir), 30),
                               clock=clock,
                               interval_s=0.05)
    await sweeper.start()
    try:
        await wait_until(lambda: sweeper.sweeps, lambda n: n >= 3, "three sweeps", 5)
        assert folder.exists()
        clock.now = due_at(datetime.date(2026, 11, 23), TZ, 30)
        await wait_until(folder.exists, lambda exists: not exists,
                         "the sweeper to delete the day", 5)
    finally:
        await sweeper.stop()
    await sweeper.stop()  # idempotent
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "retention-sweeper"]


def test_the_command_with_and_without_dry_run(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"data_dir: {tmp_path / 'data'}\n")
    long_ago = time.time() - 40 * DAY

    async def setup() -> Path:
        async with Database(make_config(tmp_path).database_path) as db:
            return (await recorded_day(db, make_config(tmp_path).recordings_dir, long_ago))[2]

    folder = asyncio.run(setup())
    assert main(["retention", "--dry-run", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert out.count("would delete") == 3 and folder.exists()
    assert main(["retention", "--config", str(config_file)]) == 0
    assert capsys.readouterr().out.count("deleted day") == 3 and not folder.exists()
    assert main(["retention", "--config", str(config_file)]) == 0
    assert "nothing is due" in capsys.readouterr().out
