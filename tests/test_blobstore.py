"""The contract every recordings store backend must keep (`recordings.blobstore`).

Each test runs against every backend in `BACKENDS`. Today that is the local
folder, once as it is and once without local paths (`StreamOnly`), which is how
an object store looks to its callers: the recordings API must then stream the
blob itself. A new backend (S3-compatible) is added to `BACKENDS` and must pass
this file unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from protocols.evidence import EvidencePack, _student_recordings, manifest, write_zip
from protocols.server_key import ServerKeyring
from recordings.blobstore import (BadKey, BlobInfo, BlobNotFound, BlobStore, LocalFolderStore,
                                  put_file, read_bytes)
from web_ui.blob_response import blob_response

ROOT = Path(__file__).resolve().parent.parent


class StreamOnly(LocalFolderStore):
    """The local folder, but with no local paths to hand out (as an object store)."""

    def local_path(self, key: str) -> Path | None:
        self.size(key)  # BlobNotFound / BadKey as the contract asks
        return None


BACKENDS: dict[str, Callable[[Path], BlobStore]] = {
    "local": LocalFolderStore,
    "stream-only": StreamOnly,
}

BAD_KEYS = ["", "/etc/passwd", "../outside", "day-1/../../outside", "day-1/./a", "day-1//a",
            "day-1\\a", "day-1/a\x00", "day-1/\na", ".", "..", "day-1/.blob-1234"]


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return BACKENDS[request.param](tmp_path / "store")


def chunks(*parts: bytes) -> Iterator[bytes]:
    yield from parts


def test_put_open_size_list_delete_round_trip(store: BlobStore) -> None:
    assert store.put("day-1/take-a/alice-video-1.webm", chunks(b"abc", b"def")) == 6
    assert read_bytes(store, "day-1/take-a/alice-video-1.webm") == b"abcdef"
    assert store.size("day-1/take-a/alice-video-1.webm") == 6
    store.put("day-1/take-a/alice-video-1.webm", chunks(b"replaced"))
    assert read_bytes(store, "day-1/take-a/alice-video-1.webm") == b"replaced"
    with store.open("day-1/take-a/alice-video-1.webm") as f:
        f.seek(2)
        assert f.read(3) == b"pla"
    store.put("day-1/archive/student-7/defense.mp4", chunks(b"x" * 10))
    store.put("day-1/archive-notes.txt", chunks(b"n"))
    store.put("day-10/take-b/bob-audio-1.mka", chunks(b"yy"))
    # Part by part: "archive/..." before "archive-notes.txt", as the manifests always were.
    assert store.list("day-1/") == [
        BlobInfo("day-1/archive/student-7/defense.mp4", 10),
        BlobInfo("day-1/archive-notes.txt", 1),
        BlobInfo("day-1/take-a/alice-video-1.webm", 8)]
    assert store.list("day-1") == store.list("day-1/")  # day-10 is not under day-1
    assert [b.key for b in store.list("")] == [
        "day-1/archive/student-7/defense.mp4", "day-1/archive-notes.txt",
        "day-1/take-a/alice-video-1.webm", "day-10/take-b/bob-audio-1.mka"]
    assert store.list("day-2/") == []
    assert store.delete("day-1/archive") == 1
    assert [b.key for b in store.list("day-1/")] == ["day-1/archive-notes.txt",
                                                     "day-1/take-a/alice-video-1.webm"]
    assert store.delete("day-1/take-a/alice-video-1.webm") == 1
    assert store.delete("day-1/") == 1
    assert store.list("day-1/") == [] and store.delete("day-1/") == 0
    assert [b.key for b in store.list("")] == ["day-10/take-b/bob-audio-1.mka"]


def test_a_missing_key_is_a_clear_error(store: BlobStore) -> None:
    store.put("day-1/archive/student-7/defense.mp4", chunks(b"v"))
    for call in (store.open, store.size, store.local_path):
        with pytest.raises(BlobNotFound, match="day-1/archive/student-7/timeline.json"):
            call("day-1/archive/student-7/timeline.json")
    with pytest.raises(BlobNotFound, match="day-1/archive/student-7"):
        store.size("day-1/archive/student-7")  # a prefix is not a blob
    assert store.delete("day-9/nothing") == 0


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_that_leave_the_store_are_refused(store: BlobStore, key: str,
                                               tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"secret")
    calls: list[Callable[[], object]] = [
        lambda: store.put(key, chunks(b"x")), lambda: store.open(key),
        lambda: store.size(key), lambda: store.local_path(key),
        lambda: store.location(key)]
    if key:  # "" is the whole store for list; delete refuses it (below)
        calls += [lambda: store.list(key), lambda: store.delete(key)]
    for call in calls:
        with pytest.raises(BadKey):
            call()
    assert (tmp_path / "outside").read_bytes() == b"secret"
    with pytest.raises(BadKey):
        store.delete("")


def test_a_failed_put_leaves_the_old_blob_and_nothing_partial(store: BlobStore) -> None:
    store.put("day-1/archive/student-7/defense.mp4", chunks(b"old"))

    def broken() -> Iterator[bytes]:
        yield b"new but "
        raise OSError("the source disk went away")

    with pytest.raises(OSError, match="went away"):
        store.put("day-1/archive/student-7/defense.mp4", broken())
    with pytest.raises(OSError, match="went away"):
        store.put("day-1/archive/student-7/chapters.vtt", broken())
    assert read_bytes(store, "day-1/archive/student-7/defense.mp4") == b"old"
    assert store.list("day-1/") == [BlobInfo("day-1/archive/student-7/defense.mp4", 3)]
    with pytest.raises(BlobNotFound):
        store.size("day-1/archive/student-7/chapters.vtt")


_KILLED_PUT = """
import sys, time
from pathlib import Path
from tests.test_blobstore import BACKENDS
store = BACKENDS[sys.argv[1]](Path(sys.argv[2]))
def slow():
    yield b"half of the new "
    print("mid-put", flush=True)
    time.sleep(60)
    yield b"file"
store.put("day-1/archive/student-7/defense.mp4", slow())
"""


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_put_killed_midway_leaves_no_partial_blob(name: str, tmp_path: Path) -> None:
    store = BACKENDS[name](tmp_path / "store")
    store.put("day-1/archive/student-7/defense.mp4", chunks(b"old"))
    child = subprocess.Popen([sys.executable, "-c", _KILLED_PUT, name, str(tmp_path / "store")],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "mid-put"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert store.list("") == [BlobInfo("day-1/archive/student-7/defense.mp4", 3)]
    assert read_bytes(store, "day-1/archive/student-7/defense.mp4") == b"old"


def test_put_tree_replaces_the_prefix_and_consumes_the_folder(store: BlobStore,
                                                              tmp_path: Path) -> None:
    store.put("day-1/archive/student-7/defense.mp4", chunks(b"first build"))
    store.put("day-1/archive/student-7/stale.json", chunks(b"{}"))
    store.put("day-1/archive/student-8/defense.mp4", chunks(b"neighbour"))
    staging = tmp_path / "store" / "day-1" / "archive" / ".student-7.building"
    (staging / "sub").mkdir(parents=True)
    (staging / "defense.mp4").write_bytes(b"second build")
    (staging / "sub" / "manifest.json").write_bytes(b"{\"n\": 2}")
    store.put_tree("day-1/archive/student-7", staging)
    assert not staging.exists()
    assert [(b.key, read_bytes(store, b.key)) for b in store.list("day-1/archive/student-7/")] == [
        ("day-1/archive/student-7/defense.mp4", b"second build"),
        ("day-1/archive/student-7/sub/manifest.json", b"{\"n\": 2}")]
    assert read_bytes(store, "day-1/archive/student-8/defense.mp4") == b"neighbour"
    # From a folder elsewhere (another disk, for an object store: the spool).
    other = tmp_path / "spool" / "build"
    other.mkdir(parents=True)
    (other / "defense.mp4").write_bytes(b"third build")
    put_file(store, "day-2/take-a/raw.webm", other / "defense.mp4")
    store.put_tree("day-1/archive/student-7", other)
    assert [b.key for b in store.list("day-1/archive/student-7/")] == [
        "day-1/archive/student-7/defense.mp4"]
    assert read_bytes(store, "day-2/take-a/raw.webm") == b"third build"


def test_the_local_folder_refuses_symlinks_out_of_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = LocalFolderStore(root)
    store.put("day-1/take-a/a.webm", chunks(b"a"))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.webm").write_bytes(b"secret")
    (root / "day-1" / "link").symlink_to(tmp_path / "elsewhere")
    (root / "day-1" / "take-a" / "b.webm").symlink_to(tmp_path / "elsewhere" / "secret.webm")
    with pytest.raises(BadKey, match="symbolic link"):
        store.open("day-1/link/secret.webm")
    with pytest.raises(BadKey, match="symbolic link"):
        store.open("day-1/take-a/b.webm")
    assert [b.key for b in store.list("day-1/")] == ["day-1/take-a/a.webm"]
    assert store.delete("day-1/") == 1
    assert (tmp_path / "elsewhere" / "secret.webm").read_bytes() == b"secret"


async def test_a_blob_is_served_whole_and_by_range(store: BlobStore) -> None:
    body = bytes(range(256)) * 4
    store.put("day-1/archive/student-7/defense.mp4", chunks(body))

    async def serve(request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        return await blob_response(request, store, key, store.size(key),
                                   {"Content-Type": "video/mp4"})

    app = web.Application()
    app.router.add_get("/{key:.+}", serve)
    async with TestClient(TestServer(app)) as client:
        url = "/day-1/archive/student-7/defense.mp4"
        async with client.get(url) as whole:
            assert whole.status == 200 and await whole.read() == body
            assert whole.headers["Content-Type"] == "video/mp4"
        for asked, first, last in (("bytes=0-", 0, 1023), ("bytes=10-19", 10, 19),
                                   ("bytes=-16", 1008, 1023), ("bytes=1000-5000", 1000, 1023)):
            async with client.get(url, headers={"Range": asked}) as part:
                assert part.status == 206, asked
                assert part.headers["Content-Range"] == f"bytes {first}-{last}/1024", asked
                assert await part.read() == body[first:last + 1], asked
        async with client.get(url, headers={"Range": "bytes=2000-"}) as beyond:
            assert beyond.status == 416
            assert beyond.headers["Content-Range"] == "bytes */1024"



def _sidecar(name: str, participant: str, first: float, duration: float) -> bytes:
    return json.dumps({"file": name, "participant": participant, "kind": "video",
                       "codec": "VP8", "segment": 1, "first_arrived": first,
                       "opened_unix": 1_000.0 + first, "complete": True,
                       "duration_s": duration}).encode()


def test_the_evidence_pack_reads_the_student_s_recordings_from_the_store(
        store: BlobStore, tmp_path: Path) -> None:
    layout = {
        "day-1/archive/student-7/defense.mp4": b"composite of 7",
        "day-1/archive/student-7/manifest.json": b"{}",
        "day-1/archive/student-8/defense.mp4": b"composite of 8",
        "day-1/identity/c1/check.json": json.dumps({"student": "7"}).encode(),
        "day-1/identity/c2/check.json": json.dumps({"student": "8"}).encode(),
        "day-1/take-a/7-video-1.webm": b"seven",
        "day-1/take-a/7-video-1.webm.json": _sidecar("7-video-1.webm", "7", 0.0, 50.0),
        "day-1/take-a/8-video-1.webm": b"eight",
        "day-1/take-a/8-video-1.webm.json": _sidecar("8-video-1.webm", "8", 100.0, 50.0),
        "day-1/archive/raw/take-a/7-video-1.webm": b"seven, copied",
        "day-10/archive/student-7/defense.mp4": b"another day",
    }
    for key, data in layout.items():
        store.put(key, chunks(data))
    # The segment from 1000 to 1050 overlaps the defense; the one from 1100 does not.
    files = _student_recordings(store, tmp_path / "store" / "day-1", 1, "7", (1_010.0, 1_040.0))
    assert [f.name for f in files] == [
        "recordings/archive/raw/take-a/7-video-1.webm",
        "recordings/archive/student-7/defense.mp4",
        "recordings/archive/student-7/manifest.json",
        "recordings/identity/c1/check.json",
        "recordings/take-a/7-video-1.webm",
        "recordings/take-a/7-video-1.webm.json"]
    assert all((f.source is None) == isinstance(store, StreamOnly) for f in files)
    pack = EvidencePack(tuple(files), {"format": "test"})
    server_key = ServerKeyring(tmp_path / "keys").current()
    target = io.BytesIO()
    listed = write_zip(pack, target, server_key)
    expected = {f"recordings/{k[len('day-1/'):]}": v for k, v in layout.items()}
    with zipfile.ZipFile(target) as zf:
        for entry in listed["files"]:
            data = zf.read(entry["path"])
            assert data == expected[entry["path"]]
            assert entry == {"path": entry["path"], "size": len(data),
                             "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest(pack, server_key)["files"] == listed["files"]


def test_docs_scaling_lists_exactly_the_methods_a_backend_implements() -> None:
    text = (ROOT / "docs" / "scaling.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)\(", text, re.MULTILINE))
    protocol = {name for name, value in vars(BlobStore).items()
                if callable(value) and not name.startswith("_")}
    assert {"put", "open", "list", "delete"} <= protocol
    assert documented == protocol, (documented ^ protocol)
    assert "Per-node figures (bench/capacity.py)" in text


def test_the_local_folder_copies_a_tree_from_another_disk_whole_or_not_at_all(
        tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the tests' tmp_path")
    store = LocalFolderStore(tmp_path / "store")
    store.put("day-1/archive/student-7/defense.mp4", chunks(b"first build"))
    with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
        broken = Path(elsewhere, "broken")
        broken.mkdir()
        (broken / "defense.mp4").write_bytes(b"second build")
        os.mkfifo(broken / "timeline.json")  # cannot be copied: the copy fails midway
        with pytest.raises(shutil.Error, match="named pipe"):
            store.put_tree("day-1/archive/student-7", broken)
        assert [(b.key, read_bytes(store, b.key)) for b in store.list("")] == [
            ("day-1/archive/student-7/defense.mp4", b"first build")]
        assert sorted(p.name for p in (tmp_path / "store/day-1/archive").iterdir()) == [
            "student-7"]  # no half-copied folder left behind
        good = Path(elsewhere, "good")
        good.mkdir()
        (good / "defense.mp4").write_bytes(b"third build")
        store.put_tree("day-1/archive/student-7", good)
        assert not good.exists()
        assert read_bytes(store, "day-1/archive/student-7/defense.mp4") == b"third build"
