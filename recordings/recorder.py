"""Crash-safe capture of forwarded encoded media, one file per track segment.

Theory of operation
-------------------
The forwarder calls ``Recorder.write`` on the event loop for every complete encoded
frame. ``write`` only appends to a queue: when the queue already holds
``queue_frames`` frames it drops the frame and counts it, so a slow disk never stalls
media forwarding. One writer thread owns every PyAV container (STYLE: one owner per
piece of state); the event loop never touches PyAV.

The writer takes what is queued every ``BATCH_S`` rather than being woken for each
frame: waking a thread per frame (a lock, a condition notify, a thread switch and a
GIL hand-over, some 300 times a second in a room) cost the event loop about as much
as the muxing itself (bench/README.md, "Where a room's CPU goes"). Frames reach the
file at most ``BATCH_S`` later; ``stop`` wakes it at once.

Each ``TrackKey`` has at most one open ``Segment`` (a file). A video segment starts at
a keyframe; frames before it are skipped and counted. ``end_track`` (the participant
left) closes the open segment, and a later frame for the same key starts the next
segment number, so a reconnect is a new file rather than a failed recording. Nothing
is decoded or encoded: packets are muxed as they arrived.

A segment is written as ``<participant>-<kind>-<n>.webm.part`` (``.mkv`` for H.264)
and renamed without ``.part`` when closed cleanly; ``recordings.remux.finalize`` turns
either kind into a file with a duration in its header.

Failures (ENOSPC, EIO, a folder gone) are loud but not noisy. The first error of a
failure episode is logged with its traceback and reported once to ``on_failure``
(the owner turns the recording off and tells the room, rule D6 / clause 7.11); the
errors after it are only counted. A track whose file failed is reopened with an
exponential back-off (``RETRY_FIRST_S`` doubling up to ``RETRY_MAX_S``), not on each
frame; its frames meanwhile are counted in ``lost``. The episode ends when every
track writes again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Protocol

from av.stream import Stream

from .errors import RecorderStateError
from .segment import Segment, TrackKey

__all__ = ["Frame", "Recorder", "TrackKey"]

logger = logging.getLogger(__name__)

DROP_WARNING_INTERVAL_S = 1.0
#: Back-off before reopening a track whose file failed: first wait, then doubled up to.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 8.0
#: How often the writer thread takes the frames queued since it last looked.
BATCH_S = 0.02


def describe_error(exc: BaseException) -> str:
    """What failed, in words, without the absolute path an OSError names (S18)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Frame(Protocol):
    """What ``write`` reads from a frame: ``media.assembler.EncodedFrame`` fits."""

    @property
    def data(self) -> bytes: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def keyframe(self) -> bool: ...
    @property
    def arrived(self) -> float: ...


@dataclass(frozen=True, slots=True)
class _Write:
    track: TrackKey
    data: bytes
    timestamp: int
    keyframe: bool
    arrived: float


@dataclass(frozen=True, slots=True)
class _End:
    track: TrackKey


class _Stop:
    pass


_Item = _Write | _End | _Stop


class Recorder:
    """Writes forwarded frames of many tracks into files under ``folder``."""

    def __init__(self, folder: Path, *, queue_frames: int = 2000,
                 on_failure: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`on_failure(reason)` is called from the writer thread, once per failure
        episode; `clock` times the reopening back-off."""
        if queue_frames < 1:
            raise ValueError(f"queue_frames must be at least 1, not {queue_frames}")
        self._folder = folder
        self._queue_frames = queue_frames
        self._on_failure = on_failure
        self._clock = clock
        # Unbounded so that end_track and stop are never lost; write() bounds the frames.
        # deque's append and popleft are atomic: the event loop appends, the writer
        # thread takes, neither locks. ``_wake`` only cuts the writer's wait short.
        self._queue: deque[_Item] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Owned by the caller of write() (the event loop).
        self._dropped = 0
        self._last_drop_warning = float("-inf")
        # Owned by the writer thread; read-only elsewhere.
        self._segments: dict[TrackKey, Segment] = {}
        self._next_number: dict[tuple[str, str], int] = {}
        self._skipped = 0
        self._errors = 0
        self._lost = 0
        self._failing = False
        # track -> (when it may reopen, the back-off that set it)
        self._retry: dict[TrackKey, tuple[float, float]] = {}
        self._closed_files: list[Path] = []

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def dropped(self) -> int:
        """Frames dropped because the writer fell ``queue_frames`` behind."""
        return self._dropped

    @property
    def skipped(self) -> int:
        """Frames the writer left out: video before a segment's first keyframe, and
        frames whose timestamp did not move forward."""
        return self._skipped

    @property
    def errors(self) -> int:
        """Segments abandoned after a muxing error (their file keeps ``.part``)."""
        return self._errors

    @property
    def lost(self) -> int:
        """Frames not written because their track's file failed and waits to reopen."""
        return self._lost

    @property
    def failing(self) -> bool:
        """Whether a failure episode is under way (some track cannot write)."""
        return self._failing

    @property
    def backlog(self) -> int:
        """Items waiting for the writer thread."""
        return len(self._queue)

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stopped

    def start(self) -> None:
        """Create the folder and start the writer thread."""
        if self._thread is not None or self._stopped:
            raise RecorderStateError("a recorder can be started only once")
        self._folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"recorder:{self._folder.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, close every segment cleanly and end the thread.

        Blocks until the files are closed: from async code, call it in a thread
        (``await asyncio.to_thread(recorder.stop)``). Calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is None:
            return
        self._queue.append(_Stop())
        self._wake.set()
        self._thread.join()

    def write(self, track: TrackKey, frame: Frame) -> bool:
        """Queue one frame of ``track``; never blocks. False if it was dropped."""
        if self._stopped:
            return False
        if len(self._queue) >= self._queue_frames:
            self._dropped += 1
            now = time.monotonic()
            if now - self._last_drop_warning >= DROP_WARNING_INTERVAL_S:
                self._last_drop_warning = now
                logger.warning("recorder in %s falls behind: %d frames dropped so far",
                               self._folder, self._dropped)
            return False
        self._queue.append(_Write(track, bytes(frame.data), frame.timestamp,
                                  frame.keyframe, frame.arrived))
        return True

    def end_track(self, track: TrackKey) -> None:
        """Close the open segment of ``track``; its next frame starts a new segment."""
        if not self._stopped:
            self._queue.append(_End(track))

    # -- writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        items = self._queue
        while True:
            if not items:
                self._wake.wait(BATCH_S)
                self._wake.clear()  # stop() queued _Stop first: it is not missed
                continue
            item = items.popleft()
            if isinstance(item, _Stop):
                break
            if isinstance(item, _End):
                self._close(item.track)
            else:
                self._write(item)
        for track in list(self._segments):
            self._close(track)

    def _write(self, item: _Write) -> None:
        segment = self._segments.get(item.track)
        if segment is None:
            retry = self._retry.get(item.track)
            if retry is not None and self._clock() < retry[0]:
                self._lost += 1
                return
            if item.track.kind == "video" and not item.keyframe:
                self._skipped += 1
                return
            segment = self._open(item)
            if segment is None:
                return
        try:
            if not segment.write(item.data, item.timestamp, item.keyframe, item.arrived):
                self._skipped += 1
        except Exception as exc:
            del self._segments[item.track]
            self._fail(item.track, f"cannot write {segment.final_path.name}: "
                       f"{describe_error(exc)}", exc)
            try:
                segment.abandon()
            except Exception:
                logger.debug("closing %s failed", segment.part_path.name, exc_info=True)
            return
        self._wrote(item.track)

    def _fail(self, track: TrackKey | None, reason: str, exc: BaseException) -> None:
        """Count one error; the first of an episode is logged and reported."""
        self._errors += 1
        if track is not None:
            _, backoff = self._retry.get(track, (0.0, 0.0))
            backoff = min(max(backoff * 2, RETRY_FIRST_S), RETRY_MAX_S)
            self._retry[track] = (self._clock() + backoff, backoff)
        if self._failing:
            logger.debug("recording in %s: %s", self._folder, reason, exc_info=exc)
            return
        self._failing = True
        logger.error("recording in %s fails: %s", self._folder, reason, exc_info=exc)
        if self._on_failure is not None:
            try:
                self._on_failure(reason)
            except Exception:
                logger.exception("reporting the failure of recording in %s failed", self._folder)

    def _wrote(self, track: TrackKey) -> None:
        if self._retry.pop(track, None) is not None and self._failing and not self._retry:
            self._failing = False
            logger.warning("recording in %s writes again (%d errors, %d frames lost)",
                           self._folder, self._errors, self._lost)

    def _open(self, item: _Write) -> Segment | None:
        track = item.track
        key = (track.participant, track.kind)
        number = self._next_number.get(key, 1)
        # Never overwrite: a folder may hold files of an earlier (crashed) run.
        while Segment.paths_taken(self._folder, track, number):
            number += 1
        try:
            segment = Segment(self._folder, track, number, first_rtp=item.timestamp,
                              first_arrived=item.arrived,
                              keyframe=item.data if track.kind == "video" else None)
        except Exception as exc:
            self._fail(track, f"cannot open recording {number} of {track.participant} "
                       f"{track.kind}: {describe_error(exc)}", exc)
            return None
        # A failed open keeps its number: what it left on disk makes paths_taken skip it.
        self._next_number[key] = number + 1
        logger.info("recording %s %s -> %s", track.participant, track.kind,
                    segment.part_path.name)
        self._segments[track] = segment
        return segment

    def _close(self, track: TrackKey) -> None:
        segment = self._segments.pop(track, None)
        if segment is None:
            return
        try:
            segment.close()
        except Exception as exc:
            self._fail(None, f"cannot close {segment.final_path.name}, it stays "
                       f"{segment.part_path.name}: {describe_error(exc)}", exc)
            return
        self._closed_files.append(segment.final_path)
        logger.info("recording %s closed (%d frames)", segment.final_path.name, segment.frames)

    def open_streams(self) -> list[Stream]:
        """The output streams of the open segments, for inspection in tests. Call it
        only while the writer is idle (backlog 0): they belong to the writer thread."""
        return [segment.stream for segment in list(self._segments.values())]

    @property
    def closed_files(self) -> list[Path]:
        """Files closed cleanly so far (read after ``stop`` for a complete list)."""
        return list(self._closed_files)
