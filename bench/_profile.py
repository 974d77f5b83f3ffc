"""Where the server's CPU goes: samplers over bench/capacity.py's window.

``--profile PY_SPY``: py-spy samples every process of the server, from outside and
without stopping them (``--nonblocking``), and with ``--gil`` only the thread that
holds the GIL: the samples are the interpreter's working time, sorted into the costs
a room has and by function. py-spy's own idle detection does not see uvloop's
epoll wait as idle, and a thread waiting for the GIL or for a core counts as busy,
so without ``--gil`` its shares are not CPU shares. C calls that release the GIL
(libsrtp through cffi) are missing from these samples; perf has them.

``--perf PERF``: ``perf record`` of the same processes: what is on a CPU, C and the
kernel included, by library and symbol; it cannot name Python functions (Python
3.11 has no perf trampoline).

Neither is a dependency of the project: install py-spy anywhere (``pip install
--target DIR py-spy``) and pass its binary.

A py-spy sample goes to the category of the frame nearest its leaf that matches one
(so SRTP called from the forwarder counts as SRTP), and also to the product function
nearest the leaf (``top_functions``: file:function) and to its leaf function.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

# Leaves that are calls into C: py-spy without --native (which cannot run
# --nonblocking) shows C time in the Python function that called it.
LEAF_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("UDP send: the socket's sendto (kernel), in media/hooks.py:rtp_writer.write",
     r"^rtp_writer\.<locals>\.write "),
    ("event loop in C (uvloop: recvfrom, callbacks), under aiohttp run_app",
     r"^run_app \(aiohttp/web\.py"),
)
# (category, pattern on "function (file:line)"), most specific first; a sample goes
# to the first that matches the frame nearest its leaf.
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("recorder: hand-off to its writer thread (threading.Condition notify/wait)",
     r"^(Condition\.(notify|wait)|Queue\.(put|get)) .*threading|queue\.py"),
    ("SRTP protect/unprotect (pylibsrtp)", r"pylibsrtp|srtp"),
    ("recorder: PyAV muxing (writer thread)", r"/av/|recordings/(recorder|segment|remux)"),
    ("recorder: other", r"recordings/"),
    ("RTCP (aiortc: reports, NACK, REMB)", r"rtcp|_send_rtcp|_handle_rtcp|rtcrtpreceiver"),
    ("ICE / STUN / consent (aioice)", r"aioice/"),
    ("DTLS transport (aiortc rtcdtlstransport)", r"rtcdtlstransport"),
    ("forwarder / layer selection (media/)", r"media/(forwarder|rtp_in|rtp_out|assembler|room"
                                             r"|participant|hooks|bitrate|metrics)"),
    ("other media/", r"media/"),
    ("aiortc other", r"aiortc/"),
    ("signaling / web (aiohttp, server/, web_ui/)", r"aiohttp/|server/|web_ui/|protocols/"),
    ("storage (SQLite)", r"storage/|sqlite"),
    ("asyncio event loop / selectors / sockets", r"asyncio/|selectors|socket"),
)
PRODUCT = re.compile(r"[ (/](media|recordings|server|web_ui|protocols|storage|orchestrator)/")


def start(py_spy: str, pid: int, seconds: float, out: Path) -> Any:
    """Start sampling `pid` and its children for `seconds` (a coroutine for a Process);
    only the thread holding the GIL is sampled."""
    return asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil",
        "--rate", "100", "--duration", str(max(int(seconds), 1)), "--format", "raw",
        "--output", str(out), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)


def start_perf(perf: str, pids: list[int], seconds: float, out: Path) -> Any:
    """Start ``perf record`` of `pids` for `seconds`: on-CPU samples only (a thread
    waiting for a core or for the GIL is not sampled), C and kernel included, so its
    split by library is a split of the CPU time. It cannot name Python functions
    (Python 3.11 has no perf trampoline); py-spy does that."""
    return asyncio.create_subprocess_exec(
        perf, "record", "-F", "499", "-p", ",".join(map(str, pids)), "-o", str(out),
        "--", "sleep", str(max(seconds, 1.0)), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)


async def perf_report(perf: str, data: Path) -> dict[str, Any]:
    """Shares of the on-CPU samples by library (dso) and by symbol."""
    shares: dict[str, list[tuple[str, float]]] = {}
    for key, sort in (("by_library", "dso"), ("by_symbol", "dso,sym")):
        proc = await asyncio.create_subprocess_exec(
            perf, "report", "-i", str(data), "--stdio", "--sort", sort,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        rows = []
        for line in out.decode(errors="replace").splitlines():
            match = re.match(r"\s*([\d.]+)%\s+(.*\S)", line)
            if match and not line.lstrip().startswith("#"):
                rows.append((re.sub(r"\s+", " ", match.group(2)), float(match.group(1))))
        shares[key] = rows[:12 if key == "by_library" else 20]
    return shares


def thread_cpu(pids: list[int]) -> dict[tuple[int, int], float]:
    """utime+stime (s) of every thread of `pids`, by (pid, tid)."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    cpu: dict[tuple[int, int], float] = {}
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu[(pid, tid)] = (int(fields[11]) + int(fields[12])) / tick
    return cpu


def thread_split(a: dict[tuple[int, int], float], b: dict[tuple[int, int], float],
                 span: float) -> dict[str, float]:
    """% of one core over the window: the processes' main threads (the event loops:
    forwarding, SRTP, signaling) against their other threads (the recorder's writer,
    the SQLite writer, executors). Threads that ended in the window are not counted."""
    main = sum(v - a.get(k, 0.0) for k, v in b.items() if k[0] == k[1])
    other = sum(v - a.get(k, 0.0) for k, v in b.items() if k[0] != k[1])
    return {"main_threads_pct": round(main / span * 100, 1),
            "other_threads_pct": round(other / span * 100, 1)}


def summarize(path: Path) -> dict[str, Any]:
    """Shares of the samples by category and by product function (py-spy's raw,
    collapsed stacks: "frame;frame;... count", root first)."""
    by_category: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if "(" in f]  # leave out process/thread labels
        leaf_up = list(reversed(frames))
        category = next((name for name, pattern in LEAF_CATEGORIES
                         if leaf_up and re.search(pattern, leaf_up[0])), None)
        category = category or next((name for frame in leaf_up for name, pattern in CATEGORIES
                                     if re.search(pattern, frame)),
                                    "other (interpreter, GC, threads)")
        if category.startswith("recorder: hand-off") and not any("recordings/" in f
                                                                 for f in leaf_up):
            category = "other threads' hand-off (threading.Condition)"
        by_category[category] += count
        product = next((f for f in leaf_up if PRODUCT.search(f)), None)
        if product:
            by_function[short(product)] += count
        if leaf_up:
            by_leaf[short(leaf_up[0])] += count

    def shares(counter: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / max(total, 1), 1)) for k, v in counter.most_common(n)]

    return {"samples": total, "categories": shares(by_category, 20),
            "top_functions": shares(by_function, 15), "top_leaves": shares(by_leaf, 15)}


def short(frame: str) -> str:
    """"send (/x/y/site-packages/aiortc/rtcrtpsender.py:123)" -> "aiortc/rtcrtpsender.py:send"."""
    match = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    function, file = match.groups()
    parts = Path(file).parts
    return f"{'/'.join(parts[-2:])}:{function}"


def print_perf(summary: dict[str, Any]) -> None:
    for title, key in (("perf, on-CPU by library", "by_library"),
                       ("perf, on-CPU by symbol", "by_symbol")):
        print(f"    {title}: " + "; ".join(f"{k} {v}%" for k, v in summary.get(key, [])),
              flush=True)


def print_summary(summary: dict[str, Any]) -> None:
    threads = summary.get("threads") or {}
    print(f"  profile ({summary['samples']} samples of the server's processes; CPU of their "
          f"main threads {threads.get('main_threads_pct')}%, other threads "
          f"{threads.get('other_threads_pct')}% of a core):", flush=True)
    for title, key in (("by cost", "categories"), ("by product function (nearest the leaf)",
                                                   "top_functions"), ("by leaf", "top_leaves")):
        print(f"    {title}: " + "; ".join(f"{k} {v}%" for k, v in summary[key]), flush=True)
