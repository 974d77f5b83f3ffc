"""JSON API for the commission; each handler authenticates via `web_ui.auth`."""

from __future__ import annotations

import time

from aiohttp import web

from server.readiness import readiness_report
from storage.roster import RosterStore

from .auth import require_invite
from .body import url_id
from .keys import DATABASE
from .roles import OFFICE


async def day_readiness(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/readiness: B1 readiness of every student of the day."""
    day_id = url_id(request, "day_id")
    await require_invite(request, day_id, OFFICE)
    roster = await RosterStore(request.app[DATABASE]).day_roster(day_id)
    report = readiness_report(roster, now=time.time())
    return web.json_response(report.to_json(), headers={"Cache-Control": "no-store"})
