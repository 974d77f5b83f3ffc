"""Benchmark: how many defense rooms of 8 one machine holds at full frame rate, recorded.

Run:  .venv/bin/python bench/capacity.py [--quick] [--max-rooms R] [--seconds S]
          [--layer-selection on|off|both] [--workers N] [--processes-per-room P]
          [--server-cpus LIST]
(see bench/README.md).

It re-executes itself inside scripts/netns-run, as forwarding.py does. For R = 1, 2,
3, ... it starts the real ``defense-room serve`` on a fresh data folder (with
``--workers N`` only when ``serve --help`` lists it), creates R defense days through
``POST /api/days``, and puts eight people in each: chair, four members, secretary and
the student's supervisor with 640x360 cameras at ~500 kbit/s, the student at 1280x720
~1.5 Mbit/s, Opus for all; pre-encoded and replayed (bench/_media.py), in load
generator processes of their own (bench/_room_clients.py, two per room by default).
Each day's secretary opens the sitting through the API, which turns the recording on.
Over a window it measures:

* server CPU: utime+stime of the serve process and all its descendants (the workers),
  /proc/<pid>/stat, % of one core, and per room;
* frame rate: complete frames each subscription received per second against the
  rate its publisher sent (bench/_clients.py's counting); a room is at full rate when
  every one of its 56 subscriptions got >= 90 %;
* forwarding delay p50/p95: the product's own ``room.metrics`` of every room, read
  from each server process (bench/_capacity_stats.py), as forwarding.py reads it;
* load generators: each one's CPU; one above 80 % of a core may be the bottleneck,
  and a line says so. Everything else on the machine is reported as ``other``.

After the window everyone leaves, the server stops, and every room's recording is
decoded: each of the eight people must have a video and an audio stream with frames.
R grows until a room falls below full rate (or ``--max-rooms``). The last line is one
JSON object: rooms_full_rate, server_cpu_pct_per_room, p95_ms, recorded_streams_ok,
cores, and the same per layer-selection setting when both were run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from _capacity_measure import (  # noqa: E402
    check_recordings,
    drops_between,
    drops_of,
    process_tree_cpu,
    tree_delta,
    udp_counters,
)
from _capacity_server import (  # noqa: E402
    create_days,
    free_port,
    has_layer_selection,
    open_sittings,
    serve_supports_workers,
    server_stats,
    start_server,
    wait_healthy,
    write_config,
)
from forwarding import NETNS_RUN, Child, machine_busy_seconds  # noqa: E402

import _profile  # noqa: E402

RESULTS = BENCH / "results"  # git-ignored
FULL_RATE = 0.9
CLIENT_BUSY_PCT = 80.0
STEP_TIMEOUT_S = 420.0
LOAD_DROPS_SHARE = 0.01


def reexec_in_netns() -> None:
    if os.environ.get("DEFENSE_ROOM_NETNS") != "1":
        os.execv(str(NETNS_RUN), [str(NETNS_RUN), sys.executable, str(Path(__file__).resolve()),
                                  *sys.argv[1:]])


# -- one step: R rooms -----------------------------------------------------------------


async def run_step(rooms_count: int, args: argparse.Namespace, media: Path, workdir: Path,
                   layer_selection: bool | None, workers: int | None) -> dict[str, Any]:
    layers = 1 if args.no_temporal_layers else 3
    tag = f"R{rooms_count}-ls-{'na' if layer_selection is None else int(layer_selection)}"
    step_dir = workdir / tag
    stats_dir = step_dir / "stats"
    stats_dir.mkdir(parents=True)
    data_dir = step_dir / "data"
    organizer = secrets.token_urlsafe(24)
    from storage.invites import hash_token

    port = free_port()
    write_config(step_dir / "config.yaml", data_dir, port, hash_token(organizer), layer_selection)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"rooms": rooms_count, "layer_selection": layer_selection,
                              "workers": workers,
                              "server_cpus": sorted(args.server_cpus or ()) or None,
                              "load_cpus": sorted(args.load_cpus or ()) or None}
    server = await start_server(step_dir / "config.yaml", stats_dir, step_dir / "server.log",
                                workers, args.server_cpus)
    clients: list[Child] = []
    began = time.monotonic()
    try:
        await wait_healthy(base, server)
        rooms = await create_days(base, organizer, rooms_count)
        speech_epoch = time.time()  # the rooms' speaker turns count from here
        for n, share in enumerate(load_shares(rooms, args.processes_per_room)):
            config = {"url": base, "rooms": share, "media": str(media),
                      "ready_timeout_s": args.ready_timeout,
                      # The page reports its tiles whenever the server knows the
                      # setting; with it off the server forwards everything anyway.
                      "layer_selection": layer_selection is not None,
                      "inline_receive": not args.aiortc_receive,
                      "subscriber_remb": args.subscriber_remb,
                      "audio": args.audio, "speech_epoch": speech_epoch,
                      "turn_s": args.turn_s}
            clients.append(await Child.start(
                f"load generator {n}", [str(BENCH / "_room_clients.py"), json.dumps(config)],
                step_dir / f"clients-{n}.log", args.load_cpus))
        readies = await asyncio.gather(*(c.read(120 + args.ready_timeout) for c in clients))
        result["setup_s"] = round(time.monotonic() - began, 1)
        not_ready = [r for r in readies if r.get("event") != "ready"]
        if not_ready:
            result["skipped"] = "not ready"
            result["missing"] = [m for r in not_ready for m in (r.get("missing") or [])][:6]
            result["join_error"] = next((r["join_error"] for r in not_ready
                                         if r.get("join_error")), None)
            return result
        await open_sittings(base, rooms)
        await asyncio.sleep(args.warmup)
        stats0 = await server_stats(stats_dir, reset=True)
        cpu0, t0 = process_tree_cpu(server.proc.pid), time.monotonic()
        ccpu0 = [c.cpu_seconds() for c in clients]
        busy0 = machine_busy_seconds()
        udp0 = udp_counters()
        owners = {"server": list(process_tree_cpu(server.proc.pid)),
                  "load generators": [c.proc.pid for c in clients]}
        drops0 = drops_of(owners)
        for c in clients:
            await c.say("start")
        await asyncio.gather(*(c.read(20) for c in clients))
        threads0 = _profile.thread_cpu(list(process_tree_cpu(server.proc.pid)))
        sampler = (await _profile.start(args.profile, server.proc.pid, args.seconds,
                                        step_dir / "profile.txt") if args.profile else None)
        recorder = (await _profile.start_perf(args.perf, list(process_tree_cpu(server.proc.pid)),
                                              args.seconds, step_dir / "perf.data")
                    if args.perf else None)
        await asyncio.sleep(args.seconds)
        for c in clients:
            await c.say("stop")
        windows = await asyncio.gather(*(c.read(30) for c in clients))
        cpu1, t1 = process_tree_cpu(server.proc.pid), time.monotonic()
        ccpu1 = [c.cpu_seconds() for c in clients]
        busy1 = machine_busy_seconds()
        udp1 = udp_counters()
        drops1 = drops_of(owners)
        stats1 = await server_stats(stats_dir, reset=False)
        threads = _profile.thread_split(
            threads0, _profile.thread_cpu(list(process_tree_cpu(server.proc.pid))),
            time.monotonic() - t0)
        result["server_threads"] = threads
        if recorder is not None:
            _, err = await asyncio.wait_for(recorder.communicate(), 60)
            result["perf"] = (await _profile.perf_report(args.perf, step_dir / "perf.data")
                              if (step_dir / "perf.data").exists() else
                              {"error": err.decode(errors="replace")[-400:]})
        if sampler is not None:
            _, err = await asyncio.wait_for(sampler.communicate(), 30)
            profile = step_dir / "profile.txt"
            result["profile"] = ({**_profile.summarize(profile), "threads": threads}
                                 if profile.exists() else
                                 {"error": err.decode(errors="replace")[-400:]})
    finally:
        for c in clients:
            try:
                await c.say("quit")
                await c.read(30)
            except (RuntimeError, asyncio.TimeoutError, ConnectionError) as exc:
                print(f"  ({c.name} did not close cleanly: {exc!r})", file=sys.stderr)
            await c.stop()
        await server.stop(timeout=40)
    span = t1 - t0
    server_cpu = tree_delta(cpu0, cpu1)
    client_pcts = [(b - a) / span * 100 for a, b in zip(ccpu0, ccpu1)]
    other = ((busy1 - busy0) - server_cpu - sum(b - a for a, b in zip(ccpu0, ccpu1))) / span * 100
    per_room = [room_figures(day_id, shares, rooms, layer_selection, layers)
                for day_id, shares in by_day(windows).items()]
    delays = [room for process in stats1 for room in process["rooms"]]
    result["server_rooms"] = delays  # forwarding delay and counters, per room
    encodes = {k: sum(p["encodes"].get(k, 0) for p in stats1) - sum(p["encodes"].get(k, 0)
                                                                   for p in stats0)
               for k in ("vp8", "h264", "opus")}
    recorded = check_recordings(data_dir / "recordings", rooms)
    if not args.keep_data:
        shutil.rmtree(data_dir / "recordings", ignore_errors=True)  # tens of MB per room

    def worst(kind: str, q: str) -> float:
        return max((float(d["latency"][kind][q]) for d in delays
                    if d["latency"][kind]["n"]), default=0.0)

    result.update({
        "window_s": round(span, 1),
        "server_processes": len(stats1),
        "server_cpu_pct": round(server_cpu / span * 100, 1),
        "server_cpu_pct_per_room": round(server_cpu / span * 100 / rooms_count, 1),
        "clients_cpu_pct": [round(p, 1) for p in client_pcts],
        "other_cpu_pct": round(other, 1),
        "clients_loop_lag": [w.get("loop_lag") for w in windows],
        "udp_datagrams": udp1.get("InDatagrams", 0) - udp0.get("InDatagrams", 0),
        "udp_receive_buffer_drops": udp1.get("RcvbufErrors", 0) - udp0.get("RcvbufErrors", 0),
        # Whose sockets dropped them (a socket closed in between is not counted).
        "udp_drops_by": drops_between(drops0, drops1),
        "per_room": per_room,
        "full_rate": len(per_room) == rooms_count and all(r["full_rate"] for r in per_room),
        "min_ratio": min((r["min_ratio"] for r in per_room), default=0.0),
        "video_p50_ms": round(worst("video", "p50_ms"), 2),
        "video_p95_ms": round(worst("video", "p95_ms"), 2),
        "audio_p95_ms": round(worst("audio", "p95_ms"), 2),
        "p95_ms": round(max(worst("video", "p95_ms"), worst("audio", "p95_ms")), 2),
        "delay_samples": sum(d["latency"][k]["n"] for d in delays for k in ("video", "audio")),
        "encodes_window": encodes,
        "recorded": recorded,
        "busy_clients": [n for n, p in enumerate(client_pcts) if p > CLIENT_BUSY_PCT],
        # The publishers' own pace: a load generator that falls behind sends fewer
        # frames, and its rooms would look slower than the server made them.
        "publishers_behind": [x["day_id"] for x in per_room
                              if x["publisher_fps"] < FULL_RATE * 30],
    })
    # Datagrams the load generators' own sockets dropped: they could not keep up,
    # so the frames the server sent are not counted.
    lost = result["udp_drops_by"].get("load generators", 0)
    load_side = sum(client_pcts) + max(result["other_cpu_pct"], 0)
    result.update({
        "load_side_cpu_pct": round(load_side, 1),
        "load_generators_dropped": lost > LOAD_DROPS_SHARE * max(result["udp_datagrams"] + lost, 1),
        # With --server-cpus: the load generators' own CPUs (everything but the
        # server's processes counts there) ran out.
        "load_cores_saturated": bool(args.load_cpus) and load_side > 90 * len(args.load_cpus),
    })
    return result


def parse_cpus(text: str) -> set[int]:
    """``"0,2-3"`` -> {0, 2, 3} (taskset's list form)."""
    cpus: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise ValueError(f"{text!r} is not a CPU list such as 0 or 0,1 or 0-3")
        cpus.update(range(int(first), int(last or first) + 1))
    if not cpus:
        raise ValueError(f"{text!r} names no CPU")
    return cpus


def format_cpus(cpus: set[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def load_shares(rooms: list[dict[str, Any]], processes_per_room: int) -> list[list[dict[str, Any]]]:
    """What each load-generator process runs: a share of one room's eight people."""
    shares = []
    for room in rooms:
        count = len(room["people"])
        for part in range(processes_per_room):
            mine = list(range(part * count // processes_per_room,
                              (part + 1) * count // processes_per_room))
            if mine:
                shares.append([{**room, "mine": mine}])
    return shares


def by_day(windows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The load generators' window results, grouped by day."""
    days: dict[int, list[dict[str, Any]]] = {}
    for window in windows:
        for share in window["rooms"]:
            days.setdefault(int(share["day_id"]), []).append(share)
    return days


def room_figures(day_id: int, shares: list[dict[str, Any]], rooms: list[dict[str, Any]],
                 layer_selection: bool | None, layers: int) -> dict[str, Any]:
    """One room's frame rates: each subscription against what its publisher sent
    (both may be in different load-generator processes)."""
    sent = {pid: fps for share in shares for pid, fps in share["sent"].items()}
    received = [r for share in shares for r in share["received"]]
    for r in received:
        r["publisher_fps"] = sent.get(r["publisher"], {}).get(f"{r['kind']}_fps", 0.0)
    video = [r for r in received if r["kind"] == "video"]
    audio = [r for r in received if r["kind"] == "audio"]
    for r in received:
        share = needed_share(r, layer_selection, layers) if r["kind"] == "video" else 1.0
        r["ratio"] = r["fps"] / max(r["publisher_fps"] * share, 1e-9)
    ratios = [r["ratio"] for r in video]
    room = next(r for r in rooms if r["day_id"] == day_id)
    student = str(next(p["person_id"] for p in room["people"] if p["role"] == "student"))
    people = len(room["people"])
    return {
        "day_id": day_id,
        "subscriptions": len(video),
        "min_ratio": round(min(ratios, default=0.0), 3),
        "min_fps": round(min((r["fps"] for r in video), default=0.0), 1),
        "student_min_fps": round(min((r["fps"] for r in video if r["publisher"] == student),
                                     default=0.0), 1),
        "publisher_fps": round(min((s["video_fps"] for s in sent.values()), default=0.0), 1),
        "min_audio_fps": round(min((r["fps"] for r in audio), default=0.0), 1),
        # Audio packets each subscription got of what its publisher sent: every one,
        # speech and DTX alike (a lower ratio would clip someone's speech).
        "min_audio_ratio": round(min((r["ratio"] for r in audio), default=0.0), 3),
        "audio_packets_per_s": round(sum(s["audio_fps"] for s in sent.values()), 1),
        "video_kbps": round(sum(r["kbps"] for r in video), 0),
        "refused": [e for share in shares for e in share.get("refused") or []],
        "lowest": sorted(({"subscriber": r["subscriber"], "publisher": r["publisher"],
                           "kind": r["kind"], "tile": r["tile"], "fps": round(r["fps"], 1),
                           "publisher_fps": round(r["publisher_fps"], 1),
                           "ratio": round(r["ratio"], 3)} for r in received),
                         key=lambda r: r["ratio"])[:6],
        "full_rate": (len(video) == people * (people - 1)
                      and min(ratios, default=0.0) >= FULL_RATE),
    }


def needed_share(subscription: dict[str, Any], layer_selection: bool | None,
                 layers: int) -> float:
    """The share of the publisher's frames a subscription should get: all of them,
    except for a small tile when the server selects layers: the base layer (1/4 of
    the frames in L1T3) is then enough, and any layer above it is welcome."""
    if layer_selection and subscription.get("tile") == "small" and layers > 1:
        return 1 / 4
    return 1.0


def print_step(r: dict[str, Any], started: float) -> None:
    label = f"R={r['rooms']}" + ("" if r["layer_selection"] is None else
                                 f" layer selection {'on' if r['layer_selection'] else 'off'}")
    if "skipped" in r:
        print(f"{label}: {r['skipped']}: {'; '.join(r.get('missing') or [])} "
              f"{r.get('join_error') or ''} [{time.monotonic() - started:.0f} s]", flush=True)
        return
    rates = ", ".join(f"{x['min_fps']:.1f}/{x['publisher_fps']:.1f}" for x in r["per_room"])
    audio_rates = "/".join(f"{x['audio_packets_per_s']:.0f}" for x in r["per_room"])
    print(f"{label}: server CPU {r['server_cpu_pct']:.1f}% ({r['server_cpu_pct_per_room']:.1f}% "
          f"per room, {r['server_processes']} process(es)), min fps per room [{rates}], "
          f"{'full rate' if r['full_rate'] else 'BELOW full rate'}, audio "
          f"{audio_rates} "
          f"packets/s sent per room, p95 video "
          f"{r['video_p95_ms']:.2f} / audio {r['audio_p95_ms']:.2f} ms, recorded "
          f"{r['recorded']['ok']}/{r['recorded']['expected']} streams (video at least "
          f"{r['recorded']['min_video_fps']:.1f} frames/s), load generators "
          f"{'/'.join(f'{p:.0f}' for p in r['clients_cpu_pct'])}% CPU, other "
          f"{r['other_cpu_pct']:.0f}% [{time.monotonic() - started:.0f} s]", flush=True)
    if "profile" in r:
        if "error" in r["profile"]:
            print(f"  profile failed: {r['profile']['error']}", flush=True)
        else:
            _profile.print_summary(r["profile"])
    if "perf" in r:
        _profile.print_perf(r["perf"])
    for n in r["busy_clients"]:
        print(f"  load generator {n} used {r['clients_cpu_pct'][n]:.0f}% of a core (over "
              f"{CLIENT_BUSY_PCT:.0f}%): it may be the bottleneck, not the server; use "
              f"more --processes-per-room or a machine with more cores", flush=True)
    if r["load_generators_dropped"]:
        print(f"  the load generators' sockets dropped "
              f"{r['udp_drops_by']['load generators']} datagrams (over "
              f"{LOAD_DROPS_SHARE:.0%}): at this R they, not the server, were the limit",
              flush=True)
    for day in r["publishers_behind"]:
        print(f"  day {day}: its publishers sent under {FULL_RATE * 30:.0f} frames/s: the "
              f"load generator fell behind (the ratios are taken against what they sent)",
              flush=True)
    if r.get("server_cpus"):
        server_cores, load_cores = len(r["server_cpus"]), len(r["load_cpus"])
        if r["server_cpu_pct"] > 90 * server_cores:
            print(f"  the server's {server_cores} CPU(s) were saturated "
                  f"({r['server_cpu_pct']:.0f}% of {server_cores * 100}%)", flush=True)
        if r["load_cores_saturated"]:
            print(f"  the load generators' {load_cores} CPU(s) were saturated "
                  f"({r['load_side_cpu_pct']:.0f}% "
                  f"of {load_cores * 100}%, the rest of the machine included): they, not the "
                  f"server, may have been the limit", flush=True)
    else:
        cores = os.cpu_count() or 1
        total = r["server_cpu_pct"] + r["load_side_cpu_pct"]
        if total > 90 * cores:
            print(f"  the machine was saturated ({total:.0f}% of {cores * 100}%): server and "
                  f"load generators share its cores, so this R measures the machine, not the "
                  f"server alone", flush=True)
    if r["udp_receive_buffer_drops"]:
        print(f"  {r['udp_receive_buffer_drops']} of {r['udp_datagrams']} UDP datagrams were "
              f"dropped by full receive buffers: a process (server or load generator) did not "
              f"get a core in time ({', '.join(f'{k}: {v}' for k, v in r['udp_drops_by'].items())})",
              flush=True)
    for x in r["per_room"]:
        if x["min_audio_ratio"] < FULL_RATE:
            print(f"  day {x['day_id']}: an audio subscription got only "
                  f"{x['min_audio_ratio']:.0%} of its publisher's packets", flush=True)
        if x["refused"]:
            print(f"  day {x['day_id']}: the server refused: {'; '.join(x['refused'][:3])}",
                  flush=True)
    if r["recorded"]["failed"]:
        print(f"  recording problems: {r['recorded']['failed'][:3]}", flush=True)


def summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    full = [s for s in steps if s.get("full_rate")]
    best = max(full, key=lambda s: s["rooms"]) if full else None
    measured = [s for s in steps if "skipped" not in s]
    return {
        "rooms_full_rate": best["rooms"] if best else 0,
        "server_cpu_pct_per_room": best["server_cpu_pct_per_room"] if best else None,
        "p95_ms": best["p95_ms"] if best else None,
        "recorded_streams_ok": bool(measured) and all(s["recorded"]["all_ok"] for s in measured),
        "recorded_streams": (f"{sum(s['recorded']['ok'] for s in measured)}/"
                             f"{sum(s['recorded']['expected'] for s in measured)}"),
        "recorded_min_video_fps": best["recorded"]["min_video_fps"] if best else None,
        "load_generator_busy": any(s.get("busy_clients") or s.get("publishers_behind")
                                   or s.get("load_generators_dropped")
                                   or s.get("load_cores_saturated") for s in measured),
        "video_encodes": sum(sum(s["encodes_window"].values()) for s in measured),
    }


async def ramp(args: argparse.Namespace, media: Path, workdir: Path,
               layer_selection: bool | None, workers: int | None,
               started: float) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for rooms_count in range(1, args.max_rooms + 1):
        try:
            step = await asyncio.wait_for(
                run_step(rooms_count, args, media, workdir, layer_selection, workers),
                STEP_TIMEOUT_S + args.seconds)
        except Exception as exc:  # report it and stop this ramp
            step = {"rooms": rooms_count, "layer_selection": layer_selection,
                    "skipped": f"error: {exc!r}"[:800]}
        steps.append(step)
        print_step(step, started)
        if not step.get("full_rate") and not args.keep_going:
            break
    return steps


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="at most 2 rooms, 5 s windows (a smoke run)")
    parser.add_argument("--max-rooms", type=int, help="stop at this R (default 12; quick 2)")
    parser.add_argument("--seconds", type=float, help="window per step (default 15; quick 5)")
    parser.add_argument("--layer-selection", choices=["on", "off", "both"],
                        help="run with media.layer_selection on, off or both (default: both "
                             "when the server has the setting, otherwise without it)")
    parser.add_argument("--workers", type=int,
                        help="defense-room serve --workers N (default: the server's own "
                             "default; ignored, with a note, if serve has no --workers)")
    parser.add_argument("--server-cpus", metavar="LIST",
                        help="run the server on these CPUs only (e.g. 0 or 0,1 or 0-3) and the "
                             "load generators on the others, so that each has cores of its "
                             "own (serve's default workers: one per server CPU)")
    parser.add_argument("--processes-per-room", type=int, default=2,
                        help="load-generator processes per room, each with a share of its "
                             "eight people (default 2)")
    parser.add_argument("--aiortc-receive", action="store_true",
                        help="subscribers receive on aiortc's own path, as bench/_clients.py "
                             "does, instead of the product's inline one (media.hooks)")
    parser.add_argument("--ready-timeout", type=float, default=40.0,
                        help="seconds for every subscription to get media (default 40)")
    parser.add_argument("--subscriber-remb", action="store_true",
                        help="subscribers estimate their bandwidth and send REMB, as "
                             "browsers do (off by default: it costs the load generators "
                             "about a fifth of a core per room)")
    parser.add_argument("--no-temporal-layers", action="store_true",
                        help="publish VP8 without temporal layers (default: L1T3, as the "
                             "room page asks Chromium for)")
    parser.add_argument("--audio", choices=["dtx", "continuous"], default="dtx",
                        help="dtx (default): one person speaks at a time, the other "
                             "microphones send what Chromium sends with Opus DTX "
                             "(bench/_speech.py); continuous: every microphone a tone")
    parser.add_argument("--turn-s", type=float, default=20.0,
                        help="seconds each speaker speaks with --audio dtx (default 20)")
    parser.add_argument("--profile", metavar="PY_SPY",
                        help="sample the server's processes with this py-spy binary over "
                             "each window and print where their CPU went (bench/_profile.py)")
    parser.add_argument("--perf", metavar="PERF",
                        help="also record the server's processes with this perf binary "
                             "(on-CPU samples by library and symbol; bench/_profile.py)")
    parser.add_argument("--keep-going", action="store_true",
                        help="go on raising R after a step below full rate (diagnosis)")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep each step's recordings (deleted once checked otherwise)")
    args = parser.parse_args()
    args.max_rooms = args.max_rooms or (2 if args.quick else 12)
    args.seconds = args.seconds or (5.0 if args.quick else 15.0)
    args.warmup = 2.0 if args.quick else 3.0
    if not (args.max_rooms >= 1 and args.seconds > 0 and 1 <= args.processes_per_room <= 8):
        parser.error("--max-rooms must be at least 1, --seconds above 0, --processes-per-room "
                     "from 1 to 8")
    args.load_cpus = None
    if args.server_cpus is not None:
        usable = os.sched_getaffinity(0)
        try:
            args.server_cpus = parse_cpus(args.server_cpus)
        except ValueError as exc:
            parser.error(f"--server-cpus: {exc}")
        if not args.server_cpus <= usable or not usable - args.server_cpus:
            parser.error(f"--server-cpus must name some of the CPUs this bench may use "
                         f"({format_cpus(usable)}) and leave at least one for the load "
                         f"generators")
        args.load_cpus = usable - args.server_cpus

    sys.path.insert(0, str(ROOT))
    from _media import encode_audio, encode_video
    from _speech import encode_silence

    started = time.monotonic()
    available = has_layer_selection()
    wanted = args.layer_selection or ("both" if available else "off")
    if wanted != "off" and not available:
        parser.error("this server has no media.layer_selection setting (config.yaml): "
                     "run with --layer-selection off")
    choices: dict[str, list[bool | None]] = {"on": [True], "off": [False], "both": [False, True]}
    settings = [None] if not available else choices[wanted]
    workers: int | None = None
    multi = serve_supports_workers()
    if multi:
        workers = args.workers  # None: serve's default (one per core)
        workers_note = f"--workers {workers}" if workers else "serve's default workers"
    else:
        workers_note = "one process (serve has no --workers yet)"
        if args.workers:
            print(f"note: --workers {args.workers} ignored: defense-room serve has no "
                  "--workers option yet", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as tmp:
        run_id = time.strftime("capacity-%Y%m%d-%H%M%S")
        workdir = RESULTS / run_id  # configs, logs and data of each step
        workdir.mkdir(parents=True)
        media = Path(tmp) / "clips.pickle"
        layered = not args.no_temporal_layers

        def camera(width: int, height: int, bitrate: int, with_layers: bool) -> Any:
            # libvpx undershoots with temporal layers (~15 % here): ask once more for
            # what it fell short by, so the cameras send what the issue names.
            clip = encode_video(width, height, bitrate, temporal_layers=with_layers)
            if abs(clip.bitrate / bitrate - 1) > 0.1:
                clip = encode_video(width, height, round(bitrate * bitrate / clip.bitrate),
                                    temporal_layers=with_layers)
            return clip

        # The student's page sends one layer (web_ui/static/js/connection.js: the
        # student is everyone's large tile and the recording's subject).
        clips = {"video_360p": camera(640, 360, 500_000, layered),
                 "video_720p": camera(1280, 720, 1_500_000, False),
                 "audio": encode_audio(), "silence": encode_silence()}
        media.write_bytes(pickle.dumps(clips))
        print(f"pre-encoded media: VP8 640x360 {clips['video_360p'].bitrate / 1e3:.0f} kbit/s, "
              f"1280x720 {clips['video_720p'].bitrate / 1e3:.0f} kbit/s (30 fps, keyframe every "
              f"2 s, {'the 640x360 cameras in three temporal layers (L1T3), the student in one' if layered else 'no layers'}), Opus {clips['audio'].bitrate / 1e3:.0f} kbit/s, "
              f"{'one speaker at a time, the others DTX' if args.audio == 'dtx' else 'every microphone continuous'}; {os.cpu_count()} CPUs; "
              f"server: {workers_note}"
              + (f" on CPU(s) {format_cpus(args.server_cpus)}, load generators on "
                 f"{format_cpus(args.load_cpus)}" if args.server_cpus else "")
              + "; layer selection: "
              f"{wanted if available else 'not in this server'}; window {args.seconds:.0f} s",
              flush=True)
        by_setting: dict[str, list[dict[str, Any]]] = {}
        for setting in settings:
            name = "n/a" if setting is None else ("on" if setting else "off")
            by_setting[name] = await ramp(args, media, workdir, setting, workers, started)
        saved = RESULTS / f"{run_id}.json"
        saved.write_text(json.dumps({"argv": sys.argv[1:], "steps": by_setting}, indent=1))
        print(f"\nfull results: {saved.relative_to(ROOT)}; configs, logs and recordings: "
              f"{workdir.relative_to(ROOT)}/")
        print(f"total {time.monotonic() - started:.0f} s")
        last = list(by_setting)[-1]
        line: dict[str, Any] = {**summary(by_setting[last]), "cores": os.cpu_count(),
                                "server_cpus": len(args.server_cpus) if args.server_cpus else None,
                                "layer_selection": last, "audio": args.audio,
                                "workers": workers if workers is not None else
                                ("default" if multi else 1)}
        if len(by_setting) > 1:
            line["by_layer_selection"] = {k: summary(v) for k, v in by_setting.items()}
        print(json.dumps(line))


if __name__ == "__main__":
    reexec_in_netns()
    asyncio.run(main())
