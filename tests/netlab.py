"""A network lab for tests: a participant on a link of its own, in a child namespace.

Tests already run inside a private network namespace (scripts/netns-run). ``Host``
adds a child namespace below it, joined to it by a link::

    test namespace  nl<i>a 10.78.<i>.1/24  <--link-->  eth0 10.78.<i>.2/24  child (default route via .1)

The link is not a veth pair: this machine's kernel has no netem qdisc, so it is two
TUN devices with a user-space process between them (tests/netlab_link.py) that
applies loss, delay, jitter, a rate limit and outages, per direction.

A server in the test namespace listening on 0.0.0.0 (or on ``host.gateway``) is
reached from the child at ``host.gateway``; the child also reaches the test
namespace's other addresses (10.77.0.x) through its default route, as a real
participant reaches a server beyond its router. Inside the child a test can shape
the link (``netem``), cut it (``link_down``), firewall it (``block``) and run
processes (``run``, ``spawn``), among them a Chromium page driven with tests/cdp.py
(``chromium_in``). Unix sockets are not network-namespaced: that is how the test
reaches the browser's DevTools port, which listens on the child's own loopback.

Everything is torn down on exit, also when the test fails: spawned processes (and
their process groups) are killed and reaped, the link process ends (and both TUN
devices with it), then the namespace's last process, and with it the namespace.

    async with netlab.Host(1) as host:
        await host.netem(loss_pct=5, delay_ms=75, jitter_ms=20, rate_kbit=500)
        await host.block(udp=True, except_udp_ports=[3478])
        async with netlab.chromium_in(host, url, log=tmp_path / "c.log") as page:
            tab = await page.cdp.open_tab(url)

``one_to_one_nat(public, private)`` maps a public address onto a private one in the
test namespace (nft DNAT), as a cloud provider's 1:1 NAT does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from .cdp import Cdp
from .chromium import Browser, chromium

#: Seconds a spawned process gets after SIGTERM before SIGKILL.
TERMINATE_TIMEOUT_S = 3.0
REQUIRED = ("unshare", "nsenter", "ip", "nft")
LINK_SCRIPT = Path(__file__).with_name("netlab_link.py")


class NetlabMissing(AssertionError):
    """A binary the lab needs is not installed (a failure, not a skip)."""


class CommandFailed(AssertionError):
    """A command run by the lab exited with an error."""


def require(binary: str) -> str:
    """The path of ``binary``, or a test failure saying how to install it."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        raise NetlabMissing(
            f"{binary} is not installed; the network tests need iproute2, nftables and "
            "util-linux (apt-get install -y iproute2 nftables util-linux), which the CI "
            "script installs")
    return path


async def _exec(argv: Sequence[str], check: bool = True) -> str:
    """Run ``argv`` to completion; its stdout, or CommandFailed with its stderr."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if check and process.returncode != 0:
        raise CommandFailed(f"{' '.join(argv)} exited with {process.returncode}: "
                            f"{err.decode(errors='replace').strip()}")
    return out.decode(errors="replace")


class Host:
    """A participant's machine: a child network namespace on a veth link of its own.

    ``index`` (1..254) picks the subnet 10.78.<index>.0/24 and the interface names,
    so two hosts in one test need two indexes."""

    def __init__(self, index: int = 1) -> None:
        if not 1 <= index <= 254:
            raise ValueError(f"netlab host index {index} is not within 1..254")
        self.index = index
        self.address = f"10.78.{index}.2"
        self.gateway = f"10.78.{index}.1"
        #: The test side's end of the link; the child's end is called eth0.
        self.outer_link = f"nl{index}a"
        self._holder: asyncio.subprocess.Process | None = None
        self._link: asyncio.subprocess.Process | None = None
        self._link_lock = asyncio.Lock()
        self._spawned: list[asyncio.subprocess.Process] = []

    @property
    def netns_path(self) -> str:
        if self._holder is None:
            raise RuntimeError("the netlab host is not started")
        return f"/proc/{self._holder.pid}/ns/net"

    @property
    def pid(self) -> int:
        """The process that holds the namespace (it ends with the host)."""
        if self._holder is None:
            raise RuntimeError("the netlab host is not started")
        return self._holder.pid

    @property
    def prefix(self) -> list[str]:
        """Put this in front of a command line to run it inside the namespace."""
        return [require("nsenter"), f"--net={self.netns_path}", "--"]

    async def __aenter__(self) -> Host:
        for binary in REQUIRED:
            require(binary)
        # The namespace lives as long as this process does.
        self._holder = await asyncio.create_subprocess_exec(
            require("unshare"), "--net", "--", "sleep", "infinity",
            stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        try:
            await self._wire()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def _wire(self) -> None:
        ip = require("ip")
        # unshare has to have entered the new namespace before a link can move into it.
        own = os.readlink("/proc/self/ns/net")
        for _ in range(200):
            with contextlib.suppress(FileNotFoundError):
                if os.readlink(self.netns_path) != own:
                    break
            await asyncio.sleep(0.01)
        else:
            raise CommandFailed("unshare did not create the child network namespace")
        with contextlib.suppress(CommandFailed):  # a leftover of a killed earlier run
            await _exec([ip, "link", "del", self.outer_link])
        self._link = await asyncio.create_subprocess_exec(
            sys.executable, str(LINK_SCRIPT), self.netns_path, self.outer_link, str(self.index),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True)
        await self._command({})  # its "ready" line: both devices exist
        await _exec([ip, "addr", "add", f"{self.gateway}/24", "dev", self.outer_link])
        await _exec([ip, "link", "set", self.outer_link, "up"])
        await self.run([ip, "link", "set", "lo", "up"])
        await self.run([ip, "addr", "add", f"{self.address}/24", "dev", "eth0"])
        await self.run([ip, "link", "set", "eth0", "up"])
        await self.run([ip, "route", "add", "default", "via", self.gateway])

    async def close(self) -> None:
        """Kill what runs inside, end the namespace and remove the link (idempotent)."""
        spawned, self._spawned = self._spawned, []
        for process in reversed(spawned):
            await stop_process(process)
        if self._link is not None:
            link, self._link = self._link, None
            await stop_process(link)
        if self._holder is not None:
            holder, self._holder = self._holder, None
            await stop_process(holder)
        # The TUN devices go with the link process; this only covers a half-made host.
        with contextlib.suppress(NetlabMissing):
            await _exec([require("ip"), "link", "del", self.outer_link], check=False)

    async def run(self, argv: Sequence[str], check: bool = True) -> str:
        """Run a command inside the namespace to completion; its stdout."""
        return await _exec([*self.prefix, *argv], check=check)

    async def spawn(self, argv: Sequence[str], *, log: Path | None = None) -> asyncio.subprocess.Process:
        """Start a long-running process inside the namespace, in a process group of its
        own; it is killed when the host closes (or earlier with ``stop_process``)."""
        with open(log if log is not None else os.devnull, "ab") as out:
            process = await asyncio.create_subprocess_exec(
                *self.prefix, *argv, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=out, start_new_session=True)
        self._spawned.append(process)
        return process

    # -- shaping ---------------------------------------------------------------------

    async def _command(self, command: dict[str, object]) -> dict[str, Any]:
        """Send one command to the link process; its answer."""
        link = self._link
        if link is None or link.stdin is None or link.stdout is None:
            raise RuntimeError("the netlab host is not started")
        async with self._link_lock:
            if command:
                link.stdin.write(json.dumps(command).encode() + b"\n")
                await link.stdin.drain()
            line = await asyncio.wait_for(link.stdout.readline(), 10)
        if not line:
            raise CommandFailed(f"the link process of {self.outer_link} ended "
                                f"(exit status {link.returncode})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def netem(self, *, loss_pct: float = 0.0, delay_ms: float = 0.0,
                    jitter_ms: float = 0.0, rate_kbit: float | None = None) -> None:
        """Shape what the participant sends (its uplink): random loss, one-way delay
        with jitter (normal, never reordering), a rate limit (queue up to 0.5 s, then
        tail drop). Calling again replaces the previous shaping of that direction."""
        await self._command({"dir": "up", "loss_pct": loss_pct, "delay_ms": delay_ms,
                             "jitter_ms": jitter_ms, "rate_kbit": rate_kbit})

    async def netem_on_gateway(self, *, loss_pct: float = 0.0, delay_ms: float = 0.0,
                               jitter_ms: float = 0.0, rate_kbit: float | None = None) -> None:
        """The same for what the participant receives (its downlink)."""
        await self._command({"dir": "down", "loss_pct": loss_pct, "delay_ms": delay_ms,
                             "jitter_ms": jitter_ms, "rate_kbit": rate_kbit})

    async def clear_netem(self) -> None:
        """A clean link both ways again."""
        await self.netem()
        await self.netem_on_gateway()

    async def link_stats(self) -> dict[str, dict[str, int]]:
        """Packets per direction ("up", "down"): passed, lost, queue_drop, outage."""
        stats = await self._command({"stats": True})
        return {"up": dict(stats["up"]), "down": dict(stats["down"])}

    async def link_down(self) -> None:
        """An outage: from now on every packet on the link vanishes, both ways, as when
        Wi-Fi drops; neither side sees a link event (sockets stay, routes stay)."""
        await self._command({"outage": True})

    async def link_up(self) -> None:
        """End the outage started by ``link_down``."""
        await self._command({"outage": False})

    async def block(self, *, udp: bool = False, except_udp_ports: Sequence[int] = (),
                    tcp_ports: Sequence[int] = (), addresses: Sequence[str] = ()) -> None:
        """Firewall the participant's side (rules add up until ``unblock``).

        ``udp``: drop all UDP to and from the link, except to and from the server-side
        ports in ``except_udp_ports`` (a TURN server's, say). ``tcp_ports``: drop TCP to
        these ports. ``addresses``: drop everything to and from these addresses or
        networks. Loopback inside the child is never blocked."""
        rules: list[str] = []
        if udp:
            keep = ""
            if except_udp_ports:
                ports = ", ".join(str(int(p)) for p in except_udp_ports)
                keep = f"udp dport != {{ {ports} }} "
                rules.append(f'add rule inet netlab in iifname "eth0" udp sport != {{ {ports} }} drop')
            else:
                rules.append('add rule inet netlab in iifname "eth0" meta l4proto udp drop')
            rules.append(f'add rule inet netlab out oifname "eth0" meta l4proto udp {keep}drop')
        if tcp_ports:
            ports = ", ".join(str(int(p)) for p in tcp_ports)
            rules.append(f'add rule inet netlab out oifname "eth0" tcp dport {{ {ports} }} drop')
        for address in addresses:
            network = ipaddress.ip_network(address, strict=False)
            rules.append(f'add rule inet netlab out oifname "eth0" ip daddr {network} drop')
            rules.append(f'add rule inet netlab in iifname "eth0" ip saddr {network} drop')
        script = ("add table inet netlab\n"
                  "add chain inet netlab in { type filter hook input priority 0; policy accept; }\n"
                  "add chain inet netlab out { type filter hook output priority 0; policy accept; }\n"
                  + "".join(rule + "\n" for rule in rules))
        await self._nft(script)

    async def unblock(self) -> None:
        """Remove every rule added by ``block``."""
        await self.run([require("nft"), "delete", "table", "inet", "netlab"], check=False)

    async def _nft(self, script: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self.prefix, require("nft"), "-f", "-", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await process.communicate(script.encode())
        if process.returncode != 0:
            raise CommandFailed(f"nft refused the rules: {err.decode(errors='replace').strip()}\n{script}")


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """Terminate a process started in its own process group, kill it after a timeout,
    reap it, and kill whatever is left in its group."""
    try:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), TERMINATE_TIMEOUT_S)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def one_to_one_nat(public: str, private: str) -> AsyncIterator[None]:
    """While the block runs, packets arriving in the test namespace for ``public`` go to
    ``private`` (DNAT), and the replies leave from ``public`` (conntrack), as with a
    cloud provider's 1:1 NAT. The public address is on no interface."""
    nft = require("nft")
    ipaddress.ip_address(public), ipaddress.ip_address(private)
    script = ("add table ip netlab_nat\n"
              "add chain ip netlab_nat pre { type nat hook prerouting priority -100; }\n"
              f"add rule ip netlab_nat pre ip daddr {public} dnat to {private}\n"
              # Output too: a process of the test namespace may use the public address.
              "add chain ip netlab_nat out { type nat hook output priority -100; }\n"
              f"add rule ip netlab_nat out ip daddr {public} dnat to {private}\n"
              "add chain ip netlab_nat post { type nat hook postrouting priority 100; }\n")
    process = await asyncio.create_subprocess_exec(
        nft, "-f", "-", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate(script.encode())
    if process.returncode != 0:
        raise CommandFailed(f"nft refused the NAT rules: {err.decode(errors='replace').strip()}")
    try:
        yield
    finally:
        await _exec([nft, "delete", "table", "ip", "netlab_nat"], check=False)


# A forwarder run inside the child: a unix socket (reachable from the test, since unix
# sockets are not network-namespaced) to 127.0.0.1:<port> of the child.
_FORWARDER = """
import asyncio, os, sys
path, port = sys.argv[1], int(sys.argv[2])
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
async def handle(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    # Listening under another name first: the socket appears at `path` only once it
    # accepts (between bind and listen a connect would be refused).
    server = await asyncio.start_unix_server(handle, path + ".new")
    os.rename(path + ".new", path)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


@dataclass
class BrowserInHost:
    """A Chromium running inside a host's namespace, and the DevTools client for it."""

    browser: Browser
    cdp: Cdp


@contextlib.asynccontextmanager
async def chromium_in(host: Host, url: str = "about:blank", *, log: Path, secure_origin: str | None = None,
                      deny_media: bool = False, extra_args: Sequence[str] = ()) -> AsyncIterator[BrowserInHost]:
    """A headless Chromium (tests/chromium.py) inside ``host``, driven over DevTools
    through a unix-socket forwarder; everything stops on exit.

    A page served over plain http from anywhere but loopback is not a secure context
    and gets no camera (``navigator.mediaDevices`` is undefined): pass the server's
    origin (``http://<gateway>:<port>``) as ``secure_origin`` to have it treated as
    one, as https would be."""
    if secure_origin is not None:
        extra_args = (*extra_args, f"--unsafely-treat-insecure-origin-as-secure={secure_origin}")
    async with chromium(url, log=log, deny_media=deny_media, extra_args=extra_args,
                        devtools=True, command_prefix=host.prefix) as browser:
        assert browser.devtools_url is not None
        port = int(browser.devtools_url.split(":")[2].split("/")[0])
        folder = tempfile.mkdtemp(prefix="netlab-devtools-")
        socket_path = os.path.join(folder, "devtools.sock")
        forwarder = await host.spawn([sys.executable, "-c", _FORWARDER, socket_path, str(port)])
        try:
            for _ in range(300):
                if os.path.exists(socket_path) or forwarder.returncode is not None:
                    break
                await asyncio.sleep(0.02)
            if not os.path.exists(socket_path):
                raise CommandFailed("the DevTools forwarder did not start inside the namespace")
            cdp = await Cdp.connect(browser.devtools_url, connector=aiohttp.UnixConnector(socket_path))
            try:
                yield BrowserInHost(browser, cdp)
            finally:
                await cdp.close()
        finally:
            await stop_process(forwarder)
            shutil.rmtree(folder, ignore_errors=True)
