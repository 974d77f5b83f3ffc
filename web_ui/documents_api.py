"""Students' documents as files: upload before the defense, open during it (B1, B2).

``PUT /api/days/{day}/students/{person}/files/{kind}`` takes a PDF as the body (the
student themselves or the secretary). The body is written to disk as it arrives
(finding S9), and a limited number of uploads run at once (`UploadSlots`). Every
upload becomes a new version kept under its SHA-256; the old ones stay (finding S4,
`storage.document_versions`). A student's own uploads close at their defense start
(or earlier, `documents.student_uploads_close`): then only the secretary replaces a
document, with ``?reason=...``, which the journal keeps.

``GET`` on the same path opens the current version, or with ``?version=<sha256>`` an
older one (`DocumentVersions.history` lists them). The presentation is for
everyone invited to the day (it is shown to all, clause 7.3), the thesis, reviews
and reports for the commission and the student.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from orchestrator.documents import DocumentKind
from orchestrator.model import COMMISSION_ROLES
from storage.document_files import DocumentFiles, DocumentUpload, StoredFile
from storage.document_versions import (
    DocumentVersions,
    ReasonRequired,
    UploadsClosed,
    check_reason,
    student_refusal,
)
from storage.errors import StorageError
from storage.invites import Invite, Role
from storage.roster import RosterStore

from .auth import require_invite
from .body import url_id
from .errors import json_error, too_large
from .keys import CONFIG, DATABASE, HOSTS
from .roles import EVERYONE
from .upload_slots import RETRY_AFTER_S, UploadsBusy, UploadSlots

#: Bytes read from the socket (and written to the file) at a time.
CHUNK_BYTES = 1 << 16

UPLOAD_SLOTS = web.AppKey("upload_slots", UploadSlots)


def _files(request: web.Request) -> DocumentFiles:
    return DocumentFiles(request.app[CONFIG].documents_dir)


def _versions(request: web.Request) -> DocumentVersions:
    config = request.app[CONFIG]
    return DocumentVersions(request.app[DATABASE], _files(request),
                            config.documents.student_uploads_close)


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
    """PUT /api/days/{day_id}/students/{person_id}/files/{kind}?reason=...: a PDF as
    the body; the reason is needed once the student's own uploads have closed."""
    invite, person_id, kind = await _target(request, readers=False)
    reason = check_reason(request.query.get("reason"))
    versions = _versions(request)
    # Refused before the body is read; `record` checks again in the same write as
    # the new version, so a defense that starts meanwhile still counts.
    closed = await versions.closed(person_id, time.time())
    if closed is not None and invite.person_id == person_id:
        raise UploadsClosed(student_refusal(closed))
    if closed is not None and reason is None:
        raise ReasonRequired(f"{closed}: replacing the student's {kind.value} needs a"
                             " reason (?reason=...)")
    max_bytes = request.app[CONFIG].documents.max_upload_mb << 20
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large(max_bytes, request.content_length, "the file")
    try:
        with request.app[UPLOAD_SLOTS].take(invite.person_id):
            stored = await _receive(request, _files(request), invite.day_id, person_id,
                                    max_bytes)
    except UploadsBusy as busy:
        raise json_error(web.HTTPTooManyRequests if busy.per_token
                         else web.HTTPServiceUnavailable, "uploads_busy", str(busy),
                         headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    version = await versions.record(stored, person_id, kind, by=invite.person_id,
                                    reason=reason, now=time.time())
    host = await request.app[HOSTS].host(invite.day_id)
    await host.document_recorded(str(person_id), kind)
    return web.json_response({"kind": kind.value, "size": stored.size,
                              "sha256": stored.sha256, "version": version.id}, status=201)


async def _receive(request: web.Request, files: DocumentFiles, day_id: int,
                   person_id: int, max_bytes: int) -> StoredFile:
    """The body, written to a version file chunk by chunk as it arrives."""
    upload: DocumentUpload = await asyncio.to_thread(files.begin, day_id, person_id,
                                                     max_bytes)
    try:
        async for chunk in request.content.iter_chunked(CHUNK_BYTES):
            if upload.size + len(chunk) > max_bytes:
                raise too_large(max_bytes, upload.size + len(chunk), "the file")
            await asyncio.to_thread(upload.write, chunk)
        return await asyncio.to_thread(upload.finish)
    except StorageError as exc:
        # Here the store's refusal is of the file the caller sent (not a PDF, empty),
        # not our failure: the root alone cannot tell.
        raise json_error(web.HTTPUnprocessableEntity, "invalid", str(exc)) from None
    finally:
        upload.abort()  # nothing left to drop after finish(); a quick unlink otherwise


async def open_document(request: web.Request) -> web.StreamResponse:
    """GET /api/days/{day_id}/students/{person_id}/files/{kind}[?version=<sha256>]."""
    invite, person_id, kind = await _target(request, readers=True)
    sha256 = request.query.get("version")
    if sha256 is None:
        path = _files(request).existing(invite.day_id, person_id, kind)
        if path is None:
            raise json_error(web.HTTPNotFound, "no_file",
                             f"no {kind.value} uploaded for this student")
    else:
        known = await _versions(request).history(person_id, kind)
        if all(v.sha256 != sha256 for v in known):
            raise json_error(web.HTTPNotFound, "no_version",
                             f"no version {sha256[:80]!r} of this student's {kind.value}")
        path = _files(request).version_path(invite.day_id, person_id, sha256)
    return web.FileResponse(path, headers={
        "Content-Type": "application/pdf", "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="{kind.value}.pdf"',
        "X-Content-Type-Options": "nosniff"})


def add_document_routes(app: web.Application) -> None:
    documents = app[CONFIG].documents
    app[UPLOAD_SLOTS] = UploadSlots(documents.uploads_per_token, documents.uploads_at_once)
    path = r"/api/days/{day_id:\d+}/students/{person_id:\d+}/files/{kind}"
    app.router.add_put(path, upload_document)
    app.router.add_get(path, open_document)
