"""Turning a raw recording (closed or left ``.part`` by a crash) into a finished file.

The raw files are written for crash safety, not for players: they carry no duration
in their header. ``finalize`` copies the packets into a new file (stream copy, nothing
is decoded or encoded), so the new header and cues are complete. The raw file is left
as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import av

from .errors import RemuxError

logger = logging.getLogger(__name__)


def final_path(path: Path) -> Path:
    """``alice-video-1.webm(.part)`` -> ``alice-video-1.final.webm``."""
    name = path.name.removesuffix(".part")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        raise RemuxError(f"cannot tell the container of recording {path}")
    return path.with_name(f"{stem}.final.{ext}")


def finalize(path: Path, target: Path | None = None) -> Path:
    """Remux ``path`` with stream copy into ``target`` (default ``final_path(path)``)
    and return it. The target appears only once complete (written under a ``.tmp``
    name, then renamed), so an existing target is a finished one."""
    target = final_path(path) if target is None else target
    tmp = target.with_name(target.name + ".tmp")
    out_format = "matroska" if target.suffix == ".mkv" else "webm"
    try:
        with av.open(str(path), "r") as source, \
                av.open(str(tmp), "w", format=out_format) as out:
            streams = {}
            for stream in source.streams:
                if stream.type in ("audio", "video"):
                    streams[stream.index] = out.add_stream_from_template(stream, opaque=True)
            if not streams:
                raise RemuxError(f"recording {path} holds no audio or video stream")
            packets = source.demux(*(source.streams[i] for i in streams))
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.FFmpegError as exc:
                    # A crashed writer may leave half a cluster at the end.
                    logger.warning("recording %s ends in damaged data (%s); keeping "
                                   "what comes before", path.name, exc)
                    break
                # demux() ends each stream with an empty packet.
                if packet.dts is None or packet.size == 0:
                    continue
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    except RemuxError:
        tmp.unlink(missing_ok=True)
        raise
    except (av.FFmpegError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise RemuxError(f"cannot remux recording {path}: {exc}") from exc
    tmp.replace(target)
    logger.info("finalized %s -> %s", path.name, target.name)
    return target
