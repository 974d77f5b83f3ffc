"""Recording one room: every publication's encoded frames into one `Recorder`.

A `RoomRecording` is one "take": from the secretary's (or the procedure's) turning
recording on until it is turned off. Each take writes into its own folder
``<day folder>/take-<UTC start>``, so two takes never share a segment name. It
attaches a sink to every publication in the room and to every one published while it
runs, and ends a publication's track (a new segment on reconnect) when it goes.

Starting and stopping happen on the event loop; only `Recorder.stop`, which waits
for the writer thread to close the files, runs in a worker thread.

A take needs free disk space: `start` refuses it (`NotEnoughSpace`) when the disk
holds less than `min_free_bytes`, and a task of the take's own checks every
`check_every_s` while it runs. A disk fallen under the minimum, or the recorder's
report of a write error, is the take's failure: `on_failure(take, reason)` is called
once, on the event loop, and the owner stops the take (clause 7.11).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from media.assembler import EncodedFrame
from media.forwarder import PublishedTrack
from media.participant import ParticipantInfo
from media.room import Room

from .errors import NotEnoughSpace
from .recorder import Recorder
from .segment import TrackKey

logger = logging.getLogger(__name__)

MB = 1 << 20


def free_bytes(path: Path) -> int:
    """Free bytes (for an unprivileged writer) on the disk that holds `path`, or
    would hold it: the nearest existing folder above it is asked."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def ensure_free_space(path: Path, min_free_bytes: int) -> None:
    """Raise `NotEnoughSpace` if the disk of `path` has under `min_free_bytes` free."""
    if min_free_bytes <= 0:
        return
    free = free_bytes(path)
    if free < min_free_bytes:
        raise NotEnoughSpace(
            f"only {free // MB} MB of disk space are free for recordings, and at least "
            f"{-(-min_free_bytes // MB)} MB are needed (recordings.min_free_mb): free some "
            "space, then turn the recording on again")


def track_key(publication: PublishedTrack) -> TrackKey:
    kind = publication.kind
    codec = "opus" if kind == "audio" else publication.codec.mimeType.split("/")[1].upper()
    return TrackKey(publication.publisher_id, kind, codec, publication.codec.clockRate)


class RoomRecording:
    """One take of a room's recording; see the module doc."""

    def __init__(self, room: Room, day_folder: Path, *, started_at: float,
                 min_free_bytes: int = 0, check_every_s: float = 5.0,
                 on_failure: Callable[[RoomRecording, str], None] | None = None) -> None:
        if check_every_s <= 0:
            raise ValueError(f"check_every_s must be positive, not {check_every_s}")
        stamp = datetime.datetime.fromtimestamp(started_at, datetime.UTC)
        self._folder = day_folder / f"take-{stamp:%Y%m%dT%H%M%S.%fZ}"
        self._room = room
        self._min_free = min_free_bytes
        self._check_every_s = check_every_s
        self._on_failure = on_failure
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recorder = Recorder(self._folder, on_failure=self._recorder_failed)
        self._attached: dict[PublishedTrack, TrackKey] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self._failure = ""
        self._started = False
        self._stopped = False

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def recorder(self) -> Recorder:
        return self._recorder

    @property
    def failure(self) -> str:
        """Why this take failed, in words; "" while it has not."""
        return self._failure

    async def start(self) -> None:
        """Start recording; `NotEnoughSpace` if the disk is short of `min_free_bytes`."""
        if self._started:
            return
        await asyncio.to_thread(ensure_free_space, self._folder, self._min_free)
        self._started = True
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._recorder.start)  # creates the folder
        for info, publication in self._room.publications():
            self.publication_added(info, publication)
        self._room.observe(self)
        if self._min_free > 0:
            self._watch_task = asyncio.create_task(self._watch_free_space())
        logger.info("recording room %s into %s", self._room.room_id, self._folder)

    async def stop(self) -> None:
        """Detach from the room and close every file. Idempotent."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
            self._watch_task = None
        self._room.unobserve(self)
        for publication in list(self._attached):
            self._detach(publication)
        await asyncio.to_thread(self._recorder.stop)
        logger.info(
            "recording of room %s stopped: %s dropped, %s skipped, %s errors",
            self._room.room_id, self._recorder.dropped, self._recorder.skipped,
            self._recorder.errors,
        )

    # -- RoomObserver ----------------------------------------------------------------

    def presence_changed(self, participant: ParticipantInfo, present: bool) -> None:
        pass

    def publication_added(self, participant: ParticipantInfo, track: PublishedTrack) -> None:
        if self._stopped or track in self._attached:
            return
        self._attached[track] = track_key(track)
        track.add_sink(self._write)

    def publication_removed(self, participant: ParticipantInfo, track: PublishedTrack) -> None:
        self._detach(track)

    # -- failures ----------------------------------------------------------------------

    async def _watch_free_space(self) -> None:
        while True:
            await asyncio.sleep(self._check_every_s)
            try:
                await asyncio.to_thread(ensure_free_space, self._folder, self._min_free)
            except NotEnoughSpace as exc:
                self._failed(str(exc))
                return
            except OSError as exc:
                self._failed(f"cannot read the free space of the recordings disk: "
                             f"{exc.strerror or exc}")
                return

    def _recorder_failed(self, reason: str) -> None:
        # Called in the writer thread: hand the report to the event loop.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._failed, reason)

    def _failed(self, reason: str) -> None:
        """The take's failure, once: the owner stops it and says so."""
        if self._failure or self._stopped:
            return
        self._failure = reason
        logger.error("recording of room %s failed: %s", self._room.room_id, reason)
        if self._on_failure is not None:
            self._on_failure(self, reason)

    # -- internals ---------------------------------------------------------------------

    def _detach(self, track: PublishedTrack) -> None:
        key = self._attached.pop(track, None)
        if key is None:
            return
        track.remove_sink(self._write)
        self._recorder.end_track(key)

    def _write(self, publication: PublishedTrack, frame: EncodedFrame) -> None:
        key = self._attached.get(publication)
        if key is not None:
            self._recorder.write(key, frame)
