"""HTTP API of appeals (section 8; rules A1-A5). Refusals of the rules answer 409
with the clause, like the procedure's.

    POST /api/days/{day}/appeals          the student ({text}) or the secretary
                                          ({student, text}: received on paper)
    GET  /api/days/{day}/appeals          the secretary and chair: all; a student: theirs;
                                          with the filing deadline (null: none open)
    POST /api/appeals/{id}/conclusion     the commission chair: {text} (8.3)
    POST /api/appeals/{id}/schedule       the secretary: {sitting_at, appeal_chair,
                                          appeal_members} -> the sitting's invite links
    POST /api/appeals/{id}/repeat         the secretary: {starts_at} -> invite links
    GET  /api/appeals/{id}                the secretary and chair of the day, and the
                                          appeal commission at the sitting
    GET  /api/appeals/{id}/sitting-people the secretary and chair: the sitting's people,
                                          who fetched their link and who joined

The sitting itself runs as a day of its own: its invite links open the room, and
its commands are `POST /api/days/{sitting day}/actions/...` (recording, open-appeal,
name, decide, close-appeal). A student sees the decision from the next working
day after it (clause 8.11); their links are kept working until then and a while
after (`server.invite_policy`).

Links are verified, and the delivery of a decision judged, by the appeal service's
clock (`AppealService.clock`), the one its rules are applied with: the wall clock
in a server, a fake one in a test that walks through the working days.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Collection
from typing import IO, Any, cast

from aiohttp import web

from orchestrator.model import APPEAL_ROLES, Role
from orchestrator.replay import EVENT_KIND
from protocols.evidence import build_pack, manifest, write_zip
from server.appeal_service import AppealService, Created
from server.recording_access import RecordingAccess
from storage.appeals import Appeal
from storage.document_files import DocumentFiles
from storage.invites import Invite
from storage.journal import Journal

from .auth import bearer_token, require
from .body import (
    LONG_TEXT_CHARS,
    NAME_CHARS,
    identifier,
    json_object,
    moment,
    only,
    text,
    texts,
    url_id,
)
from .errors import json_error
from .keys import CONFIG, DATABASE, HOSTS, INVITES
from .package_signing import DIGESTS, EVIDENCE_SLOTS, server_key
from .protocol_api import RECORDING_INDEX
from .recordings_api import RECORDINGS
from .roles import APPEAL_READERS, APPELLANTS, CHAIR, OFFICE, SECRETARY, SITTING_GUESTS

#: The most members an appeal commission is given (clause 8.4 asks for at least one).
MAX_APPEAL_MEMBERS = 20

EVIDENCE_FORMATS = ("json", "zip")


def _service(request: web.Request) -> AppealService:
    return request.app[HOSTS].appeals


async def _caller(request: web.Request) -> Invite:
    """The verified invite of the request's bearer token, at the appeal service's clock
    (as `web_ui.auth.invite_of`: 401 for a missing, wrong, expired or revoked token)."""
    return await request.app[INVITES].verify(bearer_token(request), now=_service(request).clock())


async def _require_invite(request: web.Request, day_id: int, roles: Collection[Role]) -> Invite:
    return require(await _caller(request), day_id, roles)


def _links(request: web.Request, created: Created) -> dict[str, Any]:
    base = f"{request.scheme}://{request.host}"
    return {"appeal": created.appeal.to_json(), "day_id": created.day_id,
            "invites": [{"person_id": i.person_id, "role": i.role.value, "name": i.name,
                         "link": f"{base}/j/{i.token}"} for i in created.invites]}


def _for_student(appeal: Appeal, now: float) -> dict[str, Any]:
    data = appeal.to_json()
    if appeal.delivery_at is not None and now < appeal.delivery_at:
        data.update(decision=None, reasoning=None, decided_at=None)  # clause 8.11
    return data


async def file_appeal(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/appeals: file an appeal about the procedure (8.1, 8.2)."""
    day_id = url_id(request, "day_id")
    invite = await _require_invite(request, day_id, APPELLANTS)
    body = await json_object(request)
    if invite.role is Role.STUDENT:
        only(body, ("text",))
        student, on_paper = invite.person_id, False
    else:
        only(body, ("text", "student"))
        student, on_paper = identifier(body, "student"), True
    appeal = await _service(request).file(
        day_id, student, text(body, "text", max_chars=LONG_TEXT_CHARS),
        filed_by=invite.person_id, on_paper=on_paper)
    return web.json_response({"appeal": appeal.to_json()}, status=201)


async def list_appeals(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/appeals: the day's appeals (a student: their own)."""
    day_id = url_id(request, "day_id")
    invite = await _require_invite(request, day_id, APPEAL_READERS)
    service = _service(request)
    appeals = await service.store.for_day(day_id)
    deadline = await service.deadline_for(day_id)
    if invite.role is Role.STUDENT:
        now = service.clock()
        return web.json_response({"appeals": [_for_student(a, now) for a in appeals
                                              if a.student_id == invite.person_id],
                                  "deadline": deadline, "now": now})
    return web.json_response({"appeals": [a.to_json() for a in appeals],
                              "deadline": deadline, "now": service.clock()})


async def _appeal_invite(request: web.Request, office: frozenset[Role],
                         sitting: frozenset[Role] = frozenset()) -> tuple[Invite, Appeal]:
    """The caller's invite, if it is for the appeal's day in `office` roles or for its
    sitting in `sitting` roles."""
    appeal_id = url_id(request, "appeal_id")
    invite = await _caller(request)
    appeal = await _service(request).store.get(appeal_id)
    allowed = ((invite.day_id == appeal.day_id and invite.role in office)
               or (invite.day_id == appeal.sitting_day_id and invite.role in sitting))
    if not allowed:
        raise json_error(web.HTTPForbidden, "role", "this appeal is not yours to see or change")
    return invite, appeal


async def get_appeal(request: web.Request) -> web.Response:
    """GET /api/appeals/{appeal_id}: the appeal, for the office, the appeal commission and
    the chair of the appealed defense invited to the sitting (8.5)."""
    _, appeal = await _appeal_invite(request, OFFICE, APPEAL_ROLES | CHAIR)
    return web.json_response({"appeal": appeal.to_json()})


async def write_conclusion(request: web.Request) -> web.Response:
    """POST /api/appeals/{appeal_id}/conclusion: the commission chair's conclusion (8.3)."""
    invite, appeal = await _appeal_invite(request, CHAIR)
    body = await json_object(request)
    only(body, ("text",))
    updated = await _service(request).conclude(
        appeal.appeal_id, text(body, "text", max_chars=LONG_TEXT_CHARS), invite.person_id)
    return web.json_response({"appeal": updated.to_json()})


async def schedule_sitting(request: web.Request) -> web.Response:
    """POST /api/appeals/{appeal_id}/schedule: the appeal sitting and its invites (8.4, 8.5)."""
    invite, appeal = await _appeal_invite(request, SECRETARY)
    body = await json_object(request)
    only(body, ("sitting_at", "appeal_chair", "appeal_members"))
    created = await _service(request).schedule(
        appeal.appeal_id, moment(body, "sitting_at"),
        text(body, "appeal_chair", max_chars=NAME_CHARS),
        texts(body, "appeal_members", max_items=MAX_APPEAL_MEMBERS, max_chars=NAME_CHARS),
        invite.person_id)
    return web.json_response(_links(request, created), status=201,
                             headers={"Cache-Control": "no-store"})


async def schedule_repeat(request: web.Request) -> web.Response:
    """POST /api/appeals/{appeal_id}/repeat: the repeated defense after an upheld appeal (8.8)."""
    invite, appeal = await _appeal_invite(request, SECRETARY)
    body = await json_object(request)
    only(body, ("starts_at",))
    created = await _service(request).schedule_repeat(
        appeal.appeal_id, moment(body, "starts_at"), invite.person_id)
    return web.json_response(_links(request, created), status=201,
                             headers={"Cache-Control": "no-store"})


async def evidence(request: web.Request) -> web.StreamResponse:
    """GET /api/appeals/{appeal_id}/evidence[?format=zip]: the evidence pack (A2, R2).

    JSON: the manifest (every file with its SHA-256); zip: the pack to download,
    with manifest.json and the server's manifest.sig inside, streamed as it is
    written. Only the appealing student's material is in it, and the appeal
    commission gets their recordings only while the hold lasts (as on the
    recordings page). The request is checked before anything is journaled; every
    access is journaled; at most `EVIDENCE_CONCURRENCY` packs are built at once.
    """
    invite, appeal = await _appeal_invite(request, OFFICE, APPEAL_ROLES)
    fmt = request.query.get("format", "json")
    if fmt not in EVIDENCE_FORMATS:
        raise json_error(web.HTTPBadRequest, "bad_format",
                         f"format is json or zip, not {fmt[:20]!r}")
    extra = set(request.query) - {"format"}
    if extra:
        raise json_error(web.HTTPBadRequest, "malformed",
                         f"unknown query parameter {sorted(extra)[0][:20]!r}: only format")
    config, db = request.app[CONFIG], request.app[DATABASE]
    with_recordings = invite.day_id == appeal.day_id or appeal.student_id in await (
        RecordingAccess(db).appeal_students(appeal.day_id, invite.day_id, invite.role))
    async with request.app[EVIDENCE_SLOTS]:
        pack = await build_pack(
            db, appeal, recordings_dir=config.recordings_dir,
            blobs=request.app[RECORDINGS].blobs,
            documents=DocumentFiles(config.documents_dir), settings=config.procedure_settings(),
            index=request.app[RECORDING_INDEX], with_recordings=with_recordings)
        key = await server_key(request.app)
        await Journal(db).append(
            appeal.day_id, invite.person_id, "evidence_accessed",
            {"appeal": appeal.appeal_id, "format": fmt, "by_day": invite.day_id},
            _service(request).clock())
        if fmt == "json":
            listed = await asyncio.to_thread(manifest, pack, key, request.app[DIGESTS])
            return web.json_response(listed, headers={"Cache-Control": "no-store"})
        response = web.StreamResponse(headers={
            "Content-Type": "application/zip", "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="appeal-{appeal.appeal_id}.zip"'})
        await response.prepare(request)
        sink = _ResponseSink(response, asyncio.get_running_loop())
        await asyncio.to_thread(write_zip, pack, cast(IO[bytes], sink), key,
                                request.app[DIGESTS])
        await asyncio.to_thread(sink.flush)
        await response.write_eof()
        return response


class _ResponseSink(io.RawIOBase):
    """A write-only, unseekable file for `zipfile` in a worker thread that hands the
    bytes to the response on the event loop, in chunks, waiting for each write (so
    the pack is never held whole, nor copied to disk)."""

    def __init__(self, response: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._response, self._loop = response, loop
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += bytes(data)
        if len(self._buffer) >= 1 << 20:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            asyncio.run_coroutine_threadsafe(self._response.write(chunk), self._loop).result()


async def my_invite(request: web.Request) -> web.Response:
    """POST /api/appeals/{appeal_id}/my-invite: the student's or the commission chair's
    own link to the appeal sitting (8.5), shown on their page; a new one each time."""
    invite, appeal = await _appeal_invite(request, SITTING_GUESTS)
    only(await json_object(request), ())
    if invite.role is Role.STUDENT and invite.person_id != appeal.student_id:
        raise json_error(web.HTTPForbidden, "role", "this appeal is not yours")
    if appeal.sitting_day_id is None or appeal.sitting_at is None:
        raise json_error(web.HTTPConflict, "not_scheduled",
                         "the appeal sitting is not scheduled yet")
    people = await request.app[INVITES].list_people(appeal.sitting_day_id)
    person = next((p for p in people if p.role is invite.role and not p.revoked), None)
    if person is None:
        raise json_error(web.HTTPNotFound, "not_invited", "you are not invited to this sitting")
    issued = await request.app[INVITES].reissue(person.person_id, now=_service(request).clock())
    return web.json_response({
        "sitting_at": appeal.sitting_at, "day_id": appeal.sitting_day_id,
        "link": f"{request.scheme}://{request.host}/j/{issued.token}"},
        headers={"Cache-Control": "no-store"})


async def sitting_people(request: web.Request) -> web.Response:
    """GET /api/appeals/{appeal_id}/sitting-people: the appeal sitting's people (8.5), each
    with when their link was issued, when they last fetched it from their page
    (`my-invite`: the journal's ``invite_reissued``) and when they first joined."""
    _, appeal = await _appeal_invite(request, OFFICE)
    if appeal.sitting_day_id is None:
        return web.json_response({"sitting_day_id": None, "people": []})
    sitting = appeal.sitting_day_id
    issued: dict[int, float] = {}
    fetched: dict[int, float] = {}
    joined: dict[int, float] = {}
    for entry in await Journal(request.app[DATABASE]).entries(sitting):
        if entry.person_id is not None and entry.kind == "invite_issued":
            issued.setdefault(entry.person_id, entry.at)
        elif entry.person_id is not None and entry.kind == "invite_reissued":
            fetched[entry.person_id] = entry.at
        elif (entry.kind == EVENT_KIND and entry.detail.get("type") == "ParticipantJoined"
              and str(entry.detail.get("actor", "")).isdigit()):
            joined.setdefault(int(entry.detail["actor"]), entry.at)
    people = await request.app[INVITES].list_people(sitting)
    return web.json_response({"sitting_day_id": sitting, "people": [
        {"person_id": p.person_id, "name": p.name, "role": p.role.value, "revoked": p.revoked,
         "issued_at": issued.get(p.person_id), "fetched_at": fetched.get(p.person_id),
         "joined_at": joined.get(p.person_id)} for p in people]},
        headers={"Cache-Control": "no-store"})


def add_appeal_routes(app: web.Application) -> None:
    day = r"/api/days/{day_id:\d+}/appeals"
    one = r"/api/appeals/{appeal_id:\d+}"
    app.router.add_post(day, file_appeal)
    app.router.add_get(day, list_appeals)
    app.router.add_get(one, get_appeal)
    app.router.add_post(one + "/conclusion", write_conclusion)
    app.router.add_post(one + "/schedule", schedule_sitting)
    app.router.add_post(one + "/repeat", schedule_repeat)
    app.router.add_get(one + "/evidence", evidence)
    app.router.add_post(one + "/my-invite", my_invite)
    app.router.add_get(one + "/sitting-people", sitting_people)
