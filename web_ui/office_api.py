"""The department office's page and its API (the organizer token).

    GET  /office                               the page (it asks for the token)
    GET  /api/days                             the organizer: every day, newest first
    GET  /api/days/{d}/people                  the organizer, or the day's secretary:
                                               everyone with contacts and link state
    POST /api/days/import                      the organizer: {"day": YAML text,
                                               "students"?: CSV text}; answers like
                                               POST /api/days
    POST /api/days/{d}/invitations/sheet       the organizer: {"tokens": [...]} ->
                                               the invite sheet (PDF, a page each)
    POST /api/days/{d}/invitations/email       the organizer: {"tokens": [...]} ->
                                               per person: sent, or why not (409
                                               when mail is off; each try is
                                               journaled by server.mail)

Links are stored only as hashes, so the sheet and the e-mails carry links the caller
hands in: the ones ``POST /api/days`` answered, or fresh ones from
``.../people/{p}/reissue`` (which withdraws the old link, closes that person's
sockets and is journaled). Each token must be a working link of a person of that
day. This split keeps every withdrawal of a link in one journaled place, and a
printing that fails loses no link: the page still holds them.

The server never reads a path named in an upload: ``students_csv:`` in an uploaded
day file is refused; the CSV comes in the same request instead.
"""

from __future__ import annotations

import asyncio
import datetime
import hmac
import logging
import time
import zoneinfo
from typing import Any

from aiohttp import web

from protocols.invite_sheet import SheetPage, render_sheet
from server.dayfile import parse_day_upload
from server.mail import INVITE, MailError
from storage.errors import InviteError
from storage.invites import Invite, hash_token
from storage.roster import RosterStore

from .auth import bearer_token, invite_of, require_invite
from .body import json_object, malformed, only, url_id
from .day_api import require_organizer, created_day
from .errors import json_error, too_large
from .keys import CONFIG, DATABASE, INVITES, MAILER
from .roles import SECRETARY

logger = logging.getLogger(__name__)

#: The largest uploaded day file and students CSV, in characters.
MAX_DAY_FILE_CHARS = 256 * 1024
MAX_CSV_CHARS = 512 * 1024
#: The most people one sheet or one mailing names.
MAX_PEOPLE = 500
#: Journal kinds of a delivery: how a person got their current link.
PRINTED = "invitations_printed"
MAILED = "mail_sent"  # journaled by server.mail for each mail that went
_ISSUED = ("invite_issued", "invite_reissued")


def add_office_routes(app: web.Application) -> None:
    day = r"/api/days/{day_id:\d+}"
    app.router.add_get("/office", office_page)
    app.router.add_get("/api/days", list_days)
    app.router.add_post("/api/days/import", import_day)
    app.router.add_get(day + "/people", day_people)
    app.router.add_post(day + "/invitations/sheet", invitation_sheet)
    app.router.add_post(day + "/invitations/email", invitation_email)


async def office_page(request: web.Request) -> web.StreamResponse:
    """GET /office: the page; it reads the token from after the '#' or asks for it."""
    from .app import STATIC_DIR  # the app module imports this one

    response = web.FileResponse(STATIC_DIR / "office.html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def list_days(request: web.Request) -> web.Response:
    """GET /api/days: every day with how many people and students it has, newest first."""
    require_organizer(request)
    days = await request.app[INVITES].list_days()
    return web.json_response({"days": days}, headers={"Cache-Control": "no-store"})


async def day_people(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/people: everyone with role, contacts, their time zone,
    the state of their link, when it was last issued and how it went out since."""
    day_id = url_id(request, "day_id")
    await _organizer_or_secretary(request, day_id)
    invites = request.app[INVITES]
    day = await invites.get_day(day_id)
    zones = await _zones(request, day_id, day.timezone)
    issued: dict[int, float] = {}
    delivered: dict[int, dict[str, float]] = {}
    for event in await invites.list_journal(day_id):
        if event.kind in _ISSUED and event.person_id is not None:
            issued[event.person_id] = event.at
            delivered.pop(event.person_id, None)  # a new link has not gone out yet
        elif event.kind == PRINTED:
            for person in event.detail.get("people", []):
                if isinstance(person, int):
                    delivered.setdefault(person, {})["sheet"] = event.at
        elif (event.kind == MAILED and event.detail.get("mail") == INVITE
              and event.person_id is not None):
            delivered.setdefault(event.person_id, {})["email"] = event.at
    now = time.time()
    people = []
    for p in await invites.list_people(day_id):
        state = ("revoked" if p.revoked_at is not None
                 else "expired" if now >= p.expires_at else "active")
        people.append({
            "id": p.person_id, "role": p.role.value, "name": p.name,
            "email": getattr(p, "email", None), "language": getattr(p, "language", "ru"),
            "timezone": zones.get(p.person_id, day.timezone), "state": state,
            "expires_at": p.expires_at, "revoked_at": p.revoked_at,
            "issued_at": issued.get(p.person_id, p.created_at),
            "delivered": delivered.get(p.person_id, {}),
        })
    return web.json_response({
        "day": {"id": day.day_id, "title": day.title, "date": day.date.isoformat(),
                "starts_at": day.starts_at, "timezone": day.timezone},
        "mail": _mail_state(request),
        "people": people,
    }, headers={"Cache-Control": "no-store"})


async def import_day(request: web.Request) -> web.Response:
    """POST /api/days/import {"day": YAML, "students"?: CSV}: a day from its day file."""
    require_organizer(request)
    body = await json_object(request)
    only(body, ("day", "students"))
    day_text = _upload(body, "day", MAX_DAY_FILE_CHARS, "the day file (YAML)")
    csv_text = (_upload(body, "students", MAX_CSV_CHARS, "the students CSV")
                if body.get("students") is not None else None)
    spec = await asyncio.to_thread(parse_day_upload, day_text, csv_text)
    return await created_day(request, spec)


async def invitation_sheet(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/invitations/sheet {"tokens": [...]}: the invite sheet."""
    day_id = url_id(request, "day_id")
    await _organizer_of_day(request)
    holders = await _holders(request, day_id)
    day = await request.app[INVITES].get_day(day_id)
    zones = await _zones(request, day_id, day.timezone)
    people = {p.person_id: p for p in await request.app[INVITES].list_people(day_id)}
    pages = []
    for token, invite in holders:
        zone = zones.get(invite.person_id, day.timezone)
        pages.append(SheetPage(
            name=invite.name, role=invite.role, day_title=day.title,
            starts_local=datetime.datetime.fromtimestamp(day.starts_at,
                                                         zoneinfo.ZoneInfo(zone)),
            timezone=zone, link=_link(request, token),
            language=getattr(people.get(invite.person_id), "language", "ru")))
    pdf = await asyncio.to_thread(render_sheet, pages, f"{day.title}: приглашения")
    ids = [invite.person_id for _, invite in holders]
    await request.app[INVITES].journal(day_id, None, PRINTED,
                                       {"by": "organizer", "people": ids}, time.time())
    logger.info("day %s: invite sheet printed for %s people", day_id, len(ids))
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="invitations-day-{day_id}.pdf"'})


async def invitation_email(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/invitations/email {"tokens": [...]}: each link by mail."""
    day_id = url_id(request, "day_id")
    await _organizer_of_day(request)
    holders = await _holders(request, day_id)
    state = _mail_state(request)
    if not state["enabled"]:
        raise json_error(web.HTTPConflict, "mail_off", str(state["reason"]))
    results = await _send_invites(request, day_id, holders)
    logger.info("day %s: invites mailed to %s of %s people", day_id,
                sum(1 for r in results if r["sent"]), len(results))
    return web.json_response({"results": results}, headers={"Cache-Control": "no-store"})


# -- helpers ---------------------------------------------------------------------------


def _is_organizer(request: web.Request) -> bool:
    expected = request.app[CONFIG].api.organizer_token_sha256
    token = bearer_token(request)
    return (expected is not None and expected != "" and len(token) <= 200
            and token.isascii() and hmac.compare_digest(hash_token(token), expected))


async def _organizer_or_secretary(request: web.Request, day_id: int) -> None:
    if not _is_organizer(request):
        await require_invite(request, day_id, SECRETARY)


async def _organizer_of_day(request: web.Request) -> None:
    """The organizer passes; a working invite link is refused (403: it is known, but
    not allowed), and anything else is 401 as for any unknown token."""
    if _is_organizer(request):
        return
    if not request.app[CONFIG].api.organizer_token_sha256:
        require_organizer(request)  # 403 saying how to turn it on
    invite = await invite_of(request)
    raise json_error(web.HTTPForbidden, "role", "Only the department office (the organizer"
                     f" token) may do this; your link is the {invite.role.value}'s of day"
                     f" {invite.day_id}.")


async def _zones(request: web.Request, day_id: int, day_zone: str) -> dict[int, str]:
    """Each student's own time zone (storage/roster.py); others keep the day's."""
    students = await RosterStore(request.app[DATABASE]).list_students(day_id)
    return {s.person_id: s.timezone or day_zone for s in students}


def _link(request: web.Request, token: str) -> str:
    return f"{request.scheme}://{request.host}/j/{token}"


async def _holders(request: web.Request, day_id: int) -> list[tuple[str, Invite]]:
    """The body's tokens, each a working link of a person of `day_id`, in its order."""
    body = await json_object(request)
    only(body, ("tokens",))
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or not tokens:
        raise malformed("'tokens' must be a non-empty list of invite tokens (the part of"
                        " each link after /j/)")
    if len(tokens) > MAX_PEOPLE:
        raise malformed(f"'tokens' lists {len(tokens)} links; at most {MAX_PEOPLE} at once")
    await request.app[INVITES].get_day(day_id)  # 404 for a day that does not exist
    holders: list[tuple[str, Invite]] = []
    seen: set[int] = set()
    now = time.time()
    for index, token in enumerate(tokens):
        if not isinstance(token, str):
            raise malformed(f"'tokens' must list strings; item {index + 1} is not one")
        try:
            invite = await request.app[INVITES].verify(token, now)
        except InviteError as exc:
            raise json_error(web.HTTPUnprocessableEntity, "invalid",
                             f"link {index + 1} of {len(tokens)} does not work: {exc}") from None
        if invite.day_id != day_id:
            raise json_error(web.HTTPUnprocessableEntity, "invalid",
                             f"link {index + 1} of {len(tokens)} is for day {invite.day_id},"
                             f" not {day_id}")
        if invite.person_id in seen:
            raise malformed(f"link {index + 1} names {invite.name!r} a second time")
        seen.add(invite.person_id)
        holders.append((token, invite))
    return holders


def _upload(body: dict[str, Any], name: str, limit: int, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise malformed(f"{name!r} must hold {what} as text")
    if len(value) > limit:
        raise too_large(limit, len(value), what)
    if "\x00" in value:
        raise malformed(f"{what} holds a NUL character: is it a text file?")
    return value.removeprefix("\ufeff")  # a spreadsheet's byte-order mark


def _mail_state(request: web.Request) -> dict[str, Any]:
    """Whether invites can go out by e-mail, and if not, why."""
    mailer = request.app.get(MAILER)
    if mailer is None or not mailer.enabled:
        return {"enabled": False,
                "reason": "e-mail is off on this server (mail.enabled in config.yaml)"}
    return {"enabled": True, "reason": None}


async def _send_invites(request: web.Request, day_id: int,
                        holders: list[tuple[str, Invite]]) -> list[dict[str, Any]]:
    """Each link by mail (`server.mail.Mailer.send_invite`, which journals each try),
    one after the other; a refusal of one does not stop the others."""
    mailer = request.app[MAILER]
    base = request.app[CONFIG].mail.link_base_url
    results: list[dict[str, Any]] = []
    for token, invite in holders:
        link = f"{base.rstrip('/')}/j/{token}" if base else _link(request, token)
        result: dict[str, Any] = {"person_id": invite.person_id, "name": invite.name}
        try:
            await mailer.send_invite(day_id=day_id, person_id=invite.person_id, link=link,
                                     by="organizer")
        except MailError as exc:
            result.update(sent=False, code=exc.code, error=str(exc))
        else:
            result["sent"] = True
        results.append(result)
    return results
