"""`RecordingJobs`: builds each defense's archive in a worker process, one at a time.

A build is asked for by the secretary (the API) or by the server when a sitting
closes (`sitting_closed`, the hook `DayHost` calls). Each request is checked
against the journal first: the day's recording must be off (a take still being
written is not complete) and the student must have a finished defense; the
refusal says which. Accepted requests wait in one queue; one task takes them in
order and runs `python -m recordings.build` on a plan worked out from the journal
and the take folders at that moment. The worker reports progress on its stdout;
the job's state (queued, running, done, failed) is kept in SQLite, its progress
in memory while it runs. The worker builds on the local spool (the day folder);
once it succeeds, the archive is published to the recordings store
(`recordings.blobstore`) and indexed from what the store then holds.

A failed build keeps its error and can be asked for again; it never touched the
raw files (the worker only reads them and writes into a staging folder). A build
interrupted by a shutdown goes back to the queue and is taken up at the next start.

Every request, build and failure is journaled.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.model import Settings
from storage.days import LoadedDay, load_day
from storage.db import Database
from storage.journal import Journal

from . import manifest as mf
from .archive_store import ArchiveStore, Job, JobState
from .blobstore import BlobStore, LocalFolderStore, read_bytes
from .errors import BuildRefused, RecordingError
from .plan import ARCHIVE, BuildPlan, day_folder, day_prefix, make_plan
from .sources import scan_day
from .timeline import DayTimeline, replay

logger = logging.getLogger(__name__)

PROGRESS_SAVE_S = 5.0
STOP_GRACE_S = 5.0


class BuildFailed(RecordingError):
    """The worker did not produce an archive; the message carries its last words."""


class RecordingJobs:
    """Owns the build queue, the worker task and its child process."""

    def __init__(self, db: Database, recordings_dir: Path, settings: Settings, *,
                 blobs: BlobStore | None = None,
                 clock: Callable[[], float] = time.time,
                 owns: Callable[[int], bool] = lambda _day_id: True) -> None:
        """`recordings_dir` is the local spool the takes are recorded into and the
        worker builds in; `blobs` the store archives are published to (by default
        the spool folder itself, `LocalFolderStore`). `settings` replay only a day
        whose journal does not hold its own; `owns` says which days' builds this
        process takes up at start (with several worker processes, each its own days')."""
        self._db = db
        self._owns = owns
        self._store = ArchiveStore(db)
        self._journal = Journal(db)
        self._recordings_dir = recordings_dir
        self._blobs = blobs if blobs is not None else LocalFolderStore(recordings_dir)
        self._settings = settings
        self._clock = clock
        self._queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self._waiting: set[tuple[int, int]] = set()
        self._progress: dict[tuple[int, int], float] = {}
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stopped = False

    @property
    def store(self) -> ArchiveStore:
        return self._store

    @property
    def recordings_dir(self) -> Path:
        return self._recordings_dir

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    @property
    def idle(self) -> bool:
        """Nothing queued or running (for tests and shutdown checks)."""
        return not self._waiting and not self._progress

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Take up jobs a previous run left queued or running, and start the worker."""
        if self._task is not None:
            return
        for job in await self._store.jobs():
            if job.state in (JobState.QUEUED, JobState.RUNNING) and self._owns(job.day_id):
                await self._store.update_job(job.day_id, job.student_id, state=JobState.QUEUED,
                                             progress=0.0, now=self._clock())
                self._enqueue(job.day_id, job.student_id)
        self._task = asyncio.create_task(self._work(), name="recording-jobs")

    async def stop(self) -> None:
        """Stop the worker task and its process; the running job goes back to queued."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- requests --------------------------------------------------------------------

    async def day_timeline(self, day_id: int) -> tuple[LoadedDay, DayTimeline]:
        """The day and its timeline from the journal (`NotFoundError` for no day)."""
        loaded = await load_day(self._db, day_id)
        entries = await self._journal.entries(day_id)
        return loaded, replay(loaded.day, self._settings, entries)

    async def request(self, day_id: int, student_id: int | None, *,
                      by: int | None) -> list[Job]:
        """Queue the build of one student's defense, or of every finished one.

        Raises `BuildRefused` (saying why) when nothing can be built now."""
        loaded, timeline = await self.day_timeline(day_id)
        if timeline.recording:
            raise BuildRefused(f"the recording of day {day_id} is running; the archive is "
                               "built once it stops")
        archives = await self._store.archives(day_id)
        if student_id is None:
            students = [int(d.student) for d in timeline.defenses if d.finished]
            if not students:
                raise BuildRefused(f"no defense of day {day_id} has finished yet")
        else:
            defense = timeline.defense_of(str(student_id))
            if defense is None or not defense.finished:
                raise BuildRefused(f"student {student_id} has no finished defense on day "
                                   f"{day_id}")
            students = [student_id]
        jobs = []
        for student in students:
            archive = archives.get(student)
            if archive is not None and archive.deleted_at is not None:
                raise BuildRefused(f"the recordings of student {student} were deleted under "
                                   "the retention rule")
            if (day_id, student) in self._waiting or (day_id, student) in self._progress:
                job = await self._store.job(day_id, student)
            else:
                job = await self._store.queue_job(day_id, student, self._clock())
                await self._journal.append(day_id, by, "recording_build_requested",
                                           {"student": str(student)}, self._clock())
                self._enqueue(day_id, student)
            assert job is not None
            jobs.append(job)
        return jobs

    async def sitting_closed(self, day_id: int) -> None:
        """The hook for `DayHost`: the sitting closed and its recording stopped, so
        build every finished defense of the day. Never raises; logs a refusal."""
        try:
            jobs = await self.request(day_id, None, by=None)
        except BuildRefused as exc:
            logger.info("day %s closed; nothing to build: %s", day_id, exc)
        except Exception:
            logger.exception("day %s closed; queueing its archive builds failed", day_id)
        else:
            logger.info("day %s closed; %d archive builds queued", day_id, len(jobs))

    async def jobs(self, day_id: int) -> list[Job]:
        """The day's jobs, with the live progress of the running one."""
        jobs = await self._store.jobs(day_id)
        return [Job(**{**{f: getattr(j, f) for f in j.__dataclass_fields__},
                       "progress": self._progress.get((j.day_id, j.student_id), j.progress)})
                for j in jobs]

    def _enqueue(self, day_id: int, student_id: int) -> None:
        self._waiting.add((day_id, student_id))
        self._queue.put_nowait((day_id, student_id))

    # -- the worker ------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._waiting.discard(key)
            self._progress[key] = 0.0
            try:
                await self._run(*key)
            finally:
                self._progress.pop(key, None)

    async def _run(self, day_id: int, student_id: int) -> None:
        await self._store.update_job(day_id, student_id, state=JobState.RUNNING, progress=0.0,
                                     now=self._clock(), attempt=True)
        try:
            plan = await self._plan(day_id, student_id)
            result = await self._spawn(plan)
            await asyncio.to_thread(self._blobs.put_tree,
                                    f"{day_prefix(day_id)}/{plan.student_folder}",
                                    plan.staging_folder)
            await self._index(plan, result)
        except asyncio.CancelledError:
            await self._store.update_job(day_id, student_id, state=JobState.QUEUED, progress=0.0,
                                         now=self._clock())
            raise
        except Exception as exc:
            message = str(exc) if isinstance(exc, RecordingError) else f"{type(exc).__name__}: {exc}"
            logger.warning("archive of day %s student %s failed: %s", day_id, student_id, message)
            await self._store.update_job(day_id, student_id, state=JobState.FAILED,
                                         progress=self._progress.get((day_id, student_id), 0.0),
                                         now=self._clock(), error=message)
            await self._journal.append(day_id, None, "recording_build_failed",
                                       {"student": str(student_id), "error": message},
                                       self._clock())
            return
        await self._store.update_job(day_id, student_id, state=JobState.DONE, progress=1.0,
                                     now=self._clock())
        logger.info("archive of day %s student %s built: %s", day_id, student_id,
                    result["manifest_sha256"])

    async def _plan(self, day_id: int, student_id: int) -> BuildPlan:
        loaded, timeline = await self.day_timeline(day_id)
        defense = timeline.defense_of(str(student_id))
        if timeline.recording or defense is None or not defense.finished:
            raise BuildRefused(f"student {student_id} has no finished defense on day "
                               f"{day_id} with the recording stopped")
        folder = day_folder(self._recordings_dir, day_id)
        segments = await asyncio.to_thread(scan_day, folder)
        people = [(p.person_id, p.name, p.role) for p in loaded.day.people]
        plan = make_plan(day_id=day_id, day_folder=folder.resolve(),
                         timezone=loaded.stored.timezone, defense=defense, people=people,
                         segments=segments)
        if not plan.overlapping():
            raise BuildRefused(f"no recording of the defense of student {student_id} is on "
                               f"disk in {folder}")
        return plan

    async def _spawn(self, plan: BuildPlan) -> dict[str, Any]:
        plans = plan.folder / ARCHIVE / ".plans"
        path = plans / f"student-{plan.student}.json"

        def write() -> None:
            plans.mkdir(parents=True, exist_ok=True)
            plan.write(path)

        await asyncio.to_thread(write)
        key = (plan.day_id, int(plan.student))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recordings.build", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._proc = proc
        tail: collections.deque[str] = collections.deque(maxlen=20)
        outcome: dict[str, Any] = {}
        try:
            await asyncio.gather(self._read_progress(proc, key, outcome),
                                 self._read_log(proc, tail))
            code = await proc.wait()
        except asyncio.CancelledError:
            await self._kill(proc)
            raise
        finally:
            self._proc = None
        if code != 0 or "result" not in outcome:
            error = outcome.get("error") or (tail[-1] if tail else f"exit status {code}")
            raise BuildFailed(f"the build worker failed: {error}")
        result: dict[str, Any] = outcome["result"]
        return result

    async def _read_progress(self, proc: asyncio.subprocess.Process, key: tuple[int, int],
                             outcome: dict[str, Any]) -> None:
        assert proc.stdout is not None
        saved = time.monotonic()
        async for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if "progress" in message:
                self._progress[key] = float(message["progress"])
                if time.monotonic() - saved >= PROGRESS_SAVE_S:
                    saved = time.monotonic()
                    await self._store.update_job(*key, state=JobState.RUNNING,
                                                 progress=self._progress[key], now=self._clock())
            else:
                outcome.update(message)

    @staticmethod
    async def _read_log(proc: asyncio.subprocess.Process, tail: collections.deque[str]) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            text = line.decode("utf-8", "replace").rstrip()
            tail.append(text)
            logger.debug("build worker: %s", text)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()

    async def _index(self, plan: BuildPlan, result: dict[str, Any]) -> None:
        base = day_prefix(plan.day_id) + "/"  # store keys: relative to the recordings
        key = f"{base}{plan.student_folder}/manifest.json"
        data = await asyncio.to_thread(read_bytes, self._blobs, key)
        digest = mf.digest(data)
        if digest != result.get("manifest_sha256"):
            raise BuildFailed(f"the manifest {self._blobs.location(key)} does not match the "
                              "worker's hash")
        document = json.loads(data)
        files = [{**entry, "path": base + entry["path"]} for entry in document["files"]]
        files.append({"path": f"{base}{plan.student_folder}/manifest.json", "role": "manifest",
                      "size": len(data), "sha256": digest})
        chapters = [{"phase": c.phase, "title": c.title, "start_s": c.start - plan.start,
                     "end_s": c.end - plan.start} for c in plan.chapters]
        await self._store.record_build(
            day_id=plan.day_id, student_id=int(plan.student), folder=base + plan.student_folder,
            manifest=data, manifest_sha256=digest, defense_start=plan.start,
            defense_end=plan.end, chapters=chapters, files=files, now=self._clock())
