"""The defense-room command, run as a real process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from .conftest import free_port

INVITE_LINE = re.compile(r"^(chair|member|secretary|student|supervisor|reviewer|observer)\s+(.+?)"
                         r"\s+(https://\S+/j/(\S+))$")


async def test_serve_demo_prints_invites_that_open_the_room_over_tls(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("data_dir: ./state\nserver:\n  host: 127.0.0.1\n")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "defense_room.cli", "serve", "--config", str(config), "--demo",
        "--port", str(port), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any("/office#" in l for l in lines):
            raw = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert raw, f"server exited early: {lines}"
            lines.append(raw.decode().rstrip("\n"))
        invites = [m.groups() for l in lines if (m := INVITE_LINE.match(l))]
        roles = [i[0] for i in invites]
        assert roles.count("chair") == 1 and roles.count("member") == 4
        assert roles.count("secretary") == 1 and roles.count("student") == 3
        assert [roles.count(r) for r in ("supervisor", "reviewer", "observer")] == [1, 1, 1]
        assert any(re.fullmatch(r"  ([0-9A-F]{2}:){31}[0-9A-F]{2}", l) for l in lines), lines
        assert len({i[3] for i in invites}) == 12
        # The package signing key is made at the first start and its fingerprint shown,
        # the one `defense-room keys show` gives and `verify --key` takes.
        at = next(i for i, l in enumerate(lines) if l.startswith("Package signing key"))
        key = lines[at + 1].strip()
        assert re.fullmatch(r"[0-9a-f]{64}", key), lines
        assert (tmp_path / "state" / "server-key" / "current.pem").stat().st_mode & 0o077 == 0

        context = ssl.create_default_context(cafile=str(tmp_path / "state" / "tls" / "cert.pem"))
        async with aiohttp.ClientSession() as session:
            async with session.get(invites[0][2], ssl=context) as response:
                assert response.status == 200
                assert "<html" in (await response.text()).lower()
            # The demo's office page: a token for this run, printed after the '#'.
            office = next(l.strip() for l in lines if "/office#" in l)
            page, _, token = office.partition("#")
            async with session.get(page, ssl=context) as response:
                assert response.status == 200, page
            async with session.get(f"https://127.0.0.1:{port}/api/days", ssl=context,
                                   headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200, await response.text()
                assert "Demo defense day" in await response.text()
            async with session.get(f"https://127.0.0.1:{port}/api/days", ssl=context,
                                   headers={"Authorization": f"Bearer {invites[0][3]}"}) as response:
                assert response.status == 401, await response.text()
            bad = f"https://127.0.0.1:{port}/j/not-a-token"
            async with session.get(bad, ssl=context) as response:
                assert response.status == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 15)
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert rc == 0, stderr
    assert (tmp_path / "state" / "defense-room.sqlite3").exists()
    shown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "defense_room.cli", "keys", "show", "--config", str(config),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(shown.communicate(), 30)
    assert f"Server key (SHA-256 fingerprint): {key}" in out.decode(), out


async def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "defense_room.cli", "serve", "--config", str(tmp_path / "nope.yaml"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "nope.yaml does not exist" in stderr.decode()


async def test_unknown_config_key_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("server:\n  prot: 1\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "defense_room.cli", "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "server.prot" in stderr.decode()


async def _announced(config: Path, port: int, cpus: set[int]) -> list[str]:
    """What ``serve`` (default workers) prints once it listens, run on ``cpus`` only."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "defense_room.cli", "serve", "--config", str(config),
        "--port", str(port), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        # Up to the key's fingerprint, the line after its heading.
        while not (len(lines) >= 2 and lines[-2].startswith("Package signing key")):
            raw = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert raw, f"server exited early: {lines}"
            lines.append(raw.decode().rstrip("\n"))
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 30)
    assert rc == 0
    return lines


async def test_default_workers_follow_the_cores_the_server_may_use(tmp_path: Path) -> None:
    # One worker per core it may run on (taskset, a container's cpuset), not per core
    # of the machine: more workers than cores would only share them.
    cpus = sorted(os.sched_getaffinity(0))
    config = tmp_path / "config.yaml"
    config.write_text("data_dir: ./state\nserver:\n  host: 127.0.0.1\n  workers: 0\n")
    one = await _announced(config, free_port(), {cpus[0]})
    assert any(l.startswith("Defense room server at") for l in one), one
    assert not any(l.startswith("Workers:") for l in one), one
    if len(cpus) < 2:
        pytest.skip("one CPU here: the two-core case needs two")
    two = await _announced(config, free_port(), set(cpus[:2]))
    assert "Workers: 2 processes, each hosting the days whose id modulo 2 is its number" in two, two
