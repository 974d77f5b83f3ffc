"""Invite tokens at the signaling socket: refused before any media exists."""

from __future__ import annotations

import time

import aiohttp
import pytest

from storage.invites import Role
from web_ui.client import JoinRefused, RoomClient

from .conftest import RunningServer


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
