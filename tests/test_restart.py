"""The server process killed with SIGKILL during a talk, and started again.

The talk's clock is wall-clock and rebuilt from the journal, so the end of the
talk is the same instant after the restart; those who were connected get a grace
to come back, so the restart is neither an absence nor a loss of quorum; the
recording of the crashed take stays playable and a new take starts. A tampered
journal is refused at the next start.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import av
import pytest

from media.testing import FrameNumberTrack, ToneTrack
from recordings.plan import day_folder
from storage.db import Database
from storage.errors import JournalTampered
from storage.journal import Journal
from storage.roster import CommissionSpec, RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE

from .conftest import free_port, make_config, serving, url_of
from .media_helpers import joined
from .procedure_helpers import Api, day_spec
from .timing import wait_until

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """`defense-room serve` in a child process, as an operator runs it."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self._config = config
        self._port = port
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "defense_room.cli", "serve", "--config", str(self._config)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        proc = self._proc
        async with aiohttp.ClientSession() as session:
            async def health() -> str:
                if proc.poll() is not None:
                    raise AssertionError(f"the server exited with status {proc.returncode}")
                try:
                    async with session.get(f"{self.base_url}/healthz") as r:
                        return f"HTTP {r.status}"
                except aiohttp.ClientConnectionError as exc:
                    return repr(exc)

            try:
                await wait_until(health, lambda answer: answer == "HTTP 200",
                                 "the server to answer /healthz", 30)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; its log ends:\n{self._log.read_text()[-3000:]}") from None

    def kill(self, sig: int) -> None:
        assert self._proc is not None
        self._proc.send_signal(sig)
        self._proc.wait(timeout=30)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.kill(signal.SIGTERM)


@pytest.fixture
async def setup(tmp_path: Path, isolated_network: None) -> AsyncIterator[
        tuple[ServerProcess, int, dict[str, str], Path]]:
    data = tmp_path / "data"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data_dir: {data}\nserver:\n  host: 127.0.0.1\n  port: {free_port()}\n"
        "tls:\n  mode: 'off'\nabsence:\n  reconnect_grace_s: 120\n")
    spec = day_spec(time.time() + 60, students=1)
    spec = spec.__class__(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                             "commission": CommissionSpec("Председатель", ("Член 1", "Член 2"),
                                                          "Секретарь")})
    async with Database(data / "defense-room.sqlite3") as db:
        created = await RosterStore(db).create_day(
            spec, expires_at=time.time() + 86400, now=time.time())
    tokens = dict(zip(["chair", "m1", "m2", "sec", "s1"],
                      (i.token for i in created.invites), strict=True))
    port = int(config.read_text().split("port: ")[1].split()[0])
    server = ServerProcess(config, port, tmp_path / "server.log")
    try:
        yield server, created.day_id, tokens, data
    finally:
        server.stop()


async def join_all(server: ServerProcess, tokens: dict[str, str]) -> list[RoomClient]:
    return [await joined(server.base_url, tokens[name],
                         [FrameNumberTrack(), ToneTrack(frequency=440)] if name == "s1" else None)
            for name in ("chair", "m1", "sec", "s1")]


async def test_sigkill_during_the_talk_and_restart(
        setup: tuple[ServerProcess, int, dict[str, str], Path]) -> None:
    server, day_id, tokens, data = setup
    await server.start()
    sec = Api(server.base_url, day_id, tokens["sec"])
    clients = await join_all(server, tokens)
    s1 = clients[3].participant_id
    try:
        await wait_until(sec.snapshot, lambda s: len(s["present"]) == 4, "four present")
        await sec.act("open-sitting")
        await wait_until(sec.snapshot, lambda s: s["recording"], "recording on")
        await sec.act("identity", student=s1, accepted=True)
        await sec.act("announce-limits")
        talk = await sec.act("start-defense", student=s1)
        takes = day_folder(data / "recordings", day_id)
        await wait_until(lambda: sum(p.stat().st_size for p in takes.rglob(f"{s1}-video-*.part")),
                         lambda size: size > 30_000, "some of the talk on the recording", 20)
        server.kill(signal.SIGKILL)
    finally:
        for client in clients:
            await client.close()
        await sec.close()

    await server.start()
    sec = Api(server.base_url, day_id, tokens["sec"])
    try:
        after = await sec.snapshot()
        assert after["phase"] == "talk" and after["current_student"] == s1
        assert after["phase_started_at"] == talk["phase_started_at"]
        assert after["phase_ends_at"] == talk["phase_ends_at"]  # same instant: time went on
        assert not after["paused"] and after["present"] == talk["present"]
        assert after["recording"]  # a new take started without anyone asking
        clients = await join_all(server, tokens)
        state = await wait_until(sec.snapshot, lambda s: len(s["present"]) == 4, "everyone back")
        assert state["phase_ends_at"] == talk["phase_ends_at"] and not state["paused"]
        assert (await sec.act("next-phase"))["phase"] == "questions"
    finally:
        for client in clients:
            await client.close()
        await sec.close()
    server.stop()

    take_dirs = sorted(p for p in takes.iterdir() if p.name.startswith("take-"))
    assert len(take_dirs) == 2
    crashed = sorted(take_dirs[0].glob(f"{s1}-video-*.webm.part"))
    assert crashed, "the killed take keeps its unfinished name"
    with av.open(str(crashed[0])) as container:
        assert sum(1 for _ in container.decode(video=0)) > 10

    database = data / "defense-room.sqlite3"
    async with Database(database) as db:
        entries = await Journal(db).entries(day_id)
        await Journal(db).verify()
    kinds = [(e.kind, e.detail.get("type")) for e in entries]
    # Nobody counted as gone from the kill until the talk moved on: a restart is
    # not an absence.
    resumed = kinds.index(("recording_resumed", None))
    moved_on = kinds.index(("procedure_event", "NextPhase"))
    assert resumed < moved_on
    assert ("procedure_event", "ParticipantLeft") not in kinds[resumed:moved_on]

    # Tamper with one event: the next start refuses to rebuild the procedure.
    victim = next(e for e in entries if e.detail.get("type") == "StartDefense")
    with sqlite3.connect(database) as conn:
        conn.execute("DROP TRIGGER journal_append_only")
        conn.execute("UPDATE journal SET at = at - 600 WHERE id = ?", [victim.id])
    async with Database(database) as db:
        with pytest.raises(JournalTampered, match=str(victim.id)):
            await Journal(db).verify()
    await server.start()
    sec = Api(server.base_url, day_id, tokens["sec"])
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.base_url}/api/days/{day_id}/state",
                                   headers={"Authorization": f"Bearer {tokens['sec']}"}) as r:
                body = await r.json()
                assert r.status == 503, body
                assert "fails verification" in body["message"]
    finally:
        await sec.close()
    assert os.path.exists(database)


async def test_those_who_do_not_come_back_after_a_restart_count_as_gone(
        tmp_path: Path, isolated_network: None) -> None:
    config = make_config(tmp_path)
    config = config.__class__(**{
        **{f: getattr(config, f) for f in config.__dataclass_fields__},
        "absence": config.absence.__class__(grace_minutes=15, reconnect_grace_s=0.5)})

    # The first server stops (hosts before rooms: nobody is journaled as gone) while
    # everyone is still connected; they close only afterwards.
    async with serving(config) as first:
        spec = day_spec(time.time() + 60, students=1)
        created = await RosterStore(first.app[DATABASE]).create_day(
            spec, expires_at=time.time() + 86400, now=time.time())
        tokens = dict(zip(["chair", "m1", "m2", "m3", "sec", "s1"],
                          (i.token for i in created.invites), strict=True))
        base = url_of(first)
        clients = [await joined(base, tokens[name]) for name in ("chair", "m1", "m2", "sec", "s1")]
        sec = Api(base, created.day_id, tokens["sec"])
        await wait_until(sec.snapshot, lambda s: len(s["present"]) == 5, "five present")
        await sec.act("open-sitting")
        await wait_until(sec.snapshot, lambda s: s["recording"], "recording on")
        await sec.act("identity", student=clients[4].participant_id, accepted=True)
        await sec.act("announce-limits")
        await sec.act("start-defense", student=clients[4].participant_id)
        await sec.close()
    for client in clients:
        await client.close()

    async with serving(config) as second:
        sec = Api(url_of(second), created.day_id, tokens["sec"])
        try:
            state = await sec.snapshot()
            assert len(state["present"]) == 5 and not state["paused"]
            # Departures are fed one by one: the pause may show before the last one.
            state = await wait_until(sec.snapshot, lambda s: s["paused"] and not s["present"],
                                     "the pause and everyone gone after the grace", 10)
            assert state["quorum"]["reached"] is False
        finally:
            await sec.close()
