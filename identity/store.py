"""Stored checks: the frame, the two crops and a record, with the day's recordings.

Each check is a folder ``<day folder>/identity/<check id>/`` holding
``frame.jpg``, ``live.jpg`` and ``document.jpg`` (those found) and ``check.json``
(the verdict and measures; never a face encoding). Living under the day's
recordings folder, they are kept and deleted with the recordings (retention), and
served only to those who may see the recordings (secretary and chair). A check is
written into a ``.part`` folder and renamed when complete, so a crash never leaves
a half check behind; files are readable by the server's user only.

Blocking file I/O: call these from a worker thread.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CheckNotFound

CHECK_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")
IMAGE_NAMES = ("frame", "live", "document")
RECORD = "check.json"


class CheckStore:
    """Reads and writes stored checks in each day's recordings folder."""

    def __init__(self, day_folder: Callable[[int], Path]) -> None:
        """`day_folder` gives a day's recordings folder (`recordings.plan.day_folder`)."""
        self._day_folder = day_folder

    def folder(self, day_id: int) -> Path:
        return self._day_folder(day_id) / "identity"

    def save(self, day_id: int, record: dict[str, Any], images: dict[str, bytes]) -> Path:
        """Write one check (record["id"] names it) and return its folder."""
        check_id = str(record["id"])
        if not CHECK_ID.match(check_id):
            raise ValueError(f"malformed check id {check_id!r}")
        parent = self.folder(day_id)
        parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = parent / check_id
        part = parent / f".{check_id}.part"
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(mode=0o700)
        for name, data in images.items():
            if name not in IMAGE_NAMES:
                raise ValueError(f"unknown image {name!r}")
            _write(part / f"{name}.jpg", data)
        _write(part / RECORD, json.dumps(record, ensure_ascii=False, indent=1).encode())
        os.replace(part, final)
        return final

    def load(self, day_id: int, check_id: str) -> dict[str, Any]:
        path = self._check_folder(day_id, check_id) / RECORD
        try:
            record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CheckNotFound(f"no identity check {check_id} on day {day_id}") from None
        return record

    def checks(self, day_id: int, student: str | None = None) -> list[dict[str, Any]]:
        """Stored checks of the day (of one student), oldest first."""
        parent = self.folder(day_id)
        if not parent.is_dir():
            return []
        records = []
        for entry in sorted(parent.iterdir()):
            if CHECK_ID.match(entry.name) and (entry / RECORD).is_file():
                record = self.load(day_id, entry.name)
                if student is None or record.get("student") == student:
                    records.append(record)
        return records

    def image(self, day_id: int, check_id: str, name: str) -> bytes:
        if name not in IMAGE_NAMES:
            raise CheckNotFound(f"a check has no image {name!r}; it has {', '.join(IMAGE_NAMES)}")
        path = self._check_folder(day_id, check_id) / f"{name}.jpg"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise CheckNotFound(
                f"identity check {check_id} on day {day_id} has no {name} image") from None

    def _check_folder(self, day_id: int, check_id: str) -> Path:
        if not CHECK_ID.match(check_id):
            raise CheckNotFound(f"no identity check {check_id!r} on day {day_id}")
        return self.folder(day_id) / check_id


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
