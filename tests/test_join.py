"""Invite tokens at the signaling socket: refused before any media exists."""

from __future__ import annotations

import time

import aiohttp
import pytest

from media.testing import FrameNumberTrack
from storage.invites import Role
from storage.roster import RosterStore
from web_ui.client import JoinRefused, RoomClient
from web_ui.keys import DATABASE

from .conftest import RunningServer
from .media_helpers import joined
from .procedure_helpers import Api, day_spec
from .timing import wait_until


async def _refused(server: RunningServer, token: str) -> JoinRefused:
    client = RoomClient(server.base_url, token)
    with pytest.raises(JoinRefused) as info:
        await client.connect()
    await client.close()
    return info.value


async def test_wrong_expired_and_revoked_tokens_are_refused_before_media(server: RunningServer) -> None:
    expired = await server.invite(Role.MEMBER, "Просрочен", expires_in=-1)
    revoked = await server.invite(Role.MEMBER, "Отозван")
    await server.invites.revoke(revoked.person_id, time.time())

    wrong = await _refused(server, "x" * 43)
    assert wrong.code == "bad_token" and "not valid" in wrong.message
    assert (await _refused(server, expired.token)).code == "expired_token"
    assert (await _refused(server, revoked.token)).code == "revoked_token"
    assert (await _refused(server, "../../etc/passwd")).code == "bad_token"
    assert server.rooms.rooms == {}  # no room, so no peer connection, was ever made


async def test_first_message_must_be_join(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.base_url + "/ws") as ws:
            await ws.send_str('{"type":"offer","sdp":"v=0"}')
            reply = await ws.receive_json(timeout=5)
            assert reply["code"] == "not_joined"
            await ws.send_str("{")
            assert (await ws.receive_json(timeout=5))["code"] == "malformed"
            member = await server.invite(Role.MEMBER, "Член")
            await ws.send_json({"type": "join", "token": member.token})
            welcome = await ws.receive_json(timeout=5)
            assert welcome["type"] == "welcome"
            assert welcome["participant"]["role"] == "member"
            assert welcome["iceServers"] == []


async def test_token_error_closes_the_socket_with_a_reason(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.base_url + "/ws") as ws:
            await ws.send_json({"type": "join", "token": "nope"})
            assert (await ws.receive_json(timeout=5))["code"] == "bad_token"
            closing = await ws.receive(timeout=5)
            assert closing.type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4401


async def test_second_connection_replaces_the_first(server: RunningServer) -> None:
    member = await server.invite(Role.MEMBER, "Член")
    first, second = RoomClient(server.base_url, member.token), RoomClient(server.base_url, member.token)
    try:
        await first.connect()
        await second.connect()
        await first.wait_for(lambda: first.state.bye is not None, timeout=5, what="bye to the first")
        assert first.state.bye == "replaced"
        room = server.rooms.get(str(server.day_id))
        assert room is not None and list(room.peers) == [str(member.person_id)]
        await first.close()
        assert list(room.peers) == [str(member.person_id)]  # the late close removed nothing
    finally:
        await first.close()
        await second.close()


async def test_signaling_from_another_sites_page_is_refused(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(server.base_url + "/ws", headers={"Origin": "https://evil.example"})
        assert info.value.status == 403
        host = server.base_url.split("://", 1)[1]
        async with session.ws_connect(server.base_url + "/ws", headers={"Origin": f"http://{host}"}) as ws:
            await ws.send_json({"type": "join", "token": "nope"})
            assert (await ws.receive_json(timeout=5))["code"] == "bad_token"


async def test_a_supervisor_joins_with_media_and_a_late_observer_after_them(
        server: RunningServer) -> None:
    """Rule P1: the supervisor's link from the roster opens the room's API and joins
    the room like anyone's; an observer the secretary adds meanwhile joins too."""
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 3600, students=1), expires_at=time.time() + 86400,
        now=time.time())
    supervisor = next(i for i in created.guests if i.role is Role.SUPERVISOR)
    secretary = next(i for i in created.invites if i.role is Role.SECRETARY)
    sec = Api(server.base_url, created.day_id, secretary.token)
    clients: list[RoomClient] = []
    try:
        async with aiohttp.ClientSession() as session:
            auth = {"Authorization": f"Bearer {supervisor.token}"}
            async with session.get(f"{server.base_url}/api/me", headers=auth) as r:
                me = await r.json()
                assert r.status == 200 and me["me"]["role"] == "supervisor", me
            async with session.get(f"{server.base_url}/api/days/{created.day_id}/state",
                                   headers=auth) as r:
                assert r.status == 200 and (await r.json())["state"]["phase"] == "waiting"
        clients.append(await joined(server.base_url, secretary.token))
        clients.append(await joined(server.base_url, supervisor.token, [FrameNumberTrack()]))
        welcome = clients[1].state.welcome
        assert welcome is not None and welcome["participant"]["role"] == "supervisor"
        sup_id = str(supervisor.person_id)
        await wait_until(sec.snapshot, lambda s: sup_id in s["present"], "the supervisor present")
        await clients[0].wait_for(
            lambda: any(t.participant == sup_id for t in clients[0].received.values()), 10,
            "the supervisor's video forwarded to the secretary")

        async with aiohttp.ClientSession() as session:
            async with session.post(
                    f"{server.base_url}/api/days/{created.day_id}/people",
                    json={"name": "Наблюдатель", "role": "observer"},
                    headers={"Authorization": f"Bearer {secretary.token}"}) as r:
                added = await r.json()
                assert r.status == 201, added
        clients.append(await joined(server.base_url, added["link"].rsplit("/j/", 1)[1]))
        observer_id = str(added["person_id"])
        state = await wait_until(sec.snapshot, lambda s: observer_id in s["present"],
                                 "the observer present")
        assert sup_id in state["present"]  # the reloaded day kept who was there
    finally:
        for client in clients:
            await client.close()
        await sec.close()
