"""A worker process behind the front (``serve --workers N``): whom a request is from,
and whether this worker owns the day it asks for.

The front (`server.front`) terminates TLS and relays each request over a unix socket
that only the server's user can open, adding ``X-Forwarded-For`` (the caller's
address) and ``X-Forwarded-Proto`` (``https`` or ``http``). Only then are the two
headers believed: a single process (``--workers 1``) listens on the network itself
and ignores them, so nobody can pretend to be another address. Pages build links
from ``request.scheme`` and ``request.host`` (the front passes ``Host`` on), and the
per-address limits use ``request.remote``, so both must be the caller's, not the
front's.

A request for a day another worker owns that reaches a worker directly is refused
with 421 (`server.ownership.NotThisWorker`), before any handler could host it.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from server.routing import ByDay, route_of

from .keys import OWNERSHIP

FORWARDED_FOR = "X-Forwarded-For"
FORWARDED_PROTO = "X-Forwarded-Proto"


@web.middleware
async def behind_front(request: web.Request, handler: Handler) -> web.StreamResponse:
    ownership = request.app[OWNERSHIP]
    if ownership.alone:
        return await handler(request)
    route = route_of(request.path, request.headers)
    if isinstance(route, ByDay):
        ownership.check(route.day_id)
    # The front appends the address it saw last: that one, not what a caller wrote.
    remote = request.headers.get(FORWARDED_FOR, "").split(",")[-1].strip()
    proto = request.headers.get(FORWARDED_PROTO, "")
    scheme = proto if proto in ("http", "https") else request.scheme
    if remote:
        return await handler(request.clone(remote=remote, scheme=scheme))
    return await handler(request.clone(scheme=scheme))
