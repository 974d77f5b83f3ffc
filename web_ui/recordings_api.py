"""HTTP API of recordings: the archive list, builds, appeal holds and file links.

    GET  /api/days/{day_id}/recordings            students, builds, archives, links
    GET  /api/days/{day_id}/recordings/jobs       build progress (poll this)
    POST /api/days/{day_id}/recordings/build      {"student": id} or {}: (re)build
    POST /api/days/{day_id}/recordings/{student}/appeal            {"note": text}
    POST /api/days/{day_id}/recordings/{student}/appeal-decision   {"decision", "note"}
    GET  /recordings/file/{link}                  a file, by signed link (Range works)
    GET  /recordings                              the page (token after '#')

Who: the secretary and the chair of the day list, play and download (issue 4);
only the secretary asks for builds (P3); chair or secretary record an appeal and
its decision. The appeal commission (invited to the appeal sitting, a day of its own)
sees a student's recordings only while that student's appeal holds them, and no
other student's. Students, members and everyone else get 403.

Links are signed and expire (`recordings.links`), because a ``<video>`` element
cannot send the invite token. Every listing (which issues links), every opening of
a file and every refused genuine link is journaled; a range request that continues
a playback (``Range`` not starting at byte 0) is not journaled again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from aiohttp import web

from orchestrator.appeals import Decision
from orchestrator.model import Role
from recordings.archive_store import ArchiveStore
from recordings.blobstore import BadKey, BlobNotFound, BlobStore, LocalFolderStore
from recordings.errors import LinkRefused
from recordings.jobs import RecordingJobs
from recordings.links import LinkSigner, load_secret
from recordings.retention import Retention, RetentionSweeper, due_at
from server.recording_access import RecordingAccess
from storage.appeals import AppealStore
from storage.invites import Invite, InviteStore
from storage.journal import Journal

from .auth import invite_of, require, require_invite
from .blob_response import blob_response
from .body import NOTE_CHARS, identifier, json_object, only, text, url_id
from .errors import json_error
from .keys import CONFIG, DATABASE, OWNERSHIP
from .replies import json_reply
from .roles import OFFICE, SECRETARY

logger = logging.getLogger(__name__)

LINK_TTL_S = 2 * 3600
STATIC_DIR = Path(str(resources.files("web_ui") / "static"))
_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".mkv": "video/x-matroska",
          ".vtt": "text/vtt; charset=utf-8", ".json": "application/json",
          ".part": "application/octet-stream"}


async def _viewer(request: web.Request, day_id: int) -> tuple[Invite, frozenset[int] | None]:
    """The caller and the students they may see (None: every student of the day)."""
    invite = await invite_of(request)
    if invite.day_id == day_id and invite.role in OFFICE:
        return invite, None
    students = await RecordingAccess(request.app[DATABASE]).appeal_students(
        day_id, invite.day_id, invite.role)
    if not students:
        require(invite, day_id, OFFICE)  # refuses, saying why
    return invite, students


@dataclass(frozen=True, slots=True)
class Recordings:
    """The recordings services of one server."""

    jobs: RecordingJobs
    signer: LinkSigner
    sweeper: RetentionSweeper
    clock: Callable[[], float]

    @property
    def store(self) -> ArchiveStore:
        return self.jobs.store

    @property
    def blobs(self) -> BlobStore:
        """Where the archived files are kept (`recordings.blobstore`)."""
        return self.jobs.blobs


RECORDINGS = web.AppKey("recordings", Recordings)


async def recordings_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the build jobs and the retention sweeper run while the server does."""
    config, db = app[CONFIG], app[DATABASE]
    signer = LinkSigner(await asyncio.to_thread(load_secret, config.data_dir))
    ownership = app[OWNERSHIP]
    # The local folder is the store today; an object-store backend goes here.
    blobs = LocalFolderStore(config.recordings_dir)
    # Each worker builds its own days' archives (their requests reach it); the
    # retention sweep runs in one process per machine.
    jobs = RecordingJobs(db, config.recordings_dir, config.procedure_settings(), blobs=blobs,
                         owns=ownership.owns)
    sweeper = RetentionSweeper(Retention(db, blobs, config.retention.days))
    await jobs.start()
    if ownership.runs_machine_services:
        await sweeper.start()
    app[RECORDINGS] = Recordings(jobs, signer, sweeper, time.time)
    try:
        yield
    finally:
        await sweeper.stop()
        await jobs.stop()


def add_recording_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(r"/api/days/{day_id:\d+}/recordings", list_recordings)
    r.add_get(r"/api/days/{day_id:\d+}/recordings/jobs", list_jobs)
    r.add_post(r"/api/days/{day_id:\d+}/recordings/build", build)
    r.add_post(r"/api/days/{day_id:\d+}/recordings/{student:\d+}/appeal", place_hold)
    r.add_post(r"/api/days/{day_id:\d+}/recordings/{student:\d+}/appeal-decision",
               release_hold)
    r.add_get("/recordings/file/{link}", serve_file)
    r.add_get("/recordings", recordings_page)



async def _students(request: web.Request, day_id: int) -> dict[int, str]:
    """The day's students by id, with their names."""
    people = await InviteStore(request.app[DATABASE]).list_people(day_id)
    return {p.person_id: p.name for p in people if p.role is Role.STUDENT}


async def list_recordings(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/recordings: every student's defense, build and archive,
    with signed links to play and download each archived file."""
    day_id = url_id(request, "day_id")
    invite, visible = await _viewer(request, day_id)
    rec = request.app[RECORDINGS]
    store = rec.store
    loaded, timeline = await rec.jobs.day_timeline(day_id)
    now = rec.clock()
    expires = now + LINK_TTL_S
    jobs = {j.student_id: j for j in await rec.jobs.jobs(day_id)}
    archives = await store.archives(day_id)
    holds = await store.active_holds(day_id)
    stored = loaded.stored
    delete_after = due_at(stored.date, stored.timezone, request.app[CONFIG].retention.days)
    students: list[dict[str, Any]] = []
    for sid, name in (await _students(request, day_id)).items():
        hold = holds.get((day_id, sid))
        if visible is not None and sid not in visible:
            continue
        defense = timeline.defense_of(str(sid))
        archive = archives.get(sid)
        entry: dict[str, Any] = {
            "id": str(sid), "name": name,
            "defense": None if defense is None else {
                "start": defense.start, "end": defense.end, "outcome": defense.outcome.value},
            "job": None if sid not in jobs else jobs[sid].to_json(),
            "hold": None if hold is None else hold.to_json(),
            "archive": None,
        }
        if archive is not None:
            files = [] if archive.deleted_at is not None else await store.files(day_id, sid)
            entry["archive"] = {
                "built_at": archive.built_at, "deleted_at": archive.deleted_at,
                "manifest_sha256": archive.manifest_sha256, "chapters": archive.chapters,
                "delete_after": delete_after,
                "files": [{
                    "name": PurePosixPath(f.path).name, "path": f.path, "role": f.role,
                    "size": f.size, "sha256": f.sha256,
                    "play": "/recordings/file/" + rec.signer.sign(
                        f.file_id, invite.person_id, expires, download=False),
                    "download": "/recordings/file/" + rec.signer.sign(
                        f.file_id, invite.person_id, expires, download=True),
                } for f in files]}
        students.append(entry)
    await Journal(request.app[DATABASE]).append(
        day_id, invite.person_id, "recording_list",
        {"students": [s["id"] for s in students if s["archive"]], "links_expire_at": expires},
        now)
    return json_reply({"day_id": day_id, "role": invite.role.value, "links_expire_at": expires,
                  "delete_after": delete_after, "recording": timeline.recording,
                  "students": students})


async def list_jobs(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/recordings/jobs: the state and progress of each build."""
    day_id = url_id(request, "day_id")
    await require_invite(request, day_id, OFFICE)
    jobs = await request.app[RECORDINGS].jobs.jobs(day_id)
    return json_reply({"jobs": [j.to_json() for j in jobs]})


async def build(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/recordings/build: (re)build one student's archive
    (``{"student": id}``) or every finished defense's (``{}``)."""
    day_id = url_id(request, "day_id")
    invite = await require_invite(request, day_id, SECRETARY)
    body = await json_object(request)
    only(body, ("student",))
    student = identifier(body, "student") if body.get("student") is not None else None
    jobs = await request.app[RECORDINGS].jobs.request(day_id, student, by=invite.person_id)
    return json_reply({"jobs": [j.to_json() for j in jobs]}, status=202)


async def _hold_target(request: web.Request) -> tuple[int, int, int]:
    day_id = url_id(request, "day_id")
    invite = await require_invite(request, day_id, OFFICE)
    student = url_id(request, "student")
    if student not in await _students(request, day_id):
        raise json_error(web.HTTPNotFound, "no_student",
                         f"{student} is not a student of day {day_id}")
    return day_id, student, invite.person_id


async def place_hold(request: web.Request) -> web.Response:
    """POST .../recordings/{student}/appeal: the student appealed (rule A1); their
    recordings are held from deletion until the decision is recorded."""
    day_id, student, by = await _hold_target(request)
    body = await json_object(request)
    only(body, ("note",))
    note = text(body, "note", max_chars=NOTE_CHARS, default="").strip()
    rec = request.app[RECORDINGS]
    archive = (await rec.store.archives(day_id)).get(student)
    if archive is not None and archive.deleted_at is not None:
        raise json_error(web.HTTPConflict, "deleted", f"the recordings of student {student}"
                         " were deleted under the retention rule")
    hold = await rec.store.place_hold(day_id, student, by, note, rec.clock())
    return json_reply({"hold": hold.to_json()})


async def release_hold(request: web.Request) -> web.Response:
    """POST .../recordings/{student}/appeal-decision: the appeal was decided (rule A5);
    the hold ends and retention applies again."""
    day_id, student, by = await _hold_target(request)
    body = await json_object(request)
    only(body, ("decision", "note"))
    try:
        decision = Decision(text(body, "decision", max_chars=NOTE_CHARS).strip())
    except ValueError:
        raise json_error(web.HTTPBadRequest, "malformed", "decision must be one of "
                         f"{', '.join(d.value for d in Decision)}") from None
    note = text(body, "note", max_chars=NOTE_CHARS, default="").strip()
    pending = [a for a in await AppealStore(request.app[DATABASE]).for_day(day_id)
               if a.student_id == student and a.decision is None]
    if pending:
        # A filed appeal holds until its sitting decides (section 8), not by hand.
        raise json_error(web.HTTPConflict, "appeal_pending",
                         f"appeal {pending[0].appeal_id} of this student is not decided yet;"
                         " the hold ends with the decision of the appeal sitting")
    rec = request.app[RECORDINGS]
    await rec.store.release_hold(day_id, student, by, decision, note, rec.clock())
    return json_reply({"hold": None, "decision": decision.value})


async def serve_file(request: web.Request) -> web.StreamResponse:
    """GET /recordings/file/{link}: one archived file, with Range support."""
    rec = request.app[RECORDINGS]
    journal = Journal(request.app[DATABASE])
    now = rec.clock()
    try:
        claim = rec.signer.verify(request.match_info["link"], now)
    except LinkRefused as exc:
        # Journaled here, answered by the error middleware.
        logger.warning("recording link refused (%s) from %s", exc.reason, request.remote)
        expired = None if exc.file_id is None else await rec.store.file(exc.file_id)
        if expired is not None:
            await journal.append(expired.day_id, exc.person_id, "recording_access_refused",
                                 {"file": expired.path, "reason": exc.reason}, now)
        raise
    stored = await rec.store.file(claim.file_id)
    if stored is None or stored.deleted_at is not None:
        raise json_error(web.HTTPGone, "gone", "This recording is no longer kept.")
    if not await RecordingAccess(request.app[DATABASE]).may_open(
            claim.person_id, stored.day_id, stored.student_id):
        await journal.append(stored.day_id, claim.person_id, "recording_access_refused",
                             {"file": stored.path, "reason": "not allowed"}, now)
        raise json_error(web.HTTPForbidden, "not_allowed", "You may not open this recording.")
    try:
        size = await asyncio.to_thread(rec.blobs.size, stored.path)
    except (BlobNotFound, BadKey) as exc:  # deleted by hand, or a row naming no blob
        logger.warning("recording file %s not in the store: %s", stored.file_id, exc)
        raise json_error(web.HTTPGone, "gone", "This recording is no longer kept.") from None
    ranged = request.headers.get("Range", "")
    if not ranged or ranged.replace(" ", "").startswith("bytes=0-"):
        await journal.append(stored.day_id, claim.person_id, "recording_access", {
            "file": stored.path, "sha256": stored.sha256,
            "purpose": "download" if claim.download else "play"}, now)
    name = PurePosixPath(stored.path).name
    headers = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer",
               "X-Content-Type-Options": "nosniff",
               "Content-Type": _TYPES.get(PurePosixPath(name).suffix,
                                         "application/octet-stream"),
               "Content-Disposition": ("attachment" if claim.download else "inline")
               + f'; filename="{name}"'}
    try:
        return await blob_response(request, rec.blobs, stored.path, size, headers)
    except BlobNotFound:  # deleted since measured
        raise json_error(web.HTTPGone, "gone", "This recording is no longer kept.") from None


async def recordings_page(request: web.Request) -> web.StreamResponse:
    """GET /recordings: the page; it reads the invite token from after the '#'."""
    response = web.FileResponse(STATIC_DIR / "recordings.html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
