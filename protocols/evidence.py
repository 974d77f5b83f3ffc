"""The evidence pack of an appeal (rules A2, R2; clauses 8.3, 7.18).

For the appeal commission: the protocol (as signed, or the current draft), the
commission chair's conclusion on the procedure, the thesis and the reviews on
file, the recordings of the day with their phase chapters, and the day's journal
with the result of verifying its hash chain. Every file is listed in
`manifest.json` with its size and SHA-256; `defense-room verify` checks a
downloaded pack against it.

Building reads files and replays the journal: it runs in a worker thread where it
blocks (hashing, zipping), never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.documents import DocumentKind
from orchestrator.model import Settings
from recordings.plan import day_folder
from storage.appeals import Appeal
from storage.db import Database
from storage.document_files import DocumentFiles
from storage.errors import JournalTampered
from storage.journal import Journal

from .approvals import ProtocolStore, SignedProtocol
from .drafts import RecordingIndex, load_drafts
from .keys import SigningKeyStore
from .render import Endorsement, render_pdf
from .signing import statement

FORMAT = "defense-room-evidence/1"
EVIDENCE_DOCUMENTS = (DocumentKind.THESIS, DocumentKind.SUPERVISOR_REVIEW,
                      DocumentKind.REVIEWER_REVIEW, DocumentKind.PLAGIARISM_REPORT)
RECORDING_SUFFIXES = frozenset({".webm", ".mkv", ".mka", ".mp4", ".vtt", ".json"})


@dataclass(frozen=True, slots=True)
class PackFile:
    name: str  # the path inside the pack
    data: bytes | None  # None: copied from `source`
    source: Path | None = None


@dataclass(frozen=True, slots=True)
class EvidencePack:
    files: tuple[PackFile, ...]
    summary: dict[str, Any]


async def build_pack(db: Database, appeal: Appeal, *, recordings_dir: Path,
                     documents: DocumentFiles, settings: Settings,
                     index: RecordingIndex) -> EvidencePack:
    """What the appeal commission reviews of one student's defense (clause 8.6);
    `settings` only for a day whose journal does not hold its own."""
    day_id, which = appeal.day_id, str(appeal.student_id)
    folder = day_folder(recordings_dir, day_id)
    drafts = await load_drafts(db, day_id, settings, folder, index)
    signed = (await ProtocolStore(db).signed(day_id, which)).get(which)
    files: list[PackFile] = []
    if signed is not None:
        files += [PackFile("protocol/protocol.json", signed.content_json.encode()),
                  PackFile("protocol/protocol.pdf", signed.pdf),
                  PackFile("protocol/signatures.json", json.dumps(
                      await signatures(db, day_id, which, signed), indent=1).encode())]
        protocol_state = {"status": "signed", "hash": signed.content_hash}
    else:
        draft = drafts.draft(which)
        pdf = await asyncio.to_thread(render_pdf, draft.protocol, Endorsement(
            draft.content_hash, (), (), None))
        files += [PackFile("protocol/protocol.json", draft.content_json.encode()),
                  PackFile("protocol/protocol.pdf", pdf)]
        protocol_state = {"status": "draft", "hash": draft.content_hash}
    conclusion = appeal.conclusion or ""
    files.append(PackFile("conclusion.txt", conclusion.encode()))
    files.append(PackFile("appeal.json", json.dumps(appeal.to_json(), ensure_ascii=False,
                                                    indent=1).encode()))
    for kind in EVIDENCE_DOCUMENTS:
        path = documents.existing(day_id, appeal.student_id, kind)
        if path is not None:
            files.append(PackFile(f"documents/{kind.value}.pdf", None, path))
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file() and path.suffix in RECORDING_SUFFIXES:
            files.append(PackFile(f"recordings/{path.relative_to(folder).as_posix()}", None, path))
    journal = Journal(db)
    entries = await journal.entries(day_id)
    try:
        await journal.verify()
        chain = {"verified": True, "message": "the hash chain of the journal is intact"}
    except JournalTampered as exc:
        chain = {"verified": False, "message": str(exc)}
    files.append(PackFile("journal.json", json.dumps(
        {"chain": chain, "entries": [
            {"id": e.id, "at": e.at, "person_id": e.person_id, "kind": e.kind,
             "detail": e.detail, "prev_hash": e.prev_hash, "hash": e.hash} for e in entries]},
        ensure_ascii=False, indent=1).encode()))
    summary = {"format": FORMAT, "appeal": appeal.appeal_id, "day_id": day_id,
               "student": appeal.student_id, "protocol": protocol_state, "journal": chain}
    return EvidencePack(tuple(files), summary)


async def signatures(db: Database, day_id: int, which: str,
                     signed: SignedProtocol) -> list[dict[str, Any]]:
    """Each approval and the chair's signature with the key and the exact statement
    signed, so the pack verifies offline (`defense-room verify`)."""
    keys = {k.key_id: k for k in await SigningKeyStore(db).all_keys()}
    out = []
    for action, person, key_id, value in (
            *(("approve", a.person_id, a.key_id, a.signature) for a in signed.approvals),
            ("sign", signed.signed_by, signed.key_id, signed.signature)):
        key = keys.get(key_id) if key_id is not None else None
        out.append({
            "action": action, "person_id": person, "signature": value,
            "jwk": key.public.jwk if key is not None else None,
            "statement": statement(action, day_id, which, signed.content_hash).decode(),
        })
    return out


def _digest(file: PackFile) -> tuple[int, str]:
    if file.data is not None:
        return len(file.data), hashlib.sha256(file.data).hexdigest()
    assert file.source is not None
    digest, size = hashlib.sha256(), 0
    with file.source.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def manifest(pack: EvidencePack) -> dict[str, Any]:
    """Every file with its size and SHA-256 (blocking: call in a thread)."""
    entries = []
    for file in pack.files:
        size, sha = _digest(file)
        entries.append({"path": file.name, "size": size, "sha256": sha})
    return {**pack.summary, "files": entries}


def write_zip(pack: EvidencePack, target: io.BufferedIOBase | io.BytesIO) -> dict[str, Any]:
    """The pack as one ZIP with `manifest.json` (blocking: call in a thread)."""
    listed = manifest(pack)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for file in pack.files:
            if file.data is not None:
                zf.writestr(file.name, file.data)
            else:
                assert file.source is not None
                zf.write(file.source, file.name)
        zf.writestr("manifest.json", json.dumps(listed, ensure_ascii=False, indent=1))
    return listed
