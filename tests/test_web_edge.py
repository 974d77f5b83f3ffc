"""The web edge does each thing once: one JSON body reader, one bearer-token reader,
one error middleware. Real requests through the real app.

Every POST, PUT and PATCH route the app registers is found in its router (so a new
endpoint is covered without being listed here) and sent, with the token of a role
allowed there, what a careless or hostile peer might send: malformed JSON, an
array, 2000-deep nesting, invalid UTF-8, NaN, a key twice, a lone surrogate, a body
over the limit, a 5000-digit number and wrong types in each field it reads. The
answer is always a 4xx with ``{"error", "message"}``, never a 500. Hypothesis then
fuzzes the bodies of a few endpoints with arbitrary JSON.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from identity.errors import CheckNotFound, CheckRunning, IdentityError, NoConsent, WorkerFailed
from media.errors import MediaError, NegotiationError
from orchestrator.errors import ForbiddenAction, NotAllowedForRole, OrchestratorError, UnknownPerson
from orchestrator.model import Role
from protocols.approvals import NotAnApprover, StaleHash
from protocols.errors import PaperworkError
from protocols.handover import NotReady
from protocols.keys import SignatureRefused
from protocols.signing import SigningError
from recordings.errors import BuildRefused, LinkRefused, RecordingError
from server.config import ApiConfig, Config
from server.dayfile import DayFileError
from server.dayhost import NotAllowedHere
from server.errors import ServerError
from server.procedure import ProcedureError
from storage.appeals import AppealError, AppealStore
from storage.errors import InviteError, NotFoundError, RosterRefused, StorageError
from storage.invites import InviteStore, hash_token
from storage.roster import RosterStore
from web_ui.app import create_app
from web_ui.errors import INTERNAL_MESSAGE, refusals
from web_ui.keys import DATABASE
from web_ui.procedure_api import ACTIONS_BY_PATH
from web_ui.signaling import ErrorCode, SignalingError, parse_message

from .conftest import make_config
from .procedure_helpers import TZ, day_spec

Client = TestClient[web.Request, web.Application]

ORGANIZER = "organizer-secret-token-for-edge-tests"
NOW = time.time()
LATER = NOW + 7 * 86400
#: Routes whose body is not JSON: a PDF upload and the upload half of the connection check.
NOT_JSON = {("PUT", "/api/days/{day_id}/students/{person_id}/files/{kind}"),
            ("POST", "/api/connection-check")}
#: The order in which tokens are tried until one reaches a route's body.
TRY_ORDER = ("sec", "chair", "m1", "s1", "organizer", "appeal_chair", "appeal_member")

# What each JSON route reads: a valid body, and each field's kind. A new route must be
# added here (the test says so) for its fields to be checked one by one.
Fields = dict[str, str]
DAY_BODY: dict[str, Any] = {
    "title": "Защиты", "date": (datetime.date.today() + datetime.timedelta(days=3)).isoformat(),
    "start": "10:00", "timezone": TZ,
    "commission": {"chair": "П", "members": ["Ч1"], "secretary": "С"},
    "students": [{"name": "И", "thesis_title": "Т", "supervisor": "Р", "reviewer": "Рец"}],
}
KEY = {"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43}
BODIES: dict[str, tuple[dict[str, Any], Fields]] = {
    "/api/connection-check/media": ({}, {}),
    "/api/connection-check/media/answer": ({"sdp": "v=0\r\n"}, {"sdp": "str"}),
    "/api/days": (DAY_BODY, {"title": "str", "date": "str", "start": "str", "timezone": "str",
                             "commission": "object", "students": "list", "observers": "list",
                             "contacts": "object"}),
    "/api/days/{day_id}/people": ({"name": "Гость", "role": "observer"},
                                  {"name": "str", "role": "str"}),
    "/api/days/{day_id}/admit": ({"person": "{s1}"}, {"person": "id"}),
    "/api/days/{day_id}/students/{person_id}": (
        {"reviewer": "Орлова"},
        {"thesis_title": "str", "supervisor": "str", "reviewer": "str", "timezone": "str",
         "extra_time_percent": "percent"}),
    "/api/days/{day_id}/students/{person_id}/consent": ({"consent_at": NOW},
                                                        {"consent_at": "time"}),
    "/api/days/{day_id}/students/{person_id}/consents": (
        {"personal_data": True, "elibrary": True}, {"personal_data": "bool", "elibrary": "bool"}),
    "/api/days/{day_id}/students/{person_id}/documents": (
        {"kind": "thesis", "uploaded_at": NOW}, {"kind": "str", "uploaded_at": "time"}),
    "/api/days/{day_id}/appeals": ({"text": "Не согласен", "student": "{s1}"},
                                   {"text": "str", "student": "id"}),
    "/api/appeals/{appeal_id}/conclusion": ({"text": "Соблюдена"}, {"text": "str"}),
    "/api/appeals/{appeal_id}/schedule": (
        {"sitting_at": LATER, "appeal_chair": "А", "appeal_members": ["Б"]},
        {"sitting_at": "time", "appeal_chair": "str", "appeal_members": "texts"}),
    "/api/appeals/{appeal_id}/repeat": ({"starts_at": LATER}, {"starts_at": "time"}),
    "/api/appeals/{appeal_id}/my-invite": ({}, {}),
    "/api/days/{day_id}/handover": ({"to": "registrar"}, {"to": "str"}),
    "/api/days/{day_id}/keys": ({"jwk": KEY}, {"jwk": "object"}),
    "/api/days/{day_id}/protocols/{which}/approve": (
        {"hash": "0" * 64, "key_id": 1, "signature": "AA", "at": 1},
        {"hash": "str", "key_id": "int", "signature": "str", "at": "whole"}),
    "/api/days/{day_id}/protocols/{which}/sign": (
        {"key_id": 1, "signature": "AA", "at": 1},
        {"key_id": "int", "signature": "str", "at": "whole"}),
    "/api/days/{day_id}/recordings/build": ({"student": "{s1}"}, {"student": "id"}),
    "/api/days/{day_id}/recordings/{student}/appeal": ({"note": "хранить"}, {"note": "str"}),
    "/api/days/{day_id}/recordings/{student}/appeal-decision": (
        {"decision": "upheld", "note": ""}, {"decision": "str", "note": "str"}),
    "/api/days/{day_id}/identity/{student}/check": ({}, {}),
    "/api/days/{day_id}/keys/{key_id}/approve": ({}, {}),
    "/api/days/{day_id}/people/{person_id}/revoke": ({}, {}),
    "/api/days/{day_id}/people/{person_id}/reissue": ({}, {}),
    "/api/days/import": ({"day": "title: x"}, {"day": "str", "students": "str"}),
    "/api/days/{day_id}/invitations/sheet": ({"tokens": ["not-a-token"]}, {"tokens": "list"}),
    "/api/days/{day_id}/invitations/email": ({"tokens": ["not-a-token"]}, {"tokens": "list"}),
    "/api/days/{day_id}/people/{person_id}": ({"language": "en"},
                                              {"email": "str", "language": "str"}),
}
#: Values of the wrong type (or out of range) for each kind of field.
WRONG: dict[str, list[Any]] = {
    "str": [1, True, [], {}],
    "id": ["abc", True, 1.5, [], {}, 0, -1, 10**30],
    "int": ["1", True, 1.5, [], {}, 0, 10**30],
    "whole": ["1", True, 1.5, [], {}, -1, 10**30],  # a count or a time: 0 is in range
    "time": ["soon", True, [], {}, -5, 1e300, 10**30],
    "percent": ["10", True, [], {}, -1, 100.5, 10**30],
    "bool": ["true", 1, [], {}],
    "texts": ["a", 1, {}, [1], [[]]],
    "list": ["a", 1, {}],
    "object": ["a", 1, [], True],
}
#: What a peer may send instead of a JSON object, and the status that refuses it.
BAD_BODIES: list[tuple[str, bytes, int]] = [
    ("malformed JSON", b'{"a": ', 400),
    ("a JSON array", b"[1, 2]", 400),
    ("2000-deep nesting", b"[" * 2000 + b"]" * 2000, 400),
    ("2000-deep nesting in a field", b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}", 400),
    ("invalid UTF-8", b'{"a": "\xff\xfe"}', 400),
    ("NaN", b'{"a": NaN}', 400),
    ("Infinity", b'{"a": -Infinity}', 400),
    ("a float that overflows", b'{"a": 1e999}', 400),
    ("a key twice", b'{"a": 1, "a": 2}', 400),
    ("a lone surrogate", b'{"a": "\\ud800"}', 400),
    ("a string", b'"text"', 400),
    ("over the size limit", b'{"a": "' + b"x" * (1 << 20) + b'"}', 413),
]


@dataclass
class Edge:
    client: Client
    day_id: int
    other_day: int
    sitting_day: int
    appeal_id: int
    tokens: dict[str, str]
    ids: dict[str, int]

    async def call(self, method: str, url: str, token: str | None = None,
                   data: bytes | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        payload = None if data is None else io.BytesIO(data)
        async with self.client.request(method, url, data=payload, headers=headers) as r:
            raw = await r.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"raw": raw[:200].decode("utf-8", "replace")}
            return r.status, body if isinstance(body, dict) else {"raw": body}, dict(r.headers)

    def url(self, path: str, day_id: int | None = None, action: str = "open-sitting") -> str:
        values = {"day_id": day_id or self.day_id, "person_id": self.ids["s1"],
                  "student": self.ids["s1"], "appeal_id": self.appeal_id, "which": "day",
                  "action": action, "kind": "thesis", "check_id": "20260101T000000Z-0000abcd",
                  "image": "frame", "sha256": "0" * 64, "link": "x", "key_id": 1}
        return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)

    def body(self, sample: dict[str, Any]) -> dict[str, Any]:
        """`sample` with "{s1}" placeholders replaced by the student's id."""
        return {k: str(self.ids["s1"]) if v == "{s1}" else v for k, v in sample.items()}


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    """The app with a defense day, another day, and an appeal heard at a sitting day."""
    config = dataclasses.replace(make_config(tmp_path),
                                 api=ApiConfig(organizer_token_sha256=hash_token(ORGANIZER)))
    async with TestClient(TestServer(create_app(config), host="127.0.0.1", port=0)) as client:
        db = client.app[DATABASE]
        roster, invites = RosterStore(db), InviteStore(db)
        created = await roster.create_day(day_spec(NOW + 3600), expires_at=NOW + 86400, now=NOW)
        other = await roster.create_day(day_spec(NOW + 3600), expires_at=NOW + 86400, now=NOW)
        names = ("chair", "m1", "m2", "m3", "sec", "s1", "s2")
        tokens = {n: i.token for n, i in zip(names, created.invites, strict=True)}
        ids = {n: i.person_id for n, i in zip(names, created.invites, strict=True)}
        tokens["other_sec"] = other.invites[4].token
        tokens["organizer"] = ORGANIZER
        appeal = await AppealStore(db).file(
            day_id=created.day_id, student_id=ids["s1"], text="Не согласен",
            filed_by=ids["s1"], on_paper=False, deadline=NOW + 86400, now=NOW)
        sitting = await invites.create_day("Апелляция", datetime.date.today(), NOW + 7200, TZ,
                                           now=NOW)
        # As the appeal service invites them (clause 8.5).
        for role, name in ((Role.APPEAL_CHAIR, "appeal_chair"),
                           (Role.APPEAL_MEMBER, "appeal_member"),
                           (Role.STUDENT, "sitting_student"), (Role.CHAIR, "sitting_chair")):
            tokens[name] = (await invites.issue(sitting, role, name, NOW + 86400, now=NOW)).token
        await AppealStore(db).schedule(appeal.appeal_id, sitting, NOW + 7200, ids["sec"], NOW)
        yield Edge(client, created.day_id, other.day_id, sitting, appeal.appeal_id, tokens, ids)


def _routes(app: web.Application) -> list[tuple[str, str]]:
    """Every (method, path) of `app`'s router, with path parameters as ``{name}``."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if path and route.method != "HEAD":
            found.append((route.method, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)))
    return sorted(set(found))


ROUTES = _routes(create_app(Config()))
JSON_ROUTES = [(m, p, a) for m, p in ROUTES if m in ("POST", "PUT", "PATCH")
               and (m, p) not in NOT_JSON
               for a in (ACTIONS_BY_PATH if "{action}" in p else [""])]
API_ROUTES = [(m, p) for m, p in ROUTES if p.startswith("/api/") and p != "/api/openapi.json"]


def _fields(path: str, action: str) -> tuple[dict[str, Any], Fields]:
    if action:
        kinds = {bool: "bool", float: "time", tuple[str, ...]: "texts"}
        fields = {n: kinds.get(h, "str") for n, h in ACTIONS_BY_PATH[action].fields.items()}
        sample = {"bool": True, "time": LATER, "texts": ["{s1}"], "str": "{s1}"}
        return {n: sample[k] for n, k in fields.items()}, fields
    assert path in BODIES, f"add {path} to BODIES: its valid body and the kinds of its fields"
    return BODIES[path]


def _refused(status: int, body: dict[str, Any], expected: tuple[int, ...], what: str) -> None:
    assert status in expected, f"{what}: {status} {body}"
    assert isinstance(body.get("error"), str) and body["error"], f"{what}: {body}"
    assert isinstance(body.get("message"), str) and body["message"].strip(), f"{what}: {body}"


async def _reaching(edge: Edge, method: str, path: str, action: str) -> tuple[str, str]:
    """A URL of the route and a token that gets past authentication to the body."""
    days = [edge.day_id, edge.sitting_day] if action else [edge.day_id]
    for day_id in days:
        url = edge.url(path, day_id, action)
        for name in TRY_ORDER:
            status, _, _ = await edge.call(method, url, edge.tokens[name], b"{")
            if status not in (401, 403):
                return url, edge.tokens[name]
    raise AssertionError(f"no role reaches the body of {method} {path} {action}")


@pytest.mark.parametrize(("method", "path", "action"), JSON_ROUTES,
                         ids=[f"{m} {p} {a}".strip() for m, p, a in JSON_ROUTES])
async def test_every_json_route_refuses_bad_bodies_with_a_sentence(
        edge: Edge, method: str, path: str, action: str) -> None:
    url, token = await _reaching(edge, method, path, action)
    for what, data, expected in BAD_BODIES:
        status, body, _ = await edge.call(method, url, token, data)
        _refused(status, body, (expected,), f"{method} {url} with {what}")
    sample, fields = _fields(path, action)
    sample = edge.body(sample)
    # Wrong types of one field in an otherwise valid body: 400 naming the field (the day
    # file's own parser answers 422 for its fields, as for any invalid day file).
    wrong_type = (422,) if path == "/api/days" else (400,)
    for name, kind in fields.items():
        big = json.dumps({**sample, name: "BIG"}).replace('"BIG"', "9" * 5000).encode()
        status, body, _ = await edge.call(method, url, token, big)
        _refused(status, body, (400,), f"{method} {url} with a 5000-digit {name}")
        for value in WRONG[kind]:
            data = json.dumps({**sample, name: value}).encode()
            status, body, _ = await edge.call(method, url, token, data)
            _refused(status, body, wrong_type, f"{method} {url} with {name}={value!r}")
            assert name in body["message"], f"{method} {url} {name}={value!r}: {body}"


async def test_every_api_route_wants_a_token_and_says_how_to_send_it(edge: Edge) -> None:
    for method, path in API_ROUTES:
        url = edge.url(path)
        for token in (None, "not-a-token"):
            status, body, headers = await edge.call(method, url, token, b"{}")
            _refused(status, body, (401,), f"{method} {url} with token {token}")
            assert headers.get("WWW-Authenticate", "").startswith("Bearer"), (method, url)


async def test_another_days_token_is_refused_on_every_route_of_a_day(edge: Edge) -> None:
    for method, path in API_ROUTES:
        if "{day_id}" not in path and "{appeal_id}" not in path:
            continue
        url = edge.url(path)
        status, body, _ = await edge.call(method, url, edge.tokens["other_sec"], b"{}")
        _refused(status, body, (403,), f"{method} {url} with another day's token")


async def test_an_api_path_no_route_matches_is_a_json_404(edge: Edge) -> None:
    token = edge.tokens["sec"]
    for url in (f"/api/days/{edge.day_id}/nothing-here", "/api/days/abc/state", "/api/x"):
        status, body, headers = await edge.call("GET", url, token)
        _refused(status, body, (404,), f"GET {url}")
        assert headers["Content-Type"].startswith("application/json"), (url, headers)
        assert body["error"] == "not_found"


async def test_ids_in_the_url_that_no_row_can_have_are_not_found(edge: Edge) -> None:
    for method, path in API_ROUTES:
        for name in ("day_id", "person_id", "student", "appeal_id"):
            if f"{{{name}}}" not in path:
                continue
            for digits in ("9" * 5000, str(2**64)):
                url = edge.url(path.replace(f"{{{name}}}", digits))
                status, body, _ = await edge.call(method, url, edge.tokens["sec"], b"{}")
                assert status < 500, f"{method} {path} with a huge {name}: {status} {body}"
                if status >= 400:
                    _refused(status, body, (status,), f"{method} {path} with a huge {name}")


@pytest.mark.parametrize(("who", "method", "path"), [
    ("s1", "POST", "/api/days/{day_id}/recordings/build"),
    ("m1", "POST", "/api/days/{day_id}/admit"),
    ("s1", "GET", "/api/days/{day_id}/readiness"),
    ("chair", "POST", "/api/days/{day_id}/protocols/{which}/approve"),
    ("sec", "POST", "/api/days/{day_id}/protocols/{which}/sign"),
    ("chair", "POST", "/api/days/{day_id}/handover"),
    ("s2", "GET", "/api/days/{day_id}/protocols"),
    ("m1", "POST", "/api/days/{day_id}/actions/identity"),
    ("s1", "GET", "/api/days/{day_id}/identity/{student}/checks"),
])
async def test_a_role_outside_the_set_is_refused(edge: Edge, who: str, method: str,
                                                 path: str) -> None:
    status, body, _ = await edge.call(method, edge.url(path), edge.tokens[who], b"{}")
    _refused(status, body, (403,), f"{who} {method} {path}")
    assert body["error"] == "role"


# -- fuzzing -----------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
FUZZED = [("POST", "/api/days/{day_id}/actions/{action}", "return-time", "sec"),
          ("POST", "/api/days/{day_id}/actions/{action}", "queue", "sec"),
          ("POST", "/api/days/{day_id}/appeals", "", "sec"),
          ("POST", "/api/days/{day_id}/keys", "", "m1"),
          ("POST", "/api/days", "", "organizer")]


@pytest.mark.parametrize(("method", "path", "action", "who"), FUZZED,
                         ids=[f"{p} {a}".strip() for _, p, a, _ in FUZZED])
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
async def test_arbitrary_json_never_gets_a_5xx(edge: Edge, method: str, path: str, action: str,
                                              who: str, data: st.DataObject) -> None:
    sample, fields = _fields(path, action)
    names = st.sampled_from(sorted(fields) or ["x"]) | st.text(max_size=8)
    body = data.draw(st.one_of(
        JSON_VALUES,
        st.dictionaries(names, JSON_VALUES, max_size=6),
        st.dictionaries(names, JSON_VALUES, max_size=3).map(
            lambda fuzz: {**edge.body(sample), **fuzz})))
    url = edge.url(path, action=action)
    status, answer, _ = await edge.call(method, url, edge.tokens[who], json.dumps(body).encode())
    assert status < 500, f"{method} {url} {body!r}: {status} {answer}"
    if status >= 400:
        _refused(status, answer, (status,), f"{method} {url} {body!r}")


@pytest.mark.parametrize(("what", "data", "status"), [b for b in BAD_BODIES if b[2] == 400],
                         ids=[b[0] for b in BAD_BODIES if b[2] == 400])
def test_the_signaling_socket_parses_messages_with_the_same_reader(
        what: str, data: bytes, status: int) -> None:
    text = data.decode("utf-8", "surrogateescape")
    with pytest.raises(SignalingError) as refused:
        parse_message(text, 1 << 20)
    assert refused.value.code is ErrorCode.MALFORMED and refused.value.message


# -- the error middleware ----------------------------------------------------------------

DOMAIN: list[tuple[Exception, int, str]] = [
    (OrchestratorError("replay refused"), 500, "procedure_failed"),
    (ForbiddenAction("cannot vote now", "7.12"), 409, "forbidden"),
    (NotAllowedForRole("not yours"), 403, "role"),
    (UnknownPerson("no person 9"), 422, "unknown_person"),
    (StorageError("database /secret/path is already started"), 500, "storage_failed"),
    (NotFoundError("no defense day 9"), 404, "not_found"),
    (InviteError.bad_token(), 401, "bad_token"),
    (RosterRefused("the sitting has opened", "4.3"), 409, "roster_refused"),
    (AppealError("the appeal has been decided"), 409, "forbidden"),
    (RecordingError("remux of /secret/file failed"), 500, "recording_failed"),
    (BuildRefused("no defense has finished"), 409, "refused"),
    (LinkRefused("expired_link", "This recording link has expired."), 403, "expired_link"),
    (IdentityError("broken"), 500, "identity_failed"),
    (CheckRunning("a check runs"), 409, "check_running"),
    (NoConsent("no consent"), 409, "no_consent"),
    (WorkerFailed("the server is shutting down"), 503, "worker_failed"),
    (CheckNotFound("no check 'x'"), 404, "no_check"),
    (MediaError("broken"), 500, "media_failed"),
    (NegotiationError("bad SDP"), 400, "sdp_rejected"),
    (ServerError("broken"), 500, "server_failed"),
    (ProcedureError("the procedure of day 1 stopped"), 503, "procedure_stopped"),
    (DayFileError("'timezone' is unknown"), 422, "invalid_day"),
    (NotAllowedHere("person 3 does not wait"), 409, "not_allowed_here"),
    (PaperworkError("no font"), 500, "protocol_unavailable"),
    (StaleHash("the draft changed"), 409, "stale_hash"),
    (NotAnApprover("not present"), 403, "not_an_approver"),
    (SignatureRefused("key 3 is not yours"), 403, "bad_signature"),
    (SigningError("x and y must be 32 bytes each"), 400, "bad_key"),
    (NotReady("the day's protocol is not signed yet"), 409, "not_signed"),
]


def _raising(error: BaseException) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        raise error

    return handler


@pytest.mark.parametrize(("error", "status", "code"), DOMAIN,
                         ids=[f"{type(e).__name__}" for e, _, _ in DOMAIN])
async def test_the_middleware_answers_each_root_by_its_code_and_status(
        error: Exception, status: int, code: str) -> None:
    app = web.Application(middlewares=[refusals])
    app.router.add_get("/", _raising(error))
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        async with client.get("/") as r:
            body = await r.json()
            assert (r.status, body["error"]) == (status, code), body
            if status == 500:
                assert body["message"] == INTERNAL_MESSAGE  # ours: say nothing of what
            else:
                assert body["message"] == str(error)
            if status == 401:
                assert r.headers["WWW-Authenticate"].startswith("Bearer")
            clause = getattr(error, "clause", None)
            assert body.get("clause") == clause


async def test_a_bug_is_a_500_that_is_logged_and_says_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application(middlewares=[refusals])
    app.router.add_get("/", _raising(KeyError("secret internals")))
    with caplog.at_level(logging.ERROR, logger="web_ui.errors"):
        async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
            async with client.get("/") as r:
                text = await r.text()
                assert r.status == 500
    assert json.loads(text) == {"error": "internal", "message": INTERNAL_MESSAGE}
    assert "secret" not in text and "Traceback" not in text
    [record] = [r for r in caplog.records if r.name == "web_ui.errors"]
    assert record.exc_info is not None and "secret internals" in caplog.text
