"""The aiohttp application: pages, static files, the signaling socket.

Every handler's domain errors, and its bugs, are answered by one middleware,
`web_ui.errors.refusals`.

Long-lived services are wired as ``cleanup_ctx`` generators, all listed in
`create_app` (started in order, stopped in reverse, and only those that started):
the database, the rooms, the watch over withdrawn invite links, the recording jobs
and retention sweeper, the hosted defense days (stopped first of these: their
recordings close before the rooms), and the identity checks' workers. Every
response gets the security headers of `web_ui.headers`. Behind the front
(``serve --workers N``) `web_ui.forwarded` takes the caller's address and scheme
from the front and refuses days another worker owns.
"""

from __future__ import annotations

import html
import logging
import time
import weakref
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web

from media.hooks import check_internals
from server.config import Config
from server.days import DayHosts
from server.ownership import SINGLE, Ownership
from server.rooms import RoomRegistry, journal_link_changes
from storage.db import Database
from storage.errors import InviteError
from storage.invites import InviteStore
from storage.journal import Journal

from .api import day_readiness
from .appeals_api import add_appeal_routes
from .contacts_api import add_contact_routes, mail_ctx
from .day_api import add_day_routes
from .documents_api import add_document_routes
from .errors import refusals
from .forwarded import behind_front
from .handover_api import add_handover_routes
from .headers import security_headers
from .identity_api import add_identity_routes, identity_ctx
from .invites_api import add_invite_routes, link_watch_ctx
from .keys import CONFIG, DATABASE, HOSTS, INVITES, OWNERSHIP, ROOMS, SOCKETS
from .office_api import add_office_routes
from .pages import add_page_routes
from .probe import add_probe_routes
from .procedure_api import day_action, day_state, openapi
from .protocol_api import add_protocol_routes
from .recordings_api import RECORDINGS, add_recording_routes, recordings_ctx
from .secretary_api import add_secretary_routes
from .session import SignalingSession
from .student_api import add_student_routes

logger = logging.getLogger(__name__)

STATIC_DIR = Path(str(resources.files("web_ui") / "static"))
# aiohttp closes a socket whose frame exceeds this outright; below it, frames over the
# configured limit get a polite ``too_large`` error and the session goes on.
HARD_FRAME_LIMIT = 1 << 20


def create_app(config: Config, *, ownership: Ownership = SINGLE) -> web.Application:
    """Build the application; nothing starts until aiohttp runs its startup.

    `ownership`: the days this process hosts when it is one of several workers
    behind the front (``serve --workers N``); alone, it hosts every day."""
    check_internals()
    app = web.Application(client_max_size=1 << 20, middlewares=[refusals, behind_front])
    app[CONFIG] = config
    app[OWNERSHIP] = ownership
    app[SOCKETS] = weakref.WeakSet()
    app.cleanup_ctx.append(_database_ctx)
    app.cleanup_ctx.append(_rooms_ctx)
    app.cleanup_ctx.append(link_watch_ctx)
    # Before the hosts: a closing sitting hands its builds to the recordings jobs.
    app.cleanup_ctx.append(recordings_ctx)
    app.cleanup_ctx.append(_hosts_ctx)
    app.cleanup_ctx.append(identity_ctx)
    app.cleanup_ctx.append(mail_ctx)
    app.on_shutdown.append(_stop_hosts)
    app.on_shutdown.append(_close_sockets)
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/j/{token}", room_page)
    app.router.add_get("/room", room_shell)
    app.router.add_get("/ws", websocket)
    app.router.add_get(r"/api/days/{day_id:\d+}/readiness", day_readiness)
    add_protocol_routes(app)
    app.router.add_get(r"/api/days/{day_id:\d+}/state", day_state)
    app.router.add_post(r"/api/days/{day_id:\d+}/actions/{action}", day_action)
    app.router.add_get("/api/openapi.json", openapi)
    add_day_routes(app)
    add_appeal_routes(app)
    add_handover_routes(app)
    add_secretary_routes(app)
    add_student_routes(app)
    add_document_routes(app)
    add_page_routes(app)
    add_probe_routes(app)
    add_recording_routes(app)
    add_identity_routes(app)
    add_invite_routes(app)
    add_office_routes(app)
    add_contact_routes(app)
    app.router.add_static("/static/", STATIC_DIR, name="static")
    return app


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    database = Database(app[CONFIG].database_path)
    await database.start()
    app[DATABASE] = database
    app[INVITES] = InviteStore(database)
    yield
    await database.stop()


async def _rooms_ctx(app: web.Application) -> AsyncIterator[None]:
    registry = RoomRegistry(app[CONFIG], link_sink=journal_link_changes(Journal(app[DATABASE])))
    app[ROOMS] = registry
    yield
    await registry.stop()


async def _hosts_ctx(app: web.Application) -> AsyncIterator[None]:
    hosts = DayHosts(app[CONFIG], app[DATABASE], app[ROOMS],
                     sitting_closed=app[RECORDINGS].jobs.sitting_closed,
                     ownership=app[OWNERSHIP])
    app[HOSTS] = hosts
    await hosts.start_days_under_way()
    yield
    await hosts.stop()


async def _stop_hosts(app: web.Application) -> None:
    # Before the sockets close: a shutdown (an upgrade, a restart) is not everyone
    # leaving, so their going must not reach the journal as absences.
    hosts = app.get(HOSTS)
    if hosts is not None:
        await hosts.stop()


async def _close_sockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    for ws in set(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


async def index(request: web.Request) -> web.Response:
    return web.Response(text=_page(
        "Defense room",
        "<p>Open the personal invite link you received from the secretary.</p>"
        "<p lang='ru'>Откройте персональную ссылку-приглашение, полученную от секретаря.</p>"),
        content_type="text/html")


async def healthz(request: web.Request) -> web.Response:
    """Whether the server answers; the room and participant counts only for the
    organizer's token (``Authorization: Bearer``), since they tell anyone when a
    defense is under way (S18)."""
    import hmac  # local: this edit stays inside the handler

    from storage.invites import hash_token

    expected = request.app[CONFIG].api.organizer_token_sha256
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if not (expected and scheme.lower() == "bearer" and 0 < len(token) <= 200
            and token.isascii() and hmac.compare_digest(hash_token(token), expected)):
        return web.json_response({"ok": True})
    rooms = request.app[ROOMS].rooms
    return web.json_response({"ok": True, "rooms": len(rooms),
                              "participants": sum(len(r.peers) for r in rooms.values())})


async def room_page(request: web.Request) -> web.StreamResponse:
    """The room page for an invite link; a bad link gets a page that says why."""
    try:
        await request.app[INVITES].verify(request.match_info["token"], now=time.time())
    except InviteError as exc:
        return web.Response(status=403, content_type="text/html", text=_page(
            "Invite link not accepted", f"<p>{html.escape(str(exc))}</p>"))
    response = web.FileResponse(STATIC_DIR / "room.html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


async def room_shell(request: web.Request) -> web.StreamResponse:
    """The room page once its token left the address bar (S20): the page reads the
    token from its tab's sessionStorage, so a reload still joins; without one it
    says the link is needed."""
    response = web.FileResponse(STATIC_DIR / "room.html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def websocket(request: web.Request) -> web.StreamResponse:
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        # Another site's page must not drive a participant's session (CSWSH).
        logger.warning("refused a signaling socket from origin %s", origin)
        return web.Response(status=403, text=f"cross-origin signaling from {origin} is not allowed")
    ws = web.WebSocketResponse(max_msg_size=HARD_FRAME_LIMIT, heartbeat=25.0)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    try:
        await SignalingSession(request, ws).run()
    finally:
        request.app[SOCKETS].discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        "<link rel='stylesheet' href='/static/room.css'></head>"
        f"<body class='notice'><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
