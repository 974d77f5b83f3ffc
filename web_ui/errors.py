"""Refusals of the HTTP API: one shape, ``{"error": code, "message": text, ...}``, and
one place where domain errors become them.

Every package's errors have one root (`DOMAIN_ERRORS`), and every class says how it
is refused: `code` (machine-readable) and `status_hint` (the HTTP status), like
h11's ``error_status_hint``. Handlers let those errors through; `refusals`, the
application's middleware, answers them. A 4xx is the caller's mistake and says
what it was (the error's own sentence, plus the clause of a rule where there is one).
A 5xx is ours: it is logged with its traceback, and a 500 tells the caller only that
something failed, never what. Anything that is not a domain error is a bug and
becomes that 500 too.
"""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler

from identity.errors import IdentityError
from media.errors import MediaError
from orchestrator.errors import OrchestratorError
from protocols.errors import PaperworkError
from recordings.errors import RecordingError
from server.errors import ServerError
from storage.errors import StorageError

logger = logging.getLogger(__name__)

#: The root of each package's errors; each class carries `code` and `status_hint`.
DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    OrchestratorError, StorageError, RecordingError, IdentityError, MediaError,
    ServerError, PaperworkError)

INTERNAL = "internal"
INTERNAL_MESSAGE = "The server failed to handle this request; the error was logged."
#: How a 401 tells the client which credentials to send (RFC 6750).
BEARER = "Bearer"
INVALID_TOKEN = 'Bearer error="invalid_token"'


E = TypeVar("E", bound=web.HTTPError)


def json_error(cls: type[E], code: str, message: str, *,
               headers: dict[str, str] | None = None, **extra: Any) -> E:
    """An aiohttp HTTP error whose body says what went wrong, in the caller's words."""
    return cls(text=json.dumps({"error": code, "message": message, **extra}, ensure_ascii=False),
               content_type="application/json", headers=headers)


def too_large(limit: int, size: int, what: str = "the body") -> web.HTTPRequestEntityTooLarge:
    """413 for a body of at least `size` bytes where `limit` is the most accepted."""
    most = f"{limit >> 20} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"
    return web.HTTPRequestEntityTooLarge(
        max_size=limit, actual_size=size, content_type="application/json",
        text=json.dumps({"error": "too_large", "message": f"{what} is larger than {most}"}))


#: The statuses a `status_hint` may name; any other is answered as a 500.
_BY_STATUS: dict[int, type[web.HTTPError]] = {cls.status_code: cls for cls in (
    web.HTTPBadRequest, web.HTTPUnauthorized, web.HTTPForbidden, web.HTTPNotFound,
    web.HTTPConflict, web.HTTPGone, web.HTTPMisdirectedRequest, web.HTTPUnprocessableEntity,
    web.HTTPInternalServerError, web.HTTPServiceUnavailable)}


def refusal(exc: Exception) -> web.HTTPError:
    """The answer to a domain error, by its class's `code` and `status_hint`."""
    cls = _BY_STATUS.get(getattr(exc, "status_hint", 500), web.HTTPInternalServerError)
    code = str(getattr(exc, "code", INTERNAL))
    if cls is web.HTTPInternalServerError:
        return json_error(cls, code, INTERNAL_MESSAGE)
    clause = getattr(exc, "clause", None)
    extra = {"clause": clause} if isinstance(clause, str) else {}
    headers = {"WWW-Authenticate": INVALID_TOKEN} if cls is web.HTTPUnauthorized else None
    return json_error(cls, code, str(exc), headers=headers, **extra)


@web.middleware
async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer the domain errors a handler lets through, and our bugs, as JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if (exc.status == 404 and request.path.startswith("/api/")
                and exc.content_type != "application/json"):
            # The router's own 404 (no route matches): the API answers JSON throughout.
            raise json_error(web.HTTPNotFound, "not_found",
                             f"no API route matches {request.method} {request.path[:200]}"
                             ) from None
        raise
    except DOMAIN_ERRORS as exc:
        answer = refusal(exc)
        if answer.status >= 500:
            logger.error("%s %s failed: %s", request.method, request.path, exc, exc_info=exc)
        else:
            logger.info("%s %s refused (%s): %s", request.method, request.path,
                        answer.status, exc)
        raise answer from None
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        raise json_error(web.HTTPInternalServerError, INTERNAL, INTERNAL_MESSAGE) from None
