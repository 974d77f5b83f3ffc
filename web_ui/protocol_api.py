"""Protocol API (rules V5, V6, A5): list, read as JSON, HTML or PDF, approve, sign.

    GET  /api/days/{day_id}/protocols                   chair, members, secretary
    GET  /api/days/{day_id}/protocols/{which}?format=json|html|pdf
                                                        chair, members, secretary
    POST /api/days/{day_id}/protocols/{which}/approve   members;
                                    {"hash": "<hex>", "key_id": n, "signature": "<b64url>"}
    POST /api/days/{day_id}/protocols/{which}/sign      the chair; {"key_id", "signature"}
    GET  /api/days/{day_id}/protocols/{which}/statement?action=approve|sign&hash=<hex>
                                                        the approvers and the signer
    POST /api/days/{day_id}/keys                        the commission; {"jwk": {...}}
    GET  /api/days/{day_id}/keys                        the secretary: keys, pending ones
    POST /api/days/{day_id}/keys/{key_id}/approve       the secretary: a further key

An appeal sitting (a day of its own) has one protocol, `which` = "appeal" (clauses
8.8, 8.9), served by the same routes with the appeal roles (`PAPER_ROLES`): the
appeal commission and the commission chair invited to the sitting read it, the
members of the appeal commission approve it, and the appeal chair signs it.

Approvals and the signing are signed (rule V6): the browser asks for the statement
(`.../statement`: action, day, document, hash, the signer's person id and the
server's time) and signs it with the ECDSA P-256 key it registered; it sends the
time back with the signature, and the server rebuilds the statement, checks the
time is recent (`STATEMENT_TTL_S`), verifies it and keeps it with the approval. A
person's first key is theirs; a further one signs only once the secretary approves
it (S14). The listing names the server key's fingerprint (`server_key`), which is
also printed on every protocol and signs every package.

`which` is "day" or a student's person id. Every handler authenticates the bearer
invite token and checks the role (`web_ui.auth`); students, supervisors, reviewers
and observers read nothing here. A member approves the content hash they were shown,
so approving a draft that changed since is refused (409) rather than silently
approving something else. Refusals of the protocol rules become JSON replies in the
error middleware (`web_ui.errors`), by each error's `code` and `status_hint`.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from orchestrator.appeal_protocol import AppealProtocol
from orchestrator.model import APPEAL_ROLES, COMMISSION_ROLES, Role
from orchestrator.protocol import DayProtocol, Protocol
from protocols.approvals import (
    AlreadySigned,
    Approval,
    ApprovalsMissing,
    NotFinal,
    ProtocolStore,
    SignedProtocol,
    missing_approvals,
    missing_message,
)
from protocols.appeal_render import render_appeal_html, render_appeal_pdf
from protocols.drafts import (
    AnyDraft,
    AppealDrafts,
    DayDrafts,
    RecordingIndex,
    load_day_drafts,
)
from protocols.keys import SignatureIn, SigningKey, SigningKeyStore
from protocols.render import Endorsement, render_html, render_pdf
from protocols.signing import load_jwk, statement
from recordings.plan import day_folder
from storage.appeals import AppealStore, DayKind
from storage.invites import Invite

from .auth import invite_of, require, require_invite
from .body import MAX_ID, integer, json_object, mapping, only, text, url_id
from .errors import json_error
from .keys import CONFIG, DATABASE
from .package_signing import install, server_key
from .replies import json_reply
from .roles import APPEAL_CHAIR, CHAIR, EVERYONE, MEMBERS, SECRETARY

FORMATS = ("json", "html", "pdf")
#: A P-256 signature, r || s in base64url, is 86 characters; more is never one.
SIGNATURE_CHARS = 200
#: How long a statement the server issued may be signed and sent back (seconds).
STATEMENT_TTL_S = 900
ACTIONS = ("approve", "sign")

RECORDING_INDEX = web.AppKey("protocol_recording_index", RecordingIndex)

_HASH_RE = re.compile(r"[0-9a-f]{64}")
# A protocol page shows people's typed text: allow no scripts, frames or fetches.
_HTML_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


@dataclass(frozen=True, slots=True)
class PaperRoles:
    """Who does what with the protocols of one kind of day."""

    readers: frozenset[Role]  # list and read them
    approvers: frozenset[Role]  # approve a draft (those present among them)
    signer: frozenset[Role]  # sign it, last
    keys: frozenset[Role]  # register a signing key


DEFENSE_PAPERS = PaperRoles(readers=COMMISSION_ROLES, approvers=MEMBERS, signer=CHAIR,
                            keys=COMMISSION_ROLES)
#: At an appeal sitting the commission chair invited to it (8.4) reads the draft
#: (8.8: it goes to the members of the appeal commission and the commission chair).
APPEAL_PAPERS = PaperRoles(readers=APPEAL_ROLES | CHAIR,
                           approvers=frozenset({Role.APPEAL_MEMBER}), signer=APPEAL_CHAIR,
                           keys=APPEAL_ROLES)
PAPER_ROLES = {DayKind.DEFENSE: DEFENSE_PAPERS, DayKind.REPEAT: DEFENSE_PAPERS,
               DayKind.APPEAL: APPEAL_PAPERS}


def add_protocol_routes(app: web.Application) -> None:
    """Register the protocol routes and the recording index they share."""
    app[RECORDING_INDEX] = RecordingIndex()
    install(app)
    base = r"/api/days/{day_id:\d+}/protocols"
    app.router.add_get(base, list_protocols)
    app.router.add_get(base + "/{which}", get_protocol)
    app.router.add_get(base + "/{which}/statement", get_statement)
    app.router.add_post(base + "/{which}/approve", approve_protocol)
    app.router.add_post(base + "/{which}/sign", sign_protocol)
    app.router.add_post(r"/api/days/{day_id:\d+}/keys", register_key)
    app.router.add_get(r"/api/days/{day_id:\d+}/keys", list_keys)
    app.router.add_post(r"/api/days/{day_id:\d+}/keys/{key_id:\d+}/approve", approve_key)


async def register_key(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/keys: register the public key of your browser (V6).

    Body {"jwk": <the ECDSA P-256 public key exported as JWK>}; answers its key_id,
    which approvals and signatures name, its fingerprint, and whether it may sign
    yet (`approved`: false for a further key until the secretary approves it).
    """
    day_id = url_id(request, "day_id")
    invite = await _require_paper_role(request, day_id, lambda r: r.keys)
    body = await json_object(request)
    only(body, ("jwk",))
    public = load_jwk(mapping(body, "jwk"))
    key = await SigningKeyStore(request.app[DATABASE]).register(
        day_id, invite.person_id, public, time.time())
    return json_reply(_key_json(key))


async def list_keys(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/keys: the secretary sees every key of the day's people."""
    day_id = url_id(request, "day_id")
    await require_invite(request, day_id, SECRETARY)
    keys = await SigningKeyStore(request.app[DATABASE]).of_day(day_id)
    return json_reply({"keys": [_key_json(k) for k in keys]})


async def approve_key(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/keys/{key_id}/approve: the secretary lets a person's
    further key sign (journaled); 404 for a key of nobody of this day."""
    day_id, key_id = url_id(request, "day_id"), url_id(request, "key_id")
    invite = await require_invite(request, day_id, SECRETARY)
    only(await json_object(request), ())
    key = await SigningKeyStore(request.app[DATABASE]).approve(
        day_id, key_id, invite.person_id, time.time())
    return json_reply(_key_json(key))


def _key_json(key: SigningKey) -> dict[str, Any]:
    return {"key_id": key.key_id, "person_id": key.person_id,
            "fingerprint": key.public.fingerprint, "approved": key.approved,
            "registered_at": key.registered_at}


async def get_statement(request: web.Request) -> web.Response:
    """GET .../protocols/{which}/statement?action=approve|sign&hash=<hex>: the exact
    statement the caller's browser signs, naming them and the server's time now."""
    day_id, which = url_id(request, "day_id"), request.match_info["which"]
    require(await invite_of(request), day_id, EVERYONE)  # 401/403 before reading the query
    action = request.query.get("action", "")
    if action not in ACTIONS:
        raise json_error(web.HTTPBadRequest, "malformed",
                         f"action is approve or sign, not {action[:20]!r}")
    invite = await _require_paper_role(
        request, day_id, (lambda r: r.approvers) if action == "approve" else (lambda r: r.signer))
    digest = _hash_from_body({"hash": request.query.get("hash", "")})
    at = int(time.time())
    text_ = statement(action, day_id, which, digest, invite.person_id, at).decode()
    return json_reply({"statement": text_, "at": at, "person_id": invite.person_id})


async def list_protocols(request: web.Request) -> web.Response:
    """GET /api/days/{day_id}/protocols: every protocol of the day and its status.

    The day's protocol, then each student's: draft, approved (by every member present)
    or signed; its content hash; who approved it and whose approval is missing.
    """
    day_id = url_id(request, "day_id")
    await _require_paper_role(request, day_id, lambda r: r.readers)
    drafts = await _drafts(request, day_id)
    store = ProtocolStore(request.app[DATABASE])
    approvals, signed = await store.approvals(day_id), await store.signed(day_id)
    key = await server_key(request.app)
    return json_reply({"day_id": day_id, "server_key": key.fingerprint, "protocols": [
        _summary(drafts.draft(w), approvals.get(w, []), signed.get(w)) for w in drafts.names]})


async def get_protocol(request: web.Request) -> web.StreamResponse:
    """GET /api/days/{day_id}/protocols/{which}?format=json|html|pdf: one protocol.

    `which` is "day" or a student's person id. A signed protocol is served exactly
    as signed; a draft as the journal has it now, with its content hash.
    """
    day_id, which = url_id(request, "day_id"), request.match_info["which"]
    await _require_paper_role(request, day_id, lambda r: r.readers)
    fmt = request.query.get("format", "json")
    if fmt not in FORMATS:
        raise json_error(web.HTTPBadRequest, "bad_format",
                         f"Unknown format {fmt[:20]!r}: use one of {', '.join(FORMATS)}.")
    draft = (await _drafts(request, day_id)).draft(which)
    store = ProtocolStore(request.app[DATABASE])
    signed = (await store.signed(day_id, which)).get(which)
    approvals = (await store.approvals(day_id)).get(which, [])
    if fmt == "json":
        content = signed.content_json if signed is not None else draft.content_json
        return json_reply({**_summary(draft, approvals, signed), "content": json.loads(content)})
    endorsement = await _endorsement(request, draft, approvals, None)
    if fmt == "html":
        html = signed.html if signed is not None else _html(draft.protocol, endorsement)
        return web.Response(text=html, content_type="text/html", charset="utf-8",
                            headers=_HTML_HEADERS)
    pdf = signed.pdf if signed is not None else await asyncio.to_thread(
        _pdf, draft.protocol, endorsement)
    name = f"protocol-day{day_id}-{which}.pdf"
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Cache-Control": "no-store", "Content-Disposition": f'inline; filename="{name}"'})


async def approve_protocol(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/protocols/{which}/approve: a member approves the draft.

    Body {"hash": "<content hash>"}: the hash of the draft the member read. 409
    stale_hash if the draft has changed since; 403 for a member not present.
    """
    day_id, which = url_id(request, "day_id"), request.match_info["which"]
    invite = await _require_paper_role(request, day_id, lambda r: r.approvers)
    body = await json_object(request)
    only(body, ("hash", "key_id", "signature", "at"))
    seen = _hash_from_body(body)
    signature = _signature(body)
    now = time.time()
    at = _statement_time(body, now)
    draft = (await _drafts(request, day_id)).draft(which)
    store = ProtocolStore(request.app[DATABASE])
    approval = await store.approve(draft, invite.person_id, seen, signature, now, at)
    approvals = (await store.approvals(day_id)).get(which, [])
    return json_reply({"approved": {"person_id": approval.person_id, "hash": approval.content_hash,
                               "approved_at": approval.approved_at},
                  "protocol": _summary(draft, approvals, None)})


async def sign_protocol(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/protocols/{which}/sign: the chair signs, last.

    409 approvals_missing names the members who have not approved the current
    draft. A signed protocol is stored for good and its hash goes into the journal.
    """
    day_id, which = url_id(request, "day_id"), request.match_info["which"]
    invite = await _require_paper_role(request, day_id, lambda r: r.signer)
    body = await json_object(request)
    only(body, ("hash", "key_id", "signature", "at"))  # the hash signed is the current draft's
    signature = _signature(body)
    now = time.time()
    at = _statement_time(body, now)
    draft = (await _drafts(request, day_id)).draft(which)
    store = ProtocolStore(request.app[DATABASE])
    if (await store.signed(day_id, which)).get(which) is not None:
        raise AlreadySigned(f"protocol {which!r} of day {day_id} is already signed")
    if draft.not_final is not None:
        raise NotFinal(f"cannot sign protocol {which!r} yet: {draft.not_final}")
    approvals = (await store.approvals(day_id)).get(which, [])
    if missing := missing_approvals(draft, approvals):
        raise ApprovalsMissing(missing_message(draft, missing, approvals))
    endorsement = await _endorsement(request, draft, approvals, (invite.name, now),
                                     signature.key_id)
    html = _html(draft.protocol, endorsement)
    pdf = await asyncio.to_thread(_pdf, draft.protocol, endorsement)
    signed = await store.sign(draft, invite.person_id, html, pdf, signature, now, at)
    return json_reply(_summary(draft, approvals, signed))


# -- helpers -------------------------------------------------------------------------


async def _require_paper_role(request: web.Request, day_id: int,
                              pick: Callable[[PaperRoles], frozenset[Role]]) -> Invite:
    """The caller's invite, if it is for `day_id` and in the roles `pick` chooses for
    that kind of day (`PAPER_ROLES`): 401, or 403 for another day or role."""
    invite = require(await invite_of(request), day_id, EVERYONE)
    kind, _ = await AppealStore(request.app[DATABASE]).day_kind(day_id)
    return require(invite, day_id, pick(PAPER_ROLES[kind]))


async def _drafts(request: web.Request, day_id: int) -> DayDrafts | AppealDrafts:
    config = request.app[CONFIG]
    return await load_day_drafts(request.app[DATABASE], day_id, config.procedure_settings(),
                                 day_folder(config.recordings_dir, day_id),
                                 request.app[RECORDING_INDEX])


def _html(protocol: Protocol | AppealProtocol, endorsement: Endorsement) -> str:
    if isinstance(protocol, AppealProtocol):
        return render_appeal_html(protocol, endorsement)
    return render_html(protocol, endorsement)


def _pdf(protocol: Protocol | AppealProtocol, endorsement: Endorsement) -> bytes:
    if isinstance(protocol, AppealProtocol):
        return render_appeal_pdf(protocol, endorsement)
    return render_pdf(protocol, endorsement)


def _hash_from_body(body: dict[str, Any]) -> str:
    seen = text(body, "hash", max_chars=64)
    if not _HASH_RE.fullmatch(seen):
        raise json_error(web.HTTPBadRequest, "malformed",
                         f"'hash' must be the 64 lowercase hex digits shown with the draft you"
                         f" approve, not {seen!r}")
    return seen


def _signature(body: dict[str, Any]) -> SignatureIn:
    if body.get("key_id") is None or body.get("signature") is None:
        raise json_error(web.HTTPBadRequest, "unsigned",
                         "Approvals and signatures are signed (rule V6): send key_id (from"
                         " POST /api/days/{day}/keys) and signature (ECDSA P-256 over the"
                         " statement, r||s in base64url).")
    return SignatureIn(integer(body, "key_id", low=1, high=MAX_ID),
                       text(body, "signature", max_chars=SIGNATURE_CHARS))


def _statement_time(body: dict[str, Any], now: float) -> int:
    """The time in the statement signed (from `.../statement`); it must be recent.
    Required: a statement that names neither the signer nor the time (v1) is no
    longer taken (S14)."""
    if body.get("at") is None:
        raise json_error(web.HTTPBadRequest, "malformed",
                         "'at' is missing: sign the statement from .../statement?action=&hash=,"
                         " which names you and the time, and send its 'at' back")
    at = integer(body, "at", low=0, high=2**40)
    if not now - STATEMENT_TTL_S <= at <= now + 5:
        raise json_error(web.HTTPConflict, "stale_statement",
                         f"the statement signed is from {int(now - at)} s ago; fetch a new one"
                         f" (they are valid for {STATEMENT_TTL_S} s) and sign again")
    return at


async def _endorsement(request: web.Request, draft: AnyDraft, approvals: list[Approval],
                       signed: tuple[str, float] | None,
                       signer_key: int | None = None) -> Endorsement:
    names = draft.approvers
    done = [a for a in approvals if a.content_hash == draft.content_hash and a.person_id in names]
    keys = {k.key_id: k.public.fingerprint
            for k in await SigningKeyStore(request.app[DATABASE]).all_keys()}
    return Endorsement(
        content_hash=draft.content_hash,
        approvals=tuple((names[a.person_id], a.approved_at) for a in done),
        missing=tuple(missing_approvals(draft, approvals).values()),
        signed=signed,
        approval_keys=tuple(keys.get(a.key_id or 0, "—") for a in done),
        signed_key=keys.get(signer_key or 0) if signed is not None else None,
        server_key=(await server_key(request.app)).fingerprint,
    )


def _summary(draft: AnyDraft, approvals: list[Approval],
             signed: SignedProtocol | None) -> dict[str, Any]:
    """What the list shows of one protocol; for a signed one, what was signed."""
    protocol = draft.protocol
    names = {int(p.person_id): p.name for p in protocol.commission}
    entry: dict[str, Any] = {"which": draft.which}
    if isinstance(protocol, AppealProtocol):
        entry["kind"] = "appeal"
        entry["appeal_id"] = protocol.appeal.appeal_id
        entry["student"] = {"name": protocol.appeal.defense.student}
        entry["decision"] = None if protocol.decision is None else protocol.decision.value
    elif isinstance(protocol, DayProtocol):
        entry["kind"] = "day"
    else:
        entry["kind"] = "student"
        entry["student"] = {"person_id": int(protocol.student.person_id),
                            "name": protocol.student.name}
    if signed is not None:
        return {**entry, "status": "signed", "hash": signed.content_hash, "final": True,
                "approved_by": [_person(a.person_id, names, a.approved_at)
                                for a in signed.approvals],
                "missing_approvals": [],
                "signed": {**_person(signed.signed_by, names, signed.signed_at),
                           "journal_id": signed.journal_id}}
    missing = missing_approvals(draft, approvals)
    done = [a for a in approvals
            if a.content_hash == draft.content_hash and a.person_id in draft.approvers]
    final = draft.not_final is None
    return {**entry, "status": "approved" if final and not missing else "draft",
            "hash": draft.content_hash, "final": final, "not_final": draft.not_final,
            "approved_by": [_person(a.person_id, names, a.approved_at) for a in done],
            "missing_approvals": [{"person_id": pid, "name": name}
                                  for pid, name in missing.items()],
            "signed": None}


def _person(person_id: int, names: dict[int, str], at: float) -> dict[str, Any]:
    return {"person_id": person_id, "name": names.get(person_id, str(person_id)), "at": at}

