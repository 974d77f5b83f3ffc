"""HTTP API of the defense procedure: state, one endpoint per command, OpenAPI.

Every command is ``POST /api/days/{day_id}/actions/{action}`` with the caller's
invite token as a Bearer token and the command's fields as a JSON object. The
role is checked twice: here against the rights table (403 before anything runs)
and again by the core. The core's refusals keep their clause:

- 400 ``malformed``: the body is not the JSON object the action takes;
- 401/403: no or a bad token, another day, or a role without the right;
- 409 ``forbidden``: the rules forbid it now (``clause`` says which);
- 422 ``unknown_person``: the body names someone not on the day;
- 503 ``procedure_stopped``: the procedure's journal failed; restart the server.

The core's refusals are answered by the error middleware (`web_ui.errors`).

A successful command answers ``{"state": ...}``, the same state every participant
receives over their WebSocket as a ``state`` message.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import typing
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from orchestrator import events as ev
from orchestrator.codec import EventCodecError, event_from_json, snapshot_to_json
from orchestrator.model import Grade, Role
from orchestrator.phases import ACTIONS, RIGHTS
from storage.appeals import DayKind

from .auth import require, require_invite
from .body import (
    LONG_TEXT_CHARS,
    MAX_UNIX_TIME,
    NAME_CHARS,
    flag,
    json_object,
    malformed,
    moment,
    text,
    texts,
    url_id,
)
from .errors import json_error
from .keys import HOSTS
from .openapi_routes import ROUTES, RouteDoc
from .roles import APPEAL_CHAIR, EVERYONE

#: The most items a list field of a command holds (the queue of a day).
MAX_ITEMS = 1000


@dataclass(frozen=True, slots=True)
class Action:
    path: str
    event: type[ev.Event]

    @property
    def fields(self) -> dict[str, Any]:
        """The body fields: the event's fields less the stamped time and the actor."""
        hints = typing.get_type_hints(self.event)
        return {f.name: hints[f.name] for f in dataclasses.fields(self.event)
                if f.name not in ("now", "actor")}

    @property
    def required(self) -> list[str]:
        return sorted(f.name for f in dataclasses.fields(self.event)
                      if f.name not in ("now", "actor") and f.default is dataclasses.MISSING)

    @property
    def roles(self) -> frozenset[Role]:
        """Who may give this command in a defense; an appeal sitting's commands are the
        appeal chair's (AppealSession checks them)."""
        return RIGHTS.get(self.event, APPEAL_CHAIR)


#: The commands people give, by URL name. Presence and recorder confirmations are
#: facts from the media layer and have no endpoint.
ACTION_LIST: tuple[Action, ...] = (
    Action("open-sitting", ev.OpenSitting),
    Action("recording", ev.SetRecording),
    Action("identity", ev.IdentityDecided),
    Action("announce-limits", ev.AnnounceLimits),
    Action("queue", ev.ReorderQueue),
    Action("call", ev.CallStudent),
    Action("start-defense", ev.StartDefense),
    Action("next-phase", ev.NextPhase),
    Action("question", ev.RecordQuestion),
    Action("valid-reason", ev.RecordValidReason),
    Action("move-defense", ev.MoveDefense),
    Action("move-rest-of-day", ev.MoveRestOfDay),
    Action("waive-documents", ev.WaiveDocuments),
    Action("in-person", ev.SetInPerson),
    Action("return-time", ev.TellReturnTime),
    Action("closed-sitting", ev.StartClosedSitting),
    Action("vote", ev.CastVote),
    Action("record-vote", ev.RecordVote),
    Action("new-round", ev.NewVoteRound),
    Action("announce-results", ev.AnnounceResults),
    Action("close-sitting", ev.CloseSitting),
    # The appeal sitting (section 8): the appeal chair; "recording" as above.
    Action("open-appeal", ev.OpenAppealSitting),
    Action("name", ev.NameAnnounced),
    Action("decide", ev.DecideAppeal),
    Action("close-appeal", ev.CloseAppealSitting),
)
ACTIONS_BY_PATH = {action.path: action for action in ACTION_LIST}


async def day_state(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/state: the procedure's state and who is who."""
    day_id = url_id(request, "day_id")
    invite = await require_invite(request, day_id, EVERYONE)
    hosts = request.app[HOSTS]
    host = await hosts.host(day_id)
    people = [{"id": p.person_id, "name": p.name, "role": p.role.value}
              for p in host.loaded.day.people]
    # An appeal decision reaches the student only when delivered (8.11, S3).
    message = hosts.appeals.message_for(invite.role, host.state_message(),
                                        host.loaded.stored.timezone)
    return web.json_response({**message, "people": people},
                             headers={"Cache-Control": "no-store"})


async def day_action(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/actions/{action}: one command of the procedure."""
    day_id = url_id(request, "day_id")
    action = ACTIONS_BY_PATH.get(request.match_info["action"])
    if action is None:
        raise json_error(web.HTTPNotFound, "unknown_action",
                         f"no action {request.match_info['action']!r}; the actions are "
                         + ", ".join(ACTIONS_BY_PATH))
    invite = await require_invite(request, day_id, EVERYONE)
    host = await request.app[HOSTS].host(day_id)
    if host.loaded.kind is not DayKind.APPEAL:
        require(invite, day_id, action.roles)
    body = _fields(action, await json_object(request))
    try:
        event = event_from_json(
            {**body, "type": action.event.__name__, "now": 0.0, "actor": str(invite.person_id)})
    except EventCodecError as exc:
        raise malformed(str(exc)) from None
    snapshot = await host.act(event)
    return web.json_response({"state": snapshot_to_json(snapshot)})


def _fields(action: Action, body: dict[str, Any]) -> dict[str, Any]:
    """`body`, once each field it gives has the type and range of the action's field;
    the codec then names what is missing or unknown."""
    reserved = sorted({"type", "now", "actor"} & body.keys())
    if reserved:
        raise malformed(f"{', '.join(reserved)} are set by the server, not the caller")
    for name, hint in action.fields.items():
        if name not in body:
            continue
        if hint is bool:
            flag(body, name)
        elif hint is float:
            moment(body, name)
        elif hint is str or (isinstance(hint, type) and issubclass(hint, enum.Enum)):
            text(body, name, max_chars=LONG_TEXT_CHARS)
        elif typing.get_origin(hint) is tuple:
            texts(body, name, max_items=MAX_ITEMS, max_chars=NAME_CHARS)
    return body


# -- OpenAPI -----------------------------------------------------------------------------

def _schema(hint: Any) -> dict[str, Any]:
    """A command field's schema, with the ranges `_fields` checks."""
    if hint is bool:
        return {"type": "boolean"}
    if hint is float:
        return {"type": "number", "minimum": 0, "maximum": MAX_UNIX_TIME,
                "description": "unix time in seconds"}
    if hint is str:
        return {"type": "string", "maxLength": LONG_TEXT_CHARS}
    if hint is Grade:
        return {"type": "string", "enum": [g.value for g in Grade]}
    if typing.get_origin(hint) is tuple:
        return {"type": "array", "maxItems": MAX_ITEMS,
                "items": {"type": "string", "maxLength": NAME_CHARS}}
    raise TypeError(f"no schema for {hint!r}")


_ERRORS = {
    "400": "malformed body or query; `message` says which field",
    "401": "no, wrong, expired or revoked invite token",
    "403": "another day's token or a role without this right",
    "404": "no such day, person, appeal or file",
    "409": "forbidden by the rules now; `clause` names the clause",
    "413": "the body is larger than the server takes",
    "422": "names a person not on this day, or a value the rules refuse",
    "429": "too many requests of this link at once; retry after `Retry-After` seconds",
    "503": "the procedure stopped, or the server is shutting down; try again later",
}
#: The refusals of a command (`day_action`): a bad body, the token, the rules, the
#: journal; the day and the action name are in the URL.
_ACTION_ERRORS = ("400", "401", "403", "404", "409", "413", "422", "503")


def _refusals(codes: tuple[str, ...]) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    return {code: {"description": _ERRORS[code],
                   "content": {"application/json": {"schema": error}}} for code in codes}


def _path_parameter(name: str, pattern: str | None, doc: RouteDoc | None) -> dict[str, Any]:
    """A path parameter: what the route's pattern matches, or what the route documents."""
    if pattern == r"\d+":
        schema: dict[str, Any] = {"type": "integer", "minimum": 0}
    elif pattern is not None and re.fullmatch(r"\(\w+(\|\w+)*\)", pattern):
        schema = {"type": "string", "enum": pattern[1:-1].split("|")}
    elif doc is not None and name in doc.path:
        schema = doc.path[name]
    else:
        # The router never matches a slash inside one segment.
        schema = {"type": "string", "pattern": "^[^/]+$"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _groups(pattern: str) -> dict[str, str]:
    """The regex of each named group of a route's compiled `pattern`."""
    found: dict[str, str] = {}
    for match in re.finditer(r"\(\?P<(\w+)>", pattern):
        depth, end = 1, match.end()
        while depth and end < len(pattern):
            depth += {"(": 1, ")": -1}.get(pattern[end], 0) if pattern[end - 1] != "\\" else 0
            end += 1
        found[match.group(1)] = pattern[match.end():end - 1]
    return found


def _router_paths(app: web.Application) -> dict[str, Any]:
    """Every other /api/ route, described by `web_ui.openapi_routes.ROUTES` and its
    handler's docstring."""
    paths: dict[str, Any] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        raw = info.get("formatter") or info.get("path") or ""
        if (not raw.startswith("/api/") or route.method == "HEAD"
                or raw.endswith("/actions/{action}") or raw == "/api/openapi.json"):
            continue  # the actions are described one by one below
        pattern = info.get("pattern")
        patterns = _groups(pattern.pattern) if pattern is not None else {}
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", raw)
        doc_text = (inspect.getdoc(route.handler) or "").strip()
        doc = ROUTES.get((route.method, path))
        operation: dict[str, Any] = {
            "summary": doc_text.splitlines()[0] if doc_text else path,
            **({"description": doc_text} if "\n" in doc_text else {}),
            "parameters": [_path_parameter(n, patterns.get(n), doc)
                           for n in re.findall(r"\{(\w+)\}", path)],
            "security": [{"invite": []}],
        }
        if doc is None:  # undocumented: tests/test_security_fuzz.py fails for it
            operation["responses"] = {"200": {"description": "see the summary"},
                                      **_refusals(("401", "403"))}
        else:
            operation["parameters"] += [
                {"name": n, "in": "query", "required": n in doc.required_query, "schema": s}
                for n, s in doc.query.items()]
            if doc.request is not None:
                operation["requestBody"] = {
                    "required": doc.request_required,
                    "content": {t: {"schema": s} for t, s in doc.request.items()}}
            operation["responses"] = {
                doc.status: {"description": "done",
                             "content": {t: {"schema": s} for t, s in doc.answers.items()}},
                **_refusals(doc.refusals)}
        paths.setdefault(path, {})[route.method.lower()] = operation
    return paths


def openapi_document(app: web.Application | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the API: the procedure's commands in detail,
    built from the action table, and every other /api/ route of `app`."""
    day = {"name": "day_id", "in": "path", "required": True,
           "schema": {"type": "integer", "minimum": 0}}
    paths: dict[str, Any] = _router_paths(app) if app is not None else {}
    for action in ACTION_LIST:
        what, clause = ACTIONS.get(action.event, (action.event.__name__, ""))
        fields = action.fields
        paths[f"/api/days/{{day_id}}/actions/{action.path}"] = {"post": {
            "operationId": action.path.replace("-", "_"),
            "summary": f"{what[0].upper()}{what[1:]} (clause {clause}); "
                       f"allowed: {', '.join(sorted(r.value for r in action.roles))}",
            "parameters": [day], "security": [{"invite": []}],
            # An empty body is the empty object, which is all a command without fields takes.
            "requestBody": {"required": bool(action.required), "content": {"application/json": {
                "schema": {"type": "object", "additionalProperties": False,
                           "required": action.required,
                           "properties": {n: _schema(h) for n, h in fields.items()}}}}},
            "responses": {
                "200": {"description": "accepted; the new state",
                        "content": {"application/json": {"schema": {
                            "type": "object", "required": ["state"],
                            "properties": {"state": {"type": "object"}}}}}},
                **_refusals(_ACTION_ERRORS),
            }}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Defense room procedure API", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"invite": {
                "type": "http", "scheme": "bearer",
                "description": "the personal invite token from the invite link"}},
            "schemas": {"Error": {"type": "object", "required": ["error", "message"],
                                  "properties": {"error": {"type": "string"},
                                                 "message": {"type": "string"},
                                                 "clause": {"type": "string"}}}},
        },
    }


async def openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json."""
    return web.json_response(openapi_document(request.app))
