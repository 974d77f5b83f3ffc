"""The identity check on a real server: an aiortc student peer publishes a built
frame as its camera; the secretary's API call answers the verdict; the student
hears only what to do next; the secretary's decision, not the verdict, reaches
the journal; no check without consent (B1)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time

import pytest

from identity.compose import passport_frame
from recordings.plan import day_folder
from storage.journal import Journal
from storage.roster import RosterStore
from web_ui.client import RoomClient
from web_ui.keys import CONFIG, DATABASE

from .conftest import RunningServer
from .identity_helpers import IdentityApi, IdentityClient, StillTrack, portraits
from .procedure_helpers import Api, day_spec
from .timing import wait_until

pytestmark = pytest.mark.timeout(180)
NAMES = ["chair", "m1", "m2", "m3", "sec", "s1", "s2"]
SIZE = (640, 480)


async def test_identity_check_on_the_live_video(server: RunningServer) -> None:
    spec = day_spec(time.time() + 60)
    first, second = spec.students
    no_consent = dataclasses.replace(second, consent_at=None)
    spec = dataclasses.replace(spec, students=(first, no_consent))
    created = await RosterStore(server.app[DATABASE]).create_day(
        spec, expires_at=time.time() + 86400, now=time.time())
    day_id = created.day_id
    tokens = {n: i.token for n, i in zip(NAMES, created.invites, strict=True)}
    collins, hopper = portraits()
    camera = StillTrack(passport_frame(collins, None, size=SIZE))
    clients: dict[str, RoomClient] = {}
    apis = {n: IdentityApi(server.base_url, day_id, tokens[n])
            for n in ("sec", "chair", "m1", "s1")}
    procedure = Api(server.base_url, day_id, tokens["sec"])
    try:
        for name in ("chair", "m1", "m2", "sec"):
            clients[name] = RoomClient(server.base_url, tokens[name])
        clients["s1"] = IdentityClient(server.base_url, tokens["s1"], tracks=[camera])
        clients["s2"] = IdentityClient(server.base_url, tokens["s2"], tracks=[
            StillTrack(passport_frame(hopper, hopper, size=SIZE))])
        for client in clients.values():
            await client.connect()
            await client.start_media()
        ids = {n: c.participant_id for n, c in clients.items()}
        student = clients["s1"]
        assert isinstance(student, IdentityClient)
        room = server.rooms.get(str(day_id))
        assert room is not None
        await wait_until(lambda: sum(p.kind == "video" for _, p in room.publications()),
                         lambda n: n == 2, "both students' cameras published", 20)
        sec = apis["sec"]

        # No passport in view: a retake, and the student is told what to do.
        status, body = await sec.check(ids["s1"])
        assert status == 200, body
        check = body["check"]
        assert (check["verdict"], check["reason"]) == ("retake", "no_document"), check
        assert check["images"]["live"] is not None and check["images"]["document"] is None
        await student.wait_for(lambda: bool(student.identity), 10, "the student's instruction")
        told = student.identity[-1]
        assert told["retake"] is True and "passport" in told["instruction"]
        assert not {"verdict", "distance", "reason", "thresholds"} & told.keys()

        # The passport beside the face: a match, with the distance and thresholds.
        camera.image = passport_frame(collins, collins, size=SIZE, document_face_px=64)
        status, body = await sec.check(ids["s1"])
        assert status == 200, body
        check = body["check"]
        assert check["verdict"] == "match", check
        assert check["distance"] <= check["thresholds"]["match_distance"] == 0.58
        assert check["frame"]["width"] == SIZE[0] and check["frame"]["frames_decoded"] >= 1
        assert body["decide"]["url"] == f"/api/days/{day_id}/actions/identity"
        await student.wait_for(lambda: len(student.identity) == 2, 10, "the second instruction")
        assert student.identity[-1]["retake"] is False
        status, _, raw = await apis["s1"].get("identity/instruction")
        mine = json.loads(raw)["identity"]
        assert status == 200 and mine["retake"] is False and "distance" not in mine

        # The pictures: secretary and chair only, never cached.
        for name, wanted in (("sec", 200), ("chair", 200), ("m1", 403), ("s1", 403)):
            for url in check["images"].values():
                status, headers, data = await apis[name].get(url)
                assert status == wanted, (name, url)
                if wanted == 200:
                    assert headers["Content-Type"] == "image/jpeg" and data[:2] == b"\xff\xd8"
                    assert headers["Cache-Control"] == "no-store"
        status, _, raw = await apis["chair"].get(f"identity/{ids['s1']}/checks")
        assert status == 200 and [c["verdict"] for c in json.loads(raw)["checks"]] == [
            "retake", "match"]
        folder = day_folder(server.app[CONFIG].recordings_dir, day_id) / "identity" / check["id"]
        assert sorted(p.name for p in folder.iterdir()) == [
            "check.json", "document.jpg", "frame.jpg", "live.jpg"]

        # One check at a time per day: the second is refused clearly.
        results = await asyncio.gather(sec.check(ids["s1"]), sec.check(ids["s1"]))
        assert sorted(s for s, _ in results) == [200, 409], results
        refused = next(b for s, b in results if s == 409)
        assert refused["error"] == "check_running" and ids["s1"] in refused["message"]

        # No consent on file: no check (B1, clause 6.6), nothing stored.
        status, body = await sec.check(ids["s2"])
        assert status == 409 and body["error"] == "no_consent" and body["clause"] == "6.6"
        status, _, raw = await sec.get(f"identity/{ids['s2']}/checks")
        assert json.loads(raw)["checks"] == []
        assert not clients["s2"].identity  # type: ignore[attr-defined]
        # Only the secretary asks, and only about a student of the day.
        assert (await apis["chair"].check(ids["s1"]))[0] == 403
        assert (await sec.check(ids["chair"]))[0] == 422

        # The secretary decides through the procedure; the journal keeps the decision.
        await procedure.act("open-sitting")
        await wait_until(procedure.snapshot, lambda s: s["recording"], "recording on")
        await procedure.act("identity", student=ids["s1"], accepted=True,
                            comment="лицо совпадает с фото в паспорте")
        state = await wait_until(
            procedure.snapshot, lambda s: dict(s["statuses"]).get(ids["s1"]) == "identified",
            "s1 identified")
        assert state["phase"] == "identification"
    finally:
        for client in clients.values():
            await client.close()
        for api in apis.values():
            await api.close()
        await procedure.close()

    entries = await Journal(server.app[DATABASE]).entries(day_id)
    decided = [e.detail for e in entries if e.detail.get("type") == "IdentityDecided"]
    assert decided == [{**decided[0], "student": ids["s1"], "accepted": True,
                        "comment": "лицо совпадает с фото в паспорте"}]
    snapshots = [e for e in entries if e.kind == "identity_snapshot"]
    # Each check is journaled with its advisory verdict and the band it was judged
    # with (issue 16), never its distance or an encoding.
    assert len(snapshots) == 3 and all(
        e.detail.keys() == {"student", "check", "verdict", "reason", "band"} for e in snapshots)
    assert all(e.person_id == int(ids["sec"]) for e in snapshots)
    text = json.dumps([e.detail for e in entries])
    assert "distance" not in text and "encoding" not in text
    await Journal(server.app[DATABASE]).verify()
