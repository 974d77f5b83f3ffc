"""Revoking and reissuing a person's invite link (S8).

    POST /api/days/{day}/people/{person}/revoke    the secretary of the day, or the
                                                   organizer: the link stops working
    POST /api/days/{day}/people/{person}/reissue   the same callers: a new link,
                                                   answered once; the old one stops

Both are journaled with who did it. Every HTTP call verifies its token, so a
withdrawn link is refused (401) from the next call on. A joined WebSocket was
verified only when it joined: `LinkWatch` ends those sessions. It reads the journal
for withdrawn links (revoked or reissued, here, by ``defense-room invites`` in
another process, or by the appeals API's ``my-invite``) right after each call here
and every `WATCH_INTERVAL_S` for the other processes, and has the room tell the
person ``bye`` "revoked", which the page shows as "your link was revoked".
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from server.rooms import RoomRegistry
from storage.errors import NotFoundError, StorageError
from storage.invites import By, InviteStore, hash_token

from .auth import bearer_token, require_invite
from .body import json_object, only, url_id
from .errors import json_error
from .keys import CONFIG, INVITES, ROOMS
from .roles import SECRETARY

logger = logging.getLogger(__name__)

#: How often the journal is read for links withdrawn by another process (the CLI).
WATCH_INTERVAL_S = 2.0
#: The ``bye`` reason of a session whose link was withdrawn.
REVOKED = "revoked"


class LinkWatch:
    """Ends the joined sessions of people whose link was withdrawn; owns its task."""

    def __init__(self, invites: InviteStore, rooms: RoomRegistry) -> None:
        self._invites = invites
        self._rooms = rooms
        self._seen: int | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._seen, _ = await self._invites.links_withdrawn(None)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def sweep(self) -> int:
        """Close the sessions of every link withdrawn since the last sweep; how many."""
        async with self._lock:
            self._seen, withdrawn = await self._invites.links_withdrawn(self._seen)
            closed = 0
            for day_id, person_id in withdrawn:
                room = self._rooms.get(str(day_id))
                if room is not None and room.peer(str(person_id)) is not None:
                    logger.info("day %s: person %s's link was withdrawn; closing their session",
                                day_id, person_id)
                    await room.leave(str(person_id), reason=REVOKED)
                    closed += 1
            return closed

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            try:
                await self.sweep()
            except Exception:
                logger.exception("reading the journal for withdrawn links failed")


LINK_WATCH = web.AppKey("link_watch", LinkWatch)


async def link_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    watch = LinkWatch(app[INVITES], app[ROOMS])
    await watch.start()
    app[LINK_WATCH] = watch
    yield
    await watch.stop()


def add_invite_routes(app: web.Application) -> None:
    person = r"/api/days/{day_id:\d+}/people/{person_id:\d+}"
    app.router.add_post(person + "/revoke", revoke)
    app.router.add_post(person + "/reissue", reissue)


async def _caller(request: web.Request, day_id: int) -> By:
    """The organizer (their token, when one is configured) or the day's secretary."""
    token = bearer_token(request)
    expected = request.app[CONFIG].api.organizer_token_sha256
    if (expected and len(token) <= 200 and token.isascii()
            and hmac.compare_digest(hash_token(token), expected)):
        return "organizer"
    return (await require_invite(request, day_id, SECRETARY)).person_id


async def _person_of_day(request: web.Request) -> tuple[int, int, By]:
    day_id, person_id = url_id(request, "day_id"), url_id(request, "person_id")
    by = await _caller(request, day_id)
    only(await json_object(request), ())  # nothing to say beyond the URL
    person = await request.app[INVITES].person(person_id)
    if person is None or person.day_id != day_id:
        raise json_error(web.HTTPNotFound, "no_person",
                         f"no person {person_id} is invited to defense day {day_id}")
    return day_id, person_id, by


async def revoke(request: web.Request) -> web.Response:
    """POST .../people/{person_id}/revoke: the link stops working, and its session ends."""
    day_id, person_id, by = await _person_of_day(request)
    await request.app[INVITES].revoke(person_id, time.time(), by=by)
    closed = await request.app[LINK_WATCH].sweep()
    person = await request.app[INVITES].person(person_id)
    assert person is not None
    return web.json_response({"person_id": person_id, "day_id": day_id,
                              "revoked_at": person.revoked_at, "sessions_closed": closed})


async def reissue(request: web.Request) -> web.Response:
    """POST .../people/{person_id}/reissue: a new link (its only showing); the old one
    stops working and its session ends."""
    day_id, person_id, by = await _person_of_day(request)
    try:
        issued = await request.app[INVITES].reissue(person_id, now=time.time(), by=by)
    except StorageError as exc:
        if isinstance(exc, NotFoundError):
            raise
        raise json_error(web.HTTPConflict, "revoked", f"{exc}; a revoked link is not"
                         " reissued") from None
    closed = await request.app[LINK_WATCH].sweep()
    body: dict[str, Any] = {
        "person_id": issued.person_id, "role": issued.role.value, "name": issued.name,
        "link": f"{request.scheme}://{request.host}/j/{issued.token}",
        "sessions_closed": closed}
    return web.json_response(body, headers={"Cache-Control": "no-store"})
