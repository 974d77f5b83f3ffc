"""What each /api/ route takes and answers, for the OpenAPI document
(`web_ui.procedure_api.openapi_document`); the procedure's commands are described
from the action table there instead.

One entry per (method, path) the router has, with the path parameters' types, the
query parameters, the request body and the success answer as the handler really
gives them. tests/test_security_fuzz.py sends fuzzed requests by this description
with every role's token and checks each answer against it, and fails for a route
that is missing here, so a new endpoint has to be described to pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.documents import DocumentKind
from storage.dayspec import GUEST_ROLES

from .body import LONG_TEXT_CHARS, MAX_ID, MAX_UNIX_TIME, NAME_CHARS, NOTE_CHARS

Schema = dict[str, Any]

#: The refusals of every authenticated route: the error middleware turns each
#: package's errors into these (`web_ui.errors`), and a token into 401/403.
REFUSALS = ("400", "401", "403", "404", "409", "422", "503")
#: Refusals of a route that reads a body, besides: one over the size limit.
BODY_REFUSALS = (*REFUSALS, "413")

ID: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
TIME: Schema = {"type": "number", "minimum": 0, "maximum": MAX_UNIX_TIME,
                "description": "unix time in seconds"}
ANY_OBJECT: Schema = {"type": "object"}
TEXT = {"type": "string"}


def text(max_chars: int) -> Schema:
    return {"type": "string", "maxLength": max_chars}


def body(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """A JSON object of exactly these fields: every handler refuses unknown ones."""
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "required": list(required)}


def answer(required: tuple[str, ...], **properties: Schema) -> Schema:
    return {"type": "object", "required": list(required), "properties": properties}


LINK = answer(("person_id", "role", "name", "link"), person_id=ID, role=TEXT, name=TEXT,
              link=TEXT)
SITTING_LINKS = ANY_OBJECT
APPEAL = answer(("appeal",), appeal=ANY_OBJECT)
JOBS = answer(("jobs",), jobs={"type": "array", "items": ANY_OBJECT})
PROTOCOL_SUMMARY = ANY_OBJECT
NOTE = text(NOTE_CHARS)


@dataclass(frozen=True, slots=True)
class RouteDoc:
    """One route: its success status and answer by content type, its request body by
    content type, the schemas of its path parameters that the route's own pattern
    does not pin down (digits, a closed set), and its query parameters."""

    status: str
    answers: dict[str, Schema]
    request: dict[str, Schema] | None = None
    request_required: bool = True
    path: dict[str, Schema] = field(default_factory=dict)
    query: dict[str, Schema] = field(default_factory=dict)
    required_query: tuple[str, ...] = ()
    refusals: tuple[str, ...] = REFUSALS


def _json(schema: Schema) -> dict[str, Schema]:
    return {"application/json": schema}


def _takes(schema: Schema, *, required: bool = True, status: str = "200",
           answers: Schema = ANY_OBJECT, **kwargs: Any) -> RouteDoc:
    return RouteDoc(status, _json(answers), _json(schema), required,
                    refusals=BODY_REFUSALS, **kwargs)


DAY = r"/api/days/{day_id}"
STUDENT = DAY + "/students/{person_id}"
APPEAL_PATH = "/api/appeals/{appeal_id}"
KINDS = {"type": "string", "enum": [k.value for k in DocumentKind]}
#: A path segment that names a protocol: the day's, or a student's by person id.
WHICH: Schema = {"type": "string", "pattern": "^(day|[0-9]{1,19})$",
                 "description": "\"day\" or a student's person id"}

DAY_FILE = body({
    "title": text(NAME_CHARS), "date": TEXT, "start": TEXT, "timezone": TEXT,
    "norm_control_required": {"type": "boolean"},
    "commission": body({"chair": TEXT, "members": {"type": "array", "items": TEXT},
                        "secretary": TEXT}, ("chair", "members", "secretary")),
    "students": {"type": "array", "minItems": 1, "items": ANY_OBJECT},
    "observers": {"type": "array", "items": TEXT},
    "contacts": {"type": "object", "description": "person name -> {email, language}",
                 "additionalProperties": body({"email": text(254),
                                               "language": {"type": "string",
                                                            "enum": ["ru", "en"]}})},
}, ("title", "date", "start", "timezone", "commission", "students"))

#: An approval or a signature (rule V6): the statement's hash, the key, the signature,
#: and the time the statement names (from `.../statement`).
_SIGNATURE = {"hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "key_id": ID,
              "signature": text(200), "at": {"type": "integer", "minimum": 0,
                                              "maximum": 2**40}}
APPROVAL = body(_SIGNATURE, ("hash", "key_id", "signature", "at"))
SIGNING = body(_SIGNATURE, ("key_id", "signature", "at"))
KEY = answer(("key_id", "fingerprint"), key_id=ID, fingerprint=TEXT)

ROUTES: dict[tuple[str, str], RouteDoc] = {
    ("POST", "/api/days"): _takes(DAY_FILE, status="201", answers=answer(
        ("day_id", "invites"), day_id=ID, invites={"type": "array", "items": LINK})),
    ("GET", DAY + "/readiness"): RouteDoc("200", _json(ANY_OBJECT)),
    ("GET", DAY + "/state"): RouteDoc("200", _json(answer(("state", "people"),
                                                          state=ANY_OBJECT,
                                                          people={"type": "array"}))),
    ("POST", DAY + "/people"): _takes(
        body({"name": text(NAME_CHARS),
              "role": {"type": "string", "enum": [r.value for r in GUEST_ROLES]}},
             ("name", "role")), status="201", answers=LINK),
    ("GET", DAY + "/queue"): RouteDoc("200", _json(answer(
        ("starts_at", "locks_at", "locked", "queue"), queue={"type": "array"}))),
    ("POST", DAY + "/admit"): _takes(body({"person": ID}, ("person",)), answers=answer(
        ("admitted", "waiting"), admitted=TEXT, waiting={"type": "array"})),
    ("PATCH", STUDENT): _takes(body({
        "thesis_title": text(1000), "supervisor": text(NAME_CHARS),
        "reviewer": text(NAME_CHARS), "timezone": text(64),
        "extra_time_percent": {"type": "number", "minimum": 0, "maximum": 100}}),
        answers=answer(("updated",), updated={"type": "array", "items": TEXT})),
    ("POST", STUDENT + "/consent"): _takes(body({"consent_at": TIME}), required=False,
                                           answers=answer(("consent_at",), consent_at=TIME)),
    ("POST", STUDENT + "/documents"): _takes(
        body({"kind": KINDS, "uploaded_at": TIME}, ("kind",)), status="201",
        answers=answer(("kind", "uploaded_at"), kind=KINDS, uploaded_at=TIME)),
    # Documents are versions (S4): an upload adds one; the secretary's replacement after
    # the student's uploads closed gives a reason. 429: too many uploads at once (S9).
    ("PUT", STUDENT + "/files/{kind}"): RouteDoc(
        "201", _json(answer(("kind", "size", "sha256", "version"), kind=KINDS,
                            size={"type": "integer"}, sha256=TEXT, version=ID)),
        {"application/pdf": {"type": "string", "format": "binary"}},
        path={"kind": KINDS}, query={"reason": text(500)}, refusals=(*BODY_REFUSALS, "429")),
    ("GET", STUDENT + "/files/{kind}"): RouteDoc(
        "200", {"application/pdf": {"type": "string", "format": "binary"}}, path={"kind": KINDS},
        query={"version": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}),
    # The student's own page (issue 15): what it shows, and their own consents (6.6).
    ("GET", STUDENT + "/overview"): RouteDoc("200", _json(answer(
        ("student", "queue", "moved", "consents", "documents", "uploads", "results"),
        documents={"type": "array", "items": ANY_OBJECT}, consents=ANY_OBJECT,
        uploads=ANY_OBJECT, results=ANY_OBJECT))),
    ("POST", STUDENT + "/consents"): _takes(
        body({"personal_data": {"type": "boolean"}, "elibrary": {"type": "boolean"}}),
        answers=answer(("consents",), consents=ANY_OBJECT)),
    # Protocols (V5): a draft or the signed protocol, in three formats.
    ("GET", DAY + "/protocols"): RouteDoc("200", _json(answer(
        ("day_id", "protocols"), day_id=ID, protocols={"type": "array"}))),
    ("GET", DAY + "/protocols/{which}"): RouteDoc(
        "200", {"application/json": PROTOCOL_SUMMARY, "text/html": TEXT,
                "application/pdf": {"type": "string", "format": "binary"}},
        path={"which": WHICH},
        query={"format": {"type": "string", "enum": ["json", "html", "pdf"]}}),
    ("GET", DAY + "/protocols/{which}/statement"): RouteDoc(
        "200", _json(answer(("statement", "at", "person_id"), statement=TEXT,
                            at={"type": "integer"}, person_id=ID)),
        path={"which": WHICH},
        query={"action": {"type": "string", "enum": ["approve", "sign"]},
               "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        required_query=("action",)),
    ("POST", DAY + "/protocols/{which}/approve"): _takes(
        APPROVAL, path={"which": WHICH}, answers=answer(("approved",), approved=ANY_OBJECT)),
    ("POST", DAY + "/protocols/{which}/sign"): _takes(SIGNING, path={"which": WHICH},
                                                      answers=PROTOCOL_SUMMARY),
    # Signing keys (S14): the first of a person signs; a further one once approved.
    ("POST", DAY + "/keys"): _takes(body({"jwk": ANY_OBJECT}, ("jwk",)), answers=KEY),
    ("GET", DAY + "/keys"): RouteDoc("200", _json(answer(("keys",), keys={
        "type": "array", "items": KEY}))),
    ("POST", DAY + "/keys/{key_id}/approve"): _takes(body({}), required=False, answers=KEY),
    # Withdrawing a person's link (S8), by the secretary or the organizer.
    ("POST", DAY + "/people/{person_id}/revoke"): _takes(body({}), required=False, answers=answer(
        ("person_id", "day_id", "revoked_at", "sessions_closed"), person_id=ID, day_id=ID,
        revoked_at=TIME, sessions_closed={"type": "integer", "minimum": 0})),
    ("POST", DAY + "/people/{person_id}/reissue"): _takes(body({}), required=False, answers=answer(
        ("person_id", "role", "name", "link", "sessions_closed"), person_id=ID, role=TEXT,
        name=TEXT, link=TEXT, sessions_closed={"type": "integer", "minimum": 0})),
    # The department office's page (web_ui/office_api.py): the days, a day's people,
    # a day from an uploaded day file, and the invite sheet or e-mails for the links
    # the caller hands in (from POST /api/days or .../reissue).
    ("GET", "/api/days"): RouteDoc("200", _json(answer(("days",), days={
        "type": "array", "items": answer(
            ("id", "title", "date", "starts_at", "timezone", "people", "students"),
            id=ID, title=TEXT, date=TEXT, starts_at=TIME, timezone=TEXT,
            people={"type": "integer", "minimum": 0},
            students={"type": "integer", "minimum": 0})}))),
    ("GET", DAY + "/people"): RouteDoc("200", _json(answer(
        ("day", "mail", "people"), day=ANY_OBJECT, mail=answer(("enabled",)),
        people={"type": "array", "items": answer(
            ("id", "role", "name", "state", "expires_at", "issued_at", "delivered"),
            id=ID, role=TEXT, name=TEXT,
            state={"type": "string", "enum": ["active", "revoked", "expired"]},
            expires_at=TIME, issued_at=TIME, delivered=ANY_OBJECT)}))),
    ("POST", "/api/days/import"): _takes(
        body({"day": text(256 * 1024), "students": text(512 * 1024)}, ("day",)),
        status="201", answers=answer(("day_id", "invites"), day_id=ID,
                                     invites={"type": "array", "items": LINK})),
    ("POST", DAY + "/invitations/sheet"): RouteDoc(
        "200", {"application/pdf": {"type": "string", "format": "binary"}},
        _json(body({"tokens": {"type": "array", "minItems": 1, "maxItems": 500,
                               "items": text(200)}}, ("tokens",))),
        refusals=BODY_REFUSALS),
    ("POST", DAY + "/invitations/email"): _takes(
        body({"tokens": {"type": "array", "minItems": 1, "maxItems": 500,
                         "items": text(200)}}, ("tokens",)),
        answers=answer(("results",), results={"type": "array", "items": answer(
            ("person_id", "name", "sent"), person_id=ID, name=TEXT,
            sent={"type": "boolean"})})),
    # A person's e-mail address and mail language, by the secretary or the organizer.
    ("PATCH", DAY + "/people/{person_id}"): _takes(body({
        "email": {"type": ["string", "null"], "maxLength": 254},
        "language": {"type": "string", "enum": ["ru", "en"]}}), answers=answer(
        ("person_id", "day_id", "name", "email", "language"), person_id=ID, day_id=ID,
        name=TEXT, email={"type": ["string", "null"]}, language=TEXT)),
    # Appeals (section 8).
    ("POST", DAY + "/appeals"): _takes(
        body({"text": text(LONG_TEXT_CHARS), "student": ID}, ("text",)), status="201",
        answers=APPEAL),
    ("GET", DAY + "/appeals"): RouteDoc("200", _json(answer(("appeals",),
                                                            appeals={"type": "array"}))),
    ("GET", APPEAL_PATH): RouteDoc("200", _json(APPEAL)),
    ("POST", APPEAL_PATH + "/conclusion"): _takes(body({"text": text(LONG_TEXT_CHARS)},
                                                       ("text",)), answers=APPEAL),
    ("POST", APPEAL_PATH + "/schedule"): _takes(
        body({"sitting_at": TIME, "appeal_chair": text(NAME_CHARS),
              "appeal_members": {"type": "array", "maxItems": 20, "items": text(NAME_CHARS)}},
             ("sitting_at", "appeal_chair", "appeal_members")),
        status="201", answers=SITTING_LINKS),
    ("POST", APPEAL_PATH + "/repeat"): _takes(body({"starts_at": TIME}, ("starts_at",)),
                                              status="201", answers=SITTING_LINKS),
    ("GET", APPEAL_PATH + "/evidence"): RouteDoc(
        "200", {"application/json": ANY_OBJECT,
                "application/zip": {"type": "string", "format": "binary"}},
        query={"format": {"type": "string", "enum": ["json", "zip"]}}),
    ("POST", APPEAL_PATH + "/my-invite"): _takes(body({}), required=False, answers=answer(
        ("sitting_at", "day_id", "link"), sitting_at=TIME, day_id=ID, link=TEXT)),
    # Who of the appeal sitting's people fetched their link, and joined (8.5).
    ("GET", APPEAL_PATH + "/sitting-people"): RouteDoc("200", _json(answer(
        ("sitting_day_id", "people"), people={"type": "array", "items": ANY_OBJECT}))),
    # The hand-over to the archive (R3).
    ("POST", DAY + "/handover"): _takes(body({"to": text(NAME_CHARS)}, ("to",)),
                                        status="201", answers=answer(("download",),
                                                                     download=TEXT)),
    ("GET", DAY + "/handover/{sha256}"): RouteDoc(
        "200", {"application/zip": {"type": "string", "format": "binary"}},
        path={"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}),
    # The secretary's personal page: preparing the day (B1) and its hand-overs (R3).
    ("GET", DAY + "/preparation"): RouteDoc("200", _json(answer(
        ("day_id", "deadline", "required", "students"), day_id=ID, deadline=TIME,
        students={"type": "array"}))),
    ("GET", DAY + "/handovers"): RouteDoc("200", _json(answer(
        ("ready", "reason", "handovers"), ready={"type": "boolean"},
        handovers={"type": "array"}))),
    # The person's own page and the connection check.
    ("GET", "/api/me"): RouteDoc("200", _json(ANY_OBJECT)),
    ("GET", "/api/connection-check"): RouteDoc(
        "200", {"application/octet-stream": {"type": "string", "format": "binary"}},
        query={"bytes": {"type": "integer", "minimum": 1, "maximum": 2 << 20}}),
    ("POST", "/api/connection-check"): RouteDoc(
        "200", _json(answer(("received", "server_time"), received={"type": "integer"},
                            server_time=TIME)),
        {"application/octet-stream": {"type": "string", "format": "binary"}},
        request_required=False, refusals=BODY_REFUSALS),
    # The pre-join check over the media path (web_ui/probe.py): a data channel.
    ("POST", "/api/connection-check/media"): _takes(body({}), required=False, answers=answer(
        ("sdp", "iceServers", "seconds", "max_bytes"), sdp=TEXT,
        iceServers={"type": "array", "items": ANY_OBJECT}, seconds={"type": "number"},
        max_bytes={"type": "integer"})),
    ("POST", "/api/connection-check/media/answer"): _takes(
        body({"sdp": text(32_000)}, ("sdp",)), answers=answer(("ok",), ok={"type": "boolean"})),
    # Recordings (P3) and their appeal holds.
    ("GET", DAY + "/recordings"): RouteDoc("200", _json(ANY_OBJECT)),
    ("GET", DAY + "/recordings/jobs"): RouteDoc("200", _json(JOBS)),
    ("POST", DAY + "/recordings/build"): _takes(body({"student": ID}), required=False,
                                                status="202", answers=JOBS),
    ("POST", DAY + "/recordings/{student}/appeal"): _takes(
        body({"note": NOTE}), required=False,
        answers=answer(("hold",), hold=ANY_OBJECT)),
    ("POST", DAY + "/recordings/{student}/appeal-decision"): _takes(
        body({"decision": TEXT, "note": NOTE}, ("decision",)),
        answers=answer(("hold", "decision"), decision=TEXT)),
    # Advisory identity checks (issue 5).
    ("POST", DAY + "/identity/{student}/check"): _takes(
        body({}), required=False,
        answers=answer(("check", "decide"), check=ANY_OBJECT, decide=ANY_OBJECT)),
    ("GET", DAY + "/identity/{student}/checks"): RouteDoc(
        "200", _json(answer(("checks", "running"), checks={"type": "array"},
                            running={"type": "boolean"}))),
    ("GET", DAY + "/identity/checks/{check_id}/{image}.jpg"): RouteDoc(
        "200", {"image/jpeg": {"type": "string", "format": "binary"}},
        path={"check_id": {"type": "string", "pattern": "^[0-9A-Za-z-]{1,64}$"}}),
    ("GET", DAY + "/identity/instruction"): RouteDoc("200", _json(answer(
        ("identity", "server_time"), server_time=TIME))),
}
