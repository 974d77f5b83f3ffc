"""The one shape of an API refusal: ``{"error": code, "message": text, ...}`` as JSON."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def json_error(cls: type[web.HTTPError], code: str, message: str, **extra: Any) -> web.HTTPError:
    """An aiohttp HTTP error whose body says what went wrong, in the caller's words."""
    return cls(text=json.dumps({"error": code, "message": message, **extra}, ensure_ascii=False),
               content_type="application/json")
