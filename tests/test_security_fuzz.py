"""Issue 14, item 9: the HTTP API fuzzed by its own OpenAPI document.

One real server, on a real SQLite file, runs in a thread with a defense day (the
commission, two students, their supervisor and reviewer, an observer), another
day, and an appeal heard at an appeal sitting day (the appeal commission, the
student and the chair invited to it). Schemathesis reads ``/api/openapi.json``
from that server and generates requests for every operation; each one is sent
once as generated (ids in the URL that mostly name nothing) and then, with the
URL's ids pointing at the real day, appeal and student, with every role's token
(the organizer's, the commission's, the students', the guests', another day's
secretary's and the appeal sitting's). Requests that take a body are then sent
again with bodies that break the document (negative generation). Every answer
must be no 5xx, a documented status, of a documented content type and matching
the documented schema (an error always the ``Error`` object). Review finding S12
(odd JSON: deep nesting, huge numbers) is checked on every JSON route as well.

The generation is derandomized: the same requests every run, so a failure
reproduces and CI does not flake.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.model import Role
from server.config import ApiConfig, Config
from storage.appeals import AppealStore
from storage.invites import InviteStore, hash_token
from storage.roster import RosterStore
from web_ui.app import create_app
from web_ui.keys import DATABASE
from web_ui.openapi_routes import ROUTES
from web_ui.procedure_api import openapi_document

from .conftest import make_config, url_of
from .procedure_helpers import TZ, day_spec

ORGANIZER = "organizer-secret-token-for-fuzz-tests"
#: The key, among a caller's ids, of the person whose link the fuzzer may withdraw.
REVOCABLE = "revocable_person_id"
NOW = time.time()
#: Examples per operation, each sent with every token (15): about 70 operations, and
#: the ~45 that take a body again with broken bodies, keep the whole file under a
#: minute on two cores (about 50 s, the S12 test included).
EXAMPLES = 6
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


@schemathesis.serializer("application/pdf")
def _pdf(ctx: Any, value: Any) -> bytes:
    """A PDF upload is its bytes (the generator gives text or bytes for a binary string)."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


#: URL segments that name no id of the day: the day's protocol, a key.
SEGMENTS: dict[str, object] = {"which": "day", "key_id": 1}


@dataclass(frozen=True)
class Caller:
    """A token and the ids its URLs should name to reach past the 404s."""

    token: str
    ids: dict[str, int]


@dataclass
class Live:
    base_url: str
    callers: dict[str, Caller]
    session: requests.Session


def _operations() -> list[tuple[str, str]]:
    """Every operation of the document the app serves, known before it runs."""
    document = openapi_document(create_app(Config()))
    return sorted((method.upper(), path) for path, item in document["paths"].items()
                  for method in item)


OPERATIONS = _operations()


async def _populate(app: Any) -> dict[str, Caller]:
    """The days, the appeal and a token of every role; the ids each token's URLs use."""
    db = app[DATABASE]
    roster, invites, appeals = RosterStore(db), InviteStore(db), AppealStore(db)
    created = await roster.create_day(day_spec(NOW + 3600), expires_at=NOW + 86400, now=NOW)
    other = await roster.create_day(day_spec(NOW + 3600), expires_at=NOW + 86400, now=NOW)
    people = {i.person_id: i for i in created.everyone}
    students = [i for i in created.invites if i.role is Role.STUDENT]
    s1 = students[0].person_id
    appeal = await appeals.file(day_id=created.day_id, student_id=s1, text="Не согласен",
                                filed_by=s1, on_paper=False, deadline=NOW + 86400, now=NOW)
    sitting = await invites.create_day("Апелляция", datetime.date.today(), NOW + 7200, TZ,
                                       now=NOW)
    observer = await invites.issue(created.day_id, Role.OBSERVER, "Наблюдатель", NOW + 86400,
                                   now=NOW)
    # Revoking or reissuing a link is for good: those calls aim at this person, never
    # at a caller (whose later requests would all be 401).
    revocable = await invites.issue(created.day_id, Role.OBSERVER, "Отзываемый", NOW + 86400,
                                    now=NOW)
    day_ids = {"day_id": created.day_id, "person_id": s1, "student": s1,
               "appeal_id": appeal.appeal_id, REVOCABLE: revocable.person_id}
    callers: dict[str, Caller] = {"organizer": Caller(ORGANIZER, day_ids)}
    seen: set[str] = set()
    for invite in (*people.values(), observer):
        name = invite.role.value if invite.role.value not in seen else f"{invite.role.value}2"
        seen.add(invite.role.value)
        callers[name] = Caller(invite.token, day_ids)
    callers["other_day_secretary"] = Caller(other.invites[4].token, day_ids)
    sitting_ids = {**day_ids, "day_id": sitting}
    for role in (Role.APPEAL_CHAIR, Role.APPEAL_MEMBER, Role.STUDENT, Role.CHAIR):
        issued = await invites.issue(sitting, role, f"sitting {role.value}", NOW + 86400, now=NOW)
        callers[f"sitting_{role.value}"] = Caller(issued.token, sitting_ids)
    await appeals.schedule(appeal.appeal_id, sitting, NOW + 7200, created.invites[4].person_id,
                           NOW)
    return callers


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, isolated_network: None) -> Iterator[Live]:
    """The server, on its own event loop in a thread: schemathesis calls it with
    blocking requests from the test's thread."""
    tmp_path: Path = tmp_path_factory.mktemp("fuzz")
    config = dataclasses.replace(make_config(tmp_path),
                                 api=ApiConfig(organizer_token_sha256=hash_token(ORGANIZER)))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-server", daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    async def start() -> tuple[TestServer, dict[str, Caller]]:
        test_server = TestServer(create_app(config), host="127.0.0.1", port=0)
        await test_server.start_server()
        return test_server, await _populate(test_server.app)

    test_server, callers = run(start())
    session = requests.Session()
    try:
        yield Live(url_of(test_server), callers, session)
    finally:
        session.close()
        run(test_server.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


@pytest.fixture(scope="module")
def api_schema(live: Live) -> Any:
    """The document as the running server serves it (to a caller with a token, should
    the document ever want one)."""
    return schemathesis.openapi.from_url(
        f"{live.base_url}/api/openapi.json", timeout=30,
        headers={"Authorization": f"Bearer {live.callers['secretary'].token}"})


def _send(case: Any, live: Live, who: str, caller: Caller) -> None:
    headers = {"Authorization": f"Bearer {caller.token}"}
    response = case.call(base_url=live.base_url, session=live.session, headers=headers)
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except AssertionError as exc:
        body = json.dumps(case.body, ensure_ascii=False)[:300] if case.body is not None else ""
        raise AssertionError(f"as {who}: {case.method} {case.formatted_path} "
                             f"{case.query or ''} {body}\n{exc}") from None
    if response.status_code == 200 and case.path.endswith("/my-invite"):
        # The caller's new link to the appeal sitting revokes the one before (8.5): the
        # sitting's caller of that role goes on with the new token.
        sitting = who if who.startswith("sitting_") else f"sitting_{who}"
        token = response.json()["link"].rsplit("/j/", 1)[1]
        live.callers[sitting] = dataclasses.replace(live.callers[sitting], token=token)


def _fuzz(api_schema: Any, live: Live, method: str, path: str,
          mode: GenerationMode = GenerationMode.POSITIVE) -> None:
    operation = api_schema[path][method]

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
    @given(case=operation.as_strategy(mode))
    def each(case: Any) -> None:
        generated = dict(case.path_parameters or {})
        withdraws = path.endswith(("/revoke", "/reissue"))
        if withdraws:
            generated["person_id"] = live.callers["secretary"].ids[REVOCABLE]
            case.path_parameters = dict(generated)
        if mode is GenerationMode.POSITIVE:
            _send(case, live, "secretary", live.callers["secretary"])
        # Broken ids in the URL match no route at all (aiohttp's plain-text 404), so the
        # negative cases keep the URL real and break the rest of the request.
        fixed = SEGMENTS if mode is GenerationMode.NEGATIVE else {}
        for who, caller in list(live.callers.items()):
            caller_ids = {**fixed, **caller.ids}
            if withdraws:
                caller_ids["person_id"] = caller.ids[REVOCABLE]
            case.path_parameters = {n: caller_ids.get(n, v) for n, v in generated.items()}
            _send(case, live, who, caller)
        case.path_parameters = generated

    each()


@pytest.mark.parametrize(("method", "path"), OPERATIONS,
                         ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_api_every_operation_with_every_role(api_schema: Any, live: Live, method: str,
                                                  path: str) -> None:
    _fuzz(api_schema, live, method, path)


BODY_OPERATIONS = [(m, p) for m, p in OPERATIONS if m in ("POST", "PUT", "PATCH")]


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS,
                         ids=[f"{m} {p}" for m, p in BODY_OPERATIONS])
def test_fuzz_api_bodies_against_the_schema_with_every_role(
        api_schema: Any, live: Live, method: str, path: str) -> None:
    """Requests that break the document (a wrong type, a missing field): refused as
    documented, never a 5xx."""
    _fuzz(api_schema, live, method, path, GenerationMode.NEGATIVE)


def test_fuzz_api_document_is_what_the_server_serves(live: Live) -> None:
    served = live.session.get(f"{live.base_url}/api/openapi.json", timeout=30).json()
    assert [(m.upper(), p) for p, item in served["paths"].items() for m in item] == [
        (m.upper(), p) for p, item in openapi_document(create_app(Config()))["paths"].items()
        for m in item]


def test_fuzz_api_every_route_is_described() -> None:
    """A route missing from `ROUTES` would be documented as 200/401/403 only, and
    its real answers would go unchecked."""
    document = openapi_document(create_app(Config()))
    described = {(m, p) for m, p in ROUTES}
    for method, path in OPERATIONS:
        if "/actions/" not in path:
            assert (method, path) in described, f"describe {method} {path} in ROUTES"
    assert described <= set(OPERATIONS), described - set(OPERATIONS)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}, (method, path, status)
            names = re.findall(r"\{(\w+)\}", path)
            declared = [p["name"] for p in operation["parameters"] if p["in"] == "path"]
            assert declared == names, (method, path)


#: Review finding S12: bodies that made Python's parser fail in ways no handler caught.
ODD_BODIES: dict[str, Callable[[str], bytes]] = {
    "100000-deep nesting (200 KB)": lambda field: b"[" * 100000 + b"]" * 100000,
    "a 5000-digit number": lambda field: f'{{"{field}": {"9" * 5000}}}'.encode(),
    "a 5000-digit float": lambda field: f'{{"{field}": 0.{"9" * 5000}}}'.encode(),
    "3000-deep nesting in a field": lambda field: (
        f'{{"{field}": '.encode() + b"[" * 3000 + b"]" * 3000 + b"}"),
    "1e400": lambda field: f'{{"{field}": 1e400}}'.encode(),
}


def _json_operations(document: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                fields = sorted(content["application/json"]["schema"].get("properties", {}))
                found.append((method.upper(), path, fields or ["x"]))
    return found


def test_s12_odd_json_on_every_json_route_is_a_400_never_a_500(live: Live) -> None:
    document = live.session.get(f"{live.base_url}/api/openapi.json", timeout=30).json()
    operations = _json_operations(document)
    assert len(operations) > 40, "the document lists the JSON routes"
    for method, path, fields in operations:
        documented = set(document["paths"][path][method.lower()]["responses"])
        for what, make in ODD_BODIES.items():
            statuses: dict[str, int] = {}
            for who, caller in list(live.callers.items()):
                segments = {**SEGMENTS, **caller.ids}
                url = live.base_url + re.sub(r"\{(\w+)\}",
                                             lambda m: str(segments[m.group(1)]), path)
                r = live.session.request(method, url, data=make(fields[0]), timeout=60, headers={
                    "Authorization": f"Bearer {caller.token}",
                    "Content-Type": "application/json"})
                statuses[who] = r.status_code
                where = f"{method} {path} as {who} with {what}: {r.status_code} {r.text[:200]}"
                assert r.status_code < 500 and str(r.status_code) in documented, where
                assert r.headers["Content-Type"].startswith("application/json"), where
                error = r.json()
                assert isinstance(error.get("error"), str) and error.get("message"), where
            # Some role reaches the body, and its parser refuses it with a sentence.
            assert 400 in statuses.values(), f"{method} {path} with {what}: {statuses}"
