"""What the secretary's personal page reads to prepare a day and to hand it over.

    GET /api/days/{day}/preparation   every student's details, consent and documents (B1)
    GET /api/days/{day}/handovers     whether the day may be handed over yet, and to whom
                                      it was handed over, when and by whom (R3)

Both are the secretary's alone (P3: the secretary does the paperwork). The writes
they prepare are the existing routes: ``PATCH .../students/{p}``, ``.../consent``,
``.../documents``, ``PUT .../files/{kind}``, ``POST .../handover``.

The readiness report (`server.readiness`) says what is missing or late; the
preparation adds, per document, when it first came (on paper or as a file: the
earliest decides whether it was late), the file on record if any (its newest
version) and how many versions there are, so the page can show a date beside each
document and open the file.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from orchestrator.documents import DocumentKind
from protocols.handover import not_ready
from server.readiness import readiness_report
from storage.document_files import DocumentFiles
from storage.document_versions import DocumentVersions
from storage.journal import Journal
from storage.roster import RosterStore

from .auth import require_invite
from .body import url_id
from .keys import CONFIG, DATABASE, INVITES
from .replies import json_reply
from .roles import SECRETARY


async def preparation(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/preparation: the students as the secretary prepares them."""
    day_id = url_id(request, "day_id")
    await require_invite(request, day_id, SECRETARY)
    db = request.app[DATABASE]
    roster = await RosterStore(db).day_roster(day_id)
    now = time.time()
    report = readiness_report(roster, now=now)
    verdicts = {s.person_id: s for s in report.students}
    versions = DocumentVersions(db, DocumentFiles(request.app[CONFIG].documents_dir))
    students = []
    for student in roster.students:
        verdict = verdicts[student.person_id]
        documents: dict[str, Any] = {}
        for kind in DocumentKind:
            times = [d.uploaded_at for d in student.documents
                     if d.kind is kind and d.uploaded_at <= now]
            history = await versions.history(student.person_id, kind)
            if not times and not history:
                continue
            newest = history[-1] if history else None
            first = min(times) if times else None
            documents[kind.value] = {
                "first_at": first,
                "late": first is not None and first >= report.deadline,
                "file": newest.to_json() if newest is not None else None,
                "versions": len(history),
                "records": len(times),
            }
        students.append({
            "person_id": student.person_id, "name": student.name,
            "queue_position": student.queue_position,
            "thesis_title": student.thesis_title, "supervisor": student.supervisor,
            "reviewer": student.reviewer, "timezone": student.timezone,
            "extra_time_percent": student.extra_time_percent,
            "consent_at": student.consent_at, "consent_on_file": verdict.consent_on_file,
            "consent_late": verdict.consent_late, "missing": [k.value for k in verdict.missing],
            "late": [k.value for k in verdict.late], "can_defend": verdict.can_defend,
            "reasons": list(verdict.reasons), "warnings": list(verdict.warnings),
            "documents": documents,
        })
    return json_reply({
        "day_id": day_id, "deadline": report.deadline, "timezone": report.timezone,
        "required": [k.value for k in report.required], "server_time": now,
        "students": students,
    })


async def handovers(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/handovers: {"ready", "reason", "handovers": [...]}.

    ``ready`` is whether ``POST .../handover`` would build a package now (every
    protocol signed); when not, ``reason`` is the sentence it would refuse with.
    Each hand-over is the journal's record of it, oldest first.
    """
    day_id = url_id(request, "day_id")
    await require_invite(request, day_id, SECRETARY)
    db = request.app[DATABASE]
    reason = await not_ready(db, day_id)
    names = {p.person_id: p.name for p in await request.app[INVITES].list_people(day_id)}
    done = []
    for entry in await Journal(db).entries(day_id):
        if entry.kind != "handover":
            continue
        sha = str(entry.detail.get("sha256", ""))
        done.append({
            "to": entry.detail.get("to"), "sha256": sha, "size": entry.detail.get("size"),
            "files": entry.detail.get("files"), "handed_over_at": entry.at,
            "by": entry.person_id,
            "by_name": names.get(entry.person_id) if entry.person_id is not None else None,
            "download": f"/api/days/{day_id}/handover/{sha}",
        })
    return json_reply({"ready": reason is None, "reason": reason, "handovers": done})


def add_secretary_routes(app: web.Application) -> None:
    day = r"/api/days/{day_id:\d+}"
    app.router.add_get(day + "/preparation", preparation)
    app.router.add_get(day + "/handovers", handovers)
