"""The protocol API (rule V6): members approve the hash they read, then the chair signs.

The real app on a real SQLite file; the day is driven by a `ProcedureRunner` with a
fake clock on the app's own database (the clock is the only fake), real recording
files appear under the configured folder, and every request carries a real invite
token.
"""

from __future__ import annotations

import dataclasses
import io
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from protocols.signing import statement
from recordings.plan import day_folder
from server.procedure import ProcedureRunner
from storage.journal import Journal
from web_ui.app import create_app
from web_ui.keys import CONFIG, DATABASE

from .conftest import make_config
from .signing_helpers import BrowserKey
from .test_protocol import (
    EVIL_NAME,
    PEOPLE,
    START,
    Day,
    close_sitting,
    create_day,
    run_until_results,
    start_runner,
    write_recordings,
)
from .timing import FakeClock

Client = TestClient[web.Request, web.Application]


@dataclass
class Api:
    client: Client
    day: Day
    runner: ProcedureRunner
    clock: FakeClock
    keys: dict[str, BrowserKey] = dataclasses.field(default_factory=dict)
    key_ids: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def app(self) -> web.Application:
        return self.client.app

    @property
    def recordings(self) -> Path:
        return day_folder(self.app[CONFIG].recordings_dir, self.day.day_id)

    def url(self, which: str | None = None, action: str | None = None) -> str:
        url = f"/api/days/{self.day.day_id}/protocols"
        return url + (f"/{which}" if which else "") + (f"/{action}" if action else "")

    async def call(self, method: str, url: str, who: str | None,
                   body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.day.tokens[who]}"} if who else {}
        async with self.client.request(method, url, json=body, headers=headers) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.read()

    async def status(self, which: str, who: str = "sec") -> dict[str, Any]:
        code, body = await self.call("GET", self.url(), who)
        assert code == 200, body
        return next(p for p in body["protocols"] if p["which"] == which)

    async def key_id(self, who: str) -> int:
        """`who`'s browser key, registered on first use (rule V6)."""
        if who not in self.keys:
            self.keys[who] = BrowserKey()
            code, body = await self.call("POST", f"/api/days/{self.day.day_id}/keys", who,
                                         {"jwk": self.keys[who].jwk})
            # Outside the commission there is no key (0): the role check refuses first.
            self.key_ids[who] = body["key_id"] if code == 200 else 0
        return self.key_ids[who]

    async def signed(self, action: str, which: str, who: str, digest: str) -> dict[str, Any]:
        key_id = await self.key_id(who)
        person = self.day.ids.get(who, 0)
        return self.keys[who].endorse(action, self.day.day_id, which, digest,
                                      person_id=person, key_id=key_id)

    async def approve(self, which: str, who: str, digest: str) -> tuple[int, Any]:
        body = await self.signed("approve", which, who, digest)
        return await self.call("POST", self.url(which, "approve"), who, body)

    async def sign(self, which: str, who: str = "chair") -> tuple[int, Any]:
        digest = (await self.status(which))["hash"]
        body = await self.signed("sign", which, who, digest)
        return await self.call("POST", self.url(which, "sign"), who, body)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The app with a day run up to the announced results (the sitting still open)."""
    app = create_app(make_config(tmp_path))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        day = await create_day(app[DATABASE], expires_at=time.time() + 3600)
        clock = FakeClock(START - 90 * 60)
        runner = await start_runner(app[DATABASE], day, clock)
        try:
            await run_until_results(runner, clock, day)
            folder = day_folder(app[CONFIG].recordings_dir, day.day_id)
            folder.mkdir(parents=True)
            write_recordings(folder)
            yield Api(client, day, runner, clock)
        finally:
            await runner.stop()


async def test_only_the_commission_reads_protocols(api: Api) -> None:
    s1 = api.day.ids["s1"]
    for who in ("chair", "m1", "sec"):
        code, body = await api.call("GET", api.url(), who)
        assert code == 200
        assert [p["which"] for p in body["protocols"]] == ["day", s1, api.day.ids["s2"]]
    for who in ("s1", "sup"):
        for url in (api.url(), api.url(s1), api.url(s1) + "?format=pdf"):
            code, body = await api.call("GET", url, who)
            assert code == 403 and body["error"] == "role", body
    code, body = await api.call("GET", api.url(s1), None)
    assert code == 401
    code, body = await api.call("GET", api.url("12345"), "sec")
    assert code == 404 and "no protocol '12345'" in body["message"]
    code, body = await api.call("GET", api.url(s1) + "?format=doc", "sec")
    assert code == 400 and body["error"] == "bad_format"

    code, body = await api.call("GET", api.url(s1), "m1")
    assert code == 200
    assert body["status"] == "draft" and body["final"] is True
    assert body["content"]["protocol"]["student"]["name"] == EVIL_NAME
    code, page = await api.call("GET", api.url(s1) + "?format=html", "m1")
    assert code == 200 and b"&lt;script&gt;" in page and b"<script>" not in page
    code, pdf = await api.call("GET", api.url(s1) + "?format=pdf", "chair")
    assert code == 200 and pdf.startswith(b"%PDF")
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "ПРОЕКТ" in text and "видеоконференции" in text


async def test_members_approve_in_turn_then_the_chair_signs(api: Api) -> None:
    s1, ids = api.day.ids["s1"], api.day.ids
    entry = await api.status(s1)
    digest = entry["hash"]
    assert entry["status"] == "draft" and entry["final"] is True
    assert [m["name"] for m in entry["missing_approvals"]] == [
        PEOPLE["m1"], PEOPLE["m2"], PEOPLE["m3"]]

    code, body = await api.sign(s1)  # the chair before the members
    assert code == 409 and body["error"] == "approvals_missing"
    assert all(PEOPLE[m] in body["message"] for m in ("m1", "m2", "m3"))
    code, body = await api.approve(s1, "m1", "0" * 64)  # a hash the draft no longer has
    assert code == 409 and body["error"] == "stale_hash"
    assert "has changed since you read it" in body["message"] and digest in body["message"]
    code, body = await api.approve(s1, "m4", digest)  # never joined the sitting
    assert code == 403 and body["error"] == "not_an_approver"
    for who in ("chair", "sec", "s1"):
        code, body = await api.approve(s1, who, digest)
        assert code == 403 and body["error"] == "role"
    code, body = await api.call("POST", api.url(s1, "approve"), "m1", {"hash": "nope"})
    assert code == 400

    for who in ("m1", "m2"):
        code, body = await api.approve(s1, who, digest)
        assert code == 200, body
        assert body["approved"]["hash"] == digest
    code, body = await api.approve(s1, "m1", digest)  # twice: the first approval stands
    assert code == 200
    entry = await api.status(s1)
    assert [a["name"] for a in entry["approved_by"]] == [PEOPLE["m1"], PEOPLE["m2"]]
    code, body = await api.sign(s1)
    assert code == 409 and PEOPLE["m3"] in body["message"]
    assert PEOPLE["m1"] not in body["message"]

    code, body = await api.approve(s1, "m3", digest)
    assert code == 200 and body["protocol"]["status"] == "approved"
    code, body = await api.sign(s1, "m1")
    assert code == 403
    code, signed = await api.sign(s1)
    assert code == 200, signed
    assert signed["status"] == "signed" and signed["hash"] == digest
    assert signed["signed"]["person_id"] == int(ids["chair"])
    assert (await api.sign(s1))[1]["error"] == "already_signed"
    assert (await api.approve(s1, "m1", digest))[1]["error"] == "already_signed"

    # Signed means immutable: a new recording changes the draft, not the signed protocol.
    (api.recordings / "take-9").mkdir()
    (api.recordings / "take-9" / "late.webm").write_bytes(b"late take")
    code, body = await api.call("GET", api.url(s1), "sec")
    assert body["hash"] == digest and body["status"] == "signed"
    code, page = await api.call("GET", api.url(s1) + "?format=html", "sec")
    assert "Подписан председателем ГЭК".encode() in page and digest.encode() in page
    code, pdf = await api.call("GET", api.url(s1) + "?format=pdf", "m2")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert digest in text.replace("\n", "") and PEOPLE["chair"] in text.replace("\n", " ")

    database = api.app[CONFIG].database_path
    with sqlite3.connect(database) as conn:
        for sql in ("UPDATE protocols SET html = 'forged'", "DELETE FROM protocols",
                    "UPDATE protocol_approvals SET content_hash = 'x'",
                    "DELETE FROM protocol_approvals"):
            with pytest.raises(sqlite3.IntegrityError, match="immutable"):
                conn.execute(sql)
    conn.close()

    journal = Journal(api.app[DATABASE])
    entries = await journal.entries(api.day.day_id)
    approved = [(e.person_id, e.detail["protocol"], e.detail["hash"]) for e in entries
                if e.kind == "protocol_approved"]
    assert approved == [(int(ids[m]), s1, digest) for m in ("m1", "m2", "m3")]
    assert all(len(e.detail["signature"]) == 86 and len(e.detail["key"]) == 64
               for e in entries if e.kind == "protocol_approved")
    [mark] = [e for e in entries if e.kind == "protocol_signed"]
    assert mark.person_id == int(ids["chair"]) and mark.id == signed["signed"]["journal_id"]
    assert {k: mark.detail[k] for k in ("protocol", "hash", "approved_by")} == {
        "protocol": s1, "hash": digest,
        "approved_by": [int(ids[m]) for m in ("m1", "m2", "m3")]}
    await journal.verify()


async def test_the_day_waits_for_the_closing_and_a_changed_draft_needs_new_approvals(
        api: Api) -> None:
    entry = await api.status("day")
    assert entry["final"] is False and entry["not_final"] == "the sitting is not closed yet"
    code, body = await api.approve("day", "m1", entry["hash"])
    assert code == 409 and body["error"] == "not_final"
    code, body = await api.sign("day")
    assert code == 409 and body["error"] == "not_final"

    await close_sitting(api.runner, api.clock, api.day)
    first = (await api.status("day"))["hash"]
    assert first != entry["hash"]  # the closing is in it
    assert (await api.approve("day", "m1", first))[0] == 200

    (api.recordings / "take-3" / "chair-video-1.webm").parent.mkdir()
    (api.recordings / "take-3" / "chair-video-1.webm").write_bytes(b"second take")
    second = (await api.status("day"))["hash"]
    assert second != first
    code, body = await api.approve("day", "m2", first)  # read before the new file came
    assert code == 409 and body["error"] == "stale_hash"
    for who in ("m2", "m3"):
        assert (await api.approve("day", who, second))[0] == 200
    code, body = await api.sign("day")
    assert code == 409 and body["error"] == "approvals_missing"
    assert f"{PEOPLE['m1']} approved an earlier version of the draft" in body["message"]
    assert (await api.approve("day", "m1", second))[0] == 200
    code, body = await api.sign("day")
    assert code == 200 and body["hash"] == second
    code, body = await api.call("GET", api.url("day"), "chair")
    paths = [r["path"] for r in body["content"]["protocol"]["recordings"]]
    assert "take-3/chair-video-1.webm" in paths
    assert not any(p.endswith(".part") or p.startswith("archive/") for p in paths)

    entries = await Journal(api.app[DATABASE]).entries(api.day.day_id)
    assert [e.detail["hash"] for e in entries if e.kind == "protocol_signed"] == [second]
    await Journal(api.app[DATABASE]).verify()


async def test_approvals_and_the_signing_must_be_signed_by_the_persons_key(api: Api) -> None:
    s1 = api.day.ids["s1"]
    digest = (await api.status(s1))["hash"]
    code, body = await api.call("POST", api.url(s1, "approve"), "m1", {"hash": digest})
    assert code == 400 and body["error"] == "unsigned"
    # Signed with another key than the one named.
    body = await api.signed("approve", s1, "m1", digest)
    body["signature"] = BrowserKey().sign(statement("approve", api.day.day_id, s1, digest))
    code, answer = await api.call("POST", api.url(s1, "approve"), "m1", body)
    assert code == 403 and answer["error"] == "bad_signature"
    # Someone else's key.
    body = await api.signed("approve", s1, "m1", digest)
    body["key_id"] = await api.key_id("m2")
    code, answer = await api.call("POST", api.url(s1, "approve"), "m1", body)
    assert code == 403 and "not yours" in answer["message"]
    # A signature of the statement for another document.
    body = await api.signed("approve", "day", "m1", digest)
    code, answer = await api.call("POST", api.url(s1, "approve"), "m1", body)
    assert code == 403 and answer["error"] == "bad_signature"
    code, answer = await api.call("POST", f"/api/days/{api.day.day_id}/keys", "m1",
                                  {"jwk": {"kty": "RSA"}})
    assert code == 400 and answer["error"] == "bad_key"
    assert (await api.call("POST", f"/api/days/{api.day.day_id}/keys", "s1",
                           {"jwk": BrowserKey().jwk}))[0] == 403
    assert (await api.approve(s1, "m1", digest))[0] == 200
