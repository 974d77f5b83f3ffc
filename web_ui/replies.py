"""The one shape of a JSON answer: never cached (it carries people's data), and its
text kept as UTF-8 rather than escaped, so names read as written."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_reply(data: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"},
                             dumps=lambda d: json.dumps(d, ensure_ascii=False))
