"""The raw files of a day's takes, placed on the wall clock.

Each raw segment has a JSON sidecar (`recordings.segment`) with the arrival time
of its first frame in the forwarder's clock (`time.perf_counter` of the server
process that recorded it) and the wall-clock time the writer opened the file. The
writer opens a segment as soon as it dequeues the first frame, so within one take
(one process) ``opened_unix - first_arrived`` is the offset between the two clocks
plus a queueing delay; the smallest value over the take's sidecars is the best
estimate, and every segment of the take is placed with it. Frames inside a segment
are then placed by their RTP timestamps.

This lines tracks up to within the queueing delay (milliseconds), not exactly:
exact cross-participant sync needs the RTCP sender reports' NTP/RTP pairs, which
the capture does not keep.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

TAKE_PREFIX = "take-"


@dataclass(frozen=True, slots=True)
class RawSegment:
    """One raw capture file and where it sits on the wall clock."""

    path: Path  # the media file as the recorder left it (final name or ``.part``)
    take: str  # the take folder's name
    participant: str
    kind: str  # "audio" or "video"
    codec: str
    number: int
    wall_start: float  # unix time of its first frame
    duration_s: float | None  # from a cleanly closed sidecar; None after a crash
    complete: bool

    @property
    def name(self) -> str:
        """The file's final name (without ``.part``)."""
        return self.path.name.removesuffix(".part")

    @property
    def wall_end(self) -> float | None:
        return None if self.duration_s is None else self.wall_start + self.duration_s


def _read_sidecar(path: Path) -> dict[str, object] | None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("skipping unreadable sidecar %s: %s", path, exc)
        return None
    return info if isinstance(info, dict) else None


def scan_take(folder: Path) -> list[RawSegment]:
    """The segments of one take folder, in wall-clock order."""
    infos: list[tuple[Path, dict[str, object]]] = []
    for sidecar in sorted(folder.glob("*.json")):
        info = _read_sidecar(sidecar)
        if info is None:
            continue
        media = folder / str(info.get("file", ""))
        if not media.is_file():
            media = media.with_name(media.name + ".part")
        if not media.is_file():
            logger.warning("sidecar %s names no file that exists", sidecar)
            continue
        infos.append((media, info))
    if not infos:
        return []
    try:
        offset = min(float(str(i["opened_unix"])) - float(str(i["first_arrived"]))
                     for _, i in infos)
    except (KeyError, ValueError) as exc:
        logger.warning("take %s has sidecars without times (%s); skipping it", folder, exc)
        return []
    segments = []
    for media, info in infos:
        try:
            complete = bool(info.get("complete"))
            duration = info.get("duration_s")
            segments.append(RawSegment(
                path=media, take=folder.name, participant=str(info["participant"]),
                kind=str(info["kind"]), codec=str(info["codec"]),
                number=int(str(info["segment"])),
                wall_start=float(str(info["first_arrived"])) + offset,
                duration_s=float(str(duration)) if complete and duration is not None else None,
                complete=complete))
        except (KeyError, ValueError) as exc:
            logger.warning("skipping %s: its sidecar lacks %s", media, exc)
    return sorted(segments, key=lambda s: (s.wall_start, s.participant, s.kind))


def scan_day(day_folder: Path) -> list[RawSegment]:
    """Every raw segment of every take under ``day_folder``, in wall-clock order."""
    if not day_folder.is_dir():
        return []
    segments: list[RawSegment] = []
    for take in sorted(day_folder.iterdir()):
        if take.is_dir() and take.name.startswith(TAKE_PREFIX):
            segments.extend(scan_take(take))
    return sorted(segments, key=lambda s: (s.wall_start, s.participant, s.kind))
