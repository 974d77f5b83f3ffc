"""A whole defense day driven through the HTTP API, with real aiortc peers as the
participants: presence comes from their real media connections."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest

from media.testing import FrameNumberTrack, ToneTrack
from recordings.plan import day_folder
from recordings.room_recording import RoomRecording
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import CONFIG, DATABASE, HOSTS
from web_ui.recordings_api import RECORDINGS

from .conftest import RunningServer
from .media_helpers import joined
from .procedure_helpers import Api, day_spec, small_pdf
from .signing_helpers import BrowserKey
from .timing import wait_until

pytestmark = pytest.mark.timeout(180)


@contextlib.asynccontextmanager
async def people(server: RunningServer) -> AsyncIterator[tuple[int, dict[str, str]]]:
    """A new day with 4 voting members, a secretary and two students; tokens by name."""
    created = await RosterStore(server.app[DATABASE]).create_day(
        day_spec(time.time() + 60), expires_at=time.time() + 86400, now=time.time())
    names = ["chair", "m1", "m2", "m3", "sec", "s1", "s2"]
    yield created.day_id, {n: i.token for n, i in zip(names, created.invites, strict=True)}


async def connect(server: RunningServer, token: str, media: bool = False) -> RoomClient:
    return await joined(server.base_url, token,
                        [FrameNumberTrack(), ToneTrack(frequency=440)] if media else None)


async def test_a_whole_day_through_the_api(server: RunningServer) -> None:
    async with people(server) as (day_id, tokens):
        apis = {n: Api(server.base_url, day_id, t) for n, t in tokens.items()}
        clients: dict[str, RoomClient] = {}
        try:
            for name in ("chair", "m1", "m2", "m3", "sec", "s1"):
                clients[name] = await connect(server, tokens[name], media=name in ("chair", "s1"))
            ids = {n: c.participant_id for n, c in clients.items()}
            sec, chair = apis["sec"], apis["chair"]
            await wait_until(sec.snapshot, lambda s: len(s["present"]) == 6, "six present by media")
            state = await sec.snapshot()
            assert state["quorum"] == {"present": 4, "total": 4, "required": 3, "reached": True}
            assert sorted(state["consented"]) == sorted(state["queue"])
            s2_id = next(s for s in state["queue"] if s != ids["s1"])

            # Roles: nobody but the secretary opens the sitting or switches recording.
            for who in ("chair", "m1", "s1"):
                refused = await apis[who].refused("open-sitting")
                assert refused.status == 403, refused.body
            assert (await apis["m1"].refused("recording", on=True)).status == 403
            assert (await apis["s1"].refused("recording", on=True)).status == 403

            state = await sec.act("open-sitting")
            assert state["phase"] == "opening"
            state = await wait_until(sec.snapshot, lambda s: s["recording"], "recording confirmed")
            assert state["phase"] == "identification"
            await clients["m1"].wait_for(
                lambda: (clients["m1"].state.procedure or {}).get("recording") is True,
                10, "the recording state pushed to a member")

            bad = await sec.refused("identity", student=ids["s1"], accepted="yes")
            assert bad.status == 400 and "accepted" in bad.body["message"]
            await sec.act("identity", student=ids["s1"], accepted=True)
            # A valid reason needs its proof on file (7.9): the secretary uploads it.
            refused = await sec.refused("valid-reason", student=s2_id, reason="болезнь, справка")
            assert refused.status == 409 and refused.body["clause"] == "7.9", refused.body
            await sec.upload(s2_id, "absence_proof", small_pdf("Medical certificate"))
            await sec.act("valid-reason", student=s2_id, reason="болезнь, справка")
            await chair.act("announce-limits")
            assert (await apis["s1"].refused("next-phase")).status == 403
            state = await sec.act("start-defense", student=ids["s1"])
            assert state["phase"] == "talk" and state["current_student"] == ids["s1"]
            assert state["phase_ends_at"] == pytest.approx(state["phase_started_at"] + 600)
            await clients["s1"].wait_for(
                lambda: (clients["s1"].state.procedure or {}).get("phase") == "talk",
                10, "the student's page to learn the talk began")
            host = server.app[HOSTS].get(day_id)
            assert host is not None and host.recording is not None
            await wait_until(lambda: recorded_bytes(host.recording, ids["s1"]),
                             lambda size: size > 30_000,
                             "some seconds of the student's talk on the recording", 20)

            # Quorum is lost when two members' media goes, and comes back with one.
            await clients.pop("m2").close()
            await clients.pop("m3").close()
            await wait_until(sec.snapshot, lambda s: s["paused"], "pause without quorum")
            conflict = await sec.refused("next-phase")
            assert conflict.status == 409 and conflict.body["clause"] == "7.2"
            clients["m2"] = await connect(server, tokens["m2"])
            state = await wait_until(sec.snapshot, lambda s: not s["paused"], "resume with quorum")
            assert state["phase_ends_at"] > state["phase_started_at"] + 600  # paused time added

            state = await sec.act("next-phase")
            assert state["phase"] == "questions"
            await sec.act("question", student=ids["s1"], text="Почему выбран этот метод?")
            for phase in ("supervisor", "review", "answer", "final_word", "between_defenses"):
                assert (await chair.act("next-phase"))["phase"] == phase
            assert state["statuses"][s2_id] == "rescheduled"

            await sec.act("return-time", return_at=time.time() + 1800)
            state = await sec.act("closed-sitting")
            assert state["phase"] == "closed_sitting"
            await wait_until(sec.snapshot, lambda s: not s["recording"], "recording off (7.12)")
            await clients["s1"].wait_for(lambda: clients["s1"].state.lobby, 10, "s1 in the lobby")
            room = server.rooms.get(str(day_id))
            assert room is not None and ids["s1"] in room.lobby
            await clients["chair"].wait_for(
                lambda: all(t.participant != ids["s1"] for t in clients["chair"].received.values()),
                10, "the student's media no longer forwarded to the commission")

            assert (await apis["s1"].refused("vote", student=ids["s1"], grade="excellent")).status == 403
            await chair.act("vote", student=ids["s1"], grade="good")
            await apis["m1"].act("vote", student=ids["s1"], grade="excellent")
            early = await sec.refused("announce-results")
            assert early.status == 409 and ids["m2"] in early.body["message"]
            await apis["m2"].act("vote", student=ids["s1"], grade="excellent")
            # m3 left for good: 3 of 4 present is still a quorum, and the simple
            # majority of those present decides (the tie rule is tested in the core).
            await sec.act("announce-results")
            await wait_until(sec.snapshot, lambda s: s["phase"] == "results" and s["recording"],
                             "results with the recording on (7.13)")
            await clients["s1"].wait_for(
                lambda: any(n["kind"] == "results" for n in clients["s1"].state.notices),
                10, "the results notice")
            results = next(n for n in clients["s1"].state.notices if n["kind"] == "results")
            assert results["grades"] == {ids["s1"]: "excellent"}
            assert room.lobby == frozenset()
            await sec.act("close-sitting")
            await wait_until(sec.snapshot, lambda s: not s["recording"],
                             "recording off at the close")
            # The closed sitting hands its defenses to the build of one file each.
            jobs = server.app[RECORDINGS].jobs
            await wait_until(lambda: jobs.jobs(day_id), lambda js: any(
                str(j.student_id) == ids["s1"] for j in js), "a build queued for s1", 10)
        finally:
            for client in clients.values():
                await client.close()
            for api in apis.values():
                await api.close()

    # Two takes: the open part, and the results; every file finished and playable.
    folder = day_folder(server.app[CONFIG].recordings_dir, day_id)
    host_after = server.app[HOSTS].get(day_id)
    assert host_after is not None and host_after.recording is None
    takes = sorted(p for p in folder.iterdir() if p.name.startswith("take-"))
    assert len(takes) == 2
    assert not [p for take in takes for p in take.rglob("*.part")]  # every take closed
    student_video = sorted(takes[0].glob(f"{ids['s1']}-video-*.webm"))
    assert student_video, list(takes[0].iterdir())
    assert decoded_frames(student_video[0]) > 30
    await Journal(server.app[DATABASE]).verify()
    kinds = [e.detail.get("type") for e in await Journal(server.app[DATABASE]).entries(day_id)
             if e.kind == "procedure_event"]
    assert kinds.count("ParticipantLeft") >= 2 and "CastVote" in kinds
    await check_protocol(server, day_id, tokens, ids)


async def check_protocol(server: RunningServer, day_id: int, tokens: dict[str, str],
                         ids: dict[str, str]) -> None:
    """The student's protocol from the journal: what happened, approved, then signed."""
    by_id = {ids[name]: tokens[name] for name in ids}
    url = f"{server.base_url}/api/days/{day_id}/protocols/{ids['s1']}"
    async with aiohttp.ClientSession() as session:
        async def call(method: str, path: str, token: str,
                       body: dict[str, Any] | None = None) -> tuple[int, Any]:
            async with session.request(method, url + path, json=body,
                                       headers={"Authorization": f"Bearer {token}"}) as r:
                return r.status, await r.json()

        status, protocol = await call("GET", "?format=json", tokens["sec"])
        assert status == 200, protocol
        content = protocol["content"]["protocol"]
        assert content["grade"] == "excellent" and content["status"] == "defended"
        assert [q["text"] for q in content["questions"]] == ["Почему выбран этот метод?"]
        assert [i["accepted"] for i in content["identity"]] == [True]
        assert sorted(v["grade"] for v in content["votes"]) == ["excellent", "excellent", "good"]
        assert len(content["pauses"]) == 1  # the lost quorum
        keys: dict[str, tuple[BrowserKey, int, int]] = {}

        async def signed(action: str, token: str) -> dict[str, Any]:
            if token not in keys:
                browser = BrowserKey()
                async with session.post(f"{server.base_url}/api/days/{day_id}/keys",
                                        json={"jwk": browser.jwk},
                                        headers={"Authorization": f"Bearer {token}"}) as r:
                    registered = await r.json()
                    keys[token] = (browser, registered["key_id"], registered["person_id"])
            browser, key_id, person = keys[token]
            return browser.endorse(action, day_id, ids["s1"], protocol["hash"],
                                   person_id=person, key_id=key_id)

        status, _ = await call("POST", "/sign", tokens["chair"],
                               await signed("sign", tokens["chair"]))
        assert status == 409  # the members approve first
        for missing in protocol["missing_approvals"]:
            token = by_id[str(missing["person_id"])]
            status, answer = await call("POST", "/approve", token,
                                        await signed("approve", token))
            assert status == 200, answer
        status, done = await call("POST", "/sign", tokens["chair"],
                                  await signed("sign", tokens["chair"]))
        assert status == 200 and done["status"] == "signed", done
    entries = await Journal(server.app[DATABASE]).entries(day_id)
    assert any(e.kind == "protocol_signed" and e.detail.get("hash") == protocol["hash"]
               for e in entries)


def recorded_bytes(take: RoomRecording | None, participant: str) -> int:
    if take is None:
        return 0
    return sum(p.stat().st_size for p in take.folder.glob(f"{participant}-video-*.part"))


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_the_api_refuses_bad_requests_and_leaves_the_state(server: RunningServer) -> None:
    async with people(server) as (day_id, tokens):
        sec = Api(server.base_url, day_id, tokens["sec"])
        other = Api(server.base_url, day_id + 1000, tokens["sec"])
        nobody = Api(server.base_url, day_id, "not-a-token")
        try:
            before = await sec.snapshot()
            assert (await nobody.refused("open-sitting")).status == 401
            assert (await other.refused("open-sitting")).status == 403
            assert (await sec.refused("no-such-action")).status == 404
            assert (await sec.refused("open-sitting", now=1)).status == 400
            assert (await sec.refused("valid-reason", student="999999", reason="x")).status == 422
            refused = await sec.refused("start-defense", student=before["queue"][0])
            assert refused.status == 409 and refused.body["clause"] == "7.5"
            assert await sec.snapshot() == before
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{server.base_url}/api/days/{day_id}/actions/queue",
                                        data=b"{not json", headers={
                                            "Authorization": f"Bearer {tokens['sec']}"}) as r:
                    assert r.status == 400
                    assert (await r.json())["error"] == "malformed"
                async with session.get(f"{server.base_url}/api/openapi.json") as r:
                    doc = await r.json()
            vote = doc["paths"]["/api/days/{day_id}/actions/vote"]["post"]
            schema = vote["requestBody"]["content"]["application/json"]["schema"]
            assert schema["required"] == ["grade", "student"]
            assert "chair, member" in vote["summary"]
            assert doc["paths"]["/api/days/{day_id}/state"]["get"]["summary"].startswith("GET")
            assert "post" in doc["paths"]["/api/days"]
            assert "/api/days/{day_id}/actions/{action}" not in doc["paths"]
        finally:
            for api in (sec, other, nobody):
                await api.close()
