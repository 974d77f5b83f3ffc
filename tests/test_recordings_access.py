"""Who may list, play and download recordings, through the running server: the
secretary and the chair, and the appeal commission while an appeal holds them; a
student, a member, a guessed, altered or expired link are refused; Range requests
work; every access is journaled; appeal holds over the API."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import time
from typing import Any

import aiohttp
import pytest

from orchestrator.appeals import Decision
from orchestrator.model import Role
from recordings.archive_store import ArchiveStore
from storage.appeals import AppealStore
from storage.journal import Journal
from web_ui.keys import CONFIG, DATABASE, INVITES
from web_ui.recordings_api import RECORDINGS

from .conftest import RunningServer
from .test_recordings_archive import Day, make_day
from .timing import wait_until

pytestmark = pytest.mark.timeout(90)


class Client:
    """One person's HTTP session with their invite token."""

    def __init__(self, server: RunningServer, day_id: int, token: str | None) -> None:
        self.base = server.base_url
        self.api = f"{server.base_url}/api/days/{day_id}/recordings"
        self.headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self.session = aiohttp.ClientSession()

    async def get(self, url: str, **headers: str) -> tuple[int, Any, bytes, dict[str, str]]:
        async with self.session.get(url if url.startswith("http") else self.base + url,
                                    headers={**self.headers, **headers}) as r:
            body = await r.read()
            data = await r.json() if r.content_type == "application/json" else None
            return r.status, data, body, dict(r.headers)

    async def post(self, url: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with self.session.post(url, json=body, headers=self.headers) as r:
            return r.status, await r.json()


async def built_day(server: RunningServer) -> tuple[Day, dict[str, str]]:
    """A day with s1's defense recorded and its archive built through the API."""
    day = await make_day(server.app[DATABASE], server.app[CONFIG])
    tokens = day.tokens
    sec = Client(server, day.day_id, tokens["sec"])
    chair = Client(server, day.day_id, tokens["chair"])
    try:
        assert (await chair.post(f"{chair.api}/build", {}))[0] == 403
        status, body = await sec.post(f"{sec.api}/build", {"student": day.ids["s1"]})
        assert status == 202, body

        async def jobs() -> list[dict[str, Any]]:
            status, listed, _, _ = await sec.get(f"{sec.api}/jobs")
            assert status == 200, listed
            found: list[dict[str, Any]] = listed["jobs"]
            return found

        job = (await wait_until(jobs, lambda js: js[0]["state"] in ("done", "failed"),
                                "the archive built", 60))[0]
        assert job["state"] == "done", job
    finally:
        await sec.session.close()
        await chair.session.close()
    return day, tokens


async def kinds(server: RunningServer, day_id: int, kind: str) -> list[dict[str, Any]]:
    return [{**e.detail, "person": e.person_id}
            for e in await Journal(server.app[DATABASE]).entries(day_id) if e.kind == kind]


async def test_only_the_secretary_and_chair_list_play_and_download(
        server: RunningServer) -> None:
    day, tokens = await built_day(server)
    clients = {n: Client(server, day.day_id, tokens[n]) for n in ("sec", "chair", "m1", "s1")}
    nobody = Client(server, day.day_id, None)
    try:
        status, listing, _, _ = await clients["sec"].get(clients["sec"].api)
        assert status == 200, listing
        (s1,) = [s for s in listing["students"] if s["archive"]]
        assert s1["id"] == day.ids["s1"] and s1["job"]["state"] == "done"
        assert [c["title"] for c in s1["archive"]["chapters"]][:2] == ["Talk", "Questions"]
        assert listing["links_expire_at"] > time.time() + 3000
        video = next(f for f in s1["archive"]["files"] if f["role"] == "composite")
        assert (await clients["chair"].get(clients["chair"].api))[0] == 200
        for who in ("m1", "s1"):
            status, body, _, _ = await clients[who].get(clients[who].api)
            assert status == 403 and body["error"] == "role", body
        assert (await nobody.get(nobody.api))[0] == 401
        assert len(await kinds(server, day.day_id, "recording_list")) == 2

        # Play: the browser's first request, then a seek; only the first is journaled.
        status, _, body, headers = await nobody.get(video["play"], Range="bytes=0-99")
        assert status == 206 and len(body) == 100, headers
        assert headers["Content-Range"] == f"bytes 0-99/{video['size']}"
        assert headers["Content-Type"] == "video/mp4"
        assert headers["Content-Disposition"].startswith("inline")
        status, _, body, _ = await nobody.get(video["play"], Range="bytes=1000-1999")
        assert status == 206 and len(body) == 1000
        status, _, body, headers = await nobody.get(video["download"])
        assert status == 200 and headers["Content-Disposition"].startswith("attachment")
        assert hashlib.sha256(body).hexdigest() == video["sha256"]
        accesses = await kinds(server, day.day_id, "recording_access")
        assert [(a["purpose"], a["person"]) for a in accesses] == [
            ("play", int(day.ids["sec"])), ("download", int(day.ids["sec"]))]
        assert accesses[0]["sha256"] == video["sha256"]

        # Guessed, altered and expired links; a genuine link made out to a member.
        rec = server.app[RECORDINGS]
        link = video["play"].removeprefix("/recordings/file/")
        file_id = int(link.split(".")[0])
        altered = f"{file_id + 1}{link[len(str(file_id)):]}"
        for bad in ("0.1.9999999999.p.AAAA", altered, "x" * 60):
            status, body, _, _ = await nobody.get(f"/recordings/file/{bad}")
            assert status == 403 and body["error"] == "bad_link", (bad, body)
        expired = rec.signer.sign(file_id, int(day.ids["sec"]), time.time() - 1, download=False)
        status, body, _, _ = await nobody.get(f"/recordings/file/{expired}")
        assert status == 403 and body["error"] == "expired_link", body
        for who in ("m1", "s1"):
            forged = rec.signer.sign(file_id, int(day.ids[who]), time.time() + 60, download=True)
            status, body, _, _ = await nobody.get(f"/recordings/file/{forged}")
            assert status == 403 and body["error"] == "not_allowed", body
        refused = await kinds(server, day.day_id, "recording_access_refused")
        assert [r["reason"] for r in refused] == ["expired_link", "not allowed", "not allowed"]
        assert len(await kinds(server, day.day_id, "recording_access")) == 2

        status, _, page, headers = await nobody.get("/recordings")
        assert status == 200 and b"recordings.js" in page
        assert headers["Referrer-Policy"] == "no-referrer"
        await Journal(server.app[DATABASE]).verify()
    finally:
        for client in (*clients.values(), nobody):
            await client.session.close()


async def test_appeal_holds_are_recorded_by_chair_or_secretary(server: RunningServer) -> None:
    day = await make_day(server.app[DATABASE], server.app[CONFIG], take=False)
    clients = {n: Client(server, day.day_id, day.tokens[n]) for n in ("chair", "sec", "m1", "s1")}
    appeal = f"{clients['chair'].api}/{day.ids['s1']}/appeal"
    decision = f"{clients['chair'].api}/{day.ids['s1']}/appeal-decision"
    try:
        for who in ("m1", "s1"):
            assert (await clients[who].post(appeal, {}))[0] == 403
        status, body = await clients["chair"].post(appeal, {"note": "procedure violated"})
        assert status == 200 and body["hold"]["note"] == "procedure violated"
        assert (await clients["sec"].post(appeal, {}))[0] == 409
        assert (await clients["sec"].post(
            f"{clients['sec'].api}/{day.ids['chair']}/appeal", {}))[0] == 404
        status, listing, _, _ = await clients["sec"].get(clients["sec"].api)
        held = next(s for s in listing["students"] if s["id"] == day.ids["s1"])
        assert held["hold"]["placed_by"] == day.ids["chair"]
        assert (await clients["sec"].post(decision, {"decision": "maybe"}))[0] == 400
        status, body = await clients["sec"].post(decision, {"decision": "rejected"})
        assert status == 200, body
        assert (await clients["sec"].post(decision, {"decision": "rejected"}))[0] == 409
        placed = await kinds(server, day.day_id, "appeal_hold_placed")
        released = await kinds(server, day.day_id, "appeal_hold_released")
        assert [(p["student"], p["person"]) for p in placed] == [
            (day.ids["s1"], int(day.ids["chair"]))]
        assert [(r["decision"], r["person"]) for r in released] == [
            ("rejected", int(day.ids["sec"]))]
    finally:
        for client in clients.values():
            await client.session.close()



async def test_the_appeal_commission_sees_the_appealed_student_while_held(
        server: RunningServer) -> None:
    day, tokens = await built_day(server)
    db = server.app[DATABASE]
    invites, appeals, store = server.app[INVITES], AppealStore(db), ArchiveStore(db)
    sitting = await invites.create_day("Апелляция", datetime.date.today(), time.time() + 86400,
                                       "Europe/Moscow")
    chair = await invites.issue(sitting, Role.APPEAL_CHAIR, "Председатель АК", time.time() + 86400)
    appeal = await appeals.file(day_id=day.day_id, student_id=int(day.ids["s1"]), text="7.6",
                                filed_by=int(day.ids["sec"]), on_paper=True,
                                deadline=time.time() + 86400, now=time.time())
    await appeals.schedule(appeal.appeal_id, sitting, time.time() + 86400,
                           int(day.ids["sec"]), time.time())
    client = Client(server, day.day_id, chair.token)
    try:
        assert (await client.get(client.api))[0] == 403  # not held (yet)
        await store.place_hold(day.day_id, int(day.ids["s1"]), int(day.ids["sec"]), "",
                               time.time())
        status, listing, _, _ = await client.get(client.api)
        assert status == 200 and [s["id"] for s in listing["students"]] == [day.ids["s1"]]
        video = next(f for f in listing["students"][0]["archive"]["files"]
                     if f["role"] == "composite")
        status, _, body, _ = await client.get(video["play"], Range="bytes=0-9")
        assert status == 206 and len(body) == 10
        await store.release_hold(day.day_id, int(day.ids["s1"]), int(day.ids["sec"]),
                                 Decision.REJECTED, "", time.time())
        assert (await client.get(client.api))[0] == 403
        status, body, _, _ = await client.get(video["play"], Range="bytes=0-9")
        assert status == 403 and body["error"] == "not_allowed"
        accesses = await kinds(server, day.day_id, "recording_access")
        assert accesses[-1]["person"] == chair.person_id
    finally:
        await client.session.close()


async def test_a_link_dies_with_its_holders_invite(server: RunningServer) -> None:
    day, tokens = await built_day(server)
    chair = Client(server, day.day_id, tokens["chair"])
    try:
        status, listing, _, _ = await chair.get(chair.api)
        assert status == 200
        video = next(f for f in listing["students"][0]["archive"]["files"]
                     if f["role"] == "composite")
        assert (await chair.get(video["play"], Range="bytes=0-9"))[0] == 206
        await server.app[INVITES].revoke(int(day.ids["chair"]), time.time())
        # The signed link is still unexpired; the revoked invite behind it is not enough.
        status, body, _, _ = await chair.get(video["play"], Range="bytes=0-9")
        assert status == 403 and body["error"] == "not_allowed"
    finally:
        await chair.session.close()


async def test_a_file_no_longer_in_the_store_is_gone(server: RunningServer) -> None:
    day, tokens = await built_day(server)
    sec = Client(server, day.day_id, tokens["sec"])
    try:
        status, listing, _, _ = await sec.get(sec.api)
        assert status == 200
        files = next(s for s in listing["students"] if s["archive"])["archive"]["files"]
        video = next(f for f in files if f["role"] == "composite")
        timeline = next(f for f in files if f["role"] == "timeline")
        # Removed behind the server's back (by hand, or by the store's own rules).
        blobs = server.app[RECORDINGS].blobs
        assert await asyncio.to_thread(blobs.delete, video["path"]) == 1
        status, body, _, _ = await sec.get(video["play"], Range="bytes=0-9")
        assert status == 410 and body["error"] == "gone", body
        assert await kinds(server, day.day_id, "recording_access") == []
        status, _, data, headers = await sec.get(timeline["download"])
        assert status == 200 and hashlib.sha256(data).hexdigest() == timeline["sha256"]
        assert headers["Content-Type"] == "application/json"
    finally:
        await sec.session.close()
