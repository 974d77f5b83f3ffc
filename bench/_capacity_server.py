"""The server side of bench/capacity.py: the real ``defense-room serve`` for one step,
its config, the days it hosts and the API calls a secretary makes, and the forwarding
statistics every server process reports (bench/_capacity_stats.py)."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from forwarding import Child, pin_to

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ROOM_ROLES = ("chair", "member", "member", "member", "member", "secretary", "student",
              "supervisor")


def serve_supports_workers() -> bool:
    """Whether ``defense-room serve`` has ``--workers`` (a colleague's change in flight)."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", "defense_room.cli", "serve", "--help"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    return "--workers" in out.stdout


def has_layer_selection() -> bool:
    """Whether the server knows ``media.layer_selection`` (config.yaml or its dataclass)."""
    import dataclasses

    import yaml

    from server.config import Config

    data = yaml.safe_load((ROOT / "config.yaml").read_text()) or {}
    in_yaml = "layer_selection" in (data.get("media") or {})
    media = Config().media
    in_code = "layer_selection" in {f.name for f in dataclasses.fields(media)}
    return in_yaml or in_code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, data_dir: Path, port: int, organizer_sha256: str,
                 layer_selection: bool | None) -> None:
    import yaml

    media: dict[str, Any] = {"max_participants": 32}
    if layer_selection is not None:
        media["layer_selection"] = layer_selection
    config = {
        "server": {"host": "127.0.0.1", "port": port, "public_host": "127.0.0.1"},
        "tls": {"mode": "off"},
        "data_dir": str(data_dir),
        "ice_servers": [],
        "media": media,
        # Everyone enters directly: the lobby is signaling only, and a bench has no
        # secretary's eye to admit the student and the supervisor.
        "lobby": {"admission": False},
        # A shared development disk may hold less than the 2 GB the product keeps free.
        "recordings": {"min_free_mb": 0},
        "api": {"organizer_token_sha256": organizer_sha256},
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True))


def day_body(index: int) -> dict[str, Any]:
    """A day of one student, all documents on file, starting in a few minutes (UTC)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now + datetime.timedelta(minutes=5)
    consent = (now - datetime.timedelta(days=10)).date().isoformat()
    kinds = ("thesis", "plagiarism_report", "supervisor_review", "reviewer_review",
             "presentation_pdf")
    return {
        "title": f"Capacity bench day {index}",
        "date": start.date().isoformat(),
        "start": start.strftime("%H:%M"),
        "timezone": "UTC",
        "commission": {"chair": f"Chair {index}",
                       "members": [f"Member {index}.{m}" for m in range(1, 5)],
                       "secretary": f"Secretary {index}"},
        "students": [{"name": f"Student {index}", "thesis_title": f"Thesis {index}",
                      "supervisor": f"Supervisor {index}", "reviewer": f"Reviewer {index}",
                      "timezone": "UTC", "consent": True, "consent_date": consent,
                      "documents": [{"kind": k, "date": consent} for k in kinds]}],
    }


async def start_server(config: Path, stats_dir: Path, log: Path, workers: int | None,
                       cpus: set[int] | None = None) -> Child:
    """``cpus``: the server and its workers run on these CPUs only (serve's default
    worker count is then their number)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(BENCH / "_stats_hook"), *filter(None, [env.get("PYTHONPATH")])])
    env["BENCH_STATS_DIR"] = str(stats_dir)
    args = [sys.executable, "-m", "defense_room.cli", "serve", "--config", str(config)]
    if workers is not None:
        args += ["--workers", str(workers)]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT, preexec_fn=pin_to(cpus))
    return Child("server", proc, log)


async def wait_healthy(base: str, server: Child, timeout: float = 60.0) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.proc.returncode is not None:
                raise RuntimeError(f"the server exited; log tail:\n{server.tail()}")
            try:
                async with session.get(f"{base}/healthz",
                                       timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"the server did not answer /healthz in {timeout:.0f} s; log tail:\n"
                       f"{server.tail()}")


async def create_days(base: str, organizer: str, count: int) -> list[dict[str, Any]]:
    """Each day's id and its eight people (role, person id, token), as ROOM_ROLES."""
    import aiohttp

    rooms = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {organizer}"}) as s:
        for index in range(1, count + 1):
            async with s.post(f"{base}/api/days", json=day_body(index)) as r:
                body = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"POST /api/days answered {r.status}: {body}")
            by_role: dict[str, list[dict[str, Any]]] = {}
            for invite in body["invites"]:
                by_role.setdefault(invite["role"], []).append(invite)
            people = []
            for role in ROOM_ROLES:
                invite = by_role[role].pop(0)
                people.append({"role": role, "person_id": invite["person_id"],
                               "token": invite["link"].rsplit("/j/", 1)[1]})
            rooms.append({"day_id": body["day_id"], "people": people})
    return rooms


async def open_sittings(base: str, rooms: list[dict[str, Any]], timeout: float = 30.0) -> None:
    """Each secretary opens the sitting, which turns the recording on; wait until every
    day's state says it records."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for room in rooms:
            secretary = next(p for p in room["people"] if p["role"] == "secretary")
            url = f"{base}/api/days/{room['day_id']}"
            headers = {"Authorization": f"Bearer {secretary['token']}"}
            async with session.post(f"{url}/actions/open-sitting", json={},
                                    headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"day {room['day_id']}: open-sitting answered "
                                       f"{r.status}: {await r.text()}")
            deadline = time.monotonic() + timeout
            while True:
                async with session.get(f"{url}/state", headers=headers) as r:
                    state = (await r.json())["state"]
                if state.get("recording"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"day {room['day_id']}: the recording is not on after "
                                       f"{timeout:.0f} s: {state.get('recording_failure')!r}")
                await asyncio.sleep(0.3)


async def server_stats(stats_dir: Path, reset: bool) -> list[dict[str, Any]]:
    """Every server process's rooms (bench/_capacity_stats.py)."""
    import aiohttp

    found = []
    async with aiohttp.ClientSession() as session:
        for path in sorted(stats_dir.glob("stats-*.json")):
            port = json.loads(path.read_text())["port"]
            url = f"http://127.0.0.1:{port}/" + ("?reset=1" if reset else "")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                    found.append(await r.json())
            except (aiohttp.ClientError, asyncio.TimeoutError):
                continue  # a worker that went away
    return found


