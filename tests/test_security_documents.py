"""Findings S4 (documents are versioned and close for the student at the defense) and
S9 (uploads are streamed to disk, with a limit on how many run at once)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import io
import json
import sqlite3
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orchestrator.documents import DocumentKind, StudentUploadsClose
from server.config import Config, DocumentsConfig
from storage.document_files import DocumentFiles
from storage.document_versions import DocumentVersions, UploadsClosed, defended_version
from storage.journal import Journal
from storage.roster import CreatedDay, RosterStore
from web_ui.client import RoomClient
from web_ui.keys import CONFIG, DATABASE

from .conftest import RunningServer, make_config, serving, url_of
from .procedure_helpers import Api, day_spec
from .timing import wait_until

pytestmark = pytest.mark.timeout(120)

PDF = b"%PDF-1.4\n% the thesis as the student filed it\n%%EOF\n"
DAY = 86400.0


@dataclasses.dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes


async def call(method: str, url: str, token: str, data: Any = None,
               params: dict[str, str] | None = None) -> Answer:
    async with aiohttp.ClientSession() as session:
        async with session.request(method, url, data=data, params=params,
                                   headers={"Authorization": f"Bearer {token}"}) as r:
            raw = await r.read()
            body = json.loads(raw) if r.content_type == "application/json" else {}
            return Answer(r.status, body, dict(r.headers), raw)


async def make_day(server_app: Any, starts_at: float, students: int = 2) -> CreatedDay:
    return await RosterStore(server_app[DATABASE]).create_day(
        day_spec(starts_at, students=students), expires_at=time.time() + 30 * DAY,
        now=time.time())


def files_url(base_url: str, created: CreatedDay, student: int) -> str:
    person = created.invites[5 + student].person_id
    return f"{base_url}/api/days/{created.day_id}/students/{person}/files"


def versions_folder(config: Config, created: CreatedDay, student: int) -> Path:
    return DocumentFiles(config.documents_dir).versions_folder(
        created.day_id, created.invites[5 + student].person_id)


def parts(folder: Path) -> list[int]:
    """Sizes of the partial uploads in `folder` (empty when none is in progress)."""
    return [p.stat().st_size for p in folder.glob(".upload.*.part")] if folder.exists() else []


# --- S4 ---------------------------------------------------------------------------

async def test_s4_after_the_day_student_is_refused_and_secretary_needs_a_reason(
        server: RunningServer) -> None:
    created = await make_day(server.app, time.time() - 2 * DAY)  # the day is over
    sec, s1 = created.invites[4].token, created.invites[5].token
    url = files_url(server.base_url, created, 0) + "/thesis"

    refused = await call("PUT", url, s1, PDF)
    assert refused.status == 409 and refused.body["error"] == "uploads_closed"
    assert "is over" in refused.body["message"] and "secretary" in refused.body["message"]
    no_reason = await call("PUT", url, sec, PDF)
    assert no_reason.status == 400 and no_reason.body["error"] == "reason_required"
    blank = await call("PUT", url, sec, PDF, {"reason": "   "})
    assert blank.status == 400
    bad = await call("PUT", url, sec, PDF, {"reason": "scan\x00"})
    assert bad.status == 400 and "control characters" in bad.body["message"]
    kept = await call("PUT", url, sec, PDF, {"reason": "the office's scan"})
    assert kept.status == 201, kept.body

    events = [e for e in await Journal(server.app[DATABASE]).entries(created.day_id)
              if e.kind == "document_file"]
    assert [(e.person_id, e.detail["reason"]) for e in events] == [
        (created.invites[4].person_id, "the office's scan")]
    assert (await call("GET", url, s1)).raw == PDF


async def test_s4_b1_deadline_closes_student_uploads_when_configured(tmp_path: Path) -> None:
    config = make_config(tmp_path, documents=DocumentsConfig(
        student_uploads_close=StudentUploadsClose.B1_DEADLINE))
    async with serving(config) as test_server:
        base = url_of(test_server)
        tomorrow = await make_day(test_server.app, time.time() + DAY)
        later = await make_day(test_server.app, time.time() + 5 * DAY)
        refused = await call("PUT", files_url(base, tomorrow, 0) + "/thesis",
                             tomorrow.invites[5].token, PDF)
        assert refused.status == 409 and "rule B1" in refused.body["message"]
        on_time = await call("PUT", files_url(base, later, 0) + "/thesis",
                             later.invites[5].token, PDF)
        assert on_time.status == 201, on_time.body


async def test_s4_defense_start_closes_uploads_and_the_defended_version_stays(
        server: RunningServer) -> None:
    created = await make_day(server.app, time.time() + 60, students=1)
    tokens = [i.token for i in created.invites]  # chair, m1, m2, m3, sec, s1
    s1_id = created.invites[5].person_id
    url = files_url(server.base_url, created, 0) + "/thesis"
    first = await call("PUT", url, tokens[5], PDF)
    assert first.status == 201, first.body
    clients = [RoomClient(server.base_url, t) for t in tokens]
    sec = Api(server.base_url, created.day_id, tokens[4])
    try:
        for client in clients:
            await client.connect()
            await client.start_media()
        await wait_until(sec.snapshot, lambda s: len(s["present"]) == 6, "everyone present")
        await sec.act("open-sitting")
        await wait_until(sec.snapshot, lambda s: s["recording"], "recording")
        student = clients[5].participant_id
        await sec.act("identity", student=student, accepted=True)
        await sec.act("announce-limits")
        await sec.act("start-defense", student=student)
    finally:
        for client in clients:
            await client.close()
        await sec.close()

    swapped = PDF.replace(b"as the student filed it", b"SWAPPED after the defense")
    refused = await call("PUT", url, tokens[5], swapped)
    assert refused.status == 409 and "defense has started" in refused.body["message"]
    no_reason = await call("PUT", url, tokens[4], swapped)
    assert no_reason.status == 400 and "needs a reason" in no_reason.body["message"]
    replaced = await call("PUT", url, tokens[4], swapped, {"reason": "pages 3-4 were missing"})
    assert replaced.status == 201, replaced.body

    # Reading gives the current version; the old one is still there, by its hash.
    assert (await call("GET", url, tokens[0])).raw == swapped
    old = await call("GET", url, tokens[0], params={"version": first.body["sha256"]})
    assert (old.status, old.raw) == (200, PDF)
    assert (await call("GET", url, tokens[0], params={"version": "0" * 64})).status == 404
    files = DocumentFiles(server.app[CONFIG].documents_dir)
    assert files.version_path(created.day_id, s1_id, first.body["sha256"]).read_bytes() == PDF

    db = server.app[DATABASE]
    # The write itself checks again (an upload whose body was still arriving when the
    # defense started), and the current file stays as it was.
    upload = files.begin(created.day_id, s1_id, 1 << 20)
    upload.write(b"%PDF-1.4\n% sent while the defense started\n")
    with pytest.raises(UploadsClosed, match="defense has started"):
        await DocumentVersions(db, files).record(upload.finish(), s1_id, DocumentKind.THESIS,
                                                 by=s1_id, reason=None, now=time.time())
    assert (await call("GET", url, tokens[0])).raw == swapped
    history = await DocumentVersions(db, files).history(s1_id, DocumentKind.THESIS)
    assert [(v.sha256, v.uploaded_by, v.reason) for v in history] == [
        (first.body["sha256"], s1_id, None),
        (replaced.body["sha256"], created.invites[4].person_id, "pages 3-4 were missing")]
    defended = await defended_version(db, s1_id, DocumentKind.THESIS)
    assert defended is not None and defended.sha256 == first.body["sha256"]
    assert defended.path(files).read_bytes() == PDF
    event = [e for e in await Journal(db).entries(created.day_id)
             if e.kind == "document_file"][-1]
    assert event.detail["reason"] == "pages 3-4 were missing"
    assert event.detail["replaces"] == first.body["sha256"]


async def test_s4_defended_version_is_none_before_the_defense(server: RunningServer) -> None:
    created = await make_day(server.app, time.time() + DAY)
    url = files_url(server.base_url, created, 0) + "/thesis"
    assert (await call("PUT", url, created.invites[5].token, PDF)).status == 201
    assert (await call("PUT", url, created.invites[5].token, PDF + b"v2")).status == 201
    person = created.invites[5].person_id
    assert await defended_version(server.app[DATABASE], person, DocumentKind.THESIS) is None
    # The same bytes uploaded twice are one file, two versions.
    assert (await call("PUT", url, created.invites[5].token, PDF)).status == 201
    folder = versions_folder(server.app[CONFIG], created, 0)
    assert sorted(p.read_bytes() for p in folder.iterdir()) == [PDF, PDF + b"v2"]


async def test_s4_a_file_from_before_versions_is_kept_when_replaced(
        server: RunningServer) -> None:
    created = await make_day(server.app, time.time() + DAY)
    files = DocumentFiles(server.app[CONFIG].documents_dir)
    person = created.invites[5].person_id
    legacy = files.path(created.day_id, person, DocumentKind.THESIS)
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(PDF + b"% uploaded before versions\n")
    url = files_url(server.base_url, created, 0) + "/thesis"
    assert (await call("PUT", url, created.invites[5].token, PDF)).status == 201
    assert legacy.read_bytes() == PDF
    kept = hashlib.sha256(PDF + b"% uploaded before versions\n").hexdigest()
    assert files.version_path(created.day_id, person, kept).read_bytes().endswith(
        b"before versions\n")


async def test_s4_a_version_row_cannot_be_changed(server: RunningServer) -> None:
    created = await make_day(server.app, time.time() + DAY)
    url = files_url(server.base_url, created, 0) + "/thesis"
    assert (await call("PUT", url, created.invites[5].token, PDF)).status == 201
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        await server.app[DATABASE].execute_write(
            lambda db: db.execute("UPDATE documents SET sha256 = ? WHERE sha256 IS NOT NULL",
                                  ["0" * 64]))


# --- S9 ---------------------------------------------------------------------------

class HeldBody:
    """A request body that sends its first chunk, then waits until released."""

    def __init__(self, first: bytes) -> None:
        self._first = first
        self.release = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._first
        await self.release.wait()
        yield b"\n%%EOF\n"


async def test_s9_a_large_upload_is_streamed_not_held_in_memory(server: RunningServer) -> None:
    created = await make_day(server.app, time.time() + DAY)
    url = files_url(server.base_url, created, 0) + "/thesis"
    size, step = 20 << 20, 1 << 16
    payload = PDF + bytes(size - len(PDF))  # allocated before tracing starts

    async def body() -> AsyncIterator[bytes]:
        view = memoryview(payload)
        for start in range(0, size, step):
            yield bytes(view[start:start + step])

    gc.collect()
    tracemalloc.start()
    try:
        answer = await call("PUT", url, created.invites[5].token, body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 201, answer.body
    assert answer.body["size"] == size
    # Held whole, the upload alone would need `size` bytes; streamed, a few chunks.
    assert peak < size // 4, f"peak {peak} bytes while uploading {size}"
    assert (await call("GET", url, created.invites[5].token)).raw == payload


async def test_s9_uploads_over_the_limits_are_refused_with_retry_after(tmp_path: Path) -> None:
    config = make_config(tmp_path, documents=DocumentsConfig(uploads_per_token=1,
                                                             uploads_at_once=2))
    async with serving(config) as test_server:
        base = url_of(test_server)
        created = await make_day(test_server.app, time.time() + DAY, students=2)
        sec, s1, s2 = (created.invites[i].token for i in (4, 5, 6))
        held = [HeldBody(PDF + b"x" * 1000), HeldBody(PDF + b"y" * 1000)]
        async with asyncio.TaskGroup() as group:
            first = group.create_task(call(
                "PUT", files_url(base, created, 0) + "/thesis", s1, held[0].chunks()))
            # The first chunk is on disk while the rest of the body is still to come.
            await wait_until(lambda: parts(versions_folder(config, created, 0)),
                             lambda sizes: sizes == [len(PDF) + 1000], "s1's partial file")
            per_token = await call("PUT", files_url(base, created, 0) + "/reviewer_review",
                                   s1, PDF)
            assert per_token.status == 429, per_token.body
            assert per_token.headers["Retry-After"] == "5"
            assert "already has 1 upload(s) in progress" in per_token.body["message"]

            second = group.create_task(call(
                "PUT", files_url(base, created, 1) + "/thesis", s2, held[1].chunks()))
            await wait_until(lambda: parts(versions_folder(config, created, 1)),
                             bool, "s2's partial file")
            server_wide = await call("PUT", files_url(base, created, 0) + "/thesis", sec, PDF)
            assert server_wide.status == 503, server_wide.body
            assert server_wide.headers["Retry-After"] == "5"
            assert "2 uploads at once" in server_wide.body["message"]
            for body in held:
                body.release.set()
        assert first.result().status == 201 and second.result().status == 201
        again = await call("PUT", files_url(base, created, 0) + "/reviewer_review", s1, PDF)
        assert again.status == 201, again.body  # the slots were given back
        assert parts(versions_folder(config, created, 0)) == []


async def test_s9_the_size_limit_still_holds_while_streaming(tmp_path: Path) -> None:
    config = make_config(tmp_path, documents=DocumentsConfig(max_upload_mb=1))
    async with serving(config) as test_server:
        base = url_of(test_server)
        created = await make_day(test_server.app, time.time() + DAY)
        url = files_url(base, created, 0) + "/thesis"
        s1 = created.invites[5].token

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length to go by
            yield PDF
            for _ in range(40):
                yield bytes(1 << 16)

        streamed = await call("PUT", url, s1, chunked())
        assert streamed.status == 413 and "larger than 1 MiB" in streamed.body["message"]
        declared = await call("PUT", url, s1, io.BytesIO(PDF + bytes(2 << 20)))
        assert declared.status == 413
        not_pdf = await call("PUT", url, s1, b"<html>" + bytes(1000))
        assert not_pdf.status == 422
        assert parts(versions_folder(config, created, 0)) == []
        assert (await call("GET", url, s1)).status == 404  # nothing was filed
        assert (await call("PUT", url, s1, PDF)).status == 201
