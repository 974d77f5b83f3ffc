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
    await require_invite(request, day_id, EVERYONE)
    host = await request.app[HOSTS].host(day_id)
    people = [{"id": p.person_id, "name": p.name, "role": p.role.value}
              for p in host.loaded.day.people]
    return web.json_response({**host.state_message(), "people": people},
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
    if hint is bool:
        return {"type": "boolean"}
    if hint is float:
        return {"type": "number", "description": "unix time in seconds"}
    if hint is str:
        return {"type": "string"}
    if hint is Grade:
        return {"type": "string", "enum": [g.value for g in Grade]}
    if typing.get_origin(hint) is tuple:
        return {"type": "array", "items": _schema(typing.get_args(hint)[0])}
    raise TypeError(f"no schema for {hint!r}")


_ERRORS = {
    "400": "malformed body", "401": "no, wrong, expired or revoked invite token",
    "403": "another day's token or a role without this right",
    "409": "forbidden by the rules now; `clause` names the clause",
    "422": "names a person not on this day", "503": "the procedure stopped; restart",
}


def _router_paths(app: web.Application) -> dict[str, Any]:
    """Every other /api/ route, described by its handler's docstring."""
    paths: dict[str, Any] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if (not path.startswith("/api/") or route.method == "HEAD"
                or path.endswith("/actions/{action}") or path == "/api/openapi.json"):
            continue  # the actions are described one by one below
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)
        doc = (inspect.getdoc(route.handler) or "").strip()
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"\{(\w+)\}", path)]
        paths.setdefault(path, {})[route.method.lower()] = {
            "summary": doc.splitlines()[0] if doc else path,
            **({"description": doc} if "\n" in doc else {}),
            "parameters": params, "security": [{"invite": []}],
            "responses": {"200": {"description": "see the summary"},
                          **{code: {"description": _ERRORS[code]} for code in ("401", "403")}},
        }
    return paths


def openapi_document(app: web.Application | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the API: the procedure's commands in detail,
    built from the action table, and every other /api/ route of `app`."""
    day = {"name": "day_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    error = {"$ref": "#/components/schemas/Error"}
    paths: dict[str, Any] = _router_paths(app) if app is not None else {}
    for action in ACTION_LIST:
        what, clause = ACTIONS.get(action.event, (action.event.__name__, ""))
        fields = action.fields
        paths[f"/api/days/{{day_id}}/actions/{action.path}"] = {"post": {
            "operationId": action.path.replace("-", "_"),
            "summary": f"{what[0].upper()}{what[1:]} (clause {clause}); "
                       f"allowed: {', '.join(sorted(r.value for r in action.roles))}",
            "parameters": [day], "security": [{"invite": []}],
            "requestBody": {"required": bool(fields), "content": {"application/json": {
                "schema": {"type": "object", "additionalProperties": False,
                           "required": action.required,
                           "properties": {n: _schema(h) for n, h in fields.items()}}}}},
            "responses": {
                "200": {"description": "accepted; the new state",
                        "content": {"application/json": {"schema": {
                            "type": "object", "properties": {"state": {"type": "object"}}}}}},
                **{code: {"description": text,
                          "content": {"application/json": {"schema": error}}}
                   for code, text in _ERRORS.items()},
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
