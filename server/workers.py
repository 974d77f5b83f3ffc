"""The supervisor: N worker processes, each restarted when it dies.

Each worker is ``defense-room serve --worker I/N --unix PATH``: today's whole
server (pages, API, signaling, media, procedure, recording) for the days it owns
(`server.ownership`), listening on a unix socket only the front talks to. It
prints `READY_LINE` once the socket listens; until then, and from its death until
its next start has printed the line again, `WorkerSlot.up` is False and the front
answers its days with 503 ("restarting") instead of waiting.

A worker that exits without being asked is started again after a pause that
doubles from `FIRST_BACKOFF_S` to `MAX_BACKOFF_S` while it keeps dying, and goes
back to the first once a run lasted `STABLE_AFTER_S`. Its days resume as after a
restart of the single-process server: the journal is replayed, recording resumes
in a new take, and those present get the reconnect grace.

A worker's UDP media never passes the front: its peers bind their own ports and
the browsers send media to them directly. A worker dies with the front
(``PR_SET_PDEATHSIG``, set by the worker itself: `die_with_parent`), so a killed
front leaves no orphan holding rooms.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

READY_LINE = "defense-room worker ready"
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0
#: How long a worker may take to stop after SIGTERM before it is killed.
STOP_GRACE_S = 20.0
_PR_SET_PDEATHSIG = 1


class Backoff:
    """The pause before a restart (pure: the caller passes the times)."""

    def __init__(self, first_s: float = FIRST_BACKOFF_S, max_s: float = MAX_BACKOFF_S,
                 stable_after_s: float = STABLE_AFTER_S) -> None:
        self._first = first_s
        self._max = max_s
        self._stable = stable_after_s
        self._next = first_s

    def after_run(self, lasted_s: float) -> float:
        """The pause after a run that lasted `lasted_s` seconds."""
        if lasted_s >= self._stable:
            self._next = self._first
        pause = self._next
        self._next = min(self._next * 2, self._max)
        return pause


class WorkerSlot:
    """One worker's place: its process while it runs, and its restarts. Owns its task."""

    def __init__(self, index: int, count: int, socket: Path,
                 command: Callable[[int, Path], Sequence[str]], *,
                 backoff: Backoff | None = None) -> None:
        self.index = index
        self.count = count
        self.socket = socket
        self._command = command
        self._backoff = backoff or Backoff()
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self._stopping = False
        self.starts = 0  # how many processes this slot has started

    @property
    def up(self) -> bool:
        """The worker listens and answers."""
        return self._up.is_set()

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None or proc.returncode is not None else proc.pid

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"worker-{self.index}")

    async def wait_up(self, timeout_s: float) -> None:
        """Until the worker listens; TimeoutError if it does not within `timeout_s`."""
        await asyncio.wait_for(self._up.wait(), timeout_s)

    async def stop(self) -> None:
        """SIGTERM the worker and wait for it (SIGKILL after `STOP_GRACE_S`)."""
        self._stopping = True
        self._up.clear()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                logger.warning("worker %s did not stop in %.0f s; killing it",
                               self.index, STOP_GRACE_S)
                proc.kill()
                await proc.wait()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            code = await self._one_run()
            if self._stopping:
                return
            pause = self._backoff.after_run(time.monotonic() - started)
            logger.error("worker %s of %s exited with status %s; its days wait %.1f s "
                         "for it to start again", self.index, self.count, code, pause)
            await asyncio.sleep(pause)

    async def _one_run(self) -> int | None:
        self.socket.unlink(missing_ok=True)
        argv = list(self._command(self.index, self.socket))
        self._proc = proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            # Its own session: Ctrl+C in a terminal, or a signal to the front's process
            # group, reaches the front alone, which stops the workers in order.
            start_new_session=True)
        self.starts += 1
        logger.info("worker %s of %s started (pid %s)", self.index, self.count, proc.pid)
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                if line == READY_LINE:
                    self._up.set()
                    logger.info("worker %s of %s listens", self.index, self.count)
                elif line:
                    print(line, flush=True)  # a worker has nothing else to say, but keep it
            return await proc.wait()
        finally:
            self._up.clear()


class Supervisor:
    """Starts `count` workers and keeps them running; owns their slots."""

    def __init__(self, count: int, run_dir: Path,
                 command: Callable[[int, Path], Sequence[str]]) -> None:
        self.slots = [WorkerSlot(i, count, run_dir / f"worker-{i}.sock", command)
                      for i in range(count)]

    async def start(self, ready_timeout_s: float = 120.0) -> None:
        """Start every worker and wait until all listen."""
        for slot in self.slots:
            await slot.start()
        try:
            await asyncio.gather(*(slot.wait_up(ready_timeout_s) for slot in self.slots))
        except TimeoutError:
            await self.stop()
            raise RuntimeError(f"the workers did not start within {ready_timeout_s:.0f} s; "
                               "their errors are above") from None

    async def stop(self) -> None:
        await asyncio.gather(*(slot.stop() for slot in self.slots))


def worker_command(config: Path | None, *, verbose: bool, organizer_sha256: str | None,
                   count: int) -> Callable[[int, Path], list[str]]:
    """How the front starts worker `index`, listening on `socket`."""
    def command(index: int, socket: Path) -> list[str]:
        argv = [sys.executable, "-m", "defense_room.cli"]
        if verbose:
            argv.append("-v")
        argv += ["serve", "--worker", f"{index}/{count}", "--unix", str(socket),
                 "--front-pid", str(os.getpid())]
        if config is not None:
            argv += ["--config", str(config)]
        if organizer_sha256 is not None:
            argv += ["--organizer-sha256", organizer_sha256]
        return argv
    return command


def die_with_parent(front_pid: int) -> None:
    """In a worker: be killed when the front dies (Linux), as a single-process server
    would be; exit now if the front is already gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            logger.warning("could not tie this worker to the front: errno %s", ctypes.get_errno())
    if os.getppid() != front_pid:
        raise SystemExit("the front that started this worker is gone")
