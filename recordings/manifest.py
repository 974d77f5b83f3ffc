"""Manifests: the SHA-256 of every file of an archive, and the hash of the manifest.

A manifest is canonical JSON (sorted keys, UTF-8), so its SHA-256 names exactly one
set of files with their contents. The archive index in SQLite and the journal keep
that hash: whoever holds a file later can show it is the one archived (rule R2),
and a deletion journaled with the hash says what was deleted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(base: Path, relative: str, role: str) -> dict[str, Any]:
    """{path, role, size, sha256} of ``base / relative``."""
    path = base / relative
    return {"path": relative, "role": role, "size": path.stat().st_size,
            "sha256": sha256_file(path)}


def encode(manifest: dict[str, Any]) -> bytes:
    """The canonical bytes of a manifest (what its hash covers)."""
    return (json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1,
                       allow_nan=False) + "\n").encode("utf-8")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

