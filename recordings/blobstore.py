"""Where finished recordings and archives are kept: one small interface, `BlobStore`.

Two places hold a day's media, and the split is deliberate:

* the **spool**, a local folder (``<recordings_dir>/day-<id>/``): the live
  recording writes its segments there (``take-*/``, crash-safe ``.part`` files
  renamed when finished, `recordings.segment`), the identity checks their
  snapshots, and the archive build its plan and staging folder. PyAV and the
  build worker need real files, so this never goes through the store;
* the **store**, reached only through `BlobStore`: the finished files and the
  archives, as the recordings API serves them, the appeal pack reads them and
  retention lists, hashes and deletes them.

Today one `LocalFolderStore` rooted at ``recordings_dir`` is both: the store's key
``day-3/archive/student-7/defense.mp4`` is the spool's file of that path, so
nothing is copied. An object-store backend (S3-compatible) is another class with
the same methods; the build then publishes its staging folder with `put_tree`
and the spool keeps only what is still being written (docs/scaling.md).

Keys are relative POSIX paths (``day-<id>/...``); anything else (absolute, ``..``,
empty segments, backslashes, control characters) is refused with `BadKey` before
any backend sees it, so a key taken from the database or a URL cannot leave the
store. Every method blocks: call it in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from .errors import RecordingError

_CHUNK = 1 << 20
_MAX_KEY = 1024
# Names a backend keeps for itself while writing; never a key's segment.
_TEMP_MARK = ".blob-"


class StoreError(RecordingError):
    """The store could not do what was asked; the message names the key."""


class BadKey(StoreError):
    """A key that is not a clean relative path (traversal, absolute, empty part)."""

    code = "bad_key"
    status_hint = 400


class BlobNotFound(StoreError):
    """No blob under that key (never stored, or deleted)."""

    code = "not_found"
    status_hint = 404


class StoreUnavailable(StoreError):
    """The store cannot be reached now (an object store's outage); try again later.
    A backend raises this, never `BlobNotFound`, for a failure that may pass."""

    code = "store_unavailable"
    status_hint = 503


@dataclass(frozen=True, slots=True)
class BlobInfo:
    key: str
    size: int


def check_key(key: str, *, prefix: bool = False) -> str:
    """`key` if it is a clean relative POSIX path; `BadKey` saying why otherwise.

    With ``prefix`` the empty string (everything) and a trailing ``/`` are allowed."""
    if not isinstance(key, str):
        raise BadKey(f"a store key is a string, not {type(key).__name__}")
    body = key.removesuffix("/") if prefix else key
    if prefix and body == "":
        return ""
    if not body or len(key) > _MAX_KEY:
        raise BadKey(f"store key {key[:80]!r} is empty or longer than {_MAX_KEY} characters")
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in body):
        raise BadKey(f"store key {key[:80]!r} holds a backslash or a control character")
    if body.startswith("/"):
        raise BadKey(f"store key {key[:80]!r} is absolute; keys are relative to the store")
    for part in body.split("/"):
        if part in ("", ".", ".."):
            raise BadKey(f"store key {key[:80]!r} has an empty, '.' or '..' part")
        if part.startswith(_TEMP_MARK):
            raise BadKey(f"store key {key[:80]!r} uses the reserved name {_TEMP_MARK}*")
    return key


def _sort_key(key: str) -> list[str]:
    # Part by part, as `sorted(Path.rglob(...))` ordered the manifests before
    # the store existed ("a/b" before "a-c"), so their hashes stay comparable.
    return key.split("/")


class BlobStore(Protocol):
    """What the recordings code needs of a place that keeps finished files.

    A backend must pass tests/test_blobstore.py: atomic puts (a failed or killed
    put leaves the previous blob, or none, never part of one), `BlobNotFound` for
    a missing key, `BadKey` for a key that escapes the store."""

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the bytes `chunks` yields under `key`, replacing any blob there;
        visible only once complete. The size written."""

    def put_tree(self, prefix: str, folder: Path) -> None:
        """Replace every blob under `prefix` by the files of the local `folder`
        (``folder/a/b`` becomes ``prefix/a/b``). The folder is consumed. Readers
        see the old set until the new one is in (the local backend swaps the
        folder in with one rename; an object store puts the files one by one and
        the archive index in SQLite, written after, is what makes them current)."""

    def open(self, key: str) -> BinaryIO:
        """The blob for reading (seekable); `BlobNotFound` if there is none."""

    def size(self, key: str) -> int:
        """The blob's size in bytes; `BlobNotFound` if there is none."""

    def list(self, prefix: str) -> list[BlobInfo]:
        """Every blob under `prefix` (a folder-like prefix: ``day-3/`` or
        ``day-3``), ordered part by part; empty when there is none."""

    def delete(self, prefix: str) -> int:
        """Delete every blob under `prefix` (or the one blob `prefix` names); the
        number deleted. Deleting nothing is not an error."""

    def local_path(self, key: str) -> Path | None:
        """The blob as a local file to hand to sendfile, or None where blobs are
        not local files (then read it with `open`). `BlobNotFound` if missing."""

    def location(self, key: str) -> str:
        """Where a person finds `key` (a path, a URL), for logs and the CLI."""


def put_file(store: BlobStore, key: str, source: Path) -> int:
    """Store the local file `source` under `key` (read in chunks)."""
    def chunks() -> Iterator[bytes]:
        with source.open("rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk

    return store.put(key, chunks())


def read_bytes(store: BlobStore, key: str) -> bytes:
    with store.open(key) as f:
        return f.read()


class LocalFolderStore:
    """The store as a folder on local disk (today's layout under ``recordings_dir``)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    def _path(self, key: str, *, prefix: bool = False) -> Path:
        check_key(key, prefix=prefix)
        path = self._root / key.removesuffix("/") if key.strip("/") else self._root
        # A symlink inside the folder could still point out of it: refuse those too.
        for parent in [path, *path.parents]:
            if parent == self._root or not parent.is_relative_to(self._root):
                break
            if parent.is_symlink():
                raise BadKey(f"store key {key[:80]!r} passes through a symbolic link")
        return path

    def _file(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise BlobNotFound(f"nothing is stored under {key!r} in {self._root}")
        return path

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        # Written beside the target under a reserved name and renamed over it; a
        # put killed midway leaves a hidden file that deleting the day removes.
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{_TEMP_MARK}{uuid.uuid4().hex}")
        written = 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return written

    def put_tree(self, prefix: str, folder: Path) -> None:
        final = self._path(prefix)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            same_disk = folder.stat().st_dev == final.parent.stat().st_dev
        except OSError as exc:
            raise StoreError(f"cannot store {folder} under {prefix!r}: {exc}") from exc
        if same_disk:
            staging = folder
        else:  # a rename cannot cross disks: copy beside the target first
            staging = final.with_name(f"{_TEMP_MARK}{uuid.uuid4().hex}")
            try:
                shutil.copytree(folder, staging, symlinks=True)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        # One name per prefix, so a swap cut short by a crash is cleared by the next.
        old = final.with_name(f"{_TEMP_MARK}old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        if staging is not folder:
            shutil.rmtree(folder, ignore_errors=True)

    def open(self, key: str) -> BinaryIO:
        try:
            return self._file(key).open("rb")
        except FileNotFoundError:  # deleted between the check and the open
            raise BlobNotFound(f"nothing is stored under {key!r} in {self._root}") from None

    def size(self, key: str) -> int:
        return self._file(key).stat().st_size

    def list(self, prefix: str) -> list[BlobInfo]:
        top = self._path(prefix, prefix=True)
        if top.is_file() and not prefix.endswith("/"):
            return [BlobInfo(prefix, top.stat().st_size)]
        if not top.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(top):
            # Half-written files and swapped-out folders are not blobs.
            dirnames[:] = [d for d in dirnames if not d.startswith(_TEMP_MARK)]
            for name in filenames:
                path = Path(dirpath, name)
                if name.startswith(_TEMP_MARK) or path.is_symlink():
                    continue
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue  # finalized or deleted while listed
                found.append(BlobInfo(path.relative_to(self._root).as_posix(), size))
        return sorted(found, key=lambda b: _sort_key(b.key))

    def delete(self, prefix: str) -> int:
        path = self._path(prefix, prefix=True)
        if path == self._root:
            raise BadKey("refusing to delete the whole store; name a prefix")
        if path.is_file():
            path.unlink()
            return 1
        if not path.is_dir():
            return 0
        count = sum(1 for _ in self.list(prefix))
        shutil.rmtree(path)
        return count

    def local_path(self, key: str) -> Path | None:
        return self._file(key)

    def location(self, key: str) -> str:
        return str(self._path(key))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
