"""Students' document files (thesis, reviews, presentation PDF) on disk.

One file per student and kind, ``<root>/day-<day>/person-<id>/<kind>.pdf``. A new
upload replaces the old one atomically: it is written to a temporary file in the
same folder, fsynced, then renamed over the old name, so a reader or a crash sees
the old file or the new one, never half of one. Functions here block: call them
in a thread.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.documents import DocumentKind

from .errors import StorageError

PDF_MAGIC = b"%PDF-"


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: Path
    size: int
    sha256: str


class DocumentFiles:
    """Where document files live; see the module doc."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def path(self, day_id: int, person_id: int, kind: DocumentKind) -> Path:
        return self._root / f"day-{day_id}" / f"person-{person_id}" / f"{kind.value}.pdf"

    def existing(self, day_id: int, person_id: int, kind: DocumentKind) -> Path | None:
        path = self.path(day_id, person_id, kind)
        return path if path.is_file() else None

    def save(self, day_id: int, person_id: int, kind: DocumentKind,
             chunks: Iterable[bytes], max_bytes: int) -> StoredFile:
        """Write `chunks` as the new file; StorageError if it is not a PDF or too big."""
        target = self.path(day_id, person_id, kind)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{kind.value}.",
                                        suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    if size == 0 and not chunk.startswith(PDF_MAGIC[: len(chunk)]):
                        raise StorageError("the file is not a PDF (it must start with %PDF-)")
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageError(
                            f"the file is larger than {max_bytes // (1 << 20)} MiB")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size < len(PDF_MAGIC):
                raise StorageError("the file is empty or not a PDF")
            os.replace(tmp, target)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StoredFile(target, size, digest.hexdigest())
