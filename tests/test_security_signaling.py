"""Issue 14: the signaling socket and the room cannot be flooded (S5, S11, S16, S18).

The limiter and the page coalescer are pure and stepped by hand; everything else
runs the real server on a real SQLite file, with real aiortc peers where media is
involved, and raw WebSockets where a client misbehaves on purpose.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc.sdp import SessionDescription
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.testing import FrameNumberTrack, ToneTrack
from server.config import ApiConfig, Config, SignalingConfig
from server.flood import Coalescer, FloodLimits, SocketLimiter, TokenBucket, Verdict, WaitingSockets
from storage.invites import hash_token
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import DATABASE, HOSTS
from web_ui.signaling import CLIENT_MESSAGES, SERVER_MESSAGES, ErrorCode

from .conftest import RunningServer, make_config
from .media_helpers import collecting, joined
from .procedure_helpers import Api, day_spec
from .timing import wait_until

pytestmark = pytest.mark.timeout(180)

ORGANIZER = "organizer-token-for-the-signaling-tests"
NAMES = ["chair", "m1", "m2", "m3", "sec", "s1"]
CANDIDATE = "candidate:{n} 1 udp 2130706431 192.0.2.{n} {port} typ host"


@pytest.fixture
def limits() -> dict[str, Any]:
    """The test's signaling limits; a test parametrizes this to make them reachable."""
    return {}


@pytest.fixture
def config(tmp_path: Path, limits: dict[str, Any]) -> Config:
    return make_config(tmp_path, signaling=SignalingConfig(**limits),
                       api=ApiConfig(organizer_token_sha256=hash_token(ORGANIZER)))


def with_limits(**limits: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("limits", [limits], ids=["limits"])


async def new_day(server: RunningServer) -> tuple[int, dict[str, str]]:
    """A day with the commission and one student; tokens by name."""
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60, students=1), expires_at=time.time() + 86400, now=time.time())
    return created.day_id, {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}


@dataclasses.dataclass
class RawSocket:
    """A WebSocket that sends what the test says, nothing else."""

    ws: aiohttp.ClientWebSocketResponse
    session: aiohttp.ClientSession

    async def join(self, token: str) -> dict[str, Any]:
        await self.ws.send_json({"type": "join", "token": token})
        welcome: dict[str, Any] = await self.ws.receive_json(timeout=10)
        assert welcome["type"] == "welcome", welcome
        return welcome

    async def read_until_closed(self, timeout: float = 20) -> list[dict[str, Any]]:
        """Every message up to the server's close."""
        messages: list[dict[str, Any]] = []
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                return messages
            messages.append(json.loads(msg.data))


@pytest.fixture
async def raw(server: RunningServer) -> AsyncIterator[Any]:
    """Opens raw sockets to the server; closes them all at the end."""
    opened: list[RawSocket] = []

    async def open_socket() -> RawSocket:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(server.base_url.replace("http", "ws", 1) + "/ws")
        opened.append(RawSocket(ws, session))
        return opened[-1]

    yield open_socket
    for sock in opened:
        await sock.ws.close()
        await sock.session.close()


def errors_of(messages: list[dict[str, Any]]) -> list[str]:
    return [m["code"] for m in messages if m["type"] == "error"]


# -- the pure parts ------------------------------------------------------------------

LIMITS = FloodLimits(messages_per_s=20, message_burst=60, pages_per_s=5, page_burst=20,
                     close_after_drops=50, drop_window_s=10)


def test_s11_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(100.4) is False  # 0.8 of a token
    assert bucket.take(100.5) is True
    assert bucket.tokens(1000.0) == 3  # never more than the burst
    assert bucket.tokens(50.0) == bucket.tokens(100.5)  # a clock going back adds nothing
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate_per_s=0, burst=1, now=0)


def test_s11_legitimate_use_is_never_limited() -> None:
    """What a browser sends over an hour: its ICE candidates and first answer at once,
    stats every 2 s, an answer per roster change, and the presentation's page turns,
    some of them fast (a held arrow key, a little over 4 a second)."""
    limiter = SocketLimiter(LIMITS, now=0.0)
    verdicts = [limiter.message(0.0) for _ in range(1 + 30 + 1)]  # join, candidates, answer
    now = 0.0
    while now < 3600:
        now += 2.0
        verdicts.append(limiter.message(now))  # stats
        if now % 60 == 0:
            verdicts.append(limiter.message(now))  # an answer
    for turn in range(60):
        at = 3600 + turn * 0.22
        verdicts += [limiter.message(at), limiter.page(at)]
    assert set(verdicts) == {Verdict.ACCEPT}
    assert limiter.dropped == 0


def test_s11_limiter_drops_then_closes_on_sustained_flood() -> None:
    limiter = SocketLimiter(dataclasses.replace(LIMITS, close_after_drops=5), now=0.0)
    verdicts = [limiter.message(0.0) for _ in range(64)]
    assert verdicts.count(Verdict.ACCEPT) == 60 and verdicts[60:] == [Verdict.DROP] * 4
    assert limiter.message(0.0) is Verdict.CLOSE
    assert limiter.message(100.0) is Verdict.CLOSE  # closed stays closed
    # Drops spread wider than the window never close the socket.
    patient = SocketLimiter(dataclasses.replace(LIMITS, message_burst=1, messages_per_s=0.1,
                                                close_after_drops=3, drop_window_s=10), now=0.0)
    got = [patient.message(t * 4.0) for t in range(20)]
    assert Verdict.CLOSE not in got and Verdict.DROP in got


def test_s5_pages_have_their_own_stricter_bucket() -> None:
    limiter = SocketLimiter(LIMITS, now=0.0)
    pages = [limiter.page(0.0) for _ in range(21)]
    assert pages[:20] == [Verdict.ACCEPT] * 20 and pages[20] is Verdict.DROP
    assert limiter.message(0.0) is Verdict.ACCEPT  # other messages still go through
    assert limiter.page(0.2) is Verdict.ACCEPT  # one page per 0.2 s refilled


def test_s5_coalescer_keeps_the_latest_value_and_never_loses_it() -> None:
    pages: Coalescer[int] = Coalescer(interval_s=1.0)
    assert pages.offer(1, now=10.0) == 1  # the first turn is written at once
    assert pages.due_at is None
    assert [pages.offer(p, now=10.1 + p / 100) for p in (2, 3, 4)] == [None] * 3
    assert pages.due_at == 11.0
    assert pages.take_due(10.9) is None
    assert pages.take_due(11.0) == 4  # the latest page wins
    assert pages.take_due(12.0) is None  # written once
    assert pages.offer(5, now=11.5) is None
    assert pages.offer(6, now=12.5) == 6  # after the interval: at once, the held 5 dropped
    assert pages.due_at is None and pages.flush() is None
    assert pages.offer(7, now=12.6) is None
    assert pages.flush() == 7  # on stop, the held turn is still written


def test_s18_waiting_sockets_count_per_address() -> None:
    waiting = WaitingSockets(limit=2)
    assert [waiting.enter("10.0.0.1") for _ in range(3)] == [True, True, False]
    assert waiting.enter("10.0.0.2") is True
    waiting.leave("10.0.0.1")
    assert waiting.count("10.0.0.1") == 1 and waiting.enter("10.0.0.1") is True


# -- S5: page turns --------------------------------------------------------------------

@with_limits(pages_per_s=0.01, page_burst=30)
async def test_s5_page_turns_coalesced_and_limited(server: RunningServer) -> None:
    day_id, tokens = await new_day(server)
    clients = {n: RoomClient(server.base_url, t) for n, t in tokens.items()}
    sec = Api(server.base_url, day_id, tokens["sec"])
    student, member = clients["s1"], clients["m1"]
    try:
        for client in clients.values():
            await client.connect()
            await client.start_media()
        await wait_until(sec.snapshot, lambda s: len(s["present"]) == 6, "everyone present")
        await sec.act("open-sitting")
        await wait_until(sec.snapshot, lambda s: s["recording"], "recording")
        await sec.act("identity", student=student.participant_id, accepted=True)
        await sec.act("announce-limits")
        await sec.act("start-defense", student=student.participant_id)
        for page in range(1, 41):
            await student.send({"type": "page", "page": page})
        await student.wait_for(lambda: len(student.state.errors) >= 10, 20, "ten refusals")
        await member.wait_for(lambda: any(p["page"] == 30 for p in member.state.presentations),
                              20, "page 30 on the member's screen")
        # Only pages are limited this strictly: a stats report still goes through.
        await student.send({"type": "stats", "inbound": []})
        await student.send({"type": "offer", "sdp": ""})  # answered bad_state: a sync point
        await student.wait_for(lambda: len(student.state.errors) == 11, 20, "the sync point")
        assert [e["code"] for e in student.state.errors] == ["rate_limited"] * 10 + ["bad_state"]
        assert [p["page"] for p in member.state.presentations] == list(range(1, 31))
        assert (await sec.state())["presentation"] == {"student": student.participant_id,
                                                       "page": 30}
        journal = Journal(server.app[DATABASE])

        async def journaled() -> list[int]:
            return [e.detail["page"] for e in await journal.entries(day_id)
                    if e.kind == "presentation_page"]

        pages = await wait_until(journaled, lambda p: p[-1:] == [30], "page 30 journaled")
        # 30 turns in well under a few seconds: the first at once, then one a second.
        assert pages[0] == 1 and len(pages) <= 5, pages
        assert pages == sorted(pages)
        # The secretary helps with two more turns, and the day stops right after: the
        # last turn, held back from the journal, is written on the way out.
        for page in (31, 32):
            await clients["sec"].send({"type": "page", "page": page})
        await member.wait_for(lambda: member.state.presentations[-1]["page"] == 32, 20,
                              "page 32 on the member's screen")
        host = server.app[HOSTS].get(day_id)
        assert host is not None
        await host.stop()
        assert (await journaled())[-1] == 32
    finally:
        for client in clients.values():
            await client.close()
        await sec.close()


# -- S11: a flooding socket ------------------------------------------------------------

@with_limits(messages_per_s=0.5, message_burst=10, close_after_drops=20,
                    drop_window_s=600)
async def test_s11_flood_closes_the_socket_others_unaffected(server: RunningServer,
                                                               raw: Any) -> None:
    day_id, tokens = await new_day(server)
    chair = await joined(server.base_url, tokens["chair"], [FrameNumberTrack(), ToneTrack()])
    member = await joined(server.base_url, tokens["m1"])
    try:
        flooder = await raw()
        welcome = await flooder.join(tokens["s1"])  # the join spent one token
        student_id = welcome["participant"]["id"]
        await member.wait_for(lambda: any(e["id"] == student_id for e in member.state.roster),
                              10, "the student in the member's roster")
        stats = {"type": "stats", "inbound": [
            {"mid": str(n), "kind": "video", "framesDecoded": n} for n in range(200)]}
        for _ in range(100):
            await flooder.ws.send_json(stats)
        messages = await flooder.read_until_closed()
        codes = errors_of(messages)
        assert codes == ["rate_limited"] * 20, codes
        assert "closing" in [m for m in messages if m["type"] == "error"][-1]["message"]
        assert flooder.ws.close_code == 4429
        room = server.rooms.get(str(day_id))
        assert room is not None
        await wait_until(lambda: sorted(room.peers), lambda p: student_id not in p,
                         "the flooder out of the room")
        await member.wait_for(lambda: all(e["id"] != student_id for e in member.state.roster),
                              10, "the member to see the flooder go")
        # The others go on: media still flows, their messages are still taken.
        async with collecting(member, chair.participant_id) as sink:
            await wait_until(lambda: len(sink.frame_numbers), lambda n: n > 10,
                             "the chair's video reaching the member after the flood")
        await member.send({"type": "stats", "inbound": []})
        await member.send({"type": "offer", "sdp": ""})
        await member.wait_for(lambda: bool(member.state.errors), 10, "the sync point")
        assert [e["code"] for e in member.state.errors] == ["bad_state"]
        assert member.state.bye is None and chair.state.bye is None
    finally:
        await member.close()
        await chair.close()


# -- S18: unauthenticated resource use -------------------------------------------------

@with_limits(max_waiting_per_ip=3)
async def test_s18_waiting_sockets_capped_per_ip(server: RunningServer, raw: Any) -> None:
    _, tokens = await new_day(server)
    waiting = [await raw() for _ in range(3)]
    refused = await raw()
    messages = await refused.read_until_closed(timeout=10)
    assert errors_of(messages) == ["too_many_sockets"]
    assert "127.0.0.1" in messages[0]["message"]
    assert refused.ws.close_code == 1013
    # A socket that joins no longer waits: another may open and join.
    await waiting[0].join(tokens["m1"])
    again = await raw()
    await again.join(tokens["m2"])
    for sock in (waiting[1], waiting[2]):
        assert not sock.ws.closed
    await wait_until(lambda: server.rooms.waiting.count("127.0.0.1"), lambda n: n == 2,
                     "two sockets still waiting to join")


@with_limits(max_ice_candidates=3)
async def test_s18_ice_candidates_capped(server: RunningServer) -> None:
    day_id, tokens = await new_day(server)
    member = await joined(server.base_url, tokens["m1"])
    chair = await joined(server.base_url, tokens["chair"], [FrameNumberTrack()])
    try:
        for n in range(1, 6):
            await member.send({"type": "ice", "candidate": CANDIDATE.format(n=n, port=9000 + n),
                               "sdpMid": "0", "sdpMLineIndex": 0})
        await member.send({"type": "offer", "sdp": ""})  # a sync point
        await member.wait_for(lambda: any(e["code"] == "bad_state" for e in member.state.errors),
                              10, "the sync point")
        # The first three are taken, the next two refused.
        assert [(e["code"], "already has 3" in e["message"]) for e in member.state.errors] == [
            ("sdp_rejected", True), ("sdp_rejected", True), ("bad_state", False)]
        # The peer keeps working: its connection is up and the chair's video arrives.
        room = server.rooms.get(str(day_id))
        assert room is not None
        peer = room.peer(member.participant_id)
        assert peer is not None
        await wait_until(lambda: peer.connection_state, lambda c: c == "connected",
                         "the member's media connection up")
        async with collecting(member, chair.participant_id) as sink:
            await wait_until(lambda: len(sink.frame_numbers), lambda n: n > 10,
                             "the chair's video reaching the member")
        assert member.state.bye is None
    finally:
        await chair.close()
        await member.close()


async def test_s18_healthz_without_counts(server: RunningServer) -> None:
    _, tokens = await new_day(server)
    member = await joined(server.base_url, tokens["m1"])
    try:
        async with aiohttp.ClientSession() as session:
            async def health(token: str | None) -> dict[str, Any]:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                async with session.get(f"{server.base_url}/healthz", headers=headers) as r:
                    assert r.status == 200
                    body: dict[str, Any] = await r.json()
                    return body

            assert await health(None) == {"ok": True}
            assert await health(tokens["chair"]) == {"ok": True}  # an invite is not enough
            assert await health("x" * 5000) == {"ok": True}
            assert await health(ORGANIZER) == {"ok": True, "rooms": 1, "participants": 1}
    finally:
        await member.close()


# -- S16: the closed sitting -----------------------------------------------------------

class OfferLog(RoomClient):
    """A participant that keeps every offer the server made it."""

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(base_url, token)
        self.offers: list[dict[str, Any]] = []

    async def _handle(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "offer":
            self.offers.append(msg)
        await super()._handle(msg)


async def packets_received(client: RoomClient) -> int:
    stats = await client.pc.getStats()
    return sum(int(getattr(s, "packetsReceived", 0)) for s in stats.values()
               if s.type == "inbound-rtp")


async def test_s16_closed_sitting_rejoin_gets_no_commission_track(server: RunningServer) -> None:
    day_id, tokens = await new_day(server)
    apis = {n: Api(server.base_url, day_id, tokens[n]) for n in ("sec", "chair")}
    sec, chair_api = apis["sec"], apis["chair"]
    clients: dict[str, RoomClient] = {}
    try:
        for name in NAMES:
            clients[name] = await joined(
                server.base_url, tokens[name],
                [FrameNumberTrack(), ToneTrack()] if name in ("chair", "s1") else None)
        student_id = clients["s1"].participant_id
        await wait_until(sec.snapshot, lambda s: len(s["present"]) == 6, "everyone present")
        await sec.act("open-sitting")
        await wait_until(sec.snapshot, lambda s: s["recording"], "recording")
        await sec.act("identity", student=student_id, accepted=True)
        await chair_api.act("announce-limits")
        await sec.act("start-defense", student=student_id)
        for _ in ("questions", "supervisor", "review", "answer", "final_word",
                  "between_defenses"):
            await chair_api.act("next-phase")
        # The student leaves before the closed sitting and comes back during it.
        await clients.pop("s1").close()
        await wait_until(sec.snapshot, lambda s: student_id not in s["present"],
                         "the student gone")
        await sec.act("return-time", return_at=time.time() + 1800)
        state = await sec.act("closed-sitting")
        assert state["phase"] == "closed_sitting" and state["lobby"] == []
        room = server.rooms.get(str(day_id))
        assert room is not None and student_id in room.lobby  # before they are back

        back = OfferLog(server.base_url, tokens["s1"])
        clients["s1"] = back
        welcome = await back.connect()
        assert welcome["lobby"] == {"waiting": True, "reason": "closed_sitting"}
        await back.start_media()
        first = back.offers[0]
        assert first["tracks"] == {}
        media = SessionDescription.parse(first["sdp"]).media
        assert [m.direction for m in media] == ["recvonly", "recvonly"]
        await wait_until(sec.snapshot, lambda s: student_id in s["present"],
                         "the student present again, in the lobby")
        # The commission goes on seeing the chair; the student receives nothing.
        async with collecting(clients["m1"], clients["chair"].participant_id) as sink:
            await wait_until(lambda: len(sink.frame_numbers), lambda n: n > 30,
                             "a second of the chair's video reaching a member")
        assert all(o["tracks"] == {} for o in back.offers)
        assert not back.received
        assert await packets_received(back) == 0
        assert all(t.participant != student_id for t in clients["chair"].received.values())
    finally:
        for client in clients.values():
            await client.close()
        for api in apis.values():
            await api.close()


# -- all of it: messages of any shape --------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
FIELDS = st.sampled_from(["token", "sdp", "candidate", "sdpMid", "sdpMLineIndex", "inbound",
                          "page", "mid", "kind", "framesDecoded"]) | st.text(max_size=8)
LARGE = st.integers(0, 70_000).map(lambda n: "x" * n)
ENTRY = st.dictionaries(FIELDS, JSON | LARGE, max_size=5)
VALUES = JSON | LARGE | st.lists(ENTRY, max_size=300)
TYPES = st.sampled_from(sorted(CLIENT_MESSAGES)) | st.text(max_size=20)
MESSAGE = st.one_of(
    st.builds(lambda kind, fields: json.dumps({**fields, "type": kind}),
              TYPES, st.dictionaries(FIELDS, VALUES, max_size=4)),
    st.text(max_size=100),  # not JSON, or JSON that is no message
    st.integers(1, 40_000).map(lambda n: "[" * n + "]" * n),
    JSON.map(json.dumps),
)
#: How the server may end a fuzzed socket: "bye" (OK), or closing a flood.
DOCUMENTED_CLOSES = {1000, 4429}


@pytest.fixture
async def fuzz_room(server: RunningServer) -> AsyncIterator[tuple[dict[str, str], RoomClient]]:
    """A day with a member in the room, who must not notice the fuzzing."""
    _, tokens = await new_day(server)
    member = await joined(server.base_url, tokens["m1"])
    yield tokens, member
    await member.close()


@with_limits(messages_per_s=10_000, message_burst=10_000, pages_per_s=1000,
                    page_burst=1000)
@settings(max_examples=250, derandomize=True, database=None, deadline=None,
          # One server and one room for every example, on purpose.
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(messages=st.lists(MESSAGE, min_size=1, max_size=6))
async def test_signaling_fuzz(fuzz_room: tuple[dict[str, str], RoomClient], raw: Any,
                              caplog: pytest.LogCaptureFixture, messages: list[str]) -> None:
    tokens, member = fuzz_room
    sock = await raw()
    await sock.join(tokens["s1"])
    for text in messages:
        if not sock.ws.closed:
            await sock.ws.send_str(text)
    if not sock.ws.closed:
        await sock.ws.send_json({"type": "offer", "sdp": ""})  # answered bad_state: the end
    got: list[dict[str, Any]] = []
    while True:
        msg = await sock.ws.receive(timeout=20)
        if msg.type != aiohttp.WSMsgType.TEXT:
            assert sock.ws.close_code in DOCUMENTED_CLOSES, (sock.ws.close_code, messages)
            break
        got.append(json.loads(msg.data))
        if got[-1].get("code") == "bad_state" and "makes the offers" in got[-1]["message"]:
            break
    await sock.ws.close()
    assert all(m["type"] in SERVER_MESSAGES for m in got), got
    codes = set(errors_of(got))
    assert codes <= {c.value for c in ErrorCode} - {"internal"}, (codes, messages)
    # The other participant and the server go on, with nothing logged as a bug.
    assert member.state.bye is None and not member.state.errors
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info]
    assert not tracebacks, (tracebacks, messages)
