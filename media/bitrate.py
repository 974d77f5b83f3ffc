"""Watching the students' uplinks against rule P5 (clause 6.4: 200 kbit/s at least).

The server sees what each participant sends it: the bytes its connection's transport
received (audio, video and their RTCP; public aiortc statistics, so nothing is
parsed per packet for this). ``UplinkWatch`` is the pure judgement over those counts:
the rate averaged over a window of ``after_s`` seconds, "low" once a full window
stays under the minimum, "restored" once a full window is back above the minimum
plus a margin. A blip (a few seconds of loss, a keyframe burst) moves a 10-second
average too little to warn, and the margin keeps a link hovering at the minimum from
warning and clearing over and over.

``BitrateWatcher`` samples the students of one Room once a second and tells the
room's secretaries (a ``notice`` message, repeated to a secretary who joins while
the link is still low) and an optional ``LinkSink`` (the server journals it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .participant import ParticipantInfo
    from .room import Room

logger = logging.getLogger(__name__)

#: A low link counts as restored only above minimum * this: no flapping at the edge.
RESTORE_MARGIN = 1.25
#: The clause of rule P5, shown with the notice.
P5_CLAUSE = "6.4"
LOW = "link_low"
RESTORED = "link_restored"


@dataclass(frozen=True, slots=True)
class LinkChange:
    """The watched link went low (``kind == LOW``) or came back (``RESTORED``)."""

    kind: str
    kbps: int


class UplinkWatch:
    """The judgement for one link, fed cumulative byte counts with their times."""

    def __init__(self, min_kbps: float, after_s: float) -> None:
        if min_kbps <= 0 or after_s <= 0:
            raise ValueError("min_kbps and after_s must be positive")
        self._min_kbps = min_kbps
        self._after_s = after_s
        self._samples: deque[tuple[float, int]] = deque()
        self._low = False

    @property
    def low(self) -> bool:
        return self._low

    def kbps(self) -> float | None:
        """The rate over the current window; None before two samples."""
        if len(self._samples) < 2:
            return None
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) * 8 / 1000 / (t1 - t0) if t1 > t0 else None

    def sample(self, now: float, total_bytes: int) -> LinkChange | None:
        """Take the count at ``now``; a change of verdict, if this sample makes one."""
        if self._samples and (total_bytes < self._samples[-1][1] or now <= self._samples[-1][0]):
            self._samples.clear()  # a new connection (counter restarted) or a clock step
        self._samples.append((now, total_bytes))
        # Keep the newest sample at least after_s old, so the window is full.
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._after_s:
            self._samples.popleft()
        if now - self._samples[0][0] < self._after_s * 0.95:
            return None  # not a full window yet (just joined)
        rate = self.kbps()
        if rate is None:
            return None
        if not self._low and rate < self._min_kbps:
            self._low = True
            return LinkChange(LOW, round(rate))
        if self._low and rate >= self._min_kbps * RESTORE_MARGIN:
            self._low = False
            return LinkChange(RESTORED, round(rate))
        return None


# Told of each change: (room id, the student, the change, the minimum in kbit/s).
LinkSink = Callable[[str, "ParticipantInfo", LinkChange, int], Awaitable[None]]
# The bytes a peer's connection has received so far, or None (not connected).
ByteCounter = Callable[[Any], Awaitable[int | None]]


async def received_bytes(peer: Any) -> int | None:
    """What the server has received on ``peer``'s connection (transport statistics),
    or None while it publishes no video (a watcher without a camera is not judged)."""
    if peer.connection_state != "connected" or not any(
            p.kind == "video" for p in peer.published):
        return None
    for transceiver in peer.pc.getTransceivers():
        if transceiver.receiver is None or transceiver.receiver.transport is None:
            continue
        report = await transceiver.receiver.getStats()
        for stats in report.values():
            if getattr(stats, "type", None) == "transport":
                return int(stats.bytesReceived)
    return None


class BitrateWatcher:
    """Samples each student of ``room`` every ``interval_s`` and warns its secretaries."""

    def __init__(self, room: Room, *, min_kbps: int, after_s: float,
                 sink: LinkSink | None = None, interval_s: float = 1.0,
                 counter: ByteCounter = received_bytes,
                 clock: Callable[[], float] | None = None) -> None:
        self._room = room
        self._min_kbps = min_kbps
        self._after_s = after_s
        self._sink = sink
        self._interval_s = interval_s
        self._counter = counter
        self._clock = clock
        self._watches: dict[str, tuple[object, UplinkWatch]] = {}
        # The low notice in force per student, and the secretaries who have it.
        self._low: dict[str, dict[str, Any]] = {}
        self._told: dict[str, set[str]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def is_low(self, student_id: str) -> bool:
        return student_id in self._low

    def kbps(self, student_id: str) -> float | None:
        """The student's rate over the current window, if they are watched."""
        known = self._watches.get(student_id)
        return None if known is None else known[1].kbps()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.tick()
            except Exception:  # never let a statistics hiccup end the watching
                logger.exception("room %s: watching the students' bitrate failed",
                                 self._room.room_id)

    async def tick(self) -> None:
        now = self._clock() if self._clock is not None else asyncio.get_running_loop().time()
        peers = self._room.peers
        students = {pid: p for pid, p in peers.items() if p.info.role == "student"}
        for pid in set(self._watches) - set(students):
            del self._watches[pid]
            if self._low.pop(pid, None) is not None:
                self._told.pop(pid, None)
        for pid, peer in students.items():
            count = await self._counter(peer)
            known = self._watches.get(pid)
            if count is None:
                continue
            if known is None or known[0] is not peer:  # a new connection starts over
                known = self._watches[pid] = (peer, UplinkWatch(self._min_kbps, self._after_s))
            change = known[1].sample(now, count)
            if change is not None:
                await self._changed(peer.info, change)
        await self._tell_secretaries(peers)

    async def _changed(self, student: ParticipantInfo, change: LinkChange) -> None:
        logger.warning("room %s: %s's link %s at %d kbit/s (minimum %d)", self._room.room_id,
                       student.name, "is low" if change.kind == LOW else "is back",
                       change.kbps, self._min_kbps)
        notice = {"type": "notice", "kind": change.kind, "student": student.id,
                  "kbps": change.kbps, "minimum_kbps": self._min_kbps, "clause": P5_CLAUSE}
        if change.kind == LOW:
            self._low[student.id] = notice
            self._told[student.id] = set()
        else:
            self._low.pop(student.id, None)
            told = self._told.pop(student.id, set())
            for secretary in told:  # only those who were warned hear that it is over
                await self._room.send_to(secretary, notice)
        if self._sink is not None:
            try:
                await self._sink(self._room.room_id, student, change, self._min_kbps)
            except Exception:
                logger.exception("room %s: recording a link change failed", self._room.room_id)

    async def _tell_secretaries(self, peers: dict[str, Any]) -> None:
        secretaries = {pid for pid, p in peers.items() if p.info.role == "secretary"}
        for student_id, notice in self._low.items():
            told = self._told.setdefault(student_id, set())
            told &= secretaries  # one who left and comes back is told again
            for secretary in sorted(secretaries - told):
                await self._room.send_to(secretary, notice)
                told.add(secretary)
