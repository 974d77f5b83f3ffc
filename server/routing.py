"""Which day a request belongs to, read from the request alone (the front's rule).

A request names its day in one of four ways, tried in this order:

1. the path: ``/api/days/{day_id}/...``;
2. an appeal in the path: ``/api/appeals/{appeal_id}/...`` belongs to the day
   appealed (its service hosts that day's procedure); the front looks it up;
3. a personal invite token: in the path of an invite link (``/j/{token}``) or as
   ``Authorization: Bearer <token>`` (``/api/me``, the connection checks, the
   identity pages...); the front looks up the token's day. A bearer that is no
   invite (the organizer's token, a wrong one) names no day;
4. the signaling socket (``/ws``) carries its token in its first message, a
   ``join``, so the front reads that message before it picks the worker.

Anything else (the index page, the office page and its day list, creating and
importing days, static files, the OpenAPI document, ``/healthz``, the signed
recording links) is tied to no day and may go to any worker: each of them reads
or writes SQLite only, never a day's live state.

Pure: no I/O, so the rule is tested on its own (tests/test_workers.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

_DAY = re.compile(r"^/api/days/(\d{1,18})(?:/|$)")
_APPEAL = re.compile(r"^/api/appeals/(\d{1,18})(?:/|$)")
_INVITE_LINK = re.compile(r"^/j/([^/]{1,200})$")
SOCKET_PATH = "/ws"
MAX_TOKEN_CHARS = 200


@dataclass(frozen=True, slots=True)
class ByDay:
    day_id: int


@dataclass(frozen=True, slots=True)
class ByAppeal:
    appeal_id: int


@dataclass(frozen=True, slots=True)
class ByToken:
    token: str


@dataclass(frozen=True, slots=True)
class ByJoin:
    """The signaling socket: its first message says the day."""


@dataclass(frozen=True, slots=True)
class Anywhere:
    """Tied to no day."""


Route = ByDay | ByAppeal | ByToken | ByJoin | Anywhere


def route_of(path: str, headers: Mapping[str, str]) -> Route:
    """How to find the worker of a request to `path` with `headers`."""
    if (match := _DAY.match(path)) is not None:
        return ByDay(int(match.group(1)))
    if (match := _APPEAL.match(path)) is not None:
        return ByAppeal(int(match.group(1)))
    if (match := _INVITE_LINK.match(path)) is not None:
        return ByToken(match.group(1))
    if path == SOCKET_PATH:
        return ByJoin()
    token = bearer_of(headers)
    return Anywhere() if token is None else ByToken(token)


def bearer_of(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if it could be one."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not 0 < len(token) <= MAX_TOKEN_CHARS or not token.isascii():
        return None
    return token


def join_token(first_message: str) -> str | None:
    """The token of a signaling socket's first message if it is a ``join``; None for
    anything else (the worker then answers it as it answers any bad first message)."""
    try:
        data = json.loads(first_message)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") != "join":
        return None
    token = data.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        return None
    return token
