"""What the room pages read besides the procedure API: who am I, and is my link fast enough.

``GET /api/me`` also says what kind of day it is (``day_kind``: defense, appeal,
repeat) and, on an appeal sitting, which appeal it hears (``appeal``).

    GET  /api/me                  the caller's day, person and role, the day's people
                                  and students with the documents the caller may open
    GET  /api/connection-check    ?bytes=N: N bytes to time the download (P5)
    POST /api/connection-check    a body to time the upload; answers how much arrived

Each authenticates the invite token (``Authorization: Bearer <token>``) of any role:
the page has it from its invite link, and the welcome message does not carry the
day. Nothing here changes state.
"""

from __future__ import annotations

import os
import time
from typing import Any

from aiohttp import web

from orchestrator.documents import DocumentKind
from orchestrator.model import COMMISSION_ROLES
from storage.appeals import AppealStore, DayKind
from storage.document_files import DocumentFiles
from storage.invites import InviteStore
from storage.roster import RosterStore

from .auth import invite_of
from .errors import json_error, too_large
from .keys import CONFIG, DATABASE, INVITES
from .replies import json_reply

#: Rule P5 (clause 6.4): the student's link needs 200 kbit/s, 1 Mbit/s recommended.
MINIMUM_KBPS = 200
RECOMMENDED_KBPS = 1000
#: The most a connection check moves each way; the page asks for far less.
CHECK_MAX_BYTES = 2 << 20


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/connection-check", check_download)
    app.router.add_post("/api/connection-check", check_upload)


def _features(app: web.Application) -> dict[str, bool]:
    """Which optional APIs this server has, so a page can say what is not available."""
    paths = [str(r.resource.canonical) for r in app.router.routes() if r.resource is not None]
    return {"identity": any("/identity/" in p for p in paths),
            "recordings": any("/recordings" in p for p in paths)}


async def me(request: web.Request) -> web.Response:
    """GET /api/me: the caller's day, person and role; the day's people and students.

    Each student lists the documents on file that the caller may open (the
    presentation for everyone, the rest for the commission and the student).
    """
    invite = await invite_of(request)
    app = request.app
    invites: InviteStore = app[INVITES]
    day = await invites.get_day(invite.day_id)
    people = await invites.list_people(invite.day_id)
    students = await RosterStore(app[DATABASE]).list_students(invite.day_id)
    files = DocumentFiles(app[CONFIG].documents_dir)
    commission = invite.role in COMMISSION_ROLES

    def readable(person_id: int) -> list[str]:
        return [kind.value for kind in DocumentKind
                if (commission or person_id == invite.person_id
                    or kind is DocumentKind.PRESENTATION_PDF)
                and files.existing(invite.day_id, person_id, kind) is not None]

    phases = app[CONFIG].phases
    # An appeal sitting names its appeal and the defense day it is about: the appeal
    # commission's page reads the appeal, and their recordings link needs that day.
    appeals = AppealStore(app[DATABASE])
    kind, appeal_id = await appeals.day_kind(invite.day_id)
    appeal = None
    if kind is DayKind.APPEAL and appeal_id is not None:
        heard = await appeals.get(appeal_id)
        appeal = {"id": heard.appeal_id, "defense_day_id": heard.day_id,
                  "student": str(heard.student_id)}
    body: dict[str, Any] = {
        "day": {"id": day.day_id, "title": day.title, "date": day.date.isoformat(),
                "starts_at": day.starts_at, "timezone": day.timezone},
        "me": {"id": str(invite.person_id), "name": invite.name, "role": invite.role.value},
        "people": [{"id": str(p.person_id), "name": p.name, "role": p.role.value}
                   for p in people if not p.revoked],
        "students": [{"id": str(s.person_id), "name": s.name, "thesis_title": s.thesis_title,
                      "supervisor": s.supervisor, "reviewer": s.reviewer,
                      "timezone": s.timezone, "files": readable(s.person_id)}
                     for s in students],
        "phases": {"talk_minutes": phases.talk_minutes,
                   "questions_minutes": phases.questions_minutes,
                   "defense_max_minutes": phases.defense_max_minutes},
        "connection": {"minimum_kbps": MINIMUM_KBPS, "recommended_kbps": RECOMMENDED_KBPS},
        "features": _features(app),
        "day_kind": kind.value,
        "appeal": appeal,
        "server_time": time.time(),
    }
    return json_reply(body)


async def check_download(request: web.Request) -> web.Response:
    """GET /api/connection-check?bytes=N: N random bytes (at most 2 MiB), not cached."""
    await invite_of(request)
    given = request.query.get("bytes", "131072")
    size = int(given) if given.isascii() and given.isdigit() and len(given) < 10 else 0
    if not 1 <= size <= CHECK_MAX_BYTES:
        raise json_error(web.HTTPBadRequest, "malformed",
                         f"bytes must be a whole number from 1 to {CHECK_MAX_BYTES},"
                         f" not {given[:20]!r}")
    # Random, so nothing on the way can compress it and flatter the link.
    return web.Response(body=os.urandom(size), content_type="application/octet-stream",
                        headers={"Cache-Control": "no-store"})


async def check_upload(request: web.Request) -> web.Response:
    """POST /api/connection-check: a body of at most 2 MiB; answers {"received": bytes}."""
    await invite_of(request)
    received = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        received += len(chunk)
        if received > CHECK_MAX_BYTES:
            raise too_large(CHECK_MAX_BYTES, received)
    return web.json_response({"received": received, "server_time": time.time()},
                             headers={"Cache-Control": "no-store"})
