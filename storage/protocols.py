"""Protocol drafts, approvals and signatures (rules V5, V6; clauses 7.17, 7.18).

Drafts are never stored. `load_drafts` rebuilds them from the day's journal and its
finished recording files whenever asked, so a draft always says what the evidence
says. What is stored is what people did with a draft: an approval binds one member
to one content hash, and the chair's signature stores the protocol as signed
(canonical JSON, HTML, PDF) with its hash. Both tables refuse UPDATE and DELETE
(triggers of migration 0004), and every approval and signature is appended to the
hash-chained journal in the same transaction as the row it records.

Rule V6 orders it: every member present (`orchestrator.protocol.approvers`) approves
the current draft, then the chair signs. An approval of an older hash does not count,
because the draft has changed since. Nothing is approved before it is final: the
day's protocol once the sitting is closed, a student's once the results are out.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from defense_room.dayload import load_day
from defense_room.procedure import DEADLINE_KIND, EVENT_KIND
from defense_room.signing import statement
from orchestrator.codec import EventCodecError, event_from_json
from orchestrator.model import Settings
from orchestrator.protocol import (
    DayProtocol, Protocol, RecordingFile, SittingInfo, Step, StudentInfo, Tick, approvers,
    build_protocol, canonical_json,
)

from .db import Database
from .errors import NotFoundError, StorageError
from .journal import JournalEvent, Journal, append_event, encode_detail
from .signing_keys import SignatureIn, check_signature

logger = logging.getLogger(__name__)

DAY = "day"
"""The `which` of the day's protocol; a student's protocol is their person id."""

APPROVED_KIND = "protocol_approved"
SIGNED_KIND = "protocol_signed"
FINISHED_SUFFIXES = frozenset({".webm", ".mkv", ".mka"})


class ProtocolError(StorageError):
    """An approval or signature refused; `code` is the machine-readable reason."""

    code = "protocol"


class NotFinal(ProtocolError):
    code = "not_final"


class NotAnApprover(ProtocolError):
    code = "not_an_approver"


class StaleHash(ProtocolError):
    code = "stale_hash"


class AlreadySigned(ProtocolError):
    code = "already_signed"


class ApprovalsMissing(ProtocolError):
    code = "approvals_missing"


class DraftChanged(ProtocolError):
    """The journal moved on between building the draft and writing; read it again."""

    code = "draft_changed"


@dataclass(frozen=True, slots=True)
class Draft:
    """One protocol as the journal has it now."""

    day_id: int
    which: str
    protocol: Protocol
    content_json: str
    content_hash: str
    #: The last procedure journal entry it was built from (0: none), to detect a
    #: journal that moved on before an approval or signature is written.
    source_id: int

    @property
    def approvers(self) -> dict[int, str]:
        """Person id -> name of the members who must approve it."""
        return {int(p.person_id): p.name for p in approvers(self.protocol)}

    @property
    def not_final(self) -> str | None:
        """Why it cannot be approved or signed yet, or None."""
        if self.protocol.ready:
            return None
        if isinstance(self.protocol, DayProtocol):
            return "the sitting is not closed yet"
        return "the results are not announced yet"


@dataclass(frozen=True, slots=True)
class DayDrafts:
    """The drafts of all protocols of one day."""

    day_id: int
    protocol: DayProtocol
    source_id: int

    @property
    def names(self) -> tuple[str, ...]:
        """Every `which` of the day: "day", then the students in queue order."""
        return (DAY, *(s.student.person_id for s in self.protocol.students))

    def draft(self, which: str) -> Draft:
        """The draft `which`; `NotFoundError` if the day has no such protocol."""
        protocol: Protocol | None = self.protocol if which == DAY else next(
            (s for s in self.protocol.students if s.student.person_id == which), None)
        if protocol is None:
            raise NotFoundError(
                f"defense day {self.day_id} has no protocol {which!r}: use 'day' or the "
                "person id of one of its students")
        text = canonical_json(protocol)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return Draft(self.day_id, which, protocol, text, digest, self.source_id)


class RecordingIndex:
    """A day's finished recording files with size and SHA-256, each hashed once.

    Hashes are kept by (path, size, mtime), so listing the files again for every
    draft costs a directory walk, not a re-read of hours of video.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    async def files(self, folder: Path) -> tuple[RecordingFile, ...]:
        """The finished raw recordings of a day: the files of its takes
        (``take-*/``; `.part` files are being written). What the archive builds from
        them afterwards (``archive/``) has its own manifest and never changes a
        protocol that members are approving."""
        return await asyncio.to_thread(self._scan, folder)

    def _scan(self, folder: Path) -> tuple[RecordingFile, ...]:
        if not folder.is_dir():
            return ()
        found = []
        for path in folder.glob("take-*/**/*"):
            if path.suffix not in FINISHED_SUFFIXES or path.is_symlink() or not path.is_file():
                continue
            try:
                stat = path.stat()
                key = (str(path), stat.st_size, stat.st_mtime_ns)
                with self._lock:
                    digest = self._known.get(key)
                if digest is None:
                    with path.open("rb") as f:
                        digest = hashlib.file_digest(f, "sha256").hexdigest()
                    with self._lock:
                        self._known[key] = digest
            except FileNotFoundError:
                continue  # replaced while listed (e.g. finalized); the next listing has it
            found.append(RecordingFile(path.relative_to(folder).as_posix(), stat.st_size, digest))
        return tuple(sorted(found, key=lambda f: f.path))


def journal_steps(entries: list[JournalEvent]) -> tuple[list[Step], int]:
    """The procedure's steps in a day's journal, and the id of the last one (0: none)."""
    steps: list[Step] = []
    last = 0
    for entry in entries:
        try:
            if entry.kind == EVENT_KIND:
                steps.append(event_from_json(entry.detail))
            elif entry.kind == DEADLINE_KIND:
                steps.append(Tick(float(entry.detail["now"])))
            else:
                continue
        except (EventCodecError, KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"journal entry {entry.id} ({entry.kind}) is unreadable: {exc}"
                               ) from exc
        last = entry.id
    return steps, last


async def load_drafts(db: Database, day_id: int, settings: Settings, recordings: Path,
                      index: RecordingIndex) -> DayDrafts:
    """Build the drafts of day `day_id` from its journal and the files under `recordings`.

    `orchestrator.protocol.ProtocolReplayError` if the journal does not replay.
    """
    loaded = await load_day(db, day_id)
    steps, source_id = journal_steps(await Journal(db).entries(day_id))
    files = await index.files(recordings)
    stored = loaded.stored
    sitting = SittingInfo(stored.title, stored.date.isoformat(), stored.timezone,
                          stored.starts_at)
    info = {pid: StudentInfo(s.thesis_title, s.supervisor, s.reviewer)
            for pid, s in loaded.students.items()}
    # Replaying a long day is CPU work: keep it off the event loop.
    protocol = await asyncio.to_thread(
        build_protocol, loaded.day, settings, steps, sitting, info, files)
    return DayDrafts(day_id, protocol, source_id)


@dataclass(frozen=True, slots=True)
class Approval:
    person_id: int
    content_hash: str
    approved_at: float
    #: The approver's key and signature of `statement("approve", ...)` (rule V6).
    key_id: int | None = None
    signature: str | None = None


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


def missing_approvals(draft: Draft, approvals: list[Approval]) -> dict[int, str]:
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
            "SELECT protocol, person_id, content_hash, approved_at, key_id, signature"
            " FROM protocol_approvals WHERE day_id = ? ORDER BY id", [day_id])
        found: dict[str, list[Approval]] = {}
        for row in rows:
            found.setdefault(row["protocol"], []).append(
                Approval(row["person_id"], row["content_hash"], row["approved_at"],
                         row["key_id"], row["signature"]))
        return found

    async def signed(self, day_id: int, which: str | None = None) -> dict[str, SignedProtocol]:
        """The signed protocols of a day (or just `which`), by `which`."""
        sql = "SELECT * FROM protocols WHERE day_id = ?"
        params: list[Any] = [day_id]
        if which is not None:
            sql += " AND protocol = ?"
            params.append(which)
        return {row["protocol"]: _signed(row) for row in await self._db.query(sql, params)}

    async def approve(self, draft: Draft, person_id: int, seen_hash: str,
                      signature: SignatureIn, now: float) -> Approval:
        """Record that `person_id` approves the draft whose hash they saw, signed with
        their registered key (rule V6: signed, not only logged).

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
                "SELECT approved_at, key_id, signature FROM protocol_approvals WHERE day_id = ?"
                " AND protocol = ? AND person_id = ? AND content_hash = ?",
                [draft.day_id, draft.which, person_id, seen_hash]).fetchone()
            if row is not None:
                return Approval(person_id, seen_hash, row[0], row[1], row[2])
            key = check_signature(db, person_id, signature, statement(
                "approve", draft.day_id, draft.which, seen_hash))
            db.execute(
                "INSERT INTO protocol_approvals (day_id, protocol, person_id, content_hash,"
                " approved_at, key_id, signature) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [draft.day_id, draft.which, person_id, seen_hash, now, key.key_id,
                 signature.value])
            append_event(db, at=now, day_id=draft.day_id, person_id=person_id,
                         kind=APPROVED_KIND,
                         detail_json=encode_detail({
                             "protocol": draft.which, "hash": seen_hash,
                             "key": key.public.fingerprint, "signature": signature.value}))
            return Approval(person_id, seen_hash, now, key.key_id, signature.value)

        approval = await self._db.execute_write(write)
        logger.info("protocol %s of day %s approved by person %s (hash %s)",
                    draft.which, draft.day_id, person_id, seen_hash)
        return approval

    async def sign(self, draft: Draft, chair_id: int, html: str, pdf: bytes,
                   signature: SignatureIn, now: float) -> SignedProtocol:
        """Sign `draft` as rendered (`html`, `pdf`) with the chair's key: stored for
        good, hash and signature journaled."""

        def write(db: sqlite_utils.Database) -> SignedProtocol:
            _check_open(db, draft)
            approvals = [
                Approval(*r) for r in db.execute(
                    "SELECT person_id, content_hash, approved_at, key_id, signature"
                    " FROM protocol_approvals WHERE day_id = ? AND protocol = ? ORDER BY id",
                    [draft.day_id, draft.which]).fetchall()]
            missing = missing_approvals(draft, approvals)
            if missing:
                raise ApprovalsMissing(missing_message(draft, missing, approvals))
            mine = tuple(a for a in approvals if a.content_hash == draft.content_hash
                         and a.person_id in draft.approvers)
            key = check_signature(db, chair_id, signature, statement(
                "sign", draft.day_id, draft.which, draft.content_hash))
            event = append_event(
                db, at=now, day_id=draft.day_id, person_id=chair_id, kind=SIGNED_KIND,
                detail_json=encode_detail({
                    "protocol": draft.which, "hash": draft.content_hash,
                    "approved_by": [a.person_id for a in mine],
                    "key": key.public.fingerprint, "signature": signature.value}))
            db.execute(
                "INSERT INTO protocols (day_id, protocol, content_hash, content_json, html, pdf,"
                " approvals, signed_by, signed_at, journal_id, key_id, signature)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [draft.day_id, draft.which, draft.content_hash, draft.content_json, html, pdf,
                 json.dumps([[a.person_id, a.content_hash, a.approved_at, a.key_id,
                              a.signature] for a in mine]),
                 chair_id, now, event.id, key.key_id, signature.value])
            return SignedProtocol(draft.day_id, draft.which, draft.content_hash,
                                  draft.content_json, html, pdf, mine, chair_id, now, event.id,
                                  key.key_id, signature.value)

        signed = await self._db.execute_write(write)
        logger.info("protocol %s of day %s signed by person %s (hash %s, journal %s)",
                    draft.which, draft.day_id, chair_id, draft.content_hash, signed.journal_id)
        return signed


def _check_open(db: sqlite_utils.Database, draft: Draft) -> None:
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
        [draft.day_id, EVENT_KIND, DEADLINE_KIND]).fetchone()
    if (row[0] or 0) != draft.source_id:
        raise DraftChanged(f"the journal of day {draft.day_id} changed while protocol "
                           f"{draft.which!r} was being read; read it again")


def missing_message(draft: Draft, missing: dict[int, str], approvals: list[Approval]) -> str:
    """Why the chair cannot sign yet: who has not approved, and whose approval is stale."""
    older = {a.person_id for a in approvals if a.content_hash != draft.content_hash}
    stale = [name for pid, name in missing.items() if pid in older]
    text = (f"cannot sign protocol {draft.which!r}: not approved by "
            f"{', '.join(missing.values())}")
    if stale:
        text += (f"; {', '.join(stale)} approved an earlier version of the draft, which has "
                 f"changed since, and must approve the current one ({draft.content_hash})")
    return text + "; every member present approves before the chair signs (clause 7.17)"


def _signed(row: dict[str, Any]) -> SignedProtocol:
    return SignedProtocol(
        day_id=row["day_id"], which=row["protocol"], content_hash=row["content_hash"],
        content_json=row["content_json"], html=row["html"], pdf=bytes(row["pdf"]),
        approvals=tuple(Approval(*entry) for entry in json.loads(row["approvals"])),
        signed_by=row["signed_by"], signed_at=row["signed_at"], journal_id=row["journal_id"],
        key_id=row["key_id"], signature=row["signature"])
