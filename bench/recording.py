"""Benchmark: recording forwarded frames as they are, against decoding and re-encoding.

Run:  .venv/bin/python bench/recording.py [--quick] [--streams N] [--baseline-streams M]
          [--window S] [--composite-seconds D] [--composite-people K]
(see bench/README.md).

No peers are needed, so no network namespace: the frames a publisher's camera and
microphone would send are encoded once (bench/_media.py: VP8 640x480 at ~1.2 Mbit/s,
Opus 20 ms) and replayed at real-time pace, one participant being one video and one
audio track. Each measurement runs in a child process of its own, so its CPU time
(utime + stime of every thread, from ``time.process_time``) is its own:

* ``idle``: the pacing loop hands each frame to a sink that does nothing;
* ``recorder``: the same loop hands each frame to ``recordings.Recorder.write``, as
  the forwarder does on the event loop; one writer thread muxes into WebM files;
* ``reencode`` (the baseline of the ratio): the same loop hands each frame to a
  recorder built like ours (one thread, bounded queue) that decodes it and encodes
  it again, VP8 at libvpx's fastest realtime speed and the publisher's bitrate and
  Opus, into WebM: about the cheapest way to record by transcoding;
* ``baseline-idle`` / ``baseline``: aiortc's ``MediaRecorder`` as it comes (the usual
  way to record in aiortc; libvpx at its default, non-realtime settings) fed by
  tracks that decode each frame, as aiortc's receiver does. Its idle run paces the
  same tracks without decoding, into a consumer that drops the frames;
* ``composite``: a synthetic take of K participants (recordings.testing) is built
  into the defense's MP4 (recordings.composite); speed = media seconds / wall seconds.

CPU % of a core per stream = (run - its idle) / window / streams; a re-encoder that
falls behind real time is charged what keeping up would take (CPU / share of the
frames it managed). The last line
printed is one JSON object with the figures; targets: <= 1 % per stream, ratio >= 20.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

TARGET_CPU_PCT = 1.0
TARGET_RATIO = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Frame:
    """What ``Recorder.write`` reads (media.assembler.EncodedFrame's fields)."""

    __slots__ = ("data", "timestamp", "keyframe", "arrived")

    def __init__(self, data: bytes, timestamp: int, keyframe: bool, arrived: float) -> None:
        self.data, self.timestamp, self.keyframe, self.arrived = data, timestamp, keyframe, arrived


class Pacer:
    """Hands every participant's frames to ``deliver(participant, kind, frame)`` at
    real-time pace; successive ``run`` calls continue the same streams."""

    def __init__(self, clips: tuple[Any, Any], streams: int, deliver: Any) -> None:
        self._deliver = deliver
        self._tracks: list[list[Any]] = []
        for p in range(streams):
            offset = p * 0.0037  # participants' frames do not all fall on the same instant
            for clip in clips:
                self._tracks.append([offset, clip.frame_ticks / clip.clock_rate, clip, 0, f"p{p}"])
        self._origin: float | None = None

    async def run(self, seconds: float) -> int:
        """Deliver for ``seconds``; the number of frames handed over."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        if self._origin is None:
            self._origin = start
            for track in self._tracks:
                track[0] += start
        handed = 0
        while True:
            now = loop.time()
            if now - start >= seconds:
                return handed
            for track in self._tracks:
                due, period, clip, n, participant = track
                while due <= now:
                    data, key = clip.frames[n % len(clip.frames)]
                    self._deliver(participant, clip.kind,
                                  Frame(data, 1000 + n * clip.frame_ticks, key, time.perf_counter()))
                    n += 1
                    handed += 1
                    due += period
                track[0], track[3] = due, n
            await asyncio.sleep(max(0.0, min(t[0] for t in self._tracks) - loop.time()))


def thread_cpu(prefix: str) -> float:
    """CPU seconds of this process's threads whose name starts with ``prefix``."""
    total = 0.0
    for thread in threading.enumerate():
        if thread.name.startswith(prefix) and thread.native_id is not None:
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


async def run_recorder(clips: tuple[Any, Any], streams: int, window: float, idle: bool,
                       folder: Path) -> dict[str, Any]:
    from recordings.recorder import Recorder
    from recordings.segment import TrackKey

    recorder = Recorder(folder)
    recorder.start()
    keys = {(f"p{p}", kind): TrackKey(f"p{p}", kind, "VP8" if kind == "video" else "opus",
                                      90_000 if kind == "video" else 48_000)
            for p in range(streams) for kind in ("video", "audio")}

    def deliver(participant: str, kind: str, frame: Frame) -> None:
        if not idle:
            recorder.write(keys[participant, kind], frame)

    pacer = Pacer(clips, streams, deliver)
    await pacer.run(1.0)  # warm-up: files open, first clusters
    cpu, writer = time.process_time(), thread_cpu("recorder:")
    handed = await pacer.run(window)
    cpu, writer = time.process_time() - cpu, thread_cpu("recorder:") - writer
    await asyncio.to_thread(recorder.stop)
    size = sum(p.stat().st_size for p in folder.glob("*.webm"))
    if not idle and (recorder.skipped or recorder.errors):
        raise RuntimeError(f"the recorder skipped {recorder.skipped} frames, "
                           f"{recorder.errors} errors")
    return {"cpu_s": cpu, "writer_cpu_s": writer, "frames": handed, "dropped": recorder.dropped,
            "files": len(recorder.closed_files), "bytes": size}


async def run_baseline(clips: tuple[Any, Any], streams: int, window: float, idle: bool,
                       folder: Path) -> dict[str, Any]:
    import av
    from aiortc import MediaStreamTrack
    from aiortc.contrib.media import MediaRecorder

    class DecodingTrack(MediaStreamTrack):
        """Replays a clip at real-time pace, decoded as aiortc's receiver would."""

        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.kind = clip.kind
            self._clip = clip
            self._codec: Any = av.CodecContext.create("vp8" if clip.kind == "video" else "opus", "r")
            self._n = 0
            self._start: float | None = None
            self.late = 0

        async def recv(self) -> Any:
            clip = self._clip
            loop = asyncio.get_running_loop()
            if self._start is None:
                self._start = loop.time()
            while True:
                due = self._start + self._n * clip.frame_ticks / clip.clock_rate
                delay = due - loop.time()
                # Always give the loop a turn, as a real receiver's queue does: behind
                # time, MediaRecorder's encoding would otherwise starve everything.
                await asyncio.sleep(max(0.0, delay))
                if delay < -0.1:
                    self.late += 1
                data, _ = clip.frames[self._n % len(clip.frames)]
                packet = av.Packet(data)
                packet.pts = self._n * clip.frame_ticks
                packet.time_base = fractions.Fraction(1, clip.clock_rate)
                self._n += 1
                if idle:
                    return packet
                frames = self._codec.decode(packet)
                if frames:
                    frame = frames[0]
                    frame.pts, frame.time_base = packet.pts, packet.time_base
                    return frame

        @property
        def frames(self) -> int:
            return self._n

    tracks = [DecodingTrack(clip) for _ in range(streams) for clip in clips]
    recorders = []
    consumers = []
    if idle:
        async def drain(track: DecodingTrack) -> None:
            while True:
                await track.recv()

        consumers = [asyncio.create_task(drain(t)) for t in tracks]
    else:
        for p in range(streams):
            recorder = MediaRecorder(str(folder / f"p{p}.webm"))
            for track in tracks[2 * p:2 * p + 2]:
                recorder.addTrack(track)
            await recorder.start()
            recorders.append(recorder)
    await asyncio.sleep(1.0)
    cpu, before = time.process_time(), sum(t.frames for t in tracks)
    await asyncio.sleep(window)
    cpu, frames = time.process_time() - cpu, sum(t.frames for t in tracks) - before
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    for recorder in recorders:
        await recorder.stop()
    expected = window * streams * sum(c.clock_rate / c.frame_ticks for c in clips)
    return {"cpu_s": cpu, "frames": frames, "expected_frames": expected,
            "late": sum(t.late for t in tracks)}


class Reencoder:
    """Decode and re-encode every frame (VP8 at libvpx's fastest realtime speed, VBR at
    the publisher's bitrate, Opus with libopus) into one WebM file per participant,
    in one worker thread fed by a bounded queue: about the cheapest way to record by
    transcoding, and built like ``Recorder`` so the two compare.

    Not aiortc's sender settings (CBR, ``cpu-used -6``): with those, libvpx spent up
    to 100 ms on a frame of this noisy clip here, which would flatter the ratio."""

    ENCODER_OPTIONS = {"cpu-used": "8", "deadline": "realtime", "lag-in-frames": "0",
                       "partitions": "0", "static-thresh": "1"}

    def __init__(self, folder: Path, bitrate: int) -> None:
        import queue

        self._folder = folder
        self._bitrate = bitrate
        self._queue: queue.Queue[tuple[str, str, Frame] | None] = queue.Queue(maxsize=2000)
        self._outputs: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, name="reencoder", daemon=True)
        self.dropped = 0
        self.encoded = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def write(self, participant: str, kind: str, frame: Frame) -> None:
        import queue

        try:
            self._queue.put_nowait((participant, kind, frame))
        except queue.Full:
            self.dropped += 1

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _output(self, participant: str, kind: str) -> dict[str, Any]:
        import av

        out = self._outputs.get(f"{participant}-{kind}")
        if out is None:
            # One file per track, as the recorder writes: a container's header needs
            # every stream's encoder open, and audio comes before the first picture.
            container = av.open(str(self._folder / f"{participant}-{kind}.webm"), "w",
                                format="webm")
            stream: Any
            decoder: Any
            if kind == "video":
                stream = container.add_stream("libvpx", rate=30)
                stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
                stream.bit_rate = self._bitrate
                stream.codec_context.time_base = fractions.Fraction(1, 90_000)
                stream.codec_context.gop_size = 3000
                stream.options = dict(self.ENCODER_OPTIONS)
                # One thread each: libvpx's worker threads wait on one another at every
                # frame, which on a shared 2-core machine costs more than it saves.
                stream.codec_context.thread_count = 1
                decoder = av.CodecContext.create("vp8", "r")
                decoder.thread_count = 1
            else:
                stream = container.add_stream("libopus", rate=48_000)
                decoder = av.CodecContext.create("opus", "r")
            out = self._outputs[f"{participant}-{kind}"] = {
                "container": container, "stream": stream, "decoder": decoder}
        return out

    def _run(self) -> None:
        import av

        try:
            while (item := self._queue.get()) is not None:
                participant, kind, frame = item
                out = self._output(participant, kind)
                packet = av.Packet(frame.data)
                clock = 90_000 if kind == "video" else 48_000
                packet.pts = packet.dts = frame.timestamp
                packet.time_base = fractions.Fraction(1, clock)
                for decoded in out["decoder"].decode(packet):
                    decoded.pts, decoded.time_base = frame.timestamp, packet.time_base
                    out["container"].mux(out["stream"].encode(decoded))
                    self.encoded += 1
            for out in self._outputs.values():
                out["container"].mux(out["stream"].encode(None))
                out["container"].close()
        except BaseException as exc:
            self.error = exc
            raise


async def run_reencoder(clips: tuple[Any, Any], streams: int, window: float,
                        folder: Path) -> dict[str, Any]:
    reencoder = Reencoder(folder, int(clips[0].bitrate))
    reencoder.start()
    pacer = Pacer(clips, streams, reencoder.write)
    await pacer.run(1.0)
    cpu, before = time.process_time(), reencoder.encoded
    handed = await pacer.run(window)
    cpu, encoded = time.process_time() - cpu, reencoder.encoded - before
    await asyncio.to_thread(reencoder.stop)
    if reencoder.error is not None:
        raise RuntimeError("the re-encoder failed") from reencoder.error
    return {"cpu_s": cpu, "frames": encoded, "expected_frames": handed,
            "dropped": reencoder.dropped}


def run_composite(people: int, seconds: float, folder: Path) -> dict[str, Any]:
    from recordings.composite import Input, Spec, build_composite
    from recordings.sources import scan_day
    from recordings.testing import FakeTrack, write_take

    wall_start = 1_800_000_000.0
    tracks = []
    for p in range(people):
        tracks.append(FakeTrack(f"p{p}", "video", 0, seconds + 1, width=640, height=480,
                                first_number=1000 * p))
        tracks.append(FakeTrack(f"p{p}", "audio", 0, seconds + 1, frequency=300 + 100 * p,
                                amplitude=0.3 if p == 0 else 0.05))
    write_take(folder / "take-1", tracks, wall_start=wall_start)
    spec = Spec(output=folder / "defense.mp4", start=wall_start + 0.5,
                end=wall_start + 0.5 + seconds,
                inputs=tuple(Input(s.participant, s.kind, s.path, s.wall_start)
                             for s in scan_day(folder)),
                order=tuple(f"p{p}" for p in range(people)),
                captions=((wall_start, "Talk"),), chapters=(("Talk", wall_start, wall_start + seconds),))
    cpu, wall = time.process_time(), time.monotonic()
    result = build_composite(spec)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return {"media_s": result.duration_s, "wall_s": wall, "cpu_s": cpu, "frames": result.frames,
            "bytes": spec.output.stat().st_size}


def child(args: argparse.Namespace) -> None:
    """One measurement; prints its figures as the last line."""
    from _media import load_clips

    clips = load_clips(Path(args.clips))
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        folder = Path(tmp)
        if args.run in ("idle", "recorder"):
            out = asyncio.run(run_recorder(clips, args.streams, args.window, args.run == "idle",
                                           folder))
        elif args.run == "reencode":
            out = asyncio.run(run_reencoder(clips, args.streams, args.window, folder))
        elif args.run in ("baseline-idle", "baseline"):
            out = asyncio.run(run_baseline(clips, args.streams, args.window,
                                           args.run == "baseline-idle", folder))
        else:
            out = run_composite(args.people, args.seconds, folder)
    print(json.dumps(out), flush=True)


def measure(run: str, clips: Path, **options: Any) -> dict[str, Any]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", run, "--clips", str(clips)]
    for name, value in options.items():
        argv += [f"--{name}", str(value)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{run} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows, small composite")
    parser.add_argument("--streams", type=int, default=8, help="participants recorded (8)")
    parser.add_argument("--baseline-streams", type=int, default=1,
                        help="participants the baseline records (1)")
    parser.add_argument("--window", type=float, help="measurement window, s (20; quick 8)")
    parser.add_argument("--composite-seconds", type=float, help="media length (60; quick 15)")
    parser.add_argument("--composite-people", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--clips", help=argparse.SUPPRESS)
    parser.add_argument("--people", type=int, default=4, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=15, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.run = args.child
        return child(args)
    window: float = args.window or (8.0 if args.quick else 20.0)
    seconds: float = args.composite_seconds or (15.0 if args.quick else 60.0)
    from _media import save_clips

    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        clips = Path(tmp) / "clips.pickle"
        video, audio = save_clips(clips)
        print(f"pre-encoded media: VP8 640x480 {video.bitrate / 1e6:.2f} Mbit/s, Opus "
              f"{audio.bitrate / 1e3:.0f} kbit/s; {os.cpu_count()} CPUs; window {window:.0f} s",
              flush=True)
        n: int = args.streams
        m: int = args.baseline_streams
        idle = measure("idle", clips, streams=n, window=window)
        rec = measure("recorder", clips, streams=n, window=window)
        print(f"recorder, {n} participants: {100 * rec['cpu_s'] / window:.2f}% of a core "
              f"(idle pacing {100 * idle['cpu_s'] / window:.2f}%), writer thread "
              f"{100 * rec['writer_cpu_s'] / window:.2f}%, dropped {rec['dropped']}", flush=True)
        reenc = measure("reencode", clips, streams=m, window=window)
        print(f"decode + re-encode (VP8 realtime at its fastest, Opus), {m} participants: "
              f"{100 * reenc['cpu_s'] / window:.1f}% of a core, {reenc['frames']} of "
              f"{reenc['expected_frames']} frames re-encoded, dropped {reenc['dropped']}",
              flush=True)
        base_idle = measure("baseline-idle", clips, streams=m, window=window)
        base = measure("baseline", clips, streams=m, window=window)
        print(f"aiortc MediaRecorder (decode + libvpx defaults), {m} participants: "
              f"{100 * base['cpu_s'] / window:.1f}% of a core (idle "
              f"{100 * base_idle['cpu_s'] / window:.2f}%), {base['frames']:.0f} of "
              f"{base['expected_frames']:.0f} frames", flush=True)
        comp = measure("composite", clips, people=args.composite_people, seconds=seconds)
        print(f"composite of {args.composite_people} participants (640x480 each -> 960x540 "
              f"H.264 15 fps + AAC): {comp['media_s']:.0f} s of media in {comp['wall_s']:.1f} s "
              f"(CPU {comp['cpu_s']:.1f} s)", flush=True)
    per_stream = 100 * max(0.0, rec["cpu_s"] - idle["cpu_s"]) / window / n
    # Re-encoders that fall behind are charged what keeping up would cost them.
    def per_realtime_stream(run: dict[str, Any], idle_s: float) -> float:
        done = max(1e-9, float(run["frames"]) / float(run["expected_frames"]))
        return 100 * max(0.0, float(run["cpu_s"]) - idle_s) / min(1.0, done) / window / m

    reenc_per_stream = per_realtime_stream(reenc, idle["cpu_s"] * m / n)
    base_per_stream = per_realtime_stream(base, base_idle["cpu_s"])
    ratio = reenc_per_stream / per_stream if per_stream > 0 else float("inf")
    summary = {
        "cpu_pct_per_stream": round(per_stream, 3),
        "writer_thread_cpu_pct_per_stream": round(100 * rec["writer_cpu_s"] / window / n, 3),
        "baseline_cpu_pct_per_stream": round(reenc_per_stream, 2),
        "ratio": round(ratio, 1),
        "baseline": "decode + VP8 (libvpx realtime, fastest speed) + Opus re-encode",
        "baseline_kept_up": reenc["frames"] >= 0.95 * reenc["expected_frames"],
        "mediarecorder_cpu_pct_per_stream": round(base_per_stream, 1),
        "mediarecorder_kept_up": base["frames"] >= 0.95 * base["expected_frames"],
        "composite_speed_x_realtime": round(comp["media_s"] / comp["wall_s"], 2),
        "composite_cpu_s_per_media_s": round(comp["cpu_s"] / comp["media_s"], 3),
        "streams": n, "baseline_streams": m, "window_s": window,
        "stream": "one participant: VP8 640x480 ~1.2 Mbit/s + Opus",
        "dropped": rec["dropped"],
        "targets_met": per_stream <= TARGET_CPU_PCT and ratio >= TARGET_RATIO,
    }
    print(f"per stream: recorder {per_stream:.3f}% vs re-encoding {reenc_per_stream:.1f}% of a "
          f"core (ratio {ratio:.0f}; targets <= {TARGET_CPU_PCT}% and >= {TARGET_RATIO:.0f}); "
          f"composite {summary['composite_speed_x_realtime']}x real time")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
