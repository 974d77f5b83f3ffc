"""HTTP API of defense days: create one, keep its roster, show the queue.

- ``POST /api/days``: the organizer (Bearer token whose SHA-256 is
  ``api.organizer_token_sha256``) creates a day from the same fields as a day
  file (students inline); the answer holds everyone's invite link, the only time
  the tokens are known.
- ``POST /api/days/{id}/people``: the secretary invites a supervisor, reviewer or
  observer the day file did not name (P1), until the sitting opens.
- ``PATCH /api/days/{id}/students/{person}``: the secretary edits a student (the
  adjusted time of clause 4.3 only until the sitting opens);
  ``POST .../consent`` and ``POST .../documents`` record what came in (B1).
- ``GET /api/days/{id}/queue``: the order of defenses as the procedure holds it,
  each student with the start in their own time zone (B3), their adjusted time (4.3),
  and when it locks.

What the procedure reads from the roster when a day is hosted (its people, the
adjusted times) reaches a hosted day by reloading it, which is safe only because
such changes are refused once the sitting has opened.
"""

from __future__ import annotations

import datetime
import hmac
import time
import zoneinfo
from typing import Any

from aiohttp import web

from orchestrator.documents import DocumentKind
from orchestrator.model import COMMISSION_ROLES, Snapshot
from server.dayfile import parse_day
from server.invite_policy import extend_office
from storage.dayspec import GUEST_ROLES, MAX_EXTRA_TIME_PERCENT, DaySpec
from storage.errors import RosterRefused, StorageError
from storage.invites import IssuedInvite, expires_at_for_day, hash_token
from storage.roster import RosterStore

from .auth import bearer_token, require_invite
from .body import (
    NAME_CHARS,
    identifier,
    json_object,
    malformed,
    moment,
    number,
    only,
    text,
    url_id,
)
from .errors import BEARER, json_error
from .keys import CONFIG, DATABASE, HOSTS, INVITES
from .roles import SECRETARY

_EDITABLE = ("thesis_title", "supervisor", "reviewer", "timezone", "extra_time_percent")
#: A thesis title may be long; the others are names.
_EDITABLE_CHARS = {"thesis_title": 1000, "supervisor": NAME_CHARS, "reviewer": NAME_CHARS,
                   "timezone": 64}


def _link(request: web.Request, invite: IssuedInvite) -> dict[str, Any]:
    """How an invite is handed out: the only time its token is known."""
    return {"person_id": invite.person_id, "role": invite.role.value, "name": invite.name,
            "link": f"{request.scheme}://{request.host}/j/{invite.token}"}


def require_organizer(request: web.Request) -> None:
    expected = request.app[CONFIG].api.organizer_token_sha256
    if not expected:
        raise json_error(web.HTTPForbidden, "disabled",
                         "creating days over HTTP is off: set api.organizer_token_sha256 in"
                         " the configuration, or use 'defense-room day import'")
    token = bearer_token(request, "the organizer token")
    if not (len(token) <= 200 and token.isascii()
            and hmac.compare_digest(hash_token(token), expected)):
        raise json_error(web.HTTPUnauthorized, "bad_token", "This is not the organizer token.",
                         headers={"WWW-Authenticate": BEARER})


async def create_day(request: web.Request) -> web.Response:
    """POST /api/days."""
    require_organizer(request)
    return await created_day(request, parse_day(await json_object(request)))


async def created_day(request: web.Request, spec: DaySpec) -> web.Response:
    """Create the day `spec` describes; the 201 answer with everyone's link (also
    ``POST /api/days/import``, web_ui/office_api.py)."""
    config = request.app[CONFIG]
    created = await RosterStore(request.app[DATABASE]).create_day(
        spec, expires_at=expires_at_for_day(spec.date, spec.timezone,
                                            config.invites.valid_days_after),
        now=time.time())
    await extend_office(request.app[INVITES], config, created.day_id, spec.date, spec.timezone,
                        time.time())
    return web.json_response({
        "day_id": created.day_id,
        "invites": [_link(request, i) for i in created.everyone],
    }, status=201, headers={"Cache-Control": "no-store"})


async def add_person(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/people {"name", "role"}: the secretary invites a supervisor,
    reviewer or observer (P1) until the sitting opens; answers their link."""
    day_id = url_id(request, "day_id")
    invite = await require_invite(request, day_id, SECRETARY)
    body = await json_object(request)
    only(body, ("name", "role"))
    name = text(body, "name", max_chars=NAME_CHARS, nonempty=True)
    role = text(body, "role", max_chars=NAME_CHARS)
    roles = {r.value: r for r in GUEST_ROLES}
    if role not in roles:
        raise malformed(f"'role' must be one of {', '.join(roles)}, not {role[:40]!r}: the"
                        " commission and the students come with the day")
    day = await request.app[INVITES].get_day(day_id)
    expires_at = expires_at_for_day(day.date, day.timezone,
                                    request.app[CONFIG].invites.valid_days_after)
    added = await RosterStore(request.app[DATABASE]).add_person(
        day_id, roles[role], name, expires_at=expires_at, by=invite.person_id, now=time.time())
    await request.app[HOSTS].reload(day_id)
    return web.json_response(_link(request, added), status=201,
                             headers={"Cache-Control": "no-store"})


async def _student_of_day(request: web.Request) -> tuple[int, int]:
    day_id = url_id(request, "day_id")
    await require_invite(request, day_id, SECRETARY)
    person_id = url_id(request, "person_id")
    students = await RosterStore(request.app[DATABASE]).list_students(day_id)
    if all(s.person_id != person_id for s in students):
        raise json_error(web.HTTPNotFound, "no_student",
                         f"person {person_id} is not a student on the roster of day {day_id}")
    return day_id, person_id


async def update_student(request: web.Request) -> web.Response:
    """PATCH /api/days/{day_id}/students/{person_id}: some of thesis_title, supervisor,
    reviewer, timezone and extra_time_percent (0 to 100, clause 4.3: 409 once the
    sitting has opened)."""
    day_id, person_id = await _student_of_day(request)
    body = await json_object(request)
    only(body, _EDITABLE)
    if not body:
        raise json_error(web.HTTPBadRequest, "malformed", f"give some of {', '.join(_EDITABLE)}")

    def given(name: str) -> str | None:
        return text(body, name, max_chars=_EDITABLE_CHARS[name]) if name in body else None

    extra = (number(body, "extra_time_percent", low=0.0, high=MAX_EXTRA_TIME_PERCENT)
             if "extra_time_percent" in body else None)
    try:
        await RosterStore(request.app[DATABASE]).update_student(
            person_id, now=time.time(), thesis_title=given("thesis_title"),
            supervisor=given("supervisor"), reviewer=given("reviewer"),
            timezone=given("timezone"), extra_time_percent=extra)
    except RosterRefused:
        raise  # 409 with the clause, from the middleware
    except StorageError as exc:
        # Here the roster's refusal is of a value the caller gave (an empty name, an
        # unknown time zone), not our failure: the root alone cannot tell.
        raise json_error(web.HTTPUnprocessableEntity, "invalid", str(exc)) from None
    if extra is not None:
        await request.app[HOSTS].reload(day_id)  # the core reads it when hosting the day
    return web.json_response({"updated": sorted(body)})


def _moment(body: dict[str, Any], key: str) -> float:
    now = time.time()
    at = moment(body, key, default=now)
    if at > now + 60:
        raise json_error(web.HTTPUnprocessableEntity, "invalid", f"{key} is in the future")
    return at


async def record_consent(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/students/{person_id}/consent {"consent_at"?}."""
    day_id, person_id = await _student_of_day(request)
    body = await json_object(request)
    only(body, ("consent_at",))
    at = _moment(body, "consent_at")
    await RosterStore(request.app[DATABASE]).record_consent(person_id, at, now=time.time())
    host = await request.app[HOSTS].host(day_id)
    await host.consent_recorded(str(person_id))
    return web.json_response({"consent_at": at})


async def record_document(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/students/{person_id}/documents {"kind", "uploaded_at"?}."""
    day_id, person_id = await _student_of_day(request)
    body = await json_object(request)
    only(body, ("kind", "uploaded_at"))
    try:
        kind = DocumentKind(text(body, "kind", max_chars=NAME_CHARS))
    except ValueError:
        raise json_error(web.HTTPBadRequest, "malformed", "kind must be one of "
                         + ", ".join(k.value for k in DocumentKind)) from None
    at = _moment(body, "uploaded_at")
    await RosterStore(request.app[DATABASE]).record_document(
        person_id, kind, at, now=time.time())
    host = await request.app[HOSTS].host(day_id)
    await host.document_recorded(str(person_id), kind)
    return web.json_response({"kind": kind.value, "uploaded_at": at}, status=201)


async def day_queue(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/queue: the order of defenses with local times (B3)."""
    day_id = url_id(request, "day_id")
    await require_invite(request, day_id, COMMISSION_ROLES)
    host = await request.app[HOSTS].host(day_id)
    loaded, snapshot = host.loaded, host.snapshot
    if not isinstance(snapshot, Snapshot):
        raise json_error(web.HTTPNotFound, "no_queue", f"day {day_id} is an appeal sitting")
    # Fresh from the roster: the secretary may have changed a time zone since.
    roster_now = {str(s.person_id): s
                  for s in await RosterStore(request.app[DATABASE]).list_students(day_id)}
    starts_at = loaded.stored.starts_at
    lock_minutes = request.app[CONFIG].queue.lock_minutes
    statuses = dict(snapshot.statuses)
    entries = []
    for position, student_id in enumerate(snapshot.queue, 1):
        roster = roster_now.get(student_id)
        zone = roster.timezone if roster is not None else loaded.stored.timezone
        local = datetime.datetime.fromtimestamp(starts_at, zoneinfo.ZoneInfo(zone))
        entries.append({
            "position": position, "student": student_id, "name": loaded.name(student_id),
            "thesis_title": roster.thesis_title if roster is not None else None,
            "timezone": zone, "sitting_starts_local": local.isoformat(timespec="minutes"),
            "extra_time_percent": roster.extra_time_percent if roster is not None else 0.0,
            "status": statuses[student_id].value,
        })
    locks_at = starts_at - 60 * lock_minutes
    return web.json_response({
        "starts_at": starts_at, "locks_at": locks_at, "locked": time.time() >= locks_at,
        "queue": entries,
    }, headers={"Cache-Control": "no-store"})


async def admit(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/admit {"person": id}: the secretary lets someone in
    from the lobby (once for the day; the commission never waits)."""
    day_id = url_id(request, "day_id")
    invite = await require_invite(request, day_id, SECRETARY)
    body = await json_object(request)
    only(body, ("person",))
    person = identifier(body, "person")
    host = await request.app[HOSTS].host(day_id)
    await host.admit(str(person), invite.person_id)
    return web.json_response({"admitted": str(person),
                              "waiting": sorted(host.waiting_for_admission)})


def add_day_routes(app: web.Application) -> None:
    day = r"/api/days/{day_id:\d+}"
    student = day + r"/students/{person_id:\d+}"
    app.router.add_post("/api/days", create_day)
    app.router.add_post(day + "/people", add_person)
    app.router.add_get(day + "/queue", day_queue)
    app.router.add_post(day + "/admit", admit)
    app.router.add_patch(student, update_student)
    app.router.add_post(student + "/consent", record_consent)
    app.router.add_post(student + "/documents", record_document)
