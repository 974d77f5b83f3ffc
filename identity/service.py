"""`IdentityChecks`: the server's identity checks, one at a time per day.

On the event loop it only catches the burst (`capture.BurstCapture`), hands it to
a worker process and stores what comes back in a thread. The worker pool (one
process, started with ``spawn`` on the first check and kept warm) runs
`worker.run_check`; checks of different days queue there. A second check of the
same day while one runs is refused (`CheckRunning`) rather than queued: the
secretary asked for a picture of now, not of whenever the queue gets to it.

What the student is told is kept per day and student (`instruction`); the score
never is. Preconditions that belong to the procedure (consent, who is a student)
are the caller's: the web layer checks them against the day's state.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import multiprocessing
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from media.forwarder import PublishedTrack

from .capture import BurstCapture
from .errors import CheckRunning, NoFrames, WorkerFailed
from .settings import IdentitySettings
from .store import CheckStore
from .verdict import Verdict, instruction_for
from .worker import Burst, CheckOutput, run_check, warm_up

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Instruction:
    """What the student is told to do next."""

    text: str
    text_ru: str
    retake: bool
    at: float

    def as_json(self) -> dict[str, Any]:
        return {"instruction": self.text, "instruction_ru": self.text_ru,
                "retake": self.retake, "at": self.at}


def thresholds(settings: IdentitySettings) -> dict[str, float]:
    """The thresholds in force, as the secretary's console shows them."""
    names = ("match_distance", "no_match_distance", "min_detection_score",
             "min_document_face_px",
             "min_sharpness", "min_document_sharpness", "max_glare", "min_brightness",
             "max_yaw")
    values = asdict(settings)
    return {name: values[name] for name in names}


def journal_detail(record: dict[str, Any]) -> dict[str, Any]:
    """The journal entry's detail for a stored check (kind ``identity_snapshot``): who,
    which, the advisory verdict and the band it was judged with; never the distance,
    the measures or anything of a face encoding."""
    return {"student": record["student"], "check": record["id"],
            "verdict": record["verdict"], "reason": record["reason"],
            "band": record["band"]}


class IdentityChecks:
    """Owns the worker pool, the running checks and the stored results."""

    def __init__(self, settings: IdentitySettings, day_folder: Callable[[int], Path], *,
                 clock: Callable[[], float] = time.time) -> None:
        """`day_folder` gives a day's recordings folder: checks are kept (and deleted)
        with the day's recordings."""
        self._settings = settings
        self._store = CheckStore(day_folder)
        self._clock = clock
        self._pool: ProcessPoolExecutor | None = None
        self._running: dict[int, str] = {}
        self._instructions: dict[tuple[int, str], Instruction] = {}
        self._stopped = False

    @property
    def settings(self) -> IdentitySettings:
        return self._settings

    @property
    def store(self) -> CheckStore:
        return self._store

    def running(self, day_id: int) -> str | None:
        """The student whose check runs on `day_id`, if any."""
        return self._running.get(day_id)

    def instruction(self, day_id: int, student: str) -> Instruction | None:
        return self._instructions.get((day_id, student))

    async def check(self, day_id: int, student: str, publication: PublishedTrack, *,
                    requested_by: str) -> dict[str, Any]:
        """Run one check of `student`'s live video; the stored record.

        Raises `CheckRunning`, `NoVideo`, `NoFrames` or `WorkerFailed`.
        """
        if self._stopped:
            raise WorkerFailed("the server is shutting down")
        busy = self._running.get(day_id)
        if busy is not None:
            raise CheckRunning(
                f"the identity check of student {busy} on day {day_id} is still running; "
                "ask again when it has answered")
        self._running[day_id] = student
        try:
            taken_at = self._clock()
            capture = BurstCapture(publication, frames=self._settings.burst_frames,
                                   timeout_s=self._settings.burst_timeout_s)
            burst = await capture.run()
            output = await self._analyse(burst)
            record = self._record(day_id, student, requested_by, taken_at, output)
            await asyncio.to_thread(self._store.save, day_id, record, output.images)
        finally:
            del self._running[day_id]
        retake = output.analysis.verdict is Verdict.RETAKE
        text, text_ru = instruction_for(output.analysis.reason)
        self._instructions[(day_id, student)] = Instruction(text, text_ru, retake, self._clock())
        logger.info("identity check %s of student %s on day %s: %s%s, band %s "
                    "(%.0f ms in the worker)",
                    record["id"], student, day_id, record["verdict"],
                    f" ({record['reason']})" if record["reason"] else "",
                    record["band"], output.worker_seconds * 1000)
        return record

    async def _analyse(self, burst: Burst) -> CheckOutput:
        loop = asyncio.get_running_loop()
        pool = self._pool
        if pool is None:
            pool = self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=warm_up)
        try:
            return await loop.run_in_executor(pool, run_check, burst, self._settings)
        except NoFrames:
            raise
        except BrokenProcessPool as exc:
            self._pool = None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
            raise WorkerFailed(f"the identity worker process died: {exc}") from exc
        except Exception as exc:
            logger.exception("identity analysis failed")
            raise WorkerFailed(f"the identity analysis failed: {exc!r}") from exc

    def _record(self, day_id: int, student: str, requested_by: str, taken_at: float,
                output: CheckOutput) -> dict[str, Any]:
        stamp = datetime.datetime.fromtimestamp(taken_at, datetime.UTC)
        check_id = f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
        text, text_ru = instruction_for(output.analysis.reason)
        return {
            "id": check_id, "day_id": day_id, "student": student,
            "requested_by": requested_by, "taken_at": taken_at,
            # The "look closely" band the verdict was judged with: the analysis's
            # own (below) overrides the settings', which it ran with.
            "band": list(self._settings.band),
            **output.analysis.as_json(),
            "thresholds": thresholds(self._settings),
            "instruction": {"en": text, "ru": text_ru},
            "frame": {"width": output.width, "height": output.height,
                      "frames_decoded": output.frames_decoded,
                      "frames_analysed": output.frames_analysed,
                      "sharpness": round(output.frame_sharpness, 2)},
            "images": sorted(output.images),
            "worker_ms": round(output.worker_seconds * 1000, 1),
        }

    async def stop(self) -> None:
        """Refuse new checks and shut the worker down. Idempotent."""
        self._stopped = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
