"""A stored recording as an HTTP response, whichever store holds it.

A blob that is a local file goes out by `web.FileResponse` (sendfile, Range,
conditional requests). A blob that is not (an object-store backend) is streamed
from `BlobStore.open` with one byte range at most, which is what a ``<video>``
element asks for when it seeks; a multi-range request gets the whole file, as
RFC 9110 allows.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from recordings.blobstore import BlobStore

_CHUNK = 256 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single ``Range: bytes=...`` within `size`, None for no
    range or one this server ignores (several ranges); `web.HTTPRequestRangeNotSatisfiable`
    for a range outside the blob."""
    match = _RANGE.fullmatch(header.replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        start, end = max(0, size - length), size - 1
        if length == 0:
            start = size
    else:
        start = int(first)
        end = min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


async def blob_response(request: web.Request, store: BlobStore, key: str, size: int,
                        headers: dict[str, str]) -> web.StreamResponse:
    """The blob `key` (of `size` bytes) with `headers`; `BlobNotFound` if it is gone."""
    local = await asyncio.to_thread(store.local_path, key)
    if local is not None:
        return web.FileResponse(local, headers=headers)
    wanted = byte_range(request.headers.get("Range", ""), size)
    start, end = wanted if wanted is not None else (0, size - 1)
    response = web.StreamResponse(status=206 if wanted is not None else 200,
                                  headers={**headers, "Accept-Ranges": "bytes"})
    if wanted is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    response.content_length = max(0, end - start + 1)
    source = await asyncio.to_thread(store.open, key)
    try:
        await response.prepare(request)
        await asyncio.to_thread(source.seek, start)
        left = end - start + 1
        while left > 0:
            chunk = await asyncio.to_thread(source.read, min(_CHUNK, left))
            if not chunk:
                break  # shrank since measured; the client sees a short body
            await response.write(chunk)
            left -= len(chunk)
    finally:
        await asyncio.to_thread(source.close)
    await response.write_eof()
    return response
