"""The network lab itself (tests/netlab.py): a child namespace on a veth link, shaped,
cut and firewalled, a browser inside it, and nothing left behind."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from aiohttp import web

from . import netlab

ECHO_PORT = 9000

# A UDP echo inside the child, so that shaping its egress delays the replies.
ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", %d))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(data, peer)
""" % ECHO_PORT


class _Echoes(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.replies.put_nowait(data)


async def _round_trips(address: str, count: int, timeout: float = 2.0) -> list[float]:
    """Round-trip times (ms) of ``count`` UDP echoes; a lost one fails the call."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Echoes, remote_addr=(address, ECHO_PORT))
    times: list[float] = []
    try:
        for n in range(count):
            sent = time.monotonic()
            transport.sendto(b"%d" % n)
            while True:
                reply = await asyncio.wait_for(protocol.replies.get(), timeout)
                if reply == b"%d" % n:
                    break
            times.append((time.monotonic() - sent) * 1000)
    finally:
        transport.close()
    return times


async def _echo_ready(host: netlab.Host) -> None:
    for _ in range(100):
        try:
            await _round_trips(host.address, 1, timeout=0.1)
            return
        except asyncio.TimeoutError:
            pass
    raise AssertionError("the UDP echo inside the child never answered")


async def test_child_is_reached_and_netem_adds_the_measured_delay(isolated_network: None) -> None:
    async with netlab.Host(1) as host:
        await host.spawn([sys.executable, "-c", ECHO])
        await _echo_ready(host)
        plain = sorted(await _round_trips(host.address, 10))
        await host.netem(delay_ms=60)
        await host.netem_on_gateway(delay_ms=40)
        shaped = sorted(await _round_trips(host.address, 10))
        print(f"netlab RTT median: clean {plain[5]:.1f} ms, shaped {shaped[5]:.1f} ms")
        assert plain[5] < 20, plain
        # 60 ms out of the child plus 40 ms into it: at least 100 ms, and not much more.
        assert 100 <= shaped[0] and shaped[5] < 160, shaped
        await host.clear_netem()
        assert sorted(await _round_trips(host.address, 5))[2] < 20


async def test_block_and_outage(isolated_network: None) -> None:
    async with netlab.Host(2) as host:
        await host.spawn([sys.executable, "-c", ECHO])
        await _echo_ready(host)
        await host.block(udp=True)
        try:
            await _round_trips(host.address, 1, timeout=0.5)
            raise AssertionError("UDP still passes a child that blocks all UDP")
        except asyncio.TimeoutError:
            pass
        await host.unblock()
        await host.block(udp=True, except_udp_ports=[ECHO_PORT + 1])
        try:
            await _round_trips(host.address, 1, timeout=0.5)
            raise AssertionError("UDP from a port that is not excepted still passes")
        except asyncio.TimeoutError:
            pass
        await host.unblock()
        assert await _round_trips(host.address, 1)

        # TCP: the child cannot open a connection to a blocked port of the test side.
        server = await asyncio.start_server(lambda r, w: w.close(), host.gateway, 0)
        port = server.sockets[0].getsockname()[1]
        connect = ("import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 1);"
                   " print('connected')")
        try:
            assert "connected" in await host.run([sys.executable, "-c", connect, host.gateway, str(port)])
            await host.block(tcp_ports=[port])
            out = await host.run([sys.executable, "-c", connect, host.gateway, str(port)], check=False)
            assert "connected" not in out
            await host.unblock()
            await host.block(addresses=[host.gateway])
            out = await host.run([sys.executable, "-c", connect, host.gateway, str(port)], check=False)
            assert "connected" not in out
            await host.unblock()
        finally:
            server.close()
            await server.wait_closed()

        await host.link_down()
        try:
            await _round_trips(host.address, 1, timeout=0.5)
            raise AssertionError("packets still pass during an outage")
        except asyncio.TimeoutError:
            pass
        await host.link_up()
        assert await _round_trips(host.address, 1)


async def test_teardown_leaves_nothing(isolated_network: None) -> None:
    class Boom(Exception):
        pass

    host = netlab.Host(3)
    try:
        async with host:
            echo = await host.spawn([sys.executable, "-c", ECHO])
            await _echo_ready(host)
            holder = host.pid
            assert os.readlink(f"/proc/{echo.pid}/ns/net") == os.readlink(host.netns_path)
            assert "nl3a" in await netlab._exec(["ip", "-o", "link"])
            raise Boom  # a failing test
    except Boom:
        pass
    assert echo.returncode is not None
    for pid in (echo.pid, holder):
        assert not os.path.exists(f"/proc/{pid}"), f"process {pid} outlived the host"
    links = await netlab._exec(["ip", "-o", "link"])
    assert "nl3a" not in links, links


async def test_chromium_inside_the_child(isolated_network: None, tmp_path: Path) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=f"<title>seen from {request.remote}</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        async with netlab.Host(4) as host:
            site = web.TCPSite(runner, host.gateway, 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            url = f"http://{host.gateway}:{port}/"
            async with netlab.chromium_in(host, log=tmp_path / "chromium.log") as inside:
                assert os.readlink(f"/proc/{inside.browser.process.pid}/ns/net") == os.readlink(host.netns_path)
                tab = await inside.cdp.open_tab(url)
                title = await tab.wait_for("document.title", "the page served to the child")
                assert title == f"seen from {host.address}"
    finally:
        await runner.cleanup()


async def test_loss_and_rate_limit(isolated_network: None) -> None:
    async with netlab.Host(5) as host:
        await host.spawn([sys.executable, "-c", ECHO])
        await _echo_ready(host)
        await host.netem_on_gateway(loss_pct=20)
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Echoes, remote_addr=(host.address, ECHO_PORT))
        try:
            for n in range(300):
                transport.sendto(b"%d" % n)
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.3)
            echoed = protocol.replies.qsize()
            stats = await host.link_stats()
            print(f"netlab 20 % loss: {300 - echoed} of 300 lost, link stats {stats}")
            assert 30 <= 300 - echoed <= 90
            assert stats["down"]["lost"] == 300 - echoed

            # 400 kbit/s up: 20 replies of 1028 bytes (IP) come back over 0.41 s; 40 at
            # once overflow the half-second queue.
            await host.netem_on_gateway()
            await host.netem(rate_kbit=400)
            while not protocol.replies.empty():
                protocol.replies.get_nowait()
            started = loop.time()
            for n in range(20):
                transport.sendto(b"x" * 1000)
            for _ in range(20):
                await asyncio.wait_for(protocol.replies.get(), 5)
            took = loop.time() - started
            print(f"netlab 400 kbit/s: 20 x 1028 B back in {took:.2f} s")
            assert 0.35 < took < 0.7
            for n in range(40):
                transport.sendto(b"x" * 1000)
            await asyncio.sleep(1.0)
            assert (await host.link_stats())["up"]["queue_drop"] > 0
        finally:
            transport.close()
