"""The wire between a netlab host and the test namespace, in user space (a script).

This machine's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off), so the link
is two TUN devices and this process between them: it creates ``<outer>`` in its own
namespace and ``eth0`` in the child's (``setns``), then copies IP packets both ways,
applying per direction what netem would: random loss, delay with jitter (never
reordering: a packet leaves no earlier than the one before it), a rate limit with a
bounded queue (tail drop past MAX_QUEUE_S), and an outage that drops everything.
When this process ends, both devices (and so the link) are gone.

Control: one JSON object a line on stdin, answered by one JSON line on stdout:
``{"dir": "up"|"down", "loss_pct": .., "delay_ms": .., "jitter_ms": .., "rate_kbit": ..}``
("up" is what the child sends), ``{"outage": true|false}``, ``{"stats": true}``.

Usage: python netlab_link.py <child netns path> <outer name> <seed>
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import json
import os
import random
import struct
import sys
from dataclasses import dataclass, field

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
#: Packets wait at most this long in a rate-limited queue; later ones are dropped.
MAX_QUEUE_S = 0.5


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def enter_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path})")
    finally:
        os.close(fd)


@dataclass
class Direction:
    """One direction of the link: its shaping and what it did."""

    out_fd: int
    rng: random.Random
    loss: float = 0.0
    delay_s: float = 0.0
    jitter_s: float = 0.0
    rate_bps: float = 0.0
    busy_until: float = 0.0
    last_release: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {"passed": 0, "lost": 0, "queue_drop": 0, "outage": 0})

    def configure(self, loss_pct: float = 0, delay_ms: float = 0, jitter_ms: float = 0,
                  rate_kbit: float | None = None) -> None:
        self.loss = float(loss_pct) / 100
        self.delay_s = float(delay_ms) / 1000
        self.jitter_s = float(jitter_ms) / 1000
        self.rate_bps = float(rate_kbit or 0) * 1000

    def packet(self, loop: asyncio.AbstractEventLoop, data: bytes, outage: bool) -> None:
        if outage:
            self.counts["outage"] += 1
            return
        if self.loss and self.rng.random() < self.loss:
            self.counts["lost"] += 1
            return
        now = loop.time()
        sent = now
        if self.rate_bps:
            start = max(now, self.busy_until)
            if start - now > MAX_QUEUE_S:
                self.counts["queue_drop"] += 1
                return
            self.busy_until = sent = start + len(data) * 8 / self.rate_bps
        delay = self.delay_s
        if self.jitter_s:
            delay = max(0.0, self.rng.gauss(delay, self.jitter_s))
        release = max(sent + delay, self.last_release)
        self.last_release = release
        self.counts["passed"] += 1
        if release <= now:
            self._write(data)
        else:
            loop.call_at(release, self._write, data)

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.out_fd, data)
        except OSError:
            pass  # the device is going away, or its queue is full: a lost packet


async def main(netns: str, outer: str, seed: int) -> None:
    loop = asyncio.get_running_loop()
    outer_fd = open_tun(outer)
    enter_netns(netns)
    inner_fd = open_tun("eth0")
    rng = random.Random(seed)
    up = Direction(outer_fd, rng)      # child -> test namespace
    down = Direction(inner_fd, rng)    # test namespace -> child
    state = {"outage": False}

    def reader(fd: int, direction: Direction) -> None:
        for _ in range(64):
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            direction.packet(loop, data, state["outage"])

    loop.add_reader(inner_fd, reader, inner_fd, up)
    loop.add_reader(outer_fd, reader, outer_fd, down)

    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while line := await stdin.readline():
        command = json.loads(line)
        reply: dict[str, object] = {"ok": True}
        if "dir" in command:
            direction = up if command.pop("dir") == "up" else down
            direction.configure(**command)
        elif "outage" in command:
            state["outage"] = bool(command["outage"])
        elif "stats" in command:
            reply = {"up": up.counts, "down": down.counts}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
