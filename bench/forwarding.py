"""Benchmark: the selective forwarder against aiortc's MediaRelay (decode + re-encode).

Run:  .venv/bin/python bench/forwarding.py [--quick] [--window S] [--only SERVER]
          [--fanout 1,4,8,16] [--rooms 2,4,6] [--profile] [--stall-ms MS] [--client-stall-ms MS]
(see bench/README.md).

It re-executes itself inside scripts/netns-run (a private network namespace) unless
DEFENSE_ROOM_NETNS=1, because WebRTC peers need a non-loopback address and must not
reach any real network. Servers listen on 127.0.0.1, with no ICE servers.

For every scenario (1 publisher -> K subscribers; a room of N publishing
participants) and each server (the product's forwarder, then the MediaRelay
baseline) it starts the server in a process of its own (bench/_server.py or
bench/_relay_server.py) and the participants in another (bench/_clients.py), waits
until every subscriber gets video, then measures over a window:

* server CPU: utime+stime of the server process from /proc/<pid>/stat over the window
  (all its threads, so the baseline's encoder and decoder threads count), as % of one
  core, and divided by the number of forwarded video streams;
* time in server, p50/p95 per kind: for the forwarder the product's own samples
  (room.metrics, from the receiver tap seeing the packet that completes a frame to the
  sender asking for the next frame, i.e. having sent all of that frame's packets); for
  the baseline the same two instants, taken by wrapping aiortc's jitter buffer (the
  last packet of an RTP timestamp), its TimestampMapper (RTP timestamp -> decoded pts)
  and each subscriber's relayed track (the sender asking for the next frame);
* frame rate: complete frames (marker-bit packets) each subscriber got per second,
  the minimum over subscribers and publishers, against the publisher's send rate;
* encodes: calls of aiortc's Vp8Encoder/H264Encoder/OpusEncoder.encode in the server.

The last line printed is one JSON object with the headline numbers and every scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NETNS_RUN = ROOT / "scripts" / "netns-run"
RESULTS = BENCH / "results"  # git-ignored
FULL_RATE = 0.9
SCENARIO_TIMEOUT_S = 150.0  # setup + window + teardown; a hung scenario is reported, not waited on
CLK_TCK = os.sysconf("SC_CLK_TCK")


def reexec_in_netns() -> None:
    if os.environ.get("DEFENSE_ROOM_NETNS") != "1":
        os.execv(str(NETNS_RUN), [str(NETNS_RUN), sys.executable, str(Path(__file__).resolve()),
                                  *sys.argv[1:]])


@dataclass(frozen=True, slots=True)
class Scenario:
    server: str  # "forwarder" or "mediarelay"
    shape: str  # "fanout" (1 -> K) or "room" (N all publishing)
    size: int  # K or N

    @property
    def label(self) -> str:
        return f"1->{self.size}" if self.shape == "fanout" else f"room {self.size}"

    @property
    def participants(self) -> int:
        return self.size + 1 if self.shape == "fanout" else self.size

    @property
    def publishes(self) -> list[bool]:
        if self.shape == "fanout":
            return [True] + [False] * self.size
        return [True] * self.size

    @property
    def video_streams(self) -> int:
        return self.size if self.shape == "fanout" else self.size * (self.size - 1)


def pin_to(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` confining a child (and its own children) to ``cpus``."""
    if not cpus:
        return None
    chosen = set(cpus)
    return lambda: os.sched_setaffinity(0, chosen)


class Child:
    """A bench subprocess that speaks JSON lines on stdout."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @classmethod
    async def start(cls, name: str, args: list[str], log: Path,
                    cpus: set[int] | None = None) -> Child:
        """``cpus``: run it (and whatever it starts) on these CPUs only."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=log.open("wb"), preexec_fn=pin_to(cpus),
        )
        return cls(name, proc, log)

    async def read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for _ in range(100):  # skip anything that is not our JSON
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise RuntimeError(f"{self.name} exited; log tail:\n{self.tail()}")
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                return message
        raise RuntimeError(f"{self.name} printed no JSON")

    async def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    def cpu_seconds(self) -> float:
        user, system = self.cpu_split()
        return user + system

    def cpu_split(self) -> tuple[float, float]:
        """(utime, stime) of the whole process (all threads), in seconds."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK

    async def stop(self, timeout: float = 20.0) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                print(f"  ({self.name} did not stop in {timeout:.0f} s; killed)", file=sys.stderr)
                self.proc.kill()
                await self.proc.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (every core), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def skips(stats: dict[str, Any]) -> int:
    return sum(int(d.get("assembler_skips", 0)) for d in stats.get("diagnostics") or [])


def rtp_lost(stats: dict[str, Any]) -> int:
    return sum(int(s["lost"]) for d in stats.get("diagnostics") or []
               for s in d.get("rtp_streams", {}).values())


IDLE_LEAVES = {"EpollSelector.select", "select", "wait", "_worker", "get", "Condition.wait",
               "Queue.get", "_wait_for_tstate_lock"}


PROFILE_FOCUS = (
    "data_received (hooks.py)",  # the forwarder's receive: SRTP, read, statistics, forward
    "_InlineReceiver.handle (hooks.py)",  # ... RTP read, statistics, NACK, then on_rtp
    "PublishedTrack.on_rtp (forwarder.py)",  # keyframe start, fan-out, frames for sinks
    "ForwardedTrack._forward (forwarder.py)",  # rewrite, SRTP, sendto per subscriber
    "RTCDtlsTransport._handle_rtp_data (rtcdtlstransport.py)",  # aiortc's receive path
    "RTCRtpReceiver._handle_rtp_packet (rtcrtpreceiver.py)",  # ... REMB, NACK, stats, depayload
    "RTCRtpSender._run_rtp (rtcrtpsender.py)",  # aiortc's send: packetize, serialize, SRTP
    "RTCRtpSender._run_rtcp (rtcrtpsender.py)",
    "RTCRtpReceiver._run_rtcp (rtcrtpreceiver.py)",
    "RTCRtpSender._handle_rtcp_packet (rtcrtpsender.py)",
)


class Profiler:
    """py-spy on the server process during the window, if py-spy is installed."""

    def __init__(self, pid: int, seconds: float, output: Path) -> None:
        self._args = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                      "--duration", str(max(1, int(seconds))), "--rate", "500", "--threads",
                      "--format", "raw", "--output", str(output)]
        self._output = output
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)

    async def finish(self) -> dict[str, Any]:
        if self._proc is None:
            return {}
        try:
            await asyncio.wait_for(self._proc.wait(), 20)
        except asyncio.TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        return summarize_profile(self._output) if self._output.exists() else {}


def summarize_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Self and inclusive sample shares by function from py-spy's collapsed stacks."""
    self_time: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in f else f for f in stack.split(";")]
        if frames and frames[0].startswith("thread"):
            frames = frames[1:]
        if not frames or frames[-1].split(" (")[0] in IDLE_LEAVES:
            continue
        total += count
        self_time[frames[-1]] = self_time.get(frames[-1], 0) + count
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + count

    def share(table: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * n / total, 1)) for name, n in ranked]

    focus = {name: round(100 * inclusive.get(name, 0) / max(total, 1), 1) for name in PROFILE_FOCUS}
    return {"samples": total, "self_pct": share(self_time), "inclusive_pct": share(inclusive),
            "focus_inclusive_pct": focus}


async def http_stats(port: int, reset: bool) -> dict[str, Any]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/bench/stats" + ("?reset=1" if reset else "")
    async with aiohttp.ClientSession() as session:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            body: dict[str, Any] = await response.json()
            return body


async def run_scenario(sc: Scenario, media: Path, workdir: Path, window: float, warmup: float,
                       ready_timeout: float, profile: bool = False) -> dict[str, Any]:
    script = "_server.py" if sc.server == "forwarder" else "_relay_server.py"
    tag = f"{sc.server}-{sc.shape}-{sc.size}"
    result: dict[str, Any] = {"server": sc.server, "scenario": sc.label, "shape": sc.shape,
                              "size": sc.size, "video_streams": sc.video_streams}
    server = await Child.start(f"{sc.server} server", [str(BENCH / script), str(sc.participants)],
                               workdir / f"{tag}.server.log")
    clients: Child | None = None
    began = time.monotonic()
    try:
        hello = await server.read(30)
        port = hello["port"]
        config = {"url": f"http://127.0.0.1:{port}", "tokens": hello["tokens"],
                  "publishes": sc.publishes, "mode": sc.shape, "media": str(media),
                  "ready_timeout_s": ready_timeout}
        clients = await Child.start("clients", [str(BENCH / "_clients.py"), json.dumps(config)],
                                    workdir / f"{tag}.clients.log")
        ready = await clients.read(90 + ready_timeout + 10)
        result["setup_s"] = round(time.monotonic() - began, 1)
        if ready.get("event") != "ready":
            try:
                result["diagnostics"] = (await http_stats(port, reset=False)).get("diagnostics")
            except Exception as exc:  # noqa: BLE001 - diagnostics only
                result["diagnostics"] = repr(exc)
            # The baseline "cannot keep up" when every subscription has video, only too
            # slowly, or when it is too busy to finish negotiating in time; anything else
            # (no video at all somewhere) is "not ready", with what was missing.
            slow = bool(ready.get("all_flowing")) or "timed out" in str(ready.get("join_error"))
            result["skipped"] = ("cannot keep up" if sc.server == "mediarelay" and slow
                                 else "not ready")
            if ready.get("join_error"):
                result["join_error"] = ready["join_error"]
            result["missing"] = ready.get("missing")
            return result
        await asyncio.sleep(warmup)
        before = await http_stats(port, reset=True)
        profiler = Profiler(server.proc.pid, window, workdir / f"{tag}.pyspy.txt") if profile else None
        if profiler is not None:
            await profiler.start()
        sys0 = server.cpu_split()[1]
        cpu0, ccpu0, t0 = server.cpu_seconds(), clients.cpu_seconds(), time.monotonic()
        busy0 = machine_busy_seconds()
        await clients.say("start")
        await clients.read(10)
        await asyncio.sleep(window)
        await clients.say("stop")
        received = await clients.read(20)
        cpu1, ccpu1, t1 = server.cpu_seconds(), clients.cpu_seconds(), time.monotonic()
        sys1 = server.cpu_split()[1]
        busy1 = machine_busy_seconds()
        after = await http_stats(port, reset=False)
        if profiler is not None:
            result["profile"] = await profiler.finish()
    finally:
        if clients is not None:
            try:
                await clients.say("quit")
                await clients.read(25)
            except (RuntimeError, asyncio.TimeoutError, ConnectionError) as exc:
                print(f"  (clients did not close cleanly: {exc!r})", file=sys.stderr)
            await clients.stop()
        await server.stop()
    span = t1 - t0
    cpu_pct = (cpu1 - cpu0) / span * 100
    video = [r for r in received["received"] if r["kind"] == "video"]
    audio = [r for r in received["received"] if r["kind"] == "audio"]
    min_video = min(video, key=lambda r: r["fps"] / max(r["publisher_fps"], 1e-9))
    publisher_fps = min(received["publisher_fps"])
    encodes_window = {k: after["encodes"][k] - before["encodes"][k] for k in after["encodes"]}
    counters0, counters1 = before.get("counters", {}), after.get("counters", {})
    other_cpu = ((busy1 - busy0) - (cpu1 - cpu0) - (ccpu1 - ccpu0)) / span * 100
    result.update({
        "window_s": round(span, 2),
        "cpu_pct": round(cpu_pct, 1),
        "cpu_pct_per_stream": round(cpu_pct / sc.video_streams, 2),
        "cpu_sys_pct": round((sys1 - sys0) / span * 100, 1),
        "clients_cpu_pct": round((ccpu1 - ccpu0) / span * 100, 1),
        "other_cpu_pct": round(other_cpu, 1),
        "latency_ms": {kind: {k: round(v, 2) if isinstance(v, float) else v for k, v in s.items()}
                       for kind, s in after["latency"].items()},
        "publisher_fps": round(publisher_fps, 1),
        "min_subscriber_fps": round(min_video["fps"], 1),
        "min_subscriber_ratio": round(min_video["fps"] / max(min_video["publisher_fps"], 1e-9), 3),
        "min_audio_fps": round(min(r["fps"] for r in audio), 1) if audio else 0.0,
        "min_video_kbps": round(min(r["kbps"] for r in video), 0),
        "subscriptions": len(video),
        "subscriber_fps": sorted(round(r["fps"], 1) for r in video),
        "encodes_total": after["encodes"],
        "encodes_window": encodes_window,
        "counters": counters1,
        "window_frames_dropped": counters1.get("frames_dropped", 0) - counters0.get("frames_dropped", 0),
        "window_keyframe_requests": (counters1.get("keyframe_requests", 0)
                                     - counters0.get("keyframe_requests", 0)),
        "window_assembler_skips": skips(after) - skips(before),
        "window_rtp_lost": rtp_lost(after) - rtp_lost(before),
        "window_pts_unmatched": (counters1.get("frames_unmatched", 0)
                                 - counters0.get("frames_unmatched", 0)),
        "diagnostics": after.get("diagnostics"),
        "server_loop_lag": after.get("loop_lag"),
        "clients_loop_lag": received.get("loop_lag"),
        "received": [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}
                     for r in video],
    })
    result["full_rate"] = result["min_subscriber_ratio"] >= FULL_RATE and len(video) == sc.video_streams
    return result


def p95(result: dict[str, Any], kind: str) -> float:
    return float(result.get("latency_ms", {}).get(kind, {}).get("p95_ms", 0.0))


def p50(result: dict[str, Any], kind: str) -> float:
    return float(result.get("latency_ms", {}).get(kind, {}).get("p50_ms", 0.0))


def print_table(results: list[dict[str, Any]]) -> None:
    header = (f"{'server':<10} {'scenario':<8} {'streams':>7} {'CPU%':>6} {'CPU%/str':>8} "
              f"{'video p50/p95 ms':>17} {'audio p50/p95 ms':>17} {'pub fps':>7} "
              f"{'min sub fps':>11} {'full':>4} {'kbps':>5} {'cli CPU%':>8} {'other%':>6} "
              f"{'encodes':>7} {'skip/drop':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        if "skipped" in r:
            print(f"{r['server']:<10} {r['scenario']:<8} {r['video_streams']:>7}  "
                  f"skipped ({r['skipped']})"
                  + (f": {'; '.join(r['missing'][:2])}" if r.get("missing") else "")
                  + (f" [{r['join_error'][:100]}]" if r.get("join_error") else ""))
            continue
        encodes = sum(r["encodes_window"].values())
        print(f"{r['server']:<10} {r['scenario']:<8} {r['video_streams']:>7} {r['cpu_pct']:>6.1f} "
              f"{r['cpu_pct_per_stream']:>8.2f} "
              f"{p50(r, 'video'):>8.2f}/{p95(r, 'video'):<8.2f} "
              f"{p50(r, 'audio'):>8.2f}/{p95(r, 'audio'):<8.2f} "
              f"{r['publisher_fps']:>7.1f} {r['min_subscriber_fps']:>11.1f} "
              f"{'yes' if r['full_rate'] else 'NO':>4} {r['min_video_kbps']:>5.0f} "
              f"{r['clients_cpu_pct']:>8.1f} {r['other_cpu_pct']:>6.0f} {encodes:>7} "
              f"{r['window_assembler_skips']:>4}/{r['window_frames_dropped']:<4}")


BULKY = ("encodes_total", "received", "diagnostics", "profile", "counters")


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    def find(server: str, shape: str, size: int) -> dict[str, Any] | None:
        for r in results:
            if (r["server"], r["shape"], r["size"]) == (server, shape, size) and "skipped" not in r:
                return r
        return None

    fwd1, base1 = find("forwarder", "fanout", 1), find("mediarelay", "fanout", 1)
    cpu = fwd1["cpu_pct_per_stream"] if fwd1 else None
    base_cpu = base1["cpu_pct_per_stream"] if base1 else None
    forwarder = [r for r in results if r["server"] == "forwarder"]
    full = [r["size"] for r in forwarder if r["shape"] == "fanout" and r.get("full_rate")]
    base_full = [r["size"] for r in results
                 if r["server"] == "mediarelay" and r["shape"] == "fanout" and r.get("full_rate")]
    video_encodes = sum(sum(r.get("encodes_total", {}).values()) for r in forwarder)

    def marginal(server: str) -> float | None:
        # CPU each subscriber beyond the first adds: K=1 -> K=4, both at full rate.
        one, four = find(server, "fanout", 1), find(server, "fanout", 4)
        if not one or not four or not four.get("full_rate"):
            return None
        return round((float(four["cpu_pct"]) - float(one["cpu_pct"])) / 3, 2)

    fwd_marginal, base_marginal = marginal("forwarder"), marginal("mediarelay")
    worst_p95 = max((max(p95(r, "video"), p95(r, "audio")) for r in forwarder), default=None)
    return {
        "cpu_pct_per_stream": cpu,
        "baseline_cpu_pct_per_stream": base_cpu,
        "ratio": round(base_cpu / cpu, 1) if cpu and base_cpu else None,
        "p95_ms": round(max(p95(fwd1, "video"), p95(fwd1, "audio")), 2) if fwd1 else None,
        "p95_ms_worst_scenario": round(worst_p95, 2) if worst_p95 is not None else None,
        "marginal_cpu_pct_per_subscriber": fwd_marginal,
        "baseline_marginal_cpu_pct_per_subscriber": base_marginal,
        "marginal_ratio": (round(base_marginal / fwd_marginal, 1)
                           if fwd_marginal and base_marginal else None),
        "video_encodes": video_encodes,
        "max_k_full_rate": max(full, default=0),
        "baseline_max_k_full_rate": max(base_full, default=0),
        "fanout_full_rate": {str(r["size"]): r.get("full_rate", False)
                             for r in forwarder if r["shape"] == "fanout"},
        "scenarios": [
            {k: v for k, v in r.items() if k not in BULKY} for r in results
        ],
    }


MEASUREMENT_NOTES = """\
How each number is measured:
  CPU%        server process utime+stime (/proc/<pid>/stat, all threads) over the window, % of one core
  CPU%/str    CPU% / forwarded video streams (K for 1->K, N*(N-1) for a room; audio rides along)
  p50/p95     time a frame spends in the server. forwarder: room.metrics (the datagram carrying
              the frame's last packet is taken from the socket -> that packet, rewritten, has
              been sent to the subscriber). mediarelay: from the arrival of the last packet
              of the frame, via wrappers around aiortc's jitter buffer
              (last packet of the RTP timestamp), TimestampMapper (-> decoded pts) and each
              subscriber's relayed track (sender asks for the next frame); includes aiortc's
              jitter-buffer hold, decode, MediaRelay queue and encode
  fps         publisher: frames handed to its sender per s; subscriber: marker-bit packets per
              s per received video track (tap, no decoding), minimum over all subscriptions
  full        every subscription >= 90% of the publisher's frame rate
  kbps        lowest received video bitrate (RTP payload) of any subscription
  cli CPU%    the clients process (publishers replay pre-encoded VP8/Opus; subscribers never decode)
  other%      CPU used on the machine by everything else during the window (shared machine;
              /proc/stat minus both processes, so a few % either side of 0 means idle)
  encodes     aiortc encoder encode() calls in the server process during the window
  skip/drop   forwarder only, during the window: VideoFrameAssembler skips (incomplete frame
              given up, then nothing until a keyframe; only while a frame consumer is
              attached) / subscriber restarts after a send was refused (socket backed up)"""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K=1,4 and N=2 only, short windows")
    parser.add_argument("--window", type=float, help="measurement window in seconds")
    parser.add_argument("--only", choices=["forwarder", "mediarelay"], help="run one server only")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the server during each window (needs .venv/bin/py-spy)")
    parser.add_argument("--stall-ms", type=float, default=0.0,
                        help="diagnosis: block the server's event loop this long every 2.5 s")
    parser.add_argument("--client-stall-ms", type=float, default=0.0,
                        help="diagnosis: block the clients' event loop this long every 1.7 s")
    parser.add_argument("--fanout", help="comma-separated K values (default 1,4,8,16)")
    parser.add_argument("--rooms", help="comma-separated N values (default 2,4,6)")
    args = parser.parse_args()
    window = args.window or (4.0 if args.quick else 8.0)
    warmup = 1.0 if args.quick else 2.0
    fanout = [1, 4] if args.quick else [1, 4, 8, 16]
    rooms = [2] if args.quick else [2, 4, 6]
    servers = [args.only] if args.only else ["forwarder", "mediarelay"]
    if args.stall_ms:
        os.environ["BENCH_STALL_MS"] = str(args.stall_ms)  # inherited by the server processes
    if args.client_stall_ms:
        os.environ["BENCH_CLIENT_STALL_MS"] = str(args.client_stall_ms)
    if args.fanout is not None:
        fanout = [int(k) for k in args.fanout.split(",") if k]
    if args.rooms is not None:
        rooms = [int(n) for n in args.rooms.split(",") if n]

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(BENCH))
    from _media import save_clips

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-forwarding-") as tmp:
        media = Path(tmp) / "clips.pickle"
        run_id = time.strftime("forwarding-%Y%m%d-%H%M%S")
        workdir = RESULTS / run_id  # logs and profiles of each process
        workdir.mkdir(parents=True)
        video, audio = save_clips(media)
        print(f"pre-encoded media: VP8 640x480 {len(video.frames)} frames "
              f"({video.duration_s:.0f} s loop, {video.bitrate / 1e6:.2f} Mbit/s, keyframe every 2 s), "
              f"Opus {len(audio.frames)} x 20 ms ({audio.bitrate / 1e3:.0f} kbit/s); "
              f"{os.cpu_count()} CPUs; window {window:.0f} s", flush=True)
        results: list[dict[str, Any]] = []
        for server in servers:
            for shape, sizes in (("fanout", fanout), ("room", rooms)):
                give_up = False
                for size in sizes:
                    sc = Scenario(server, shape, size)
                    if give_up:
                        results.append({"server": server, "scenario": sc.label, "shape": shape,
                                        "size": size, "video_streams": sc.video_streams,
                                        "skipped": "cannot keep up"})
                        print(f"{server} {sc.label}: skipped (cannot keep up)", flush=True)
                        continue
                    ready_timeout = 20.0 if server == "forwarder" else 12.0
                    try:
                        r = await asyncio.wait_for(
                            run_scenario(sc, media, workdir, window, warmup, ready_timeout,
                                         profile=args.profile),
                            SCENARIO_TIMEOUT_S)
                    except Exception as exc:  # report and go on with the next scenario
                        r = {"server": server, "scenario": sc.label, "shape": shape, "size": size,
                             "video_streams": sc.video_streams, "skipped": f"error: {exc!r}"}
                        for log in sorted(workdir.glob(f"{server}-{shape}-{size}.*.log")):
                            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}",
                                  file=sys.stderr)
                    results.append(r)
                    if "skipped" in r:
                        print(f"{server} {sc.label}: skipped ({r['skipped']})", flush=True)
                    else:
                        print(f"{server} {sc.label}: cpu {r['cpu_pct']:.1f}% "
                              f"({r['cpu_pct_per_stream']:.2f}%/stream), video p95 "
                              f"{p95(r, 'video'):.2f} ms, audio p95 {p95(r, 'audio'):.2f} ms, "
                              f"min fps {r['min_subscriber_fps']:.1f}/{r['publisher_fps']:.1f} "
                              f"[{time.monotonic() - started:.0f} s]", flush=True)
                    # The baseline cannot keep up beyond a size where it lost half the frames
                    # (or never got ready): bigger ones would only take longer to fail.
                    if server == "mediarelay" and ("skipped" in r or r["min_subscriber_ratio"] < 0.5):
                        give_up = True
        print()
        print(MEASUREMENT_NOTES)
        print()
        print_table(results)
        for r in results:
            if r.get("profile"):
                print(f"\npy-spy, {r['server']} {r['scenario']} ({r['profile']['samples']} samples):")
                print("  self:      " + "; ".join(f"{n} {p}%" for n, p in r["profile"]["self_pct"]))
                print("  focus (inclusive): " + "; ".join(
                    f"{n.split(' (')[0]} {p}%" for n, p in r["profile"]["focus_inclusive_pct"].items()))
        saved = RESULTS / f"{run_id}.json"
        saved.write_text(json.dumps({"argv": sys.argv[1:], "window_s": window, "results": results},
                                    indent=1))
        print(f"\nfull results (per subscription, diagnostics, profiles): {saved.relative_to(ROOT)}; "
              f"process logs: {workdir.relative_to(ROOT)}/")
        print(f"total {time.monotonic() - started:.0f} s")
        print(json.dumps(summary(results)))


if __name__ == "__main__":
    reexec_in_netns()
    asyncio.run(main())
