"""``defense-room serve --workers 2``: two days on two worker processes behind the
front, one worker killed with SIGKILL and restarted by the supervisor.

The routing rule (which worker gets which request) is tested on its own first;
then real processes: the front, its two workers, aiortc peers in both days.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from media.testing import FrameNumberTrack, ToneTrack
from server.ownership import NotThisWorker, Ownership, owner_of
from server.routing import Anywhere, ByAppeal, ByDay, ByJoin, ByToken, join_token, route_of
from server.workers import Backoff
from storage.db import Database
from storage.invites import hash_token
from storage.journal import Journal
from storage.roster import CommissionSpec, RosterStore
from web_ui.client import RoomClient

from .cdp import Cdp
from .chromium import chromium, require_chromium
from .conftest import free_port
from .test_browser import enter, only_from_server
from .media_helpers import collecting, joined
from .procedure_helpers import Api, day_spec
from .timing import wait_until

ROOT = Path(__file__).resolve().parent.parent
BEARER = {"Authorization": "Bearer abc-123"}
ORGANIZER = "organizer-token-of-this-test"


# -- the rule, without processes ---------------------------------------------------------

@pytest.mark.parametrize(("path", "headers", "route"), [
    ("/api/days/7/state", {}, ByDay(7)),
    ("/api/days/7", BEARER, ByDay(7)),  # the path wins over the token
    ("/api/days/12/recordings/3/appeal", {}, ByDay(12)),
    ("/api/appeals/5/schedule", BEARER, ByAppeal(5)),
    ("/j/tok-EN_1", {}, ByToken("tok-EN_1")),
    ("/ws", BEARER, ByJoin()),
    ("/api/me", BEARER, ByToken("abc-123")),
    ("/api/connection-check/media", BEARER, ByToken("abc-123")),
    ("/api/days", BEARER, ByToken("abc-123")),  # the organizer's token is no invite: any
    ("/api/days", {}, Anywhere()),
    ("/api/daysX/3", {}, Anywhere()),
    ("/", {}, Anywhere()),
    ("/office", {"Authorization": "Basic xyz"}, Anywhere()),
    ("/static/room.js", {}, Anywhere()),
    ("/recordings/file/abc", {}, Anywhere()),
])
def test_which_day_a_request_names(path: str, headers: dict[str, str], route: object) -> None:
    assert route_of(path, headers) == route


def test_join_token_and_owner() -> None:
    assert join_token('{"type": "join", "token": "t1"}') == "t1"
    assert join_token('{"type": "offer", "token": "t1"}') is None
    assert join_token("not json") is None
    assert join_token('{"type": "join", "token": 5}') is None
    assert [owner_of(d, 2) for d in (1, 2, 3, 4)] == [1, 0, 1, 0]
    assert [owner_of(d, 3) for d in (1, 2, 3)] == [1, 2, 0]
    worker = Ownership(1, 2)
    assert worker.owns(3) and not worker.owns(4)
    with pytest.raises(NotThisWorker, match="day 4 is hosted by worker 0 of 2"):
        worker.check(4)
    with pytest.raises(ValueError):
        Ownership(2, 2)


def test_backoff_doubles_while_a_worker_keeps_dying_and_resets_after_a_stable_run() -> None:
    backoff = Backoff(first_s=0.5, max_s=4.0, stable_after_s=60.0)
    assert [backoff.after_run(1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.after_run(120.0) == 0.5


async def test_two_writers_chain_one_days_journal(tmp_path: Path) -> None:
    """Two `Database` writers on one file (as two workers hold): every append reads the
    day's last hash and inserts inside one transaction that holds the write lock, so
    neither fails with "database is locked" nor breaks the chain."""
    path = tmp_path / "shared.sqlite3"
    async with Database(path) as first, Database(path) as second:
        day = (await RosterStore(first).create_day(
            day_spec(time.time() + 60, students=1), expires_at=time.time() + 86400,
            now=time.time())).day_id

        async def append_many(db: Database, who: int) -> None:
            journal = Journal(db)
            for n in range(150):
                await journal.append(day, None, "test_event", {"writer": who, "n": n},
                                     time.time())

        await asyncio.gather(append_many(first, 1), append_many(second, 2))
        await Journal(first).verify(day)
        events = [e for e in await Journal(second).entries(day) if e.kind == "test_event"]
    assert len(events) == 300


# -- real processes ---------------------------------------------------------------------

@dataclass
class Day:
    day_id: int
    tokens: dict[str, str]


class Front:
    """``defense-room serve --workers 2`` in a child process, as an operator runs it."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self._config = config
        self._log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "defense_room.cli", "serve", "--config", str(self._config),
                 "--workers", "2"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        await wait_until(self.health, lambda answer: answer == "HTTP 200",
                         "the front to answer /healthz", 60)

    async def health(self) -> str:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the front exited with status {self.proc.returncode}; its log "
                                 f"ends:\n{self._log.read_text()[-3000:]}")
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{self.base_url}/healthz") as r:
                    return f"HTTP {r.status}"
        except aiohttp.ClientConnectionError as exc:
            return repr(exc)

    def workers(self) -> dict[int, tuple[int, str]]:
        """index -> (pid, unix socket) of the front's living workers, from /proc."""
        assert self.proc is not None
        found: dict[int, tuple[int, str]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            state = stat.rsplit(")", 1)[1].split()[0]
            if ppid == self.proc.pid and "--worker" in argv and state != "Z":
                index = int(argv[argv.index("--worker") + 1].split("/")[0])
                found[index] = (int(entry.name), argv[argv.index("--unix") + 1])
        return found

    def stop(self) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=60)
        return None


@pytest.fixture
async def two_days(tmp_path: Path, isolated_network: None) -> AsyncIterator[
        tuple[Front, Day, Day, Path]]:
    data = tmp_path / "data"
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data_dir: {data}\nserver:\n  host: 127.0.0.1\n  port: {port}\n"
        "tls:\n  mode: 'off'\nabsence:\n  reconnect_grace_s: 120\n"
        "media:\n  join_timeout_s: 3\n"
        f"api:\n  organizer_token_sha256: '{hash_token(ORGANIZER)}'\n")
    spec = day_spec(time.time() + 60, students=1)
    spec = spec.__class__(**{**{f: getattr(spec, f) for f in spec.__dataclass_fields__},
                             "commission": CommissionSpec("Председатель", ("Член 1", "Член 2"),
                                                          "Секретарь")})
    days = []
    async with Database(data / "defense-room.sqlite3") as db:
        for _ in range(2):
            created = await RosterStore(db).create_day(
                spec, expires_at=time.time() + 86400, now=time.time())
            days.append(Day(created.day_id, dict(zip(
                ["chair", "m1", "m2", "sec", "s1"], (i.token for i in created.invites),
                strict=True))))
    front = Front(config, port, tmp_path / "front.log")
    try:
        yield front, days[0], days[1], data
    finally:
        front.stop()


async def join_day(base_url: str, day: Day) -> list[RoomClient]:
    # The chair publishes (the student waits in the lobby until admitted).
    return [await joined(base_url, day.tokens[name],
                         [FrameNumberTrack(), ToneTrack(frequency=440)]
                         if name in ("chair", "s1") else None)
            for name in ("chair", "m1", "sec", "s1")]


async def health(base_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/healthz",
                               headers={"Authorization": f"Bearer {ORGANIZER}"}) as r:
            body: dict[str, Any] = await r.json()
            return body


async def state_status(base_url: str, day: Day) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/days/{day.day_id}/state",
                               headers={"Authorization": f"Bearer {day.tokens['sec']}"}) as r:
            return r.status, await r.json()


pytestmark = pytest.mark.timeout(300)


async def test_two_days_on_two_workers_one_killed_and_recovered(
        two_days: tuple[Front, Day, Day, Path]) -> None:
    front, day_a, day_b, data = two_days
    assert owner_of(day_a.day_id, 2) != owner_of(day_b.day_id, 2)
    await front.start()
    workers = front.workers()
    assert sorted(workers) == [0, 1]
    owner_a = owner_of(day_a.day_id, 2)

    # Reached directly (not through the front), a worker refuses a day it does not own.
    _, other_socket = workers[1 - owner_a]
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=other_socket)) as s:
        async with s.get(f"http://worker/api/days/{day_a.day_id}/state",
                         headers={"Authorization": f"Bearer {day_a.tokens['sec']}"}) as r:
            assert r.status == 421 and (await r.json())["error"] == "other_worker"
        async with s.ws_connect("http://worker/ws") as ws:
            await ws.send_json({"type": "join", "token": day_a.tokens["chair"]})
            refused = await ws.receive(timeout=10)
        assert refused.json()["code"] == "other_worker", refused.json()

    sec_a = Api(front.base_url, day_a.day_id, day_a.tokens["sec"])
    sec_b = Api(front.base_url, day_b.day_id, day_b.tokens["sec"])
    clients_a = await join_day(front.base_url, day_a)
    clients_b = await join_day(front.base_url, day_b)
    try:
        for sec in (sec_a, sec_b):
            await wait_until(sec.snapshot, lambda s: len(s["present"]) == 4, "four present")
            await sec.act("open-sitting")
            await wait_until(sec.snapshot, lambda s: s["recording"], "recording on")
        before_a = await sec_a.snapshot()
        async with collecting(clients_b[2], clients_b[0].participant_id) as seen_b:
            await wait_until(lambda: len(seen_b.frame_numbers), lambda n: n > 10,
                             "day B's secretary to see the chair")
            pid_a, _ = workers[owner_a]
            os.kill(pid_a, signal.SIGKILL)
            # While its worker is down, day A is answered at once: restarting.
            status, body = await wait_until(lambda: state_status(front.base_url, day_a),
                                            lambda answer: answer[0] != 200,
                                            "day A to be refused while its worker is down", 10)
            assert status == 503 and body["error"] == "restarting", body
            assert "restarting" in body["message"]
            # Day B's media keeps flowing meanwhile.
            at_kill = len(seen_b.frame_numbers)
            await wait_until(lambda: len(seen_b.frame_numbers), lambda n: n > at_kill + 30,
                             "day B's media to go on after day A's worker died")
            assert (await sec_b.snapshot())["recording"]

            # The supervisor starts day A's worker again (a new process).
            restarted = await wait_until(front.workers, lambda w: sorted(w) == [0, 1]
                                         and w[owner_a][0] != pid_a, "a new worker for day A", 60)
            assert restarted[1 - owner_a] == workers[1 - owner_a]  # day B's worker untouched
            status, body = await wait_until(lambda: state_status(front.base_url, day_a),
                                            lambda answer: answer[0] == 200,
                                            "day A answered again", 60)
        after_a = body["state"]
        # Its procedure recovered from the journal: same phase, recording resumed.
        assert after_a["phase"] == before_a["phase"]
        assert after_a["recording"]
        assert after_a["present"] == before_a["present"]  # the reconnect grace holds them

        for client in clients_a:
            await client.close()
        clients_a = await join_day(front.base_url, day_a)
        await wait_until(sec_a.snapshot, lambda s: len(s["present"]) == 4, "day A back")
        async with collecting(clients_a[2], clients_a[0].participant_id) as seen_a:
            await wait_until(lambda: len(seen_a.frame_numbers), lambda n: n > 10,
                             "day A's media after the rejoin")
        assert (await sec_b.snapshot())["phase"] == before_a["phase"]  # B went on as it was
        # The organizer's /healthz counts both workers' rooms and shows the restart.
        whole = await health(front.base_url)
        assert whole["rooms"] == 2 and whole["participants"] == 8, whole
        assert [(w["up"], w["starts"]) for w in whole["workers"]] == [
            (True, 2 if i == owner_a else 1) for i in (0, 1)], whole
        # SIGTERM to the front with everyone still in: the workers stop their days
        # before the sockets close, as a single server does, and leave with status 0.
        assert front.stop() == 0
        assert front.workers() == {}
        assert not (data / "run").exists()  # the workers' sockets went with them
    finally:
        for client in clients_a + clients_b:
            await client.close()
        await sec_a.close()
        await sec_b.close()
    # Both days' journals hold one unbroken chain, though two processes wrote the file.
    async with Database(data / "defense-room.sqlite3") as db:
        await Journal(db).verify()
        events_a = [(e.kind, e.detail.get("type")) for e in await Journal(db).entries(day_a.day_id)]
        events_b = [(e.kind, e.detail.get("type")) for e in await Journal(db).entries(day_b.day_id)]
    assert ("recording_resumed", None) in events_a
    # Day B: nobody ever left; neither day A's crash nor the shutdown counted as leaving.
    assert ("procedure_event", "ParticipantLeft") not in events_b, events_b


async def test_a_socket_for_a_day_whose_worker_is_down_is_told_so(
        two_days: tuple[Front, Day, Day, Path]) -> None:
    front, day_a, _, _ = two_days
    await front.start()
    pid, _ = front.workers()[owner_of(day_a.day_id, 2)]
    os.kill(pid, signal.SIGKILL)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{front.base_url}/ws") as ws:
            await ws.send_json({"type": "join", "token": day_a.tokens["sec"]})
            first = await ws.receive(timeout=10)
            closing = await ws.receive(timeout=10)
    assert first.type == aiohttp.WSMsgType.TEXT, first
    assert first.json()["code"] == "restarting", first.json()
    assert "restarting" in first.json()["message"]
    assert closing.type == aiohttp.WSMsgType.CLOSE
    assert closing.data == aiohttp.WSCloseCode.TRY_AGAIN_LATER
    # The front holds a socket until its join, and not longer than a worker would.
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{front.base_url}/ws") as ws:
            await ws.send_json({"type": "hello"})  # held: no worker is chosen before a join
            first = await ws.receive(timeout=10)
            closing = await ws.receive(timeout=10)
    assert first.json()["code"] == "join_timeout", first.json()
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4408
    # ... and joins once the worker is back.
    await wait_until(lambda: state_status(front.base_url, day_a), lambda a: a[0] == 200,
                     "day A answered again", 60)
    client = await joined(front.base_url, day_a.tokens["sec"])
    await client.close()


async def test_room_pages_in_chromium_through_the_front(
        two_days: tuple[Front, Day, Day, Path], tmp_path: Path) -> None:
    """The real page behind the front: its socket's origin check, the worker's security
    headers (connect-src names the front's address) and media straight to the worker."""
    require_chromium()
    front, day, _, _ = two_days
    await front.start()
    sec = Api(front.base_url, day.day_id, day.tokens["sec"])
    decoded = ("(window.roomDebug?.link?.lastStats ?? [])"
               ".filter(e => e.kind === 'video' && e.framesDecoded > 0).length")
    async with chromium(log=tmp_path / "browser.log", devtools=True) as browser:
        assert browser.devtools_url is not None
        cdp = await Cdp.connect(browser.devtools_url)
        try:
            tabs = [await cdp.open_tab(f"{front.base_url}/j/{day.tokens[name]}")
                    for name in ("chair", "m1")]
            for tab in tabs:
                await enter(tab)
            await wait_until(sec.snapshot, lambda s: len(s["present"]) == 2, "both pages present")
            async def decoding() -> list[Any]:
                return [await tab.evaluate(decoded) for tab in tabs]

            await wait_until(decoding, lambda counts: all(n >= 1 for n in counts),
                             "each page to decode the other's camera", 60)
            only_from_server(front.base_url, tabs)
            for tab in tabs:
                await tab.evaluate("window.roomDebug?.link?.finish('test over')")
            await wait_until(sec.snapshot, lambda s: not s["present"], "both pages gone", 30)
        finally:
            await cdp.close()
            await sec.close()
