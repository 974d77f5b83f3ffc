"""The evidence pack of an appeal (rules A2, R2; clauses 8.3, 7.18).

For the appeal commission: the protocol (as signed, or the current draft), the
commission chair's conclusion on the procedure, the thesis and the reviews on
file, the appealing student's recordings (their archive folder, the raw segments
that overlap their defense, their identity checks; nobody else's), and the day's
journal with the result of verifying its hash chain. Every file is listed in
`manifest.json` with its size and SHA-256, together with each signed protocol's
approvers and chair and the keys registered to them; `manifest.sig` is the server
key's signature of it (`protocols.server_key`), which `defense-room verify --key`
checks.

Building reads files and replays the journal; hashing and zipping block and run in
a worker thread, never on the event loop. Hashes are cached by file identity
(`DigestCache`), so a second request does not read the recordings again.

The recordings come from the recordings store (`recordings.blobstore`); which raw
segments overlap the defense is read from the take sidecars on the local spool.
A store whose blobs are local files hands them over as paths; any other is read
through `BlobStore.open` (and hashed again on each request).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from orchestrator.documents import DocumentKind
from orchestrator.model import Settings
from orchestrator.replay import day_settings
from recordings.blobstore import BlobNotFound, BlobStore, read_bytes
from recordings.plan import ARCHIVE, day_folder, day_prefix, student_folder_name
from recordings.sources import scan_day
from recordings.timeline import replay
from storage.appeals import Appeal
from storage.days import load_day
from storage.db import Database
from storage.document_files import DocumentFiles
from storage.document_versions import defended_version
from storage.errors import JournalTampered
from storage.journal import Journal

from .approvals import ProtocolStore, SignedProtocol
from .drafts import RecordingIndex, load_drafts
from .keys import SigningKeyStore
from .render import Endorsement, render_pdf
from .server_key import ServerKey
from .signing import statement

FORMAT = "defense-room-evidence/1"
EVIDENCE_DOCUMENTS = (DocumentKind.THESIS, DocumentKind.SUPERVISOR_REVIEW,
                      DocumentKind.REVIEWER_REVIEW, DocumentKind.PLAGIARISM_REPORT)
RECORDING_SUFFIXES = frozenset({".webm", ".mkv", ".mka", ".mp4", ".vtt", ".json"})
IDENTITY = "identity"
MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"
#: Characters that make a spreadsheet read a cell as a formula (CWE-1236).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """A file of the recordings store that is not a local file."""

    store: BlobStore
    key: str
    size: int


@dataclass(frozen=True, slots=True)
class PackFile:
    name: str  # the path inside the pack
    data: bytes | None  # None: copied from `source` or `blob`
    source: Path | None = None
    blob: StoredBlob | None = None


@dataclass(frozen=True, slots=True)
class EvidencePack:
    files: tuple[PackFile, ...]
    summary: dict[str, Any]


def csv_cell(value: object) -> str:
    """`value` as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    cell = "" if value is None else str(value)
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def csv_bytes(rows: list[list[object]]) -> bytes:
    """A CSV file (UTF-8 with BOM, for spreadsheets) with every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return buffer.getvalue().encode("utf-8-sig")


async def build_pack(db: Database, appeal: Appeal, *, recordings_dir: Path,
                     blobs: BlobStore, documents: DocumentFiles, settings: Settings,
                     index: RecordingIndex, with_recordings: bool = True) -> EvidencePack:
    """What the appeal commission reviews of one student's defense (clause 8.6);
    `settings` only for a day whose journal does not hold its own. `recordings_dir`
    is the local spool (the take sidecars), `blobs` the store the files come from.
    Without `with_recordings` (the hold is over) the recordings are left out."""
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
        # The version on file when the defense started (S4), not a later replacement;
        # the current one only for a defense that never started.
        defended = await defended_version(db, appeal.student_id, kind)
        path = (defended.path(documents) if defended is not None
                else documents.existing(day_id, appeal.student_id, kind))
        if path is not None:
            files.append(PackFile(f"documents/{kind.value}.pdf", None, path))
    journal = Journal(db)
    entries = await journal.entries(day_id)
    if with_recordings:
        interval = await _defense_interval(db, day_id, which, settings, entries)
        files += await asyncio.to_thread(_student_recordings, blobs, folder, day_id, which,
                                         interval)
    try:
        await journal.verify(day_id)
        chain = {"verified": True, "message": "the hash chain of the day's journal is intact"}
    except JournalTampered as exc:
        chain = {"verified": False, "message": str(exc)}
    files.append(PackFile("journal.json", json.dumps(
        {"chain": chain, "entries": [
            {"id": e.id, "at": e.at, "person_id": e.person_id, "kind": e.kind,
             "detail": e.detail, "prev_hash": e.prev_hash, "hash": e.hash} for e in entries]},
        ensure_ascii=False, indent=1).encode()))
    summary = {"format": FORMAT, "appeal": appeal.appeal_id, "day_id": day_id,
               "student": appeal.student_id, "protocol": protocol_state, "journal": chain,
               **await signed_summary(db, {"protocol": signed})}
    return EvidencePack(tuple(files), summary)


async def _defense_interval(db: Database, day_id: int, student: str, settings: Settings,
                            entries: Any) -> tuple[float, float] | None:
    """When `student` defended (start, end; end open while it runs), or None."""
    loaded = await load_day(db, day_id)
    timeline = await asyncio.to_thread(replay, loaded.day, day_settings(entries, settings),
                                       entries)
    spans = [(d.start, d.end if d.end is not None else float("inf"))
             for d in timeline.defenses if d.student == student]
    if not spans:
        return None
    return min(a for a, _ in spans), max(b for _, b in spans)


def _student_recordings(blobs: BlobStore, folder: Path, day_id: int, student: str,
                        interval: tuple[float, float] | None) -> list[PackFile]:
    """The student's files of a day's recordings (blocking): their archive folder,
    their identity checks, and the raw segments (with sidecars and archived copies)
    that overlap their defense."""
    prefix = day_prefix(day_id) + "/"
    stored = {b.key: b.size for b in blobs.list(prefix)}
    found: set[str] = set()
    archive = f"{prefix}{ARCHIVE}/{student_folder_name(student)}/"
    found.update(k for k in stored if k.startswith(archive))
    checks = [k for k in stored if k.startswith(f"{prefix}{IDENTITY}/")
              and k.count("/") == 3 and k.endswith("/check.json")]
    for check in sorted(checks):
        try:
            record = json.loads(read_bytes(blobs, check))
        except (BlobNotFound, ValueError):
            continue
        if isinstance(record, dict) and str(record.get("student")) == student:
            found.add(check)
    if interval is not None:
        start, end = interval
        for segment in scan_day(folder):  # the sidecars say when each segment ran
            seg_end = segment.wall_end if segment.wall_end is not None else float("inf")
            if segment.wall_start < end and seg_end > start:
                take = f"{prefix}{segment.take}/"
                found.add(take + segment.path.name)
                found.update(k for k in stored if k.startswith(take) and k.endswith(".json")
                             and "/" not in k[len(take):]
                             and _sidecar_names(blobs, k, segment.name))
                found.add(f"{prefix}{ARCHIVE}/raw/{segment.take}/{segment.name}")
    keys = sorted((k for k in found if k in stored
                   and PurePosixPath(k).suffix in RECORDING_SUFFIXES), key=lambda k: k.split("/"))
    return [_pack_file(f"recordings/{k[len(prefix):]}", blobs, k, stored[k]) for k in keys]


def _pack_file(name: str, blobs: BlobStore, key: str, size: int) -> PackFile:
    local = blobs.local_path(key)
    if local is not None:
        return PackFile(name, None, local)
    return PackFile(name, None, None, StoredBlob(blobs, key, size))


def _sidecar_names(blobs: BlobStore, key: str, media_name: str) -> bool:
    try:
        info = json.loads(read_bytes(blobs, key))
    except (BlobNotFound, ValueError):
        return False
    return isinstance(info, dict) and str(info.get("file", "")) == media_name


async def signed_summary(db: Database,
                         protocols: dict[str, SignedProtocol | None]) -> dict[str, Any]:
    """For the manifest: each signed protocol (by its folder in the package) with its
    hash, approvers and chair, and the keys registered to each of them, so that
    `verify` can tell whose signature each one is (the server key signs it)."""
    keys = await SigningKeyStore(db).all_keys()
    listed: dict[str, Any] = {}
    people: set[int] = set()
    for folder, signed in protocols.items():
        if signed is None:
            continue
        approvers = sorted(a.person_id for a in signed.approvals)
        listed[folder] = {"which": signed.which, "hash": signed.content_hash,
                          "approvers": approvers, "chair": signed.signed_by}
        people.update(approvers, {signed.signed_by})
    signers = {str(pid): sorted(k.public.fingerprint for k in keys
                                if k.person_id == pid and k.approved)
               for pid in sorted(people)}
    return {"signed_protocols": listed, "signer_keys": signers}


async def signatures(db: Database, day_id: int, which: str,
                     signed: SignedProtocol) -> list[dict[str, Any]]:
    """Each approval and the chair's signature with the key and the exact statement
    signed, so the pack verifies offline (`defense-room verify`)."""
    keys = {k.key_id: k for k in await SigningKeyStore(db).all_keys()}
    out = []
    for action, person, key_id, value, text in (
            *(("approve", a.person_id, a.key_id, a.signature, a.statement)
              for a in signed.approvals),
            ("sign", signed.signed_by, signed.key_id, signed.signature, signed.statement)):
        key = keys.get(key_id) if key_id is not None else None
        out.append({
            "action": action, "person_id": person, "signature": value,
            "jwk": key.public.jwk if key is not None else None,
            "fingerprint": key.public.fingerprint if key is not None else None,
            "statement": text or statement(action, day_id, which, signed.content_hash).decode(),
        })
    return out


class DigestCache:
    """SHA-256 of files by identity (path, size, mtime): a file that has not changed
    is not read again. Bounded; safe to share between worker threads."""

    def __init__(self, limit: int = 4096) -> None:
        self._limit = limit
        self._known: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def digest(self, path: Path) -> tuple[int, str]:
        stat = path.stat()
        identity = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._known.get(identity)
        if known is not None:
            return stat.st_size, known
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        if size == stat.st_size:  # not grown while read: cacheable
            with self._lock:
                if len(self._known) >= self._limit:
                    self._known.pop(next(iter(self._known)))
                self._known[identity] = sha
        return size, sha


def _digest(file: PackFile, cache: DigestCache | None) -> tuple[int, str]:
    if file.data is not None:
        return len(file.data), hashlib.sha256(file.data).hexdigest()
    if file.blob is not None:
        digest, size = hashlib.sha256(), 0
        with file.blob.store.open(file.blob.key) as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()
    assert file.source is not None
    return (cache or DigestCache()).digest(file.source)


def manifest(pack: EvidencePack, key: ServerKey | None = None,
             cache: DigestCache | None = None) -> dict[str, Any]:
    """Every file with its size and SHA-256 (blocking: call in a thread)."""
    entries = []
    for file in pack.files:
        size, sha = _digest(file, cache)
        entries.append({"path": file.name, "size": size, "sha256": sha})
    anchor = {"server_key": key.fingerprint} if key is not None else {}
    return {**pack.summary, **anchor, "files": entries}


def write_zip(pack: EvidencePack, target: IO[bytes], key: ServerKey,
              cache: DigestCache | None = None) -> dict[str, Any]:
    """The pack as one ZIP with `manifest.json` and the server's `manifest.sig`
    (blocking: call in a thread). `target` need not be seekable, so it may stream."""
    listed = manifest(pack, key, cache)
    manifest_bytes = json.dumps(listed, ensure_ascii=False, indent=1).encode()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for file in pack.files:
            if file.data is not None:
                zf.writestr(file.name, file.data)
            elif file.blob is not None:
                info = zipfile.ZipInfo(file.name, time.localtime()[:6])
                info.file_size = file.blob.size  # decides ZIP64 for a large recording
                with file.blob.store.open(file.blob.key) as source, \
                        zf.open(info, "w") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
            else:
                assert file.source is not None
                zf.write(file.source, file.name)
        zf.writestr(MANIFEST, manifest_bytes)
        zf.writestr(MANIFEST_SIGNATURE, key.sign_manifest(manifest_bytes))
    return listed
