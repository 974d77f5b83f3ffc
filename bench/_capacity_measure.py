"""What bench/capacity.py reads from the machine: a process tree's CPU time, the
network namespace's UDP counters and drops per socket, and the recordings decoded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from forwarding import CLK_TCK


def process_tree_cpu(root_pid: int) -> dict[int, float]:
    """utime+stime (s) of `root_pid` and every descendant, by pid."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    tree = {root_pid}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return {pid: cpu[pid] for pid in tree if pid in cpu}


def udp_counters() -> dict[str, int]:
    """The network namespace's UDP counters (/proc/net/snmp): a receive buffer that
    overflowed (a process that did not get a core in time) drops datagrams there."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
             if line.startswith("Udp:")]
    return {name: int(value) for name, value in zip(lines[0][1:], lines[1][1:])}


def socket_inodes(pids: list[int]) -> set[int]:
    """The socket inodes `pids` hold open."""
    found = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    found.add(int(target[8:-1]))
        except OSError:
            continue
    return found


def udp_drops_by_inode() -> dict[int, int]:
    """Datagrams each UDP socket of the namespace dropped (/proc/net/udp, last column)."""
    drops = {}
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        drops[int(fields[9])] = int(fields[-1])
    return drops


def drops_of(groups: dict[str, list[int]]) -> dict[str, dict[int, int]]:
    """UDP datagrams dropped so far by each socket of each group of processes."""
    drops = udp_drops_by_inode()
    return {name: {inode: drops[inode] for inode in socket_inodes(pids) if inode in drops}
            for name, pids in groups.items()}


def drops_between(before: dict[str, dict[int, int]],
                  after: dict[str, dict[int, int]]) -> dict[str, int]:
    """Per group, what its sockets dropped in between (a socket opened in between
    counts from 0; one closed in between is lost)."""
    return {name: sum(count - before.get(name, {}).get(inode, 0)
                      for inode, count in sockets.items())
            for name, sockets in after.items()}


def tree_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the tree used in between (a process that started counts from 0; one
    that ended in between is lost, which only the composite builder could do)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# -- the recording ---------------------------------------------------------------------


def check_recordings(recordings_dir: Path, rooms: list[dict[str, Any]]) -> dict[str, Any]:
    """Decode every room's recording: each person needs a video and an audio stream
    with decoded frames and no decoding error."""
    import av

    checked: list[dict[str, Any]] = []
    for room in rooms:
        folder = recordings_dir / f"day-{room['day_id']}"
        files = sorted(folder.glob("take-*/*.webm")) + sorted(folder.glob("take-*/*.webm.part"))
        for person in room["people"]:
            for kind in ("video", "audio"):
                mine = [f for f in files if f.name.startswith(f"{person['person_id']}-{kind}-")]
                frames = 0
                seconds = 0.0
                error = None
                for path in mine:
                    times = []
                    try:
                        with av.open(str(path)) as container:
                            stream = container.streams.video[0] if kind == "video" else \
                                container.streams.audio[0]
                            for frame in container.decode(stream):
                                frames += 1
                                moment = getattr(frame, "time", None)
                                if moment is not None:
                                    times.append(float(moment))
                    except (av.FFmpegError, IndexError) as exc:
                        error = f"{path.name}: {exc!r}"
                    if len(times) > 1:
                        seconds += max(times) - min(times)
                checked.append({"day_id": room["day_id"], "role": person["role"], "kind": kind,
                                "files": len(mine), "frames": frames, "error": error,
                                # The recorder takes every layer: ~30 frames/s of video.
                                "fps": round(frames / seconds, 1) if seconds else 0.0,
                                "ok": bool(mine) and frames > 0 and error is None})
    ok = sum(1 for c in checked if c["ok"])
    return {"ok": ok, "expected": len(checked), "all_ok": ok == len(checked) and bool(checked),
            "failed": [c for c in checked if not c["ok"]][:10], "streams": checked,
            "min_video_frames": min((c["frames"] for c in checked if c["kind"] == "video"),
                                    default=0),
            "min_video_fps": min((c["fps"] for c in checked if c["kind"] == "video"),
                                 default=0.0)}


