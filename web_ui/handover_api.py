"""Hand-over of a defense day to the registrar and the archive (rule R3).

    POST /api/days/{day}/handover           the secretary: {"to": "registrar"|"archive"}
    GET  /api/days/{day}/handover/{sha256}  the secretary and the chair: the package

Each hand-over builds the package (`protocols.handover`), keeps it under
``<data>/handover/day-<day>/<sha256>.zip`` and journals who handed what to whom,
with the package's hash: that entry is the hand-over record. The package's
manifest is signed by the server key (`protocols.server_key`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

from aiohttp import web

from protocols.handover import build_package, zip_bytes
from storage.journal import Journal

from .auth import require_invite
from .body import NAME_CHARS, json_object, only, text, url_id
from .errors import json_error
from .keys import CONFIG, DATABASE
from .package_signing import server_key
from .roles import OFFICE, SECRETARY

RECIPIENTS = ("registrar", "archive")
_SHA = re.compile(r"[0-9a-f]{64}")


def _folder(request: web.Request, day_id: int) -> Path:
    return request.app[CONFIG].data_dir / "handover" / f"day-{day_id}"


def _store(folder: Path, data: bytes, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, target)
    return target


async def hand_over(request: web.Request) -> web.Response:
    """POST /api/days/{day_id}/handover: package the day for the registrar or the archive."""
    day_id = url_id(request, "day_id")
    invite = await require_invite(request, day_id, SECRETARY)
    body = await json_object(request)
    only(body, ("to",))
    to = text(body, "to", max_chars=NAME_CHARS)
    if to not in RECIPIENTS:
        raise json_error(web.HTTPBadRequest, "malformed",
                         f'send {{"to": "registrar"}} or {{"to": "archive"}}, not {to[:40]!r}')
    db = request.app[DATABASE]
    pack = await build_package(db, day_id)
    data, listed = await asyncio.to_thread(zip_bytes, pack, await server_key(request.app))
    sha = hashlib.sha256(data).hexdigest()
    await asyncio.to_thread(_store, _folder(request, day_id), data, f"{sha}.zip")
    now = time.time()
    await Journal(db).append(day_id, invite.person_id, "handover", {
        "to": to, "sha256": sha, "size": len(data), "files": len(listed["files"])}, now)
    return web.json_response({
        "to": to, "sha256": sha, "size": len(data), "files": len(listed["files"]),
        "handed_over_at": now, "download": f"/api/days/{day_id}/handover/{sha}"}, status=201)


async def handover_package(request: web.Request) -> web.StreamResponse:
    """GET /api/days/{day_id}/handover/{sha256}: a package handed over."""
    day_id = url_id(request, "day_id")
    await require_invite(request, day_id, OFFICE)
    sha = request.match_info["sha256"]
    path = _folder(request, day_id) / f"{sha}.zip"
    if not _SHA.fullmatch(sha) or not path.is_file():
        raise json_error(web.HTTPNotFound, "not_found", "no such hand-over package")
    return web.FileResponse(path, headers={
        "Content-Type": "application/zip", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="day-{day_id}-{sha[:12]}.zip"'})


def add_handover_routes(app: web.Application) -> None:
    app.router.add_post(r"/api/days/{day_id:\d+}/handover", hand_over)
    app.router.add_get(r"/api/days/{day_id:\d+}/handover/{sha256}", handover_package)
