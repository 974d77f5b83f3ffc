"""Recording one room: every publication's encoded frames into one `Recorder`.

A `RoomRecording` is one "take": from the secretary's (or the procedure's) turning
recording on until it is turned off. Each take writes into its own folder
``<day folder>/take-<UTC start>``, so two takes never share a segment name. It
attaches a sink to every publication in the room and to every one published while it
runs, and ends a publication's track (a new segment on reconnect) when it goes.

Starting and stopping happen on the event loop; only `Recorder.stop`, which waits
for the writer thread to close the files, runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from pathlib import Path

from media.assembler import EncodedFrame
from media.forwarder import PublishedTrack
from media.participant import ParticipantInfo
from media.room import Room

from .recorder import Recorder
from .segment import TrackKey

logger = logging.getLogger(__name__)


def track_key(publication: PublishedTrack) -> TrackKey:
    kind = publication.kind
    codec = "opus" if kind == "audio" else publication.codec.mimeType.split("/")[1].upper()
    return TrackKey(publication.publisher_id, kind, codec, publication.codec.clockRate)


class RoomRecording:
    """One take of a room's recording; see the module doc."""

    def __init__(self, room: Room, day_folder: Path, *, started_at: float) -> None:
        stamp = datetime.datetime.fromtimestamp(started_at, datetime.UTC)
        self._folder = day_folder / f"take-{stamp:%Y%m%dT%H%M%S.%fZ}"
        self._room = room
        self._recorder = Recorder(self._folder)
        self._attached: dict[PublishedTrack, TrackKey] = {}
        self._started = False
        self._stopped = False

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def recorder(self) -> Recorder:
        return self._recorder

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await asyncio.to_thread(self._recorder.start)  # creates the folder
        for info, publication in self._room.publications():
            self.publication_added(info, publication)
        self._room.observe(self)
        logger.info("recording room %s into %s", self._room.room_id, self._folder)

    async def stop(self) -> None:
        """Detach from the room and close every file. Idempotent."""
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._stopped = True
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
