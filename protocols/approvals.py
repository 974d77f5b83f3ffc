"""Approvals and signed protocols (rules V5, V6; clauses 7.17, 7.18).

What is stored is what people did with a draft (`protocols.drafts`): an approval
binds one member to one content hash, and the chair's signature stores the protocol
as signed (canonical JSON, HTML, PDF) with its hash. Both tables refuse UPDATE and
DELETE (triggers of migration 0004), and every approval and signature is appended to
the hash-chained journal in the same transaction as the row it records.

Rule V6 orders it: every member present (`orchestrator.protocol.approvers`) approves
the current draft, then the chair signs. An approval of an older hash does not count,
because the draft has changed since. Nothing is approved before it is final: the
day's protocol once the sitting is closed, a student's once the results are out.
An appeal sitting's protocol goes the same way (clause 8.8): the members of the
appeal commission present approve it (`AppealDraft.approvers`), then the appeal chair
signs, once the sitting is closed; the web edge checks who is which.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from orchestrator.replay import STEP_KINDS
from storage.db import Database
from storage.journal import append_event, encode_detail

from .drafts import AnyDraft
from .errors import PaperworkError
from .keys import SignatureIn, check_signature
from .signing import statement

logger = logging.getLogger(__name__)

APPROVED_KIND = "protocol_approved"
SIGNED_KIND = "protocol_signed"


class ApprovalRefused(PaperworkError):
    """An approval or signature refused; `code` is the machine-readable reason."""

    code = "protocol"
    status_hint = 409


class NotFinal(ApprovalRefused):
    code = "not_final"


class NotAnApprover(ApprovalRefused):
    code = "not_an_approver"
    status_hint = 403


class StaleHash(ApprovalRefused):
    code = "stale_hash"


class AlreadySigned(ApprovalRefused):
    code = "already_signed"


class ApprovalsMissing(ApprovalRefused):
    code = "approvals_missing"


class DraftChanged(ApprovalRefused):
    """The journal moved on between building the draft and writing; read it again."""

    code = "draft_changed"


@dataclass(frozen=True, slots=True)
class Approval:
    person_id: int
    content_hash: str
    approved_at: float
    #: The approver's key and signature of `statement("approve", ...)` (rule V6).
    key_id: int | None = None
    signature: str | None = None
    #: The exact statement signed; None for approvals made before it named the person.
    statement: str | None = None


@dataclass(frozen=True, slots=True)
class SignedProtocol:
    """A protocol as the chair signed it; never changes."""

    day_id: int
    which: str
    content_hash: str
    content_json: str
    html: str
    pdf: bytes
    approvals: tuple[Approval, ...]
    signed_by: int
    signed_at: float
    journal_id: int
    key_id: int | None = None
    signature: str | None = None
    statement: str | None = None  # the chair's, as signed


def missing_approvals(draft: AnyDraft, approvals: list[Approval]) -> dict[int, str]:
    """Person id -> name of the approvers who have not approved `draft`'s hash."""
    done = {a.person_id for a in approvals if a.content_hash == draft.content_hash}
    return {pid: name for pid, name in draft.approvers.items() if pid not in done}


class ProtocolStore:
    """Approvals and signed protocols of defense days."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def approvals(self, day_id: int) -> dict[str, list[Approval]]:
        """Every approval of the day's protocols, by `which`, oldest first."""
        rows = await self._db.query(
            "SELECT protocol, person_id, content_hash, approved_at, key_id, signature, statement"
            " FROM protocol_approvals WHERE day_id = ? ORDER BY id", [day_id])
        found: dict[str, list[Approval]] = {}
        for row in rows:
            found.setdefault(row["protocol"], []).append(
                Approval(row["person_id"], row["content_hash"], row["approved_at"],
                         row["key_id"], row["signature"], row["statement"]))
        return found

    async def signed(self, day_id: int, which: str | None = None) -> dict[str, SignedProtocol]:
        """The signed protocols of a day (or just `which`), by `which`."""
        sql = "SELECT * FROM protocols WHERE day_id = ?"
        params: list[Any] = [day_id]
        if which is not None:
            sql += " AND protocol = ?"
            params.append(which)
        return {row["protocol"]: _signed(row) for row in await self._db.query(sql, params)}

    async def approve(self, draft: AnyDraft, person_id: int, seen_hash: str,
                      signature: SignatureIn, now: float, at: int | None = None) -> Approval:
        """Record that `person_id` approves the draft whose hash they saw, signed with
        their registered key (rule V6: signed, not only logged). `at` is the time in the
        statement they signed (`signing.statement`); None for the v1 statement.

        Approving the same hash twice returns the first approval.
        """

        def write(db: sqlite_utils.Database) -> Approval:
            _check_open(db, draft)
            if person_id not in draft.approvers:
                listed = ", ".join(draft.approvers.values()) or "nobody"
                raise NotAnApprover(
                    f"person {person_id} does not approve protocol {draft.which!r}: only "
                    f"the members present at the sitting do ({listed})")
            if seen_hash != draft.content_hash:
                raise StaleHash(
                    f"the draft of protocol {draft.which!r} has changed since you read it: "
                    f"you approved {seen_hash}, the current draft is {draft.content_hash}; "
                    "read it again and approve the current version")
            row = db.execute(
                "SELECT approved_at, key_id, signature, statement FROM protocol_approvals"
                " WHERE day_id = ? AND protocol = ? AND person_id = ? AND content_hash = ?",
                [draft.day_id, draft.which, person_id, seen_hash]).fetchone()
            if row is not None:
                return Approval(person_id, seen_hash, row[0], row[1], row[2], row[3])
            signed = statement("approve", draft.day_id, draft.which, seen_hash, person_id, at)
            key = check_signature(db, person_id, signature, signed)
            db.execute(
                "INSERT INTO protocol_approvals (day_id, protocol, person_id, content_hash,"
                " approved_at, key_id, signature, statement) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [draft.day_id, draft.which, person_id, seen_hash, now, key.key_id,
                 signature.value, signed.decode()])
            append_event(db, at=now, day_id=draft.day_id, person_id=person_id,
                         kind=APPROVED_KIND,
                         detail_json=encode_detail({
                             "protocol": draft.which, "hash": seen_hash,
                             "key": key.public.fingerprint, "signature": signature.value,
                             "statement": signed.decode()}))
            return Approval(person_id, seen_hash, now, key.key_id, signature.value,
                            signed.decode())

        approval = await self._db.execute_write(write)
        logger.info("protocol %s of day %s approved by person %s (hash %s)",
                    draft.which, draft.day_id, person_id, seen_hash)
        return approval

    async def sign(self, draft: AnyDraft, chair_id: int, html: str, pdf: bytes,
                   signature: SignatureIn, now: float, at: int | None = None) -> SignedProtocol:
        """Sign `draft` as rendered (`html`, `pdf`) with the chair's key: stored for
        good, hash and signature journaled."""

        def write(db: sqlite_utils.Database) -> SignedProtocol:
            _check_open(db, draft)
            approvals = [
                Approval(*r) for r in db.execute(
                    "SELECT person_id, content_hash, approved_at, key_id, signature, statement"
                    " FROM protocol_approvals WHERE day_id = ? AND protocol = ? ORDER BY id",
                    [draft.day_id, draft.which]).fetchall()]
            missing = missing_approvals(draft, approvals)
            if missing:
                raise ApprovalsMissing(missing_message(draft, missing, approvals))
            mine = tuple(a for a in approvals if a.content_hash == draft.content_hash
                         and a.person_id in draft.approvers)
            signed = statement("sign", draft.day_id, draft.which, draft.content_hash,
                               chair_id, at)
            key = check_signature(db, chair_id, signature, signed)
            event = append_event(
                db, at=now, day_id=draft.day_id, person_id=chair_id, kind=SIGNED_KIND,
                detail_json=encode_detail({
                    "protocol": draft.which, "hash": draft.content_hash,
                    "approved_by": [a.person_id for a in mine],
                    "key": key.public.fingerprint, "signature": signature.value,
                    "statement": signed.decode()}))
            db.execute(
                "INSERT INTO protocols (day_id, protocol, content_hash, content_json, html, pdf,"
                " approvals, signed_by, signed_at, journal_id, key_id, signature, statement)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [draft.day_id, draft.which, draft.content_hash, draft.content_json, html, pdf,
                 json.dumps([[a.person_id, a.content_hash, a.approved_at, a.key_id,
                              a.signature, a.statement] for a in mine]),
                 chair_id, now, event.id, key.key_id, signature.value, signed.decode()])
            return SignedProtocol(draft.day_id, draft.which, draft.content_hash,
                                  draft.content_json, html, pdf, mine, chair_id, now, event.id,
                                  key.key_id, signature.value, signed.decode())

        signed = await self._db.execute_write(write)
        logger.info("protocol %s of day %s signed by person %s (hash %s, journal %s)",
                    draft.which, draft.day_id, chair_id, draft.content_hash, signed.journal_id)
        return signed


def _check_open(db: sqlite_utils.Database, draft: AnyDraft) -> None:
    """Refuse a signed, unfinished or outdated draft; inside the writer's transaction."""
    if db.execute("SELECT 1 FROM protocols WHERE day_id = ? AND protocol = ?",
                  [draft.day_id, draft.which]).fetchone():
        raise AlreadySigned(f"protocol {draft.which!r} of day {draft.day_id} is already "
                            "signed and can no longer change")
    if draft.not_final is not None:
        raise NotFinal(f"protocol {draft.which!r} of day {draft.day_id} is still a draft "
                       f"that may change: {draft.not_final}")
    row = db.execute(
        "SELECT MAX(id) FROM journal WHERE day_id = ? AND kind IN (?, ?)",
        [draft.day_id, *STEP_KINDS]).fetchone()
    if (row[0] or 0) != draft.source_id:
        raise DraftChanged(f"the journal of day {draft.day_id} changed while protocol "
                           f"{draft.which!r} was being read; read it again")


def missing_message(draft: AnyDraft, missing: dict[int, str],
                    approvals: list[Approval]) -> str:
    """Why the chair cannot sign yet: who has not approved, and whose approval is stale."""
    older = {a.person_id for a in approvals if a.content_hash != draft.content_hash}
    stale = [name for pid, name in missing.items() if pid in older]
    text = (f"cannot sign protocol {draft.which!r}: not approved by "
            f"{', '.join(missing.values())}")
    if stale:
        text += (f"; {', '.join(stale)} approved an earlier version of the draft, which has "
                 f"changed since, and must approve the current one ({draft.content_hash})")
    return text + (f"; every member present approves before the chair signs "
                   f"(clause {draft.clause})")


def _signed(row: dict[str, Any]) -> SignedProtocol:
    return SignedProtocol(
        day_id=row["day_id"], which=row["protocol"], content_hash=row["content_hash"],
        content_json=row["content_json"], html=row["html"], pdf=bytes(row["pdf"]),
        approvals=tuple(Approval(*entry) for entry in json.loads(row["approvals"])),
        signed_by=row["signed_by"], signed_at=row["signed_at"], journal_id=row["journal_id"],
        key_id=row["key_id"], signature=row["signature"], statement=row.get("statement"))
