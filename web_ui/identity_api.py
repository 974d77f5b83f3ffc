"""HTTP API of the identity check (clauses 7.5, 4.7; consent 6.6).

- ``POST /api/days/{day_id}/identity/{student}/check`` (secretary): take a burst of
  the student's live video and answer the advisory verdict, the distance, the
  thresholds in force and the URLs of the frame and the two face crops. The
  student is told over their socket (``{"type": "identity", ...}``) what to do
  next, never the score. The decision itself is the procedure's command
  ``POST /api/days/{day_id}/actions/identity``; the answer says so in ``decide``.
- ``GET /api/days/{day_id}/identity/{student}/checks`` (secretary, chair): the
  stored checks of a student.
- ``GET /api/days/{day_id}/identity/checks/{check_id}/{frame|live|document}.jpg``
  (secretary, chair): the stored pictures, never cached.
- ``GET /api/days/{day_id}/identity/instruction`` (the student): what they were last
  told to do, for a page that polls instead of listening on its socket.

Refusals: 409 ``no_consent`` (clause 6.6), ``check_running``, ``no_video``,
``no_frames``; 422 ``unknown_person``; 404 ``no_check``; 503 ``worker_failed``;
the identity errors carry them and the error middleware (`web_ui.errors`) answers.
Each snapshot is journaled (kind ``identity_snapshot``: student, check id, the
advisory verdict, the retake reason and the "look closely" band the verdict was
judged with), never the distance, the measures or a face encoding; the decision
itself is the procedure's ``IdentityDecided``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from identity.errors import NoConsent, NoVideo
from identity.service import IdentityChecks, journal_detail
from orchestrator.model import Role
from recordings.plan import day_folder
from server.dayhost import DayHost
from storage.journal import Journal

from .auth import require_invite
from .body import json_object, only, url_id
from .errors import json_error
from .keys import CONFIG, DATABASE, HOSTS, ROOMS
from .roles import OFFICE, SECRETARY, STUDENT

logger = logging.getLogger(__name__)

IDENTITY = web.AppKey("identity", IdentityChecks)
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def add_identity_routes(app: web.Application) -> None:
    """Add the identity check's routes (its service is `identity_ctx`)."""
    day = r"/api/days/{day_id:\d+}/identity"
    app.router.add_post(day + r"/{student:\d+}/check", request_check)
    app.router.add_get(day + r"/{student:\d+}/checks", list_checks)
    app.router.add_get(day + r"/checks/{check_id}/{image:(frame|live|document)}.jpg",
                       check_image)
    app.router.add_get(day + "/instruction", my_instruction)


async def identity_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the identity checks' worker pool runs while the server does."""
    config = app[CONFIG]
    checks = IdentityChecks(config.identity,
                            functools.partial(day_folder, config.recordings_dir))
    app[IDENTITY] = checks
    yield
    await checks.stop()


def _urls(day_id: int, record: dict[str, Any]) -> dict[str, str | None]:
    base = f"/api/days/{day_id}/identity/checks/{record['id']}"
    return {name: f"{base}/{name}.jpg" if name in record["images"] else None
            for name in ("frame", "live", "document")}


def _answer(day_id: int, record: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in record.items() if k != "images"}, "images": _urls(day_id, record)}


def _require_student(host: DayHost, student: str) -> None:
    person = host.loaded.day.person(student)
    if person is None or person.role is not Role.STUDENT:
        raise json_error(web.HTTPUnprocessableEntity, "unknown_person",
                         f"{student} is not a student of defense day {host.day_id}")


async def request_check(request: web.Request) -> web.Response:
    """POST .../identity/{student}/check: one advisory check of the live video."""
    day_id = url_id(request, "day_id")
    student = request.match_info["student"]
    invite = await require_invite(request, day_id, SECRETARY)
    only(await json_object(request), ())
    host = await request.app[HOSTS].host(day_id)
    _require_student(host, student)
    checks = request.app[IDENTITY]
    room = request.app[ROOMS].get(str(day_id))
    if student not in host.snapshot.consented:
        raise NoConsent(f"student {student} has no consent to personal-data processing "
                        "on file, so no identity check may run (clause 6.6)")
    publication = next((p for info, p in (room.publications() if room else [])
                        if info.id == student and p.kind == "video" and not p.closed), None)
    if room is None or publication is None:
        raise NoVideo(f"student {student} is not connected with a camera")
    record = await checks.check(day_id, student, publication,
                                requested_by=str(invite.person_id))
    await Journal(request.app[DATABASE]).append(
        day_id, invite.person_id, "identity_snapshot", journal_detail(record),
        record["taken_at"])
    told = checks.instruction(day_id, student)
    if told is not None:
        await room.send_to(student, {"type": "identity", **told.as_json()})
    return web.json_response({
        "check": _answer(day_id, record),
        "decide": {"method": "POST", "url": f"/api/days/{day_id}/actions/identity",
                   "body": {"student": student, "accepted": "true or false",
                            "comment": "the secretary's comment"}},
    }, headers=NO_STORE)


async def list_checks(request: web.Request) -> web.Response:
    """GET .../identity/{student}/checks: the student's stored checks, oldest first."""
    day_id = url_id(request, "day_id")
    student = request.match_info["student"]
    await require_invite(request, day_id, OFFICE)
    store = request.app[IDENTITY].store
    records = await asyncio.to_thread(store.checks, day_id, student)
    running = request.app[IDENTITY].running(day_id) == student
    return web.json_response({"checks": [_answer(day_id, r) for r in records],
                              "running": running}, headers=NO_STORE)


async def check_image(request: web.Request) -> web.Response:
    """GET .../identity/checks/{check_id}/{image}.jpg: a stored picture."""
    day_id = url_id(request, "day_id")
    invite = await require_invite(request, day_id, OFFICE)
    check_id, image = request.match_info["check_id"], request.match_info["image"]
    data = await asyncio.to_thread(request.app[IDENTITY].store.image, day_id, check_id, image)
    logger.info("day %s: %s image of identity check %s shown to person %s",
                day_id, image, check_id, invite.person_id)
    return web.Response(body=data, content_type="image/jpeg", headers=NO_STORE)


async def my_instruction(request: web.Request) -> web.Response:
    """GET .../identity/instruction: what the calling student should do next."""
    day_id = url_id(request, "day_id")
    invite = await require_invite(request, day_id, STUDENT)
    told = request.app[IDENTITY].instruction(day_id, str(invite.person_id))
    return web.json_response({"identity": told.as_json() if told else None,
                              "server_time": time.time()}, headers=NO_STORE)
