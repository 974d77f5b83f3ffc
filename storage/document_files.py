"""Students' document files (thesis, reviews, presentation PDF) on disk.

Every upload is a version kept under its SHA-256 and never overwritten (finding S4):
``<root>/day-<day>/person-<id>/versions/<sha256>.pdf``. The current version of each
kind is a hard link to one of them, ``<root>/day-<day>/person-<id>/<kind>.pdf``, so
readers that know no database (pages, the evidence pack) open it by kind. Moving
that link is atomic (a new link under a temporary name, renamed over the old one):
a reader or a crash sees the old version or the new one, never half of one.

An upload is written chunk by chunk as it arrives (`DocumentUpload`, finding S9),
never held whole in memory, to a temporary file in the versions folder; only a
complete, fsynced PDF gets its hash name. Which version is current, and who filed
it, the database says (`storage.document_versions`). Functions here block: call
them in a thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.documents import DocumentKind

from .errors import StorageError

PDF_MAGIC = b"%PDF-"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: Path
    size: int
    sha256: str


class DocumentUpload:
    """One upload being written: `write` each chunk, then `finish` or `abort`.

    StorageError from `write` or `finish` for a file that is not a PDF, is empty or
    is larger than `max_bytes`; the temporary file is then gone.
    """

    def __init__(self, folder: Path, max_bytes: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._max_bytes = max_bytes
        self._digest = hashlib.sha256()
        self._size = 0
        fd, name = tempfile.mkstemp(dir=folder, prefix=".upload.", suffix=".part")
        self._tmp = Path(name)
        # Unbuffered: each chunk goes to the file as it comes (64 KiB writes need no
        # buffer of ours), so the file shows how far an upload has got.
        self._out = os.fdopen(fd, "wb", buffering=0)

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, chunk: bytes) -> None:
        try:
            if self._size < len(PDF_MAGIC):
                head = PDF_MAGIC[self._size:self._size + len(chunk)]
                if not chunk.startswith(head):
                    raise StorageError("the file is not a PDF (it must start with %PDF-)")
            self._size += len(chunk)
            if self._size > self._max_bytes:
                raise StorageError(
                    f"the file is larger than {self._max_bytes // (1 << 20)} MiB")
            self._digest.update(chunk)
            view = memoryview(chunk)
            while view:
                written = self._out.write(view)
                view = view[written or 0:]
        except BaseException:
            self.abort()
            raise

    def finish(self) -> StoredFile:
        """Fsync the file and give it its hash name; an existing version with the same
        hash is the same bytes and is kept as it is."""
        try:
            os.fsync(self._out.fileno())
            self._out.close()
            if self._size < len(PDF_MAGIC):
                raise StorageError("the file is empty or not a PDF")
            sha256 = self._digest.hexdigest()
            target = self._folder / f"{sha256}.pdf"
            if target.exists():
                self._tmp.unlink()
            else:
                # link, not rename: it fails rather than replace a version that a
                # concurrent upload of the same bytes has just put there.
                try:
                    os.link(self._tmp, target)
                except FileExistsError:
                    pass
                self._tmp.unlink()
                _fsync_dir(self._folder)
        except BaseException:
            self.abort()
            raise
        return StoredFile(target, self._size, sha256)

    def abort(self) -> None:
        """Drop the partial file; idempotent."""
        self._out.close()
        self._tmp.unlink(missing_ok=True)


class DocumentFiles:
    """Where document files live; see the module doc."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _folder(self, day_id: int, person_id: int) -> Path:
        return self._root / f"day-{day_id}" / f"person-{person_id}"

    def path(self, day_id: int, person_id: int, kind: DocumentKind) -> Path:
        """The current version of a kind (a link to one in `version_path`)."""
        return self._folder(day_id, person_id) / f"{kind.value}.pdf"

    def existing(self, day_id: int, person_id: int, kind: DocumentKind) -> Path | None:
        """The current version of a kind, or None if none was uploaded."""
        path = self.path(day_id, person_id, kind)
        return path if path.is_file() else None

    def versions_folder(self, day_id: int, person_id: int) -> Path:
        return self._folder(day_id, person_id) / "versions"

    def version_path(self, day_id: int, person_id: int, sha256: str) -> Path:
        """Where the version with this SHA-256 (64 lowercase hex digits) is kept."""
        if not _SHA256.fullmatch(sha256):
            raise StorageError(f"{sha256[:80]!r} is not a SHA-256 in hex")
        return self.versions_folder(day_id, person_id) / f"{sha256}.pdf"

    def begin(self, day_id: int, person_id: int, max_bytes: int) -> DocumentUpload:
        """Start writing an upload of one of the person's documents."""
        return DocumentUpload(self.versions_folder(day_id, person_id), max_bytes)

    def make_current(self, day_id: int, person_id: int, kind: DocumentKind,
                     sha256: str) -> Path:
        """Point the kind's current file at the stored version `sha256`."""
        version = self.version_path(day_id, person_id, sha256)
        target = self.path(day_id, person_id, kind)
        self._keep_unversioned(target)
        tmp = target.with_name(f".{kind.value}.{os.getpid()}.{sha256[:16]}.link")
        tmp.unlink(missing_ok=True)
        os.link(version, tmp)
        try:
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return target

    def _keep_unversioned(self, current: Path) -> None:
        # A file uploaded before versions existed is no link to one: keep its bytes
        # under their hash before the link replaces it, so nothing is ever lost.
        try:
            if os.stat(current).st_nlink > 1:
                return
        except FileNotFoundError:
            return
        digest = hashlib.sha256()
        with current.open("rb") as old:
            for block in iter(lambda: old.read(1 << 20), b""):
                digest.update(block)
        kept = current.parent / "versions" / f"{digest.hexdigest()}.pdf"
        kept.parent.mkdir(parents=True, exist_ok=True)
        if not kept.exists():
            os.link(current, kept)
            _fsync_dir(kept.parent)

    def save(self, day_id: int, person_id: int, kind: DocumentKind,
             chunks: Iterable[bytes], max_bytes: int) -> StoredFile:
        """Store `chunks` as a version and make it current, with no record of it in
        the database (for tools and tests; uploads go through `begin`)."""
        upload = self.begin(day_id, person_id, max_bytes)
        for chunk in chunks:
            upload.write(chunk)
        stored = upload.finish()
        self.make_current(day_id, person_id, kind, stored.sha256)
        return stored


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
