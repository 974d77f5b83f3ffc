"""The student's own page over HTTP (issue 15, item 4): what it shows, and consent.

- ``GET /api/days/{day}/students/{person}/overview``: for that student only. Their
  place in the queue and its status, a new date if their defense was moved (7.8,
  the procedure's ``moved``), their consents on file, their documents (the current
  version of each, size and time, and which they may upload), whether their own
  uploads are still open and why not, and, once the results are announced (7.13),
  their grade. Nothing here is more than the student could learn in the room.
- ``POST /api/days/{day}/students/{person}/consents``
  ``{"personal_data": true, "elibrary": true|false}``: by that student only (the
  secretary records paper consent with ``POST .../consent``). Personal-data consent
  counts for B1 like the paper one; it cannot be withdrawn from the page
  (``false`` is refused: that goes through the secretary). The e-library choice may
  change until the student's defense starts; then 409.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from orchestrator.appeals import Decision
from orchestrator.documents import DocumentKind, StudentUploadsClose, required_documents
from orchestrator.model import Snapshot
from orchestrator.replay import ReplayError, journaled_settings, replay
from orchestrator.session import DefenseSession
from server.dayhost import DayHost
from storage.appeals import AppealStore
from storage.document_files import DocumentFiles
from storage.document_versions import DocumentVersions
from storage.errors import RosterRefused
from storage.invites import Invite
from storage.journal import Journal
from storage.roster import ConsentOnFile, ConsentStore, RosterStore, StudentConsents

from .auth import require_invite
from .body import flag, json_object, malformed, only, url_id
from .errors import json_error
from .keys import CONFIG, DATABASE, HOSTS
from .roles import STUDENT

#: What the student uploads from their page (B2: the thesis and the presentation);
#: the reviews and reports come from the secretary and are only shown.
STUDENT_UPLOADS = (DocumentKind.THESIS, DocumentKind.PRESENTATION_PDF)
#: What the page lists, in this order.
SHOWN = (DocumentKind.THESIS, DocumentKind.PRESENTATION_PDF, DocumentKind.SUPERVISOR_REVIEW,
         DocumentKind.REVIEWER_REVIEW, DocumentKind.PLAGIARISM_REPORT,
         DocumentKind.NORM_CONTROL)


class ConsentClosed(RosterRefused):
    """The e-library choice changed after the student's defense started (409)."""

    code = "consent_closed"


async def _own(request: web.Request) -> tuple[Invite, int]:
    """The student's invite, if the path names that student; 403 otherwise."""
    day_id = url_id(request, "day_id")
    person_id = url_id(request, "person_id")
    invite = await require_invite(request, day_id, STUDENT)
    if invite.person_id != person_id:
        raise json_error(web.HTTPForbidden, "not_yours",
                         "a student sees and gives only their own consents")
    return invite, person_id


def _consent_json(consent: ConsentOnFile | None) -> dict[str, Any] | None:
    if consent is None:
        return None
    return {"choice": consent.choice, "at": consent.at, "how": consent.how}


def _consents_json(consents: StudentConsents) -> dict[str, Any]:
    return {"personal_data": _consent_json(consents.personal_data),
            "elibrary": _consent_json(consents.elibrary)}


def _versions(request: web.Request, close: StudentUploadsClose | None = None) -> DocumentVersions:
    config = request.app[CONFIG]
    return DocumentVersions(request.app[DATABASE], DocumentFiles(config.documents_dir),
                            close or config.documents.student_uploads_close)


async def _grade(request: web.Request, host: DayHost, student: str) -> str | None:
    """The student's grade as announced: the procedure rebuilt from the day's journal,
    as the server itself rebuilds it after a restart."""
    entries = await Journal(request.app[DATABASE]).entries(host.day_id)
    try:
        session = DefenseSession(host.loaded.day,
                                 journaled_settings(entries) or host.runner.settings)
        for _ in replay(session, entries):
            pass
    except ReplayError:
        return None
    grade = dict(session.results or ()).get(student)
    return grade.value if grade is not None else None


async def _annulled(request: web.Request, day_id: int, student_id: int) -> bool:
    """Whether an upheld appeal annulled this student's result (8.8), told only once the
    decision has reached them (8.11), by the appeal service's clock."""
    service = request.app[HOSTS].appeals
    now = service.clock()
    return any(a.student_id == student_id and a.decision is Decision.UPHELD
               and a.delivery_at is not None and a.delivery_at <= now
               for a in await AppealStore(request.app[DATABASE]).for_day(day_id))


async def overview(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/students/{person_id}/overview: see the module doc."""
    invite, person_id = await _own(request)
    me = str(person_id)
    db = request.app[DATABASE]
    host = await request.app[HOSTS].host(invite.day_id)
    snapshot = host.snapshot
    queue: dict[str, Any] | None = None
    moved: float | None = None
    rescheduled = False
    results: dict[str, Any] = {"announced_at": None, "grade": None}
    if isinstance(snapshot, Snapshot):
        statuses = dict(snapshot.statuses)
        if me in snapshot.queue:
            queue = {"position": snapshot.queue.index(me) + 1, "of": len(snapshot.queue),
                     "status": statuses[me].value, "current": snapshot.current_student == me}
        moved = dict(snapshot.moved).get(me)
        rescheduled = me in statuses and statuses[me].value == "rescheduled"
        if snapshot.results_at is not None:
            grade = await _grade(request, host, me)
            if grade is not None:
                results = {"announced_at": snapshot.results_at, "grade": grade,
                           "annulled": await _annulled(request, invite.day_id, person_id)}

    versions = _versions(request)
    closed = await versions.closed(person_id, time.time())
    roster = await RosterStore(db).day_roster(invite.day_id)
    required = required_documents(roster.norm_control_required)
    mine = next((s for s in roster.students if s.person_id == person_id), None)
    if mine is None:
        raise json_error(web.HTTPNotFound, "no_student",
                         f"person {person_id} is not a student on the roster of day"
                         f" {invite.day_id}")
    documents = []
    for kind in SHOWN:
        current = await versions.current(person_id, kind)
        declared = [d.uploaded_at for d in mine.documents if d.kind is kind]
        documents.append({
            "kind": kind.value,
            "upload": kind in STUDENT_UPLOADS,
            "required": kind in required,
            "file": None if current is None else {
                "size": current.size, "uploaded_at": current.uploaded_at,
                "sha256": current.sha256, "by_me": current.uploaded_by == person_id,
                "versions": len(await versions.history(person_id, kind))},
            # On file without a file here (declared in the day file or by the secretary).
            "declared_at": max(declared) if declared and current is None else None,
        })
    consents = await ConsentStore(db).on_file(person_id)
    config = request.app[CONFIG]
    return web.json_response({
        "student": {"id": me, "name": mine.name, "thesis_title": mine.thesis_title,
                    "timezone": mine.timezone},
        "starts_at": host.loaded.stored.starts_at,
        "queue": queue,
        "moved": {"new_date": moved, "rescheduled": rescheduled},
        "consents": _consents_json(consents),
        "consent_open": await _elibrary_closed(request, person_id) is None,
        "documents": documents,
        "uploads": {"open": closed is None, "closed": closed,
                    "max_mb": config.documents.max_upload_mb},
        "results": results,
    }, headers={"Cache-Control": "no-store"})


async def _elibrary_closed(request: web.Request, person_id: int) -> str | None:
    """Why the e-library choice can no longer change (the defense started, the day
    is over), or None."""
    return await _versions(request, StudentUploadsClose.DEFENSE_START).closed(
        person_id, time.time())


async def give_consents(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/students/{person_id}/consents: see the module doc."""
    invite, person_id = await _own(request)
    body = await json_object(request)
    only(body, ("personal_data", "elibrary"))
    if not body:
        raise malformed("give personal_data (true) and/or elibrary (true or false)")
    personal = flag(body, "personal_data", default=False)
    if "personal_data" in body and not personal:
        raise json_error(web.HTTPUnprocessableEntity, "invalid",
                         "consent to personal-data processing is not withdrawn from this page;"
                         " ask the secretary")
    elibrary = flag(body, "elibrary") if "elibrary" in body else None
    if elibrary is not None:
        why = await _elibrary_closed(request, person_id)
        if why is not None:
            raise ConsentClosed(f"{why}: the e-library choice can no longer change")
    consents = await ConsentStore(request.app[DATABASE]).give(
        person_id, personal_data=personal, elibrary=elibrary, by=invite.person_id,
        now=time.time())
    if personal:
        host = await request.app[HOSTS].host(invite.day_id)
        await host.consent_recorded(str(person_id))
    return web.json_response({"consents": _consents_json(consents)},
                             headers={"Cache-Control": "no-store"})


def add_student_routes(app: web.Application) -> None:
    student = r"/api/days/{day_id:\d+}/students/{person_id:\d+}"
    app.router.add_get(student + "/overview", overview)
    app.router.add_post(student + "/consents", give_consents)
