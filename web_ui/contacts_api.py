"""People's contacts: where their mail goes, and in which language (issue 15, e-mail);
and the mailer's lifecycle on the application (`mail_ctx`, under the key `MAILER`).

    PATCH /api/days/{day}/people/{person}   the organizer (their token) or the day's
                                            secretary: {"email"?: address or null,
                                            "language"?: "ru" | "en"}

The answer is the person's contact as stored. The journal records that it changed
and by whom, never the address (the journal is kept for good; an address is not).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from server.mail import Mailer
from storage.invites import By, hash_token
from storage.roster import Keep, RosterStore

from .auth import bearer_token, require_invite
from .body import json_object, only, url_id
from .errors import json_error
from .keys import CONFIG, DATABASE, INVITES, MAILER, OWNERSHIP
from .roles import SECRETARY

#: Longest address accepted (RFC 5321's forward path), checked before parsing it.
MAX_EMAIL_CHARS = 254


#: The clock the mailer reads (due dates, retries); tests set a fake one before startup.
MAIL_CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("mail_clock")


async def mail_ctx(app: web.Application) -> AsyncIterator[None]:
    """The mailer (`server.mail`): started after the database, stopped before it."""
    mailer = Mailer(app[CONFIG], app[DATABASE], clock=app.get(MAIL_CLOCK, time.time))
    app[MAILER] = mailer
    await mailer.start(outbox=app[OWNERSHIP].runs_machine_services)
    yield
    await mailer.stop()


def add_contact_routes(app: web.Application) -> None:
    app.router.add_patch(r"/api/days/{day_id:\d+}/people/{person_id:\d+}", update_contact)


async def _caller(request: web.Request, day_id: int) -> By:
    """The organizer (their token, when one is configured) or the day's secretary."""
    token = bearer_token(request)
    expected = request.app[CONFIG].api.organizer_token_sha256
    if (expected and len(token) <= 200 and token.isascii()
            and hmac.compare_digest(hash_token(token), expected)):
        return "organizer"
    return (await require_invite(request, day_id, SECRETARY)).person_id


async def update_contact(request: web.Request) -> web.Response:
    """PATCH .../people/{person_id}: set a person's e-mail address and/or language."""
    day_id, person_id = url_id(request, "day_id"), url_id(request, "person_id")
    by = await _caller(request, day_id)
    body = await json_object(request)
    only(body, ("email", "language"))
    if not body:
        raise json_error(web.HTTPBadRequest, "malformed",
                         "give 'email' (an address, or null for none) and/or 'language'")
    email: str | None | Keep = Keep.KEEP
    if "email" in body:
        value = body["email"]
        if value is not None and (not isinstance(value, str)
                                  or len(value) > MAX_EMAIL_CHARS):
            raise json_error(web.HTTPBadRequest, "malformed", "'email' must be an address of"
                             f" at most {MAX_EMAIL_CHARS} characters, or null")
        email = None if value is None or not value.strip() else value
    language: str | Keep = Keep.KEEP
    if "language" in body:
        if not isinstance(body["language"], str):
            raise json_error(web.HTTPBadRequest, "malformed", "'language' must be \"ru\" or \"en\"")
        language = body["language"]
    person = await request.app[INVITES].person(person_id)
    if person is None or person.day_id != day_id:
        raise json_error(web.HTTPNotFound, "no_person",
                         f"no person {person_id} is invited to defense day {day_id}")
    person = await RosterStore(request.app[DATABASE]).set_contact(
        person_id, now=time.time(), by=by, email=email, language=language)
    return web.json_response({"person_id": person.person_id, "day_id": person.day_id,
                              "name": person.name, "email": person.email,
                              "language": person.language})
