"""Bearer-token authentication of API requests by personal invite token.

One helper for every API endpoint: `require_invite` turns the
``Authorization: Bearer <token>`` header into a verified `Invite`, or answers
401 (no, wrong, expired or revoked token) or 403 (a valid token of another day
or of a role the endpoint does not serve), with a JSON body that says why.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection

from aiohttp import web

from storage.errors import InviteError, InviteRefusal
from storage.invites import Invite, Role

from .keys import INVITES

logger = logging.getLogger(__name__)


def _json_error(cls: type[web.HTTPError], code: str, message: str,
                **headers: str) -> web.HTTPError:
    return cls(text=json.dumps({"error": code, "message": message}, ensure_ascii=False),
               content_type="application/json", headers=headers or None)


async def require_invite(request: web.Request, day_id: int, roles: Collection[Role]) -> Invite:
    """The invite of the request's bearer token, if it is for `day_id` and `roles`.

    Raises HTTPUnauthorized or HTTPForbidden (aiohttp answers them as is).
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _json_error(web.HTTPUnauthorized, InviteRefusal.BAD_TOKEN,
                          "Send your invite token as 'Authorization: Bearer <token>'.",
                          **{"WWW-Authenticate": "Bearer"})
    try:
        invite = await request.app[INVITES].verify(token.strip(), now=time.time())
    except InviteError as exc:
        raise _json_error(web.HTTPUnauthorized, exc.reason, exc.message,
                          **{"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    if invite.day_id != day_id:
        logger.warning("person %s of day %s refused access to day %s",
                       invite.person_id, invite.day_id, day_id)
        raise _json_error(web.HTTPForbidden, "other_day",
                          f"Your invite is for defense day {invite.day_id}, not {day_id}.")
    if invite.role not in roles:
        allowed = " or ".join(sorted(role.value for role in roles))
        raise _json_error(web.HTTPForbidden, "role",
                          f"Only the {allowed} of the day may do this; your role is"
                          f" {invite.role.value}.")
    return invite
