"""Bearer-token authentication of API requests by personal invite token.

The one reader of the ``Authorization: Bearer <token>`` header is `bearer_token`;
`invite_of` turns it into a verified `Invite` or answers 401 (no, wrong, expired
or revoked token), and `require` answers 403 for a valid invite of another day or
of a role the endpoint does not serve. `require_invite` is the two in a row, which
is what most endpoints want. Every refusal is JSON that says why; every 401 carries
``WWW-Authenticate``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from aiohttp import web

from storage.errors import InviteRefusal
from storage.invites import Invite, Role

from .errors import BEARER, json_error
from .keys import INVITES

logger = logging.getLogger(__name__)


def bearer_token(request: web.Request, what: str = "your invite token") -> str:
    """The token of the request's ``Authorization: Bearer`` header; 401 without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise json_error(web.HTTPUnauthorized, InviteRefusal.BAD_TOKEN,
                         f"Send {what} as 'Authorization: Bearer <token>'.",
                         headers={"WWW-Authenticate": BEARER})
    return token


async def invite_of(request: web.Request) -> Invite:
    """The verified invite of the request's bearer token.

    Raises 401: for a missing header here, for a wrong, expired or revoked token
    through the `InviteError` that the error middleware answers.
    """
    return await request.app[INVITES].verify(bearer_token(request), now=time.time())


def require(invite: Invite, day_id: int, roles: Collection[Role]) -> Invite:
    """`invite`, if it is for defense day `day_id` and one of `roles`; 403 if not."""
    if invite.day_id != day_id:
        logger.warning("person %s of day %s refused access to day %s",
                       invite.person_id, invite.day_id, day_id)
        raise json_error(web.HTTPForbidden, "other_day",
                         f"Your invite is for defense day {invite.day_id}, not {day_id}.")
    if invite.role not in roles:
        allowed = " or ".join(sorted(role.value for role in roles))
        raise json_error(web.HTTPForbidden, "role",
                         f"Only the {allowed} of the day may do this; your role is"
                         f" {invite.role.value}.")
    return invite


async def require_invite(request: web.Request, day_id: int, roles: Collection[Role]) -> Invite:
    """The invite of the request's bearer token, if it is for `day_id` and `roles`."""
    return require(await invite_of(request), day_id, roles)
