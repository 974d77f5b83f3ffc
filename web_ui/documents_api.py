"""Students' documents as files: upload before the defense, open during it (B1, B2).

``PUT /api/days/{day}/students/{person}/files/{kind}`` takes a PDF as the body
(the student themselves or the secretary); it replaces the previous file
atomically, records the document on the roster (B1's readiness sees it) and
journals its SHA-256. ``GET`` on the same path opens it: the presentation for
everyone invited to the day (it is shown to all, clause 7.3), the thesis, reviews
and reports for the commission and the student.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from orchestrator.documents import DocumentKind
from orchestrator.model import COMMISSION_ROLES
from storage.document_files import DocumentFiles
from storage.errors import StorageError
from storage.invites import Invite, Role
from storage.journal import Journal
from storage.roster import RosterStore

from .auth import require_invite
from .body import url_id
from .errors import json_error, too_large
from .keys import CONFIG, DATABASE, HOSTS
from .roles import EVERYONE

MAX_BYTES = 50 << 20


def _files(request: web.Request) -> DocumentFiles:
    return DocumentFiles(request.app[CONFIG].documents_dir)


async def _target(request: web.Request, readers: bool) -> tuple[Invite, int, DocumentKind]:
    day_id = url_id(request, "day_id")
    person_id = url_id(request, "person_id")
    try:
        kind = DocumentKind(request.match_info["kind"])
    except ValueError:
        raise json_error(web.HTTPNotFound, "no_kind", "documents are "
                         + ", ".join(k.value for k in DocumentKind)) from None
    invite = await require_invite(request, day_id, EVERYONE)
    own = invite.person_id == person_id
    if readers:
        allowed = own or kind is DocumentKind.PRESENTATION_PDF or invite.role in COMMISSION_ROLES
    else:
        allowed = own or invite.role is Role.SECRETARY
    if not allowed:
        raise json_error(web.HTTPForbidden, "role", "this document is for the commission and"
                         " the student" if readers else
                         "only the student themselves or the secretary upload documents")
    students = await RosterStore(request.app[DATABASE]).list_students(day_id)
    if all(s.person_id != person_id for s in students):
        raise json_error(web.HTTPNotFound, "no_student",
                         f"person {person_id} is not a student on the roster of day {day_id}")
    return invite, person_id, kind


async def upload_document(request: web.Request) -> web.Response:
    """PUT /api/days/{day_id}/students/{person_id}/files/{kind}: a PDF as the body."""
    invite, person_id, kind = await _target(request, readers=False)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_BYTES:
            raise too_large(MAX_BYTES, size, "the file")
        chunks.append(chunk)
    try:
        stored = await asyncio.to_thread(
            _files(request).save, invite.day_id, person_id, kind, chunks, MAX_BYTES)
    except StorageError as exc:
        # Here the store's refusal is of the file the caller sent (not a PDF, empty),
        # not our failure: the root alone cannot tell.
        raise json_error(web.HTTPUnprocessableEntity, "invalid", str(exc)) from None
    now = time.time()
    await RosterStore(request.app[DATABASE]).record_document(person_id, kind, now, now=now)
    await Journal(request.app[DATABASE]).append(
        invite.day_id, invite.person_id, "document_file",
        {"student": person_id, "kind": kind.value, "size": stored.size,
         "sha256": stored.sha256}, now)
    host = await request.app[HOSTS].host(invite.day_id)
    await host.document_recorded(str(person_id), kind)
    return web.json_response({"kind": kind.value, "size": stored.size, "sha256": stored.sha256},
                             status=201)


async def open_document(request: web.Request) -> web.StreamResponse:
    """GET /api/days/{day_id}/students/{person_id}/files/{kind}: the PDF."""
    invite, person_id, kind = await _target(request, readers=True)
    path = _files(request).existing(invite.day_id, person_id, kind)
    if path is None:
        raise json_error(web.HTTPNotFound, "no_file",
                         f"no {kind.value} uploaded for this student")
    return web.FileResponse(path, headers={
        "Content-Type": "application/pdf", "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="{kind.value}.pdf"',
        "X-Content-Type-Options": "nosniff"})


def add_document_routes(app: web.Application) -> None:
    path = r"/api/days/{day_id:\d+}/students/{person_id:\d+}/files/{kind}"
    app.router.add_put(path, upload_document)
    app.router.add_get(path, open_document)
